namespace ViTGen.CompilerServices;

/// <summary>
/// Finds the NVIDIA libraries at run time. Never a static or direct binding: a process without a GPU must start,
/// run on the CPU and get a clear <see cref="VitCudaException"/> only when it asks for the GPU. Names are the
/// versioned ones every driver and toolkit installs (the unversioned <c>libcuda.so</c> exists only with the
/// toolkit's linker stubs); cuBLAS is tried newest first, each version's cuBLASLt loaded before it (cuBLAS needs it).
/// </summary>
internal static class CudaLibraries
{
    internal static readonly string[] DriverNames = OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1"];

    /// <summary>cuBLAS versions newest first, each as (cuBLASLt, cuBLAS).</summary>
    internal static readonly (string Lt, string Blas)[] BlasNames = OperatingSystem.IsWindows()
        ? [("cublasLt64_13.dll", "cublas64_13.dll"), ("cublasLt64_12.dll", "cublas64_12.dll")]
        : [("libcublasLt.so.13", "libcublas.so.13"), ("libcublasLt.so.12", "libcublas.so.12")];

    private static readonly Lazy<nint> Driver = new(() => LoadFirst(DriverNames, "the NVIDIA driver's CUDA library"));
    private static readonly Lazy<nint> Blas = new(LoadBlas);

    /// <summary>The driver library's handle; throws <see cref="VitCudaException"/> naming it when it is missing.</summary>
    public static nint DriverHandle => Driver.Value;

    /// <summary>cuBLAS's handle (cuBLASLt loaded first); throws <see cref="VitCudaException"/> naming it when it is missing.</summary>
    public static nint BlasHandle => Blas.Value;

    /// <summary>Loads the first of <paramref name="names"/> that exists, or throws naming every one tried.</summary>
    internal static nint LoadFirst(IReadOnlyList<string> names, string what)
    {
        foreach (string name in names)
        {
            foreach (string candidate in Candidates(name))
            {
                if (NativeLibrary.TryLoad(candidate, out nint handle)) return handle;
            }
        }
        string tried = string.Join(", ", names);
        throw new VitCudaException(
            $"ViTGen's GPU path needs {what} ({tried}), which could not be loaded. Install the NVIDIA driver and CUDA " +
            "libraries (cuBLAS 12 or 13), or run the model on the CPU with Load.", names[0], null);
    }

    /// <summary>The address of <paramref name="symbol"/>; a missing one means a library older than the GPU path needs.</summary>
    internal static nint Export(nint library, string symbol, string libraryDescription)
        => NativeLibrary.TryGetExport(library, symbol, out nint address)
            ? address
            : throw new VitCudaException($"{libraryDescription} has no export '{symbol}'; it is older than ViTGen's GPU path needs (CUDA 12 or later).");

    private static nint LoadBlas()
    {
        foreach (var (lt, blas) in BlasNames)
        {
            nint ltHandle = 0;
            foreach (string candidate in Candidates(lt))
            {
                if (NativeLibrary.TryLoad(candidate, out ltHandle)) break;
            }
            if (ltHandle == 0) continue;
            foreach (string candidate in Candidates(blas))
            {
                if (NativeLibrary.TryLoad(candidate, out nint handle)) return handle;
            }
        }
        string tried = string.Join(", ", BlasNames.SelectMany(pair => new[] { pair.Lt, pair.Blas }));
        throw new VitCudaException(
            $"ViTGen's GPU path needs cuBLAS 12 or 13 ({tried}), which could not be loaded. Install the CUDA toolkit's cuBLAS " +
            "(or put its folder on the library path), or run the model on the CPU with Load.", BlasNames[0].Blas, null);
    }

    /// <summary>The bare name (the loader's search path), then the toolkit's folders where CUDA_PATH or /usr/local/cuda has them.</summary>
    private static IEnumerable<string> Candidates(string name)
    {
        yield return name;
        string? root = Environment.GetEnvironmentVariable("CUDA_PATH");
        if (OperatingSystem.IsWindows())
        {
            if (root is null) yield break;
            yield return Path.Combine(root, "bin", "x64", name); // CUDA 13
            yield return Path.Combine(root, "bin", name);        // CUDA 12
        }
        else
        {
            if (root is not null) yield return Path.Combine(root, "lib64", name);
            yield return Path.Combine("/usr/local/cuda/lib64", name);
        }
    }
}
