namespace ViTGen;

/// <summary>Run-time options of a compiled model, passed to its generated <c>Load</c>.</summary>
public sealed class VitOptions
{
    /// <summary>The most threads one Forward uses (default: all processors). 1 runs on the calling thread only.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>How the weights file is read (dialect handling, tensors to ignore).</summary>
    public CheckpointOptions? Checkpoint { get; init; }

    internal static int ResolveThreads(VitOptions? options)
    {
        int threads = options?.Threads ?? Environment.ProcessorCount;
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(options), threads, "VitOptions.Threads must be at least 1.");
        return threads;
    }
}
