namespace ViTGen;

/// <summary>How the cuBLAS GEMMs of the GPU path multiply.</summary>
public enum VitCudaMath
{
    /// <summary>
    /// Full FP32 (<c>CUBLAS_DEFAULT_MATH</c>), as PyTorch's default (<c>torch.backends.cuda.matmul.allow_tf32 = False</c>).
    /// The parity bound against the float64 reference is 1e-4 (relative L2).
    /// </summary>
    Fp32,

    /// <summary>
    /// TF32 tensor cores (<c>CUBLAS_TF32_TENSOR_OP_MATH</c>, sm_80 and later): inputs rounded to a 10-bit mantissa,
    /// FP32 accumulation. Several times the GEMM throughput; expect a relative L2 error around 1e-3 against the float64
    /// reference (the smoke check's bound is 2e-3). The kernels (LayerNorm, softmax, GELU) stay FP32.
    /// </summary>
    Tf32,
}

/// <summary>GPU options of a compiled model, set as <see cref="VitOptions.Cuda"/> and read by its generated <c>LoadCuda</c>.</summary>
public sealed class VitCudaOptions
{
    private readonly int _device;

    /// <summary>
    /// The CUDA device ordinal, as the driver numbers them after <c>CUDA_VISIBLE_DEVICES</c> (default 0). A device that
    /// does not exist is a <see cref="VitCudaException"/> at load naming how many the driver sees.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public int Device
    {
        get => _device;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value, nameof(Device));
            _device = value;
        }
    }

    /// <summary>FP32 (default, matches PyTorch) or TF32 tensor-core GEMMs.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined <see cref="VitCudaMath"/>.</exception>
    public VitCudaMath Math
    {
        get;
        init
        {
            if (!Enum.IsDefined(value)) throw new ArgumentOutOfRangeException(nameof(Math), value, "VitCudaOptions.Math must be Fp32 or Tf32.");
            field = value;
        }
    } = VitCudaMath.Fp32;

    /// <summary>
    /// Replays the plan as a CUDA graph (default true): the first Forward of a batch size runs the plan step by step
    /// (the warm-up: cuBLAS picks its kernels), the second captures it into a graph, later ones launch that graph,
    /// one driver call instead of one per GEMM and kernel. Graphs are rebuilt when a larger batch grows the activations.
    /// </summary>
    public bool CudaGraphs { get; init; } = true;

    /// <summary>
    /// Debugging: waits for the device after every step of the plan, so an asynchronous fault (an illegal address,
    /// a failed launch) is reported at the step that caused it, by number and timm name (<c>blocks.3.mlp.fc1</c>),
    /// instead of at the end of the pass. Much slower; turns off <see cref="CudaGraphs"/>.
    /// </summary>
    public bool SynchronizeEachStep { get; init; }
}
