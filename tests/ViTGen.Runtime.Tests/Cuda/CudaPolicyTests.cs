using System.Runtime.InteropServices;
using ViTGen.CompilerServices;
using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// The GPU path's decisions as pure functions: which cuBLAS major a driver gets (L2), how a failing step is named (L4),
/// the JIT failure message, the hints of driver errors, the options' defaults and validation, and a library that is
/// present but is not the driver.
/// </summary>
public sealed class CudaPolicyTests
{
    [Theory]
    [InlineData(12000, new[] { 12 })]       // CUDA 12.0 driver: cuBLAS 13 would load and then fail in cublasCreate_v2
    [InlineData(12040, new[] { 12 })]
    [InlineData(12090, new[] { 12 })]
    [InlineData(13000, new[] { 13, 12 })]   // CUDA 13 driver: 13 first, 12 where only 12 is installed
    [InlineData(13020, new[] { 13, 12 })]
    [InlineData(14000, new[] { 13, 12 })]   // a newer driver runs the older libraries
    [InlineData(11080, new int[0])]         // older than the GPU path supports
    [InlineData(0, new int[0])]
    public void CublasMajorFollowsTheDriverVersion(int driverVersion, int[] majors)
        => Assert.Equal(majors, CudaLibraries.BlasMajors(driverVersion));

    [Fact]
    public void ADriverOlderThanCuda12IsRefusedNamingItsVersion()
    {
        var error = Assert.Throws<VitCudaException>(() => CudaLibraries.LoadBlas(11080));
        Assert.Contains("supports CUDA 11.8", error.Message, StringComparison.Ordinal);
        Assert.Contains("needs CUDA 12.0 or later", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CublasLibraryNamesCarryTheMajor()
    {
        var (lt, blas) = CudaLibraries.BlasNames(12);
        Assert.Equal(OperatingSystem.IsWindows() ? "cublasLt64_12.dll" : "libcublasLt.so.12", lt);
        Assert.Equal(OperatingSystem.IsWindows() ? "cublas64_12.dll" : "libcublas.so.12", blas);
    }

    [Fact]
    public void StepsAreNamedByPositionTimmNameAndCall()
    {
        var plan = FixtureBasic.CudaPlan.Build(2);
        int gemm = plan.Ops.IndexOf(plan.Ops.First(op => op is GpuGemm { Batch: 1 }));
        int batched = plan.Ops.IndexOf(plan.Ops.First(op => op is GpuGemm { Batch: > 1 }));
        int launch = plan.Ops.IndexOf(plan.Ops.First(op => op is GpuLaunch));
        int count = plan.Ops.Length;

        Assert.Equal($"step {gemm + 1} of {count} ({plan.Ops[gemm].Label}, cublasSgemm_v2) of the batch-2 plan", CudaSteps.Describe(plan, gemm));
        Assert.Equal($"step {batched + 1} of {count} ({plan.Ops[batched].Label}, cublasSgemmStridedBatched) of the batch-2 plan", CudaSteps.Describe(plan, batched));
        string entry = GpuKernels.EntryName(((GpuLaunch)plan.Ops[launch]).Kernel);
        Assert.Equal($"step {launch + 1} of {count} ({plan.Ops[launch].Label}, cuLaunchKernel({entry})) of the batch-2 plan", CudaSteps.Describe(plan, launch));
        Assert.StartsWith("blocks.0.", plan.Ops[batched].Label, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaSteps.Describe(plan, count));
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaSteps.Describe(plan, -1));
    }

    [Fact]
    public void JitFailuresCarryTheCompilersLogOrSayThereIsNone()
    {
        Assert.Equal("call failed. JIT compiler log:\nptxas error : line 3", CudaDevice.JitFailure("call failed.", "  ptxas error : line 3\n"));
        Assert.Equal("call failed. The JIT compiler wrote no error log.", CudaDevice.JitFailure("call failed.", ""));
        Assert.Equal("call failed. The JIT compiler wrote no error log.", CudaDevice.JitFailure("call failed.", null));
    }

    [Theory]
    [InlineData(700, "SynchronizeEachStep")]   // CUDA_ERROR_ILLEGAL_ADDRESS
    [InlineData(719, "SynchronizeEachStep")]   // CUDA_ERROR_LAUNCH_FAILED
    [InlineData(901, "CudaGraphs = false")]    // CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
    [InlineData(100, "CUDA_VISIBLE_DEVICES")]  // CUDA_ERROR_NO_DEVICE
    [InlineData(222, "sm_80")]                 // CUDA_ERROR_UNSUPPORTED_PTX_VERSION
    public void DriverErrorsSayWhatToDo(int result, string advice)
        => Assert.Contains(advice, CudaDriverApi.Hint(result), StringComparison.Ordinal);

    [Fact]
    public void AFaultWhoseStepIsKnownIsNotToldToFindItsStep()
        => Assert.DoesNotContain("SynchronizeEachStep", CudaDriverApi.Hint(700, stepKnown: true), StringComparison.Ordinal);

    [Fact]
    public void OptionsDefaultToDeviceZeroFp32WithGraphs()
    {
        var options = new VitCudaOptions();
        Assert.Equal(0, options.Device);
        Assert.Equal(VitCudaMath.Fp32, options.Math);
        Assert.True(options.CudaGraphs);
        Assert.False(options.SynchronizeEachStep);
        Assert.Null(new VitOptions().Cuda);
    }

    [Fact]
    public void InvalidOptionsAreRefusedWhenSet()
    {
        var device = Assert.Throws<ArgumentOutOfRangeException>(() => new VitCudaOptions { Device = -1 });
        Assert.Equal("Device", device.ParamName);
        var math = Assert.Throws<ArgumentOutOfRangeException>(() => new VitCudaOptions { Math = (VitCudaMath)7 });
        Assert.Equal("Math", math.ParamName);
    }

    [Fact]
    public void ALibraryWithoutTheDriversExportsIsNamedAsTooOld()
    {
        // A library that loads but is not libcuda (the runtime's own native shim) stands for a wrong or stub libcuda.so.1.
        nint library = NativeLibrary.Load("libSystem.Native", typeof(object).Assembly, DllImportSearchPath.SafeDirectories);
        var error = Assert.Throws<VitCudaException>(() => CudaDriverApi.Bind(library));
        Assert.Contains("has no export 'cuInit'", error.Message, StringComparison.Ordinal);
        Assert.Contains("The CUDA driver library", error.Message, StringComparison.Ordinal);
    }
}
