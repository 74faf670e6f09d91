using System.Diagnostics;
using System.Runtime.InteropServices;
using ViTGen.CompilerServices;

namespace ViTGen.Tests.Cuda;

/// <summary>Whether this machine can run the GPU path, and if not, why (the skip reason of device tests).</summary>
internal static unsafe class CudaProbe
{
    private static readonly Lazy<string?> Reason = new(Probe);

    /// <summary>Null when a device, the driver, cuBLAS and the embedded PTX are all present; otherwise what is missing.</summary>
    public static string? MissingReason => Reason.Value;

    private static string? Probe()
    {
        try
        {
            var driver = CudaDriverApi.Load();
            int result = driver.Init(0);
            if (result != CudaDriverApi.Success) return $"cuInit failed with CUresult {result}: no usable CUDA device.";
            int count;
            result = driver.DeviceGetCount(&count);
            if (result != CudaDriverApi.Success || count == 0) return "the CUDA driver sees no device.";
            int version;
            result = driver.DriverGetVersion(&version);
            if (result != CudaDriverApi.Success) return $"cuDriverGetVersion failed with CUresult {result}.";
            CublasApi.Load(version);
            return CudaKernelImage.TryRead() is null ? "ViTGen.Runtime was built without Cuda/kernels.ptx." : null;
        }
        catch (VitCudaException error)
        {
            return error.Message;
        }
    }
}

/// <summary>A fact that needs an NVIDIA GPU; skipped, with the reason, on machines without one.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (CudaProbe.MissingReason is { } reason) Skip = "Needs a CUDA device: " + reason;
    }
}

/// <summary>A theory that needs an NVIDIA GPU; skipped, with the reason, on machines without one.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class CudaTheoryAttribute : TheoryAttribute
{
    public CudaTheoryAttribute()
    {
        if (CudaProbe.MissingReason is { } reason) Skip = "Needs a CUDA device: " + reason;
    }
}

/// <summary>A fact about machines without the CUDA driver; skipped where the driver is installed.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class NoCudaDriverFactAttribute : FactAttribute
{
    public NoCudaDriverFactAttribute()
    {
        foreach (string name in CudaLibraries.DriverNames)
        {
            if (NativeLibrary.TryLoad(name, out nint handle))
            {
                NativeLibrary.Free(handle);
                Skip = $"The CUDA driver ({name}) is installed here; the device tests cover this machine.";
                return;
            }
        }
    }
}

/// <summary>A fact that runs clang-14; skipped, with the reason, where clang-14 is not on the PATH.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class Clang14FactAttribute : FactAttribute
{
    public const string Compiler = "clang-14";

    public Clang14FactAttribute()
    {
        if (Find() is null) Skip = $"{Compiler} is not on the PATH, so the PTX cannot be rebuilt here (install clang-14 to run this check).";
    }

    public static string? Find()
    {
        string? path = Environment.GetEnvironmentVariable("PATH");
        if (path is null) return null;
        foreach (string directory in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(directory, OperatingSystem.IsWindows() ? Compiler + ".exe" : Compiler);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>Runs the compiler; returns its exit code and standard error.</summary>
    public static (int ExitCode, string Errors) Run(string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo(Find() ?? Compiler) { WorkingDirectory = workingDirectory, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        string errors = process.StandardError.ReadToEnd();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, errors);
    }
}
