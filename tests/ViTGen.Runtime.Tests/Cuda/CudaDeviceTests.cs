using ViTGen.CompilerServices;
using ViTGen.Tests.Parity;
using Xunit.Abstractions;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// The device path: without a driver, LoadCuda fails fast naming the library; with a GPU, every fixture's
/// LoadCuda + Forward matches PyTorch and the CPU executor (those tests are skipped, with the reason, elsewhere).
/// </summary>
public sealed class CudaDeviceTests(ITestOutputHelper output)
{
    [NoCudaDriverFact]
    public void LoadCudaWithoutTheDriverNamesTheMissingLibrary()
    {
        var fixture = Fixture.Read("basic");
        var error = Assert.Throws<VitCudaException>(() => FixtureBasic.LoadCuda(fixture.WeightsPath));
        string library = OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1";
        Assert.Equal(library, error.Library);
        Assert.Contains(library, error.Message, StringComparison.Ordinal);
        Assert.Contains("NVIDIA driver", error.Message, StringComparison.Ordinal);
        output.WriteLine(error.Message);
    }

    [NoCudaDriverFact]
    public void LoadCudaFailsBeforeReadingTheWeights()
    {
        // A path that does not exist would be a VitWeightsException if the weights were read first.
        Assert.Throws<VitCudaException>(() => FixtureBasic.LoadCuda(Path.Combine(Fixture.Directory, "does-not-exist.safetensors")));
    }

    [Fact]
    public void AMissingLibraryIsNamedWithEveryNameTried()
    {
        var error = Assert.Throws<VitCudaException>(() => CudaLibraries.LoadFirst(["libvitgen-absent.so.7", "libvitgen-absent.so.6"], "a test library"));
        Assert.Equal("libvitgen-absent.so.7", error.Library);
        Assert.Contains("libvitgen-absent.so.7, libvitgen-absent.so.6", error.Message, StringComparison.Ordinal);
    }

    [CudaTheory]
    [MemberData(nameof(CpuPlanParityTests.Names), MemberType = typeof(CpuPlanParityTests))]
    public void DeviceForwardMatchesPyTorchAndTheCpuExecutor(string name)
    {
        var fixture = Fixture.Read(name);
        using var model = CudaPlans.OnDevice[name](fixture.WeightsPath);
        var result = fixture.PoisonedOutput();
        model.Forward(fixture.Input, result, fixture.Batch);
        Numerics.AssertClose(result, fixture.Expected, CpuPlanParityTests.TorchBound, out double vsTorch);
        float[] planned = CudaPlans.OnCpu[name](fixture.WeightsPath, fixture.Input, fixture.Batch);
        double vsExecutor = Numerics.RelativeL2(result, planned.Select(v => (double)v).ToArray());
        output.WriteLine($"{name} on {model.DeviceName}: relative L2 vs PyTorch {vsTorch:E2}, vs the CPU executor {vsExecutor:E2}");
        Assert.True(vsExecutor <= CpuPlanParityTests.CpuBound, $"relative L2 vs the CPU executor {vsExecutor:E3}");
    }

    [CudaFact]
    public void DeviceBatchesLargerThanOneRunAndRepeat()
    {
        var fixture = Fixture.Read("odd");
        using var model = FixtureOdd.LoadCuda(fixture.WeightsPath);
        int inputSize = model.InputSize;
        var images = new float[70 * inputSize];
        for (int i = 0; i < 70; i++) fixture.Input.AsSpan(i % fixture.Batch * inputSize, inputSize).CopyTo(images.AsSpan(i * inputSize));
        var batched = new float[70 * model.OutputSize];
        model.Forward(images, batched, 70); // more than MaxBatchPerRun: two chunks
        var single = new float[model.OutputSize];
        for (int i = 0; i < 70; i += 23)
        {
            model.Forward(images.AsSpan(i * inputSize, inputSize), single);
            Assert.Equal(single, batched.AsSpan(i * model.OutputSize, model.OutputSize).ToArray(), new Tolerance(1e-5f));
        }
    }

    private sealed class Tolerance(float bound) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= bound * Math.Max(1f, Math.Abs(y));
        public int GetHashCode(float obj) => 0;
    }
}
