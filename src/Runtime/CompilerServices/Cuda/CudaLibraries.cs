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

    /// <summary>The cuBLAS majors ViTGen binds, newest first.</summary>
    internal static readonly int[] KnownBlasMajors = [13, 12];

    /// <summary>The (cuBLASLt, cuBLAS) file names of cuBLAS major <paramref name="major"/> on this OS.</summary>
    internal static (string Lt, string Blas) BlasNames(int major) => OperatingSystem.IsWindows()
        ? ($"cublasLt64_{major}.dll", $"cublas64_{major}.dll")
        : ($"libcublasLt.so.{major}", $"libcublas.so.{major}");

    /// <summary>
    /// The cuBLAS majors to try with a driver that reports <paramref name="driverVersion"/> (cuDriverGetVersion:
    /// 1000 * major + 10 * minor, so 12040 is CUDA 12.4), newest first: only majors the driver supports, because a
    /// newer cuBLAS loads fine and then fails in cublasCreate_v2 (CUBLAS_STATUS_NOT_INITIALIZED) on an older driver.
    /// An older cuBLAS runs on a newer driver, so a CUDA 13 driver also gets cuBLAS 12 when 13 is not installed.
    /// Empty below CUDA 12.
    /// </summary>
    internal static int[] BlasMajors(int driverVersion)
    {
        int major = driverVersion / 1000;
        return [.. KnownBlasMajors.Where(known => known <= major)];
    }

    private static readonly Lazy<nint> Driver = new(() => LoadFirst(DriverNames, "the NVIDIA driver's CUDA library"));

    /// <summary>The driver library's handle; throws <see cref="VitCudaException"/> naming it when it is missing.</summary>
    public static nint DriverHandle => Driver.Value;

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

    /// <summary>
    /// Loads cuBLAS (its cuBLASLt first) of the newest major in <see cref="BlasMajors"/> that is installed; throws
    /// <see cref="VitCudaException"/> naming the driver's CUDA version and every library tried when none is.
    /// </summary>
    internal static nint LoadBlas(int driverVersion)
    {
        int[] majors = BlasMajors(driverVersion);
        string cuda = $"{driverVersion / 1000}.{driverVersion % 1000 / 10}";
        if (majors.Length == 0)
        {
            throw new VitCudaException(
                $"The NVIDIA driver supports CUDA {cuda}; ViTGen's GPU path needs CUDA 12.0 or later (cuBLAS 12 or 13). Update the driver, " +
                "or run the model on the CPU with Load.", DriverNames[0], null);
        }
        foreach (int major in majors)
        {
            var (lt, blas) = BlasNames(major);
            if (!TryLoad(lt, out _)) continue;
            if (TryLoad(blas, out nint handle)) return handle;
        }
        string tried = string.Join(", ", majors.Select(BlasNames).SelectMany(pair => new[] { pair.Lt, pair.Blas }));
        throw new VitCudaException(
            $"ViTGen's GPU path needs cuBLAS {string.Join(" or ", majors)} for this driver (CUDA {cuda}): {tried} could not be loaded. " +
            "Install the CUDA toolkit's cuBLAS (or put its folder on the library path), or run the model on the CPU with Load.",
            BlasNames(majors[0]).Blas, null);
    }

    private static bool TryLoad(string name, out nint handle)
    {
        foreach (string candidate in Candidates(name))
        {
            if (NativeLibrary.TryLoad(candidate, out handle)) return true;
        }
        handle = 0;
        return false;
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
