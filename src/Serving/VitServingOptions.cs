namespace ViTGen;

/// <summary>How a served model batches requests and what input it accepts.</summary>
public sealed class VitServingOptions
{
    /// <summary>
    /// The largest body accepted, in bytes, below <see cref="Array.MaxLength"/> (Kestrel's <c>MaxRequestBodySize</c> is
    /// set to the same). Default 32 MiB.
    /// </summary>
    public long MaxBodyBytes { get; set; } = 32L << 20;

    /// <summary>Images declaring more pixels than this are refused from their header (<see cref="VitImageOptions.MaxPixels"/>).</summary>
    public long MaxPixels { get; set; } = VitImageOptions.DefaultMaxPixels;

    /// <summary>The most images one batched forward pass runs. Default 16.</summary>
    public int MaxBatch { get; set; } = 16;

    /// <summary>
    /// How long the batcher waits, after the first image of a batch, for more to arrive. Default 0: no waiting; the
    /// images that arrive while a pass runs form the next batch. On Fashion-MNIST (2 cores, loopback) a 1 ms wait cut
    /// one client's throughput from 736 to 210 requests/s (the timer fires late) and 32 clients' from 1584 to 1295.
    /// </summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.Zero;

    /// <summary>Images waiting for the batcher beyond which requests are refused with 503 and <c>Retry-After</c>. Default 256.</summary>
    public int MaxQueue { get; set; } = 256;

    /// <summary>Threads per forward pass (<see cref="VitOptions.Threads"/>). Default: the processor count.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// The eval transform applied to each decoded image. Null: timm's ImageNet default (bicubic resize to
    /// size / 0.875, center crop to the model's size, ImageNet mean and std) for 3-channel models; other models must set it.
    /// </summary>
    public VitPreprocessing? Preprocessing { get; set; }

    /// <summary>Class names by index; a class without one is called <c>class N</c>.</summary>
    public IReadOnlyList<string> Labels { get; set; } = [];

    /// <summary>Checks every value, naming the first bad one.</summary>
    internal void Validate(VitArchitecture architecture)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBodyBytes, 1, nameof(MaxBodyBytes));
        // One byte array holds the body, and one more byte tells a chunked body over the limit.
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxBodyBytes, Array.MaxLength - 1, nameof(MaxBodyBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPixels, 1, nameof(MaxPixels));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBatch, 1, nameof(MaxBatch));
        // The batcher gathers a batch's pixels in one array.
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxBatch, Array.MaxLength / Math.Max(architecture.InputSize, architecture.OutputSize), nameof(MaxBatch));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDelay, TimeSpan.Zero, nameof(MaxDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxQueue, 1, nameof(MaxQueue));
        ArgumentOutOfRangeException.ThrowIfLessThan(Threads, 1, nameof(Threads));
        ArgumentNullException.ThrowIfNull(Labels, nameof(Labels));
        if (Preprocessing is null && architecture.Channels != 3)
            throw new ArgumentException($"VitServingOptions.Preprocessing: a {architecture.Channels}-channel model needs one (the ImageNet default is for RGB)");
        var preprocessing = PreprocessingFor(architecture);
        if (preprocessing.OutputLength != architecture.InputSize)
            throw new ArgumentException($"VitServingOptions.Preprocessing: it makes {preprocessing.OutputLength} floats per image, the model takes {architecture.InputSize}");
    }

    internal VitPreprocessing PreprocessingFor(VitArchitecture architecture) => Preprocessing
        ?? VitPreprocessing.Timm(architecture.ImageSize, 0.875, VitInterpolation.Bicubic, VitPreprocessing.ImageNetMean, VitPreprocessing.ImageNetStd);
}
