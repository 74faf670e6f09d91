namespace ViTGen.CompilerServices;

/// <summary>
/// Resizes the patch grid of a position embedding the way timm does when a checkpoint meets a model of another
/// image size (<c>checkpoint_filter_fn</c> → <c>resample_abs_pos_embed</c> → <c>F.interpolate(mode='bicubic',
/// align_corners=False, antialias=True)</c>): PyTorch's separable antialiased bicubic filter
/// (<c>_upsample_bicubic2d_aa</c>), computed in float64 and rounded once to float32.
/// </summary>
/// <remarks>
/// Load-time only, so plain scalar loops. Per axis, output index <c>i</c> of a resize from <c>n</c> to <c>m</c> samples
/// has scale <c>s = n / m</c> and centre <c>c = s · (i + 0.5)</c>; the filter's support is <c>2 · s</c> when shrinking
/// (the antialiasing: the kernel is stretched by the scale) and 2 when growing, so input samples
/// <c>j ∈ [max(⌊c − support + 0.5⌋, 0), min(⌊c + support + 0.5⌋, n))</c> get weight
/// <c>cubic((j − c + 0.5) / max(s, 1))</c>, normalized to sum to 1 per output sample.
/// </remarks>
internal static class PositionEmbeddingResampler
{
    /// <summary>
    /// The cubic convolution coefficient of PyTorch's antialiased kernel. It is PIL's -0.5, not the -0.75 of
    /// PyTorch's plain bicubic mode: with -0.75 the result differs from torch 1.13's by 6 to 9% relative L2 on 4→7
    /// and 7→4 grids, with -0.5 by 5e-16 (float64).
    /// </summary>
    private const double A = -0.5;

    /// <summary>One output sample's input samples: the first index and the normalized weights that follow it.</summary>
    private readonly record struct Taps(int First, double[] Weights);

    /// <summary>
    /// Resizes <paramref name="source"/>, a <c>[sourceHeight, sourceWidth, dim]</c> grid (row-major, channels last
    /// as a position embedding stores it), to <paramref name="destination"/>, <c>[height, width, dim]</c>.
    /// </summary>
    public static void Resample(ReadOnlySpan<float> source, int sourceHeight, int sourceWidth,
        Span<float> destination, int height, int width, int dim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sourceHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sourceWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        if (source.Length != (long)sourceHeight * sourceWidth * dim)
            throw new ArgumentException($"the source holds {source.Length} floats, not {sourceHeight} x {sourceWidth} x {dim}", nameof(source));
        if (destination.Length != (long)height * width * dim)
            throw new ArgumentException($"the destination holds {destination.Length} floats, not {height} x {width} x {dim}", nameof(destination));

        Taps[] columns = Filter(sourceWidth, width);
        Taps[] rows = Filter(sourceHeight, height);

        // Along the width first: every source row becomes `width` samples, kept in float64. This holds
        // sourceHeight · width · dim values, no more than the larger of the source and the destination.
        var across = new double[(long)sourceHeight * width * dim];
        for (int y = 0; y < sourceHeight; y++)
        {
            for (int x = 0; x < width; x++)
            {
                var sum = across.AsSpan((y * width + x) * dim, dim);
                Taps taps = columns[x];
                for (int k = 0; k < taps.Weights.Length; k++)
                {
                    double weight = taps.Weights[k];
                    ReadOnlySpan<float> sample = source.Slice((y * sourceWidth + taps.First + k) * dim, dim);
                    for (int c = 0; c < dim; c++) sum[c] += weight * sample[c];
                }
            }
        }

        // Then along the height, rounding to float32 once.
        var sumRow = new double[dim];
        for (int y = 0; y < height; y++)
        {
            Taps taps = rows[y];
            for (int x = 0; x < width; x++)
            {
                Array.Clear(sumRow);
                for (int k = 0; k < taps.Weights.Length; k++)
                {
                    double weight = taps.Weights[k];
                    ReadOnlySpan<double> sample = across.AsSpan(((taps.First + k) * width + x) * dim, dim);
                    for (int c = 0; c < dim; c++) sumRow[c] += weight * sample[c];
                }
                Span<float> output = destination.Slice((y * width + x) * dim, dim);
                for (int c = 0; c < dim; c++) output[c] = (float)sumRow[c];
            }
        }
    }

    /// <summary>The taps of each of <paramref name="output"/> samples resized from <paramref name="input"/> samples.</summary>
    private static Taps[] Filter(int input, int output)
    {
        double scale = (double)input / output;
        double support = scale >= 1 ? 2 * scale : 2;
        double inverse = scale >= 1 ? 1 / scale : 1;
        var taps = new Taps[output];
        for (int i = 0; i < output; i++)
        {
            double center = scale * (i + 0.5);
            // PyTorch truncates toward zero; the clamp to 0 makes that the same as the floor.
            int first = (int)Math.Max(Math.Floor(center - support + 0.5), 0);
            int end = (int)Math.Min(Math.Floor(center + support + 0.5), input);
            var weights = new double[end - first];
            double total = 0;
            for (int j = 0; j < weights.Length; j++)
            {
                weights[j] = Cubic((first + j - center + 0.5) * inverse);
                total += weights[j];
            }
            if (total != 0)
            {
                for (int j = 0; j < weights.Length; j++) weights[j] /= total;
            }
            taps[i] = new Taps(first, weights);
        }
        return taps;
    }

    /// <summary>Keys' cubic convolution kernel with coefficient <see cref="A"/>.</summary>
    private static double Cubic(double x)
    {
        x = Math.Abs(x);
        if (x < 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * A;
        return 0;
    }
}
