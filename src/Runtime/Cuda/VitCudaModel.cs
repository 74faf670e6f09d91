namespace ViTGen;

/// <summary>
/// A compiled model loaded onto an NVIDIA GPU by its generated <c>LoadCuda</c>: the same forward pass as the CPU
/// <c>Forward</c>, run as the generated plan of cuBLAS calls and CUDA kernels. Weights stay on the device until
/// <see cref="Dispose"/>; activations grow to the largest batch run so far (in chunks of at most
/// <see cref="MaxBatchPerRun"/> images).
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

    private readonly CompilerServices.CudaDevice _device;
    private readonly CompilerServices.CudaExecutor _executor;
    private readonly CompilerServices.GpuArenaLayout _layout;
    private readonly Func<int, CompilerServices.GpuPlan> _build;
    private readonly Dictionary<int, CompilerServices.GpuPlan> _plans = [];
    private readonly Lock _gate = new();
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
        long perImageBytes = layout.ActivationFloatsPerImage * sizeof(float);
        MaxBatchPerRun = (int)Math.Clamp(ActivationBudgetBytes / perImageBytes, 1, MaxChunk);
    }

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
            _device.MakeCurrent();
            fixed (float* input = pixels)
            fixed (float* result = output)
            {
                for (int first = 0; first < batch; first += MaxBatchPerRun)
                {
                    int count = Math.Min(MaxBatchPerRun, batch - first);
                    Run(Plan(count), input + (long)first * InputSize, result + (long)first * OutputSize);
                }
            }
        }
    }

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

    private void Run(CompilerServices.GpuPlan plan, float* input, float* output)
    {
        long activationFloats = plan.ArenaFloats - _layout.WeightFloats;
        if (activationFloats > _activationFloats)
        {
            _device.Free(_activations);
            _activations = 0;
            _activationFloats = 0;
            _activations = _device.Allocate(activationFloats);
            _activationFloats = activationFloats;
        }
        ulong Device(long offset) => _activations + (ulong)(offset - _layout.WeightFloats) * sizeof(float);
        _device.CopyToDevice(Device(plan.InputOffset), input, (long)plan.Batch * InputSize);
        _executor.Run(plan, _weights, _activations);
        _device.CopyToHost(output, Device(plan.OutputOffset), (long)plan.Batch * OutputSize);
    }

    private CompilerServices.GpuPlan Plan(int batch)
    {
        if (!_plans.TryGetValue(batch, out var plan)) _plans[batch] = plan = _build(batch);
        return plan;
    }

    /// <summary>Frees the device memory, the cuBLAS handle, the stream and the context reference.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            try
            {
                _device.MakeCurrent();
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
