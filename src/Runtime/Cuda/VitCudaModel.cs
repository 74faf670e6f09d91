namespace ViTGen;

/// <summary>
/// A compiled model loaded onto an NVIDIA GPU by its generated <c>LoadCuda</c>: the same forward pass as the CPU
/// <c>Forward</c>, run as the generated plan of cuBLAS calls and CUDA kernels. Weights stay on the device until
/// <see cref="Dispose"/>; activations grow to the largest batch run so far (in chunks of at most
/// <see cref="MaxBatchPerRun"/> images). <see cref="VitOptions.Cuda"/> chooses the device, FP32 or TF32, CUDA graphs
/// and per-step synchronization.
/// </summary>
/// <remarks>
/// Calls on one instance from several threads are serialized (a lock; each binds the device's context to its
/// thread), unlike the generated CPU model's: the instance owns one CUDA stream, one cuBLAS handle and one
/// activation arena that every run uses, so concurrent runs would need one of each per call. <see cref="Dispose"/>
/// waits for a call in flight; calls after it throw <see cref="ObjectDisposedException"/>.
/// </remarks>
public sealed unsafe class VitCudaModel : IDisposable
{
    /// <summary>Activation memory one run may use; batches beyond it run in chunks.</summary>
    private const long ActivationBudgetBytes = 1L << 30;
    private const int MaxChunk = 64;
    // The failure contexts of the waits, constant so that a Forward allocates nothing.
    private const string ChunkWait = "the wait for a chunk's output (an asynchronous error of its forward pass or copies)";

    private readonly CompilerServices.CudaDevice _device;
    private readonly CompilerServices.CudaExecutor _executor;
    private readonly CompilerServices.GpuArenaLayout _layout;
    private readonly Func<int, CompilerServices.GpuPlan> _build;
    private readonly Dictionary<int, CompilerServices.GpuPlan> _plans = [];
    // Per batch size: absent until its first (warm-up) run, then 0 until captured, then the instantiated CUDA graph.
    private readonly Dictionary<int, nint> _graphs = [];
    private readonly Lock _gate = new();
    // Two pinned staging buffers each way and an event per output buffer: the host copies chunk i+1's pixels into one
    // input buffer while the device works on chunk i from the other, and waits for a chunk's output only when it is
    // about to copy it out.
    private readonly nint[] _inputStaging = new nint[2], _outputStaging = new nint[2], _downloaded = new nint[2];
    private int _stagedImages;
    private ulong _weights, _activations;
    private long _activationFloats;
    private bool _disposed;

    internal VitCudaModel(CompilerServices.CudaDevice device, ulong weights, CompilerServices.GpuArenaLayout layout, Func<int, CompilerServices.GpuPlan> build)
    {
        _device = device;
        _executor = new CompilerServices.CudaExecutor(device);
        _weights = weights;
        _layout = layout;
        _build = build;
        MaxBatchPerRun = MaxBatch(layout);
    }

    /// <summary>The largest chunk: as many images as fit <see cref="ActivationBudgetBytes"/>, at least 1, at most 64.</summary>
    internal static int MaxBatch(CompilerServices.GpuArenaLayout layout)
        => (int)Math.Clamp(ActivationBudgetBytes / (layout.ActivationFloatsPerImage * sizeof(float)), 1, MaxChunk);

    /// <summary>Floats <see cref="Forward"/> reads per image: normalized CHW pixels.</summary>
    public int InputSize => _layout.InputSize;

    /// <summary>Floats <see cref="Forward"/> writes per image: logits, or pooled features for a model without a head.</summary>
    public int OutputSize => _layout.OutputSize;

    /// <summary>The GPU's name, as the driver reports it.</summary>
    public string DeviceName => _device.Name;

    /// <summary>The most images one run of the plan takes; larger batches run in chunks of this size.</summary>
    public int MaxBatchPerRun { get; }

    /// <summary>
    /// Runs <paramref name="batch"/> images: <paramref name="pixels"/> holds <c>batch * InputSize</c> normalized NCHW floats,
    /// <paramref name="output"/> receives <c>batch * OutputSize</c> floats.
    /// </summary>
    /// <exception cref="ArgumentException">The spans do not hold exactly <paramref name="batch"/> images.</exception>
    /// <exception cref="VitCudaException">A driver or cuBLAS call failed; the message names it and the step of the forward pass.</exception>
    public void Forward(ReadOnlySpan<float> pixels, Span<float> output, int batch = 1)
    {
        CompilerServices.BatchRunner.Validate(pixels.Length, output.Length, batch, InputSize, OutputSize);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var scope = _device.Enter();
            Reserve(Math.Min(batch, MaxBatchPerRun));
            fixed (float* input = pixels)
            fixed (float* result = output)
            {
                int chunks = (batch + MaxBatchPerRun - 1) / MaxBatchPerRun;
                for (int chunk = 0; chunk < chunks; chunk++)
                {
                    Enqueue(chunk, input, batch);
                    if (chunk > 0) Deliver(chunk - 1, result, batch);
                }
                Deliver(chunks - 1, result, batch);
            }
        }
    }

    /// <summary>Stages chunk <paramref name="chunk"/>'s pixels and enqueues its upload, forward pass and download.</summary>
    private void Enqueue(int chunk, float* input, int batch)
    {
        int first = chunk * MaxBatchPerRun, count = Math.Min(MaxBatchPerRun, batch - first), slot = chunk & 1;
        var plan = Plan(count);
        long floats = (long)count * InputSize;
        // The staging buffer's previous reader, the upload of chunk - 2, finished before chunk - 2 was delivered.
        float* staging = (float*)_inputStaging[slot];
        Buffer.MemoryCopy(input + (long)first * InputSize, staging, floats * sizeof(float), floats * sizeof(float));
        _device.CopyToDeviceAsync(Device(plan.InputOffset), staging, floats);
        Execute(plan);
        _device.CopyToHostAsync((float*)_outputStaging[slot], Device(plan.OutputOffset), (long)count * OutputSize);
        _device.Record(_downloaded[slot]);
    }

    /// <summary>Waits for chunk <paramref name="chunk"/>'s output and copies it to the caller's span.</summary>
    private void Deliver(int chunk, float* result, int batch)
    {
        int first = chunk * MaxBatchPerRun, count = Math.Min(MaxBatchPerRun, batch - first), slot = chunk & 1;
        _device.Wait(_downloaded[slot], ChunkWait);
        long bytes = (long)count * OutputSize * sizeof(float);
        Buffer.MemoryCopy((float*)_outputStaging[slot], result + (long)first * OutputSize, bytes, bytes);
    }

    /// <summary>Runs the plan step by step (warm-up, no graphs, debugging), or captures it once and replays the graph.</summary>
    private void Execute(CompilerServices.GpuPlan plan)
    {
        var options = _device.Options;
        bool graphs = options.CudaGraphs && !options.SynchronizeEachStep;
        if (!graphs || !_graphs.TryGetValue(plan.Batch, out nint graph))
        {
            _executor.Run(plan, _weights, _activations, options.SynchronizeEachStep);
            if (graphs) _graphs[plan.Batch] = 0;
            return;
        }
        if (graph == 0) _graphs[plan.Batch] = graph = Capture(plan);
        _device.Launch(graph, "the replay of the forward pass's CUDA graph");
    }

    private nint Capture(CompilerServices.GpuPlan plan)
    {
        _device.BeginCapture();
        try
        {
            _executor.Run(plan, _weights, _activations, synchronizeEachStep: false);
        }
        catch
        {
            _device.AbandonCapture();
            throw;
        }
        return _device.EndCaptureAndInstantiate($"the capture of the batch-{plan.Batch} plan into a CUDA graph");
    }

    /// <summary>Grows the activations and the staging buffers to <paramref name="images"/> per run (never shrinks them).</summary>
    private void Reserve(int images)
    {
        long activationFloats = _layout.ActivationFloatsPerImage * images;
        if (activationFloats > _activationFloats)
        {
            // Captured graphs hold the old addresses.
            DestroyGraphs();
            _device.Free(_activations);
            _activations = 0;
            _activationFloats = 0;
            _activations = _device.Allocate(activationFloats);
            _activationFloats = activationFloats;
        }
        if (_downloaded[0] == 0)
        {
            _downloaded[0] = _device.CreateEvent();
            _downloaded[1] = _device.CreateEvent();
        }
        if (images > _stagedImages)
        {
            FreeStaging();
            for (int slot = 0; slot < 2; slot++)
            {
                _inputStaging[slot] = (nint)_device.AllocateHost((long)images * InputSize);
                _outputStaging[slot] = (nint)_device.AllocateHost((long)images * OutputSize);
            }
            _stagedImages = images;
        }
    }

    private void DestroyGraphs()
    {
        foreach (nint graph in _graphs.Values) _device.DestroyGraph(graph);
        _graphs.Clear();
    }

    private void FreeStaging()
    {
        for (int slot = 0; slot < 2; slot++)
        {
            _device.FreeHost((float*)_inputStaging[slot]);
            _device.FreeHost((float*)_outputStaging[slot]);
            _inputStaging[slot] = _outputStaging[slot] = 0;
        }
        _stagedImages = 0;
    }

    private ulong Device(long offset) => _activations + (ulong)(offset - _layout.WeightFloats) * sizeof(float);

    /// <summary>
    /// The generated CPU model's <c>ForwardAttention</c> (Forward plus every block's attention probabilities) is not
    /// implemented on the GPU: the plan never materializes the probabilities outside its attention kernel.
    /// </summary>
    /// <exception cref="NotSupportedException">Always; use the CPU model's <c>ForwardAttention</c>.</exception>
    public void ForwardAttention(ReadOnlySpan<float> pixels, Span<float> output, Span<float> attention, int batch = 1)
        => throw Unsupported(nameof(ForwardAttention));

    /// <summary>The generated CPU model's <c>ForwardFeatures</c> (timm's <c>forward_features</c>) is not implemented on the GPU.</summary>
    /// <exception cref="NotSupportedException">Always; use the CPU model's <c>ForwardFeatures</c>.</exception>
    public void ForwardFeatures(ReadOnlySpan<float> pixels, Span<float> features, int batch = 1)
        => throw Unsupported(nameof(ForwardFeatures));

    /// <summary>The generated CPU model's <c>ForwardPooled</c> (timm's pre-logits) is not implemented on the GPU.</summary>
    /// <exception cref="NotSupportedException">Always; use the CPU model's <c>ForwardPooled</c>.</exception>
    public void ForwardPooled(ReadOnlySpan<float> pixels, Span<float> pooled, int batch = 1)
        => throw Unsupported(nameof(ForwardPooled));

    private static NotSupportedException Unsupported(string member)
        => new($"VitCudaModel.{member} is not supported on the GPU: load the CPU model (the generated class's Load) and call its {member}.");

    private CompilerServices.GpuPlan Plan(int batch)
    {
        if (!_plans.TryGetValue(batch, out var plan)) _plans[batch] = plan = _build(batch);
        return plan;
    }

    /// <summary>Frees the device memory, the graphs, the pinned buffers, the cuBLAS handle, the stream and the context reference.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            try
            {
                using var scope = _device.Enter();
                DestroyGraphs();
                FreeStaging();
                for (int slot = 0; slot < 2; slot++) _device.DestroyEvent(_downloaded[slot]);
                _device.Free(_activations);
                _device.Free(_weights);
            }
            catch (VitCudaException)
            {
                // Teardown after a device error: the context is gone, and with it the memory.
            }
            _activations = _weights = 0;
            _device.Dispose();
        }
    }
}
