using ViTGen.CompilerServices;
using ViTGen.Tests.Parity;
using Xunit.Abstractions;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// What the device path asks of the driver and cuBLAS, over <see cref="FakeCuda"/>: one non-blocking stream for every
/// copy, GEMM, launch and graph (L1); the context pushed and popped around every call, never left current (L3); the
/// plan captured into a CUDA graph on its second run and replayed after (and rebuilt when the activations move);
/// per-step synchronization naming the failing step and the JIT's error log (L4); the options reaching cuBLAS.
/// xunit runs the tests of one class one at a time, which the fake's static state needs.
/// </summary>
public sealed unsafe class CudaCallSequenceTests : IDisposable
{
    private readonly Fixture _fixture = Fixture.Read("basic");
    private readonly int _opsPerRun = FixtureBasic.CudaPlan.Build(1).Ops.Length;
    private readonly ITestOutputHelper _output;

    public CudaCallSequenceTests(ITestOutputHelper output)
    {
        _output = output;
        FakeCuda.Reset();
    }

    public void Dispose() => FakeCuda.Reset();

    private VitCudaModel Load(VitCudaOptions? cuda = null, List<int>? versions = null)
        => CudaLoading.Load<FixtureBasic.CudaPlan>(_fixture.WeightsPath, new VitOptions { Cuda = cuda },
            options => CudaDevice.Open(options, FakeCuda.Driver(), version =>
            {
                versions?.Add(version);
                return FakeCuda.Blas();
            }));

    private float[] Forward(VitCudaModel model, int batch)
    {
        var pixels = new float[batch * model.InputSize];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = _fixture.Input[i % _fixture.Input.Length];
        var output = new float[batch * model.OutputSize];
        model.Forward(pixels, output, batch);
        return output;
    }

    private static int Count(string prefix) => FakeCuda.CallsNamed(prefix).Count();

    [Fact]
    public void EveryCopyAndStepRunsAsynchronouslyOnOneNonBlockingStream()
    {
        using (var model = Load())
        {
            Forward(model, 2);
            Forward(model, 2);
            Forward(model, 2);
        }
        string stream = $"{FakeCuda.Stream:X}";
        Assert.Equal(["stream flags 1"], FakeCuda.CallsNamed("stream flags")); // CU_STREAM_NON_BLOCKING
        Assert.Equal([$"blas stream {stream}"], FakeCuda.CallsNamed("blas stream"));
        string[] onStreams = [.. FakeCuda.Calls.Where(call => call.Contains(" on ", StringComparison.Ordinal))];
        Assert.NotEmpty(onStreams);
        Assert.All(onStreams, call => Assert.Matches($" on {stream}( |$)", call));
        // The weights come from the pageable weight image; every Forward's copies go through pinned staging.
        Assert.Single(FakeCuda.CallsNamed("HtoD"), call => !call.EndsWith("from pinned memory", StringComparison.Ordinal));
        Assert.Equal(3, FakeCuda.CallsNamed("HtoD").Count(call => call.EndsWith("from pinned memory", StringComparison.Ordinal)));
        Assert.All(FakeCuda.CallsNamed("DtoH"), call => Assert.EndsWith("to pinned memory", call, StringComparison.Ordinal));
    }

    [Fact]
    public void TheContextIsPushedAndPoppedAroundEveryCallAndNeverLeftCurrent()
    {
        VitCudaModel model = Load();
        Assert.Equal(0, FakeCuda.PushDepth);
        Forward(model, 2);
        Assert.Equal(0, FakeCuda.PushDepth);

        // From another thread: its pushes and pops balance on that thread.
        int otherDepth = -1;
        var thread = new Thread(() =>
        {
            Forward(model, 3);
            otherDepth = FakeCuda.PushDepth;
        });
        thread.Start();
        thread.Join();
        Assert.Equal(0, otherDepth);

        model.Dispose();
        Assert.Equal(0, FakeCuda.PushDepth);
        Assert.Equal(Count("push"), Count("pop"));
        Assert.True(Count("push") >= 4, "load, two forwards and dispose each push the context");
        Assert.Empty(FakeCuda.CallsNamed("push of an unknown context"));
        Assert.Empty(FakeCuda.CallsNamed("pop of an empty stack"));
    }

    [Fact]
    public void DisposeReleasesEveryAllocationAndTheContext()
    {
        using (var model = Load())
        {
            Forward(model, 70);
            Assert.True(FakeCuda.LiveHostBlocks > 0);
        }
        Assert.Equal(0, FakeCuda.LiveDeviceBlocks);
        Assert.Equal(0, FakeCuda.LiveHostBlocks);
        Assert.Equal(0, FakeCuda.Retained);
    }

    [Fact]
    public void TheWeightsReachTheDeviceIntact()
    {
        using var model = Load();
        using var image = CudaLoading.ReadWeights<FixtureBasic.CudaPlan>(_fixture.WeightsPath, null);
        ulong device = FakeCuda.DeviceBlockOfSize(image.Length * sizeof(float));
        Assert.True(new ReadOnlySpan<float>((void*)device, (int)image.Length).SequenceEqual(image.Slice(0, (int)image.Length)));
    }

    [Fact]
    public void ThePlanIsCapturedOnItsSecondRunAndReplayedAfter()
    {
        using var model = Load();
        Forward(model, 2); // warm-up: step by step
        Assert.Equal(_opsPerRun, Count("gemm") + Count("launch"));
        Assert.Equal(0, Count("begin capture"));

        FakeCuda.Calls.Clear();
        Forward(model, 2); // captured (thread-local mode), instantiated, launched
        Assert.Equal([$"begin capture on {FakeCuda.Stream:X} mode 1"], FakeCuda.CallsNamed("begin capture"));
        Assert.Equal(_opsPerRun, Count("gemm") + Count("launch"));
        Assert.Equal(1, Count("instantiate"));
        Assert.Equal(1, Count("graph launch"));

        FakeCuda.Calls.Clear();
        Forward(model, 2); // replayed: no GEMM or launch of its own
        Assert.Equal(0, Count("gemm") + Count("launch"));
        Assert.Equal(0, Count("begin capture"));
        Assert.Equal(1, Count("graph launch"));

        FakeCuda.Calls.Clear();
        Forward(model, 5); // larger: the activations move, so the graph is destroyed and batch 5 warms up
        Assert.Equal(1, Count("graph destroy"));
        Assert.Equal(0, Count("graph launch"));
        FakeCuda.Calls.Clear();
        Forward(model, 2); // batch 2 warms up again over the new activations
        Assert.Equal(0, Count("begin capture"));
    }

    [Fact]
    public void WithoutGraphsEveryRunIsStepByStep()
    {
        using var model = Load(new VitCudaOptions { CudaGraphs = false });
        int loadSynchronizations = FakeCuda.Synchronizations; // the upload of the weights
        for (int run = 0; run < 3; run++) Forward(model, 2);
        Assert.Equal(3 * _opsPerRun, Count("gemm") + Count("launch"));
        Assert.Equal(0, Count("begin capture") + Count("graph launch"));
        Assert.Equal(loadSynchronizations, FakeCuda.Synchronizations); // a Forward waits on its download events only
        Assert.Equal(3, Count("wait"));
    }

    [Fact]
    public void SynchronizeEachStepWaitsAfterEveryStepAndNamesTheFailingOne()
    {
        using (var model = Load(new VitCudaOptions { SynchronizeEachStep = true }))
        {
            int before = FakeCuda.Synchronizations;
            for (int run = 0; run < 3; run++) Forward(model, 2);
            Assert.Equal(3 * _opsPerRun, FakeCuda.Synchronizations - before);
            Assert.Equal(0, Count("begin capture")); // per-step waits cannot be captured
        }

        FakeCuda.Reset();
        using var failing = Load(new VitCudaOptions { SynchronizeEachStep = true });
        const int FailingStep = 9;
        FakeCuda.FailSynchronizeAt = FakeCuda.Synchronizations + FailingStep;
        var error = Assert.Throws<VitCudaException>(() => Forward(failing, 2));
        var plan = FixtureBasic.CudaPlan.Build(2);
        Assert.Contains(CudaSteps.Describe(plan, FailingStep - 1), error.Message, StringComparison.Ordinal);
        Assert.Contains($"step {FailingStep} of {plan.Ops.Length} ({plan.Ops[FailingStep - 1].Label}, ", error.Message, StringComparison.Ordinal);
        Assert.Contains("CUDA_ERROR_ILLEGAL_ADDRESS", error.Message, StringComparison.Ordinal);
        Assert.Equal(700, error.ErrorCode);
        Assert.Equal(0, FakeCuda.PushDepth);
        _output.WriteLine(error.Message);
    }

    [Fact]
    public void BatchesBeyondOneRunGoInChunksThatLandInOrder()
    {
        using var model = Load();
        Assert.Equal(64, model.MaxBatchPerRun);
        float[] output = Forward(model, 70);
        // The fake writes the download's number into every float: chunk 0 (64 images) then chunk 1 (6 images).
        Assert.Equal(
            [$"DtoH {64 * model.OutputSize * sizeof(float)} bytes on {FakeCuda.Stream:X} to pinned memory",
             $"DtoH {6 * model.OutputSize * sizeof(float)} bytes on {FakeCuda.Stream:X} to pinned memory"],
            FakeCuda.CallsNamed("DtoH"));
        Assert.All(output.AsSpan(0, 64 * model.OutputSize).ToArray(), value => Assert.Equal(1f, value));
        Assert.All(output.AsSpan(64 * model.OutputSize).ToArray(), value => Assert.Equal(2f, value));
        Assert.Equal(
            [$"HtoD {64 * model.InputSize * sizeof(float)} bytes on {FakeCuda.Stream:X} from pinned memory",
             $"HtoD {6 * model.InputSize * sizeof(float)} bytes on {FakeCuda.Stream:X} from pinned memory"],
            FakeCuda.CallsNamed("HtoD").Skip(1));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SteadyStateForwardAllocatesNothing(bool graphs)
    {
        using var model = Load(new VitCudaOptions { CudaGraphs = graphs });
        const int Batch = 70; // two chunks, two plans, two graphs
        var pixels = new float[Batch * model.InputSize];
        var output = new float[Batch * model.OutputSize];
        for (int run = 0; run < 3; run++) model.Forward(pixels, output, Batch); // step by step, captured, replayed
        FakeCuda.Recording = false; // the fake's own records allocate
        long bytes = Allocations.OnThisThread(() =>
        {
            for (int run = 0; run < 5; run++) model.Forward(pixels, output, Batch);
        });
        Assert.Equal(0, bytes);
    }

    [Theory]
    [InlineData(VitCudaMath.Fp32, 0)] // CUBLAS_DEFAULT_MATH
    [InlineData(VitCudaMath.Tf32, 3)] // CUBLAS_TF32_TENSOR_OP_MATH
    public void TheMathModeAndWorkspaceReachCublas(VitCudaMath math, int mode)
    {
        using var model = Load(new VitCudaOptions { Math = math });
        Assert.Equal([$"blas math {mode}"], FakeCuda.CallsNamed("blas math"));
        Assert.Equal([$"blas workspace {CudaDevice.BlasWorkspaceBytes}"], FakeCuda.CallsNamed("blas workspace"));
    }

    [Fact]
    public void TheDeviceOptionPicksTheOrdinalAndAMissingOneIsNamed()
    {
        FakeCuda.DeviceCount = 2;
        using (Load(new VitCudaOptions { Device = 1 })) Assert.Equal(["retain 1"], FakeCuda.CallsNamed("retain"));
        var error = Assert.Throws<VitCudaException>(() => Load(new VitCudaOptions { Device = 2 }));
        Assert.Contains("CUDA device 2 (VitCudaOptions.Device) does not exist: the driver sees 2 devices", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CublasIsChosenForTheDriversVersion()
    {
        FakeCuda.Version = 13010;
        var versions = new List<int>();
        using (Load(versions: versions)) Assert.Equal([13010], versions);
    }

    [Fact]
    public void ADriverThatFailsToInitializeIsReportedWithItsErrorBeforeCublasOrWeights()
    {
        FakeCuda.InitResult = 100;
        var versions = new List<int>();
        var error = Assert.Throws<VitCudaException>(() => Load(versions: versions));
        Assert.Equal(100, error.ErrorCode);
        Assert.Contains("cuInit", error.Message, StringComparison.Ordinal);
        Assert.Contains("CUDA_ERROR_NO_DEVICE", error.Message, StringComparison.Ordinal);
        Assert.Contains("CUDA_VISIBLE_DEVICES", error.Message, StringComparison.Ordinal);
        Assert.Empty(versions);
    }

    [Fact]
    public void APtxJitFailureCarriesTheCompilersLogAndReleasesTheDevice()
    {
        FakeCuda.JitFails = true;
        var error = Assert.Throws<VitCudaException>(() => Load());
        Assert.Equal(218, error.ErrorCode);
        Assert.Contains("cuModuleLoadDataEx", error.Message, StringComparison.Ordinal);
        Assert.Contains("JIT compiler log:\nptxas fatal : fake error in kernels.ptx line 7", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, FakeCuda.LiveDeviceBlocks);
        Assert.Equal(0, FakeCuda.Retained);
        Assert.Equal(0, FakeCuda.PushDepth);
        _output.WriteLine(error.Message);
    }
}
