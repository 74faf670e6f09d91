namespace ViTGen;

/// <summary>Run-time options of a compiled model, passed to its generated <c>Load</c>.</summary>
public sealed class VitOptions
{
    /// <summary>
    /// The most threads one Forward uses, the calling thread included (default: all processors). 1 runs on the
    /// calling thread only. Forwards of different models on different threads run at the same time on
    /// disjoint workers of one process-wide pool, each within its own budget, as long as idle workers remain;
    /// beyond that a Forward runs with the workers it could get (at least its calling thread).
    /// </summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>How the weights file is read (dialect handling, tensors to ignore).</summary>
    public CheckpointOptions? Checkpoint { get; init; }

    /// <summary>
    /// Whether <c>Load</c> and <c>LoadCuda</c> resample a checkpoint's position embedding whose patch grid differs from
    /// the compiled one (a model trained at 224 pixels loaded into one compiled for 384), as timm's loader does: the
    /// class, distillation and register rows are kept and the grid, taken as square, is resized with antialiased
    /// bicubic interpolation (PyTorch's <c>F.interpolate(mode='bicubic', align_corners=False, antialias=True)</c>).
    /// Default true; false makes any other shape an error.
    /// </summary>
    public bool ResamplePositionEmbedding { get; init; } = true;

    /// <summary>GPU options (device, FP32 or TF32, CUDA graphs, per-step synchronization), read by <c>LoadCuda</c> only.</summary>
    public VitCudaOptions? Cuda { get; init; }

    internal static int ResolveThreads(VitOptions? options)
    {
        int threads = options?.Threads ?? Environment.ProcessorCount;
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(options), threads, "VitOptions.Threads must be at least 1.");
        return threads;
    }
}
