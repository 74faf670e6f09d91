namespace ViTGen.CompilerServices;

/// <summary>
/// The convolutions of a hybrid ViT's ResNetV2 trunk, as GEMMs on <see cref="Gemm"/>: feature maps are channels-last
/// (<c>[y, x, channel]</c>, one pixel a row), a 1x1 stride-1 convolution multiplies the map itself, and any other
/// one first unfolds each output pixel's receptive field into a row of <c>(ky, kx, channel)</c> columns, zero where
/// TensorFlow's 'same' padding reaches outside the map (timm's <c>StdConv2dSame</c> / <c>pad_same</c>). The weights are
/// permuted to that column order and weight-standardized once at load. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class Convolution
{
    /// <summary>Below this many floats written, a pass runs on one thread: a fork/join costs a few microseconds.</summary>
    internal const long ParallelFloats = 1 << 15;

    /// <summary>Copies a CHW image into a channels-last map <c>[size, size, channels]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ToChannelsLast(ReadOnlySpan<float> image, int channels, int size, NativeBuffer map)
    {
        int pixels = size * size;
        if (image.Length != channels * pixels)
            throw new ArgumentException($"image has {image.Length} floats, expected {channels}x{size}x{size}", nameof(image));
        LayerNorm.CheckRows(map, 0, pixels, channels);
        float* destination = map.Data;
        for (int c = 0; c < channels; c++)
        {
            var plane = image.Slice(c * pixels, pixels);
            for (int p = 0; p < pixels; p++) destination[(long)p * channels + c] = plane[p];
        }
    }

    /// <summary>
    /// Unfolds <paramref name="input"/> (<c>[size, size, channels]</c>) for a <paramref name="kernel"/>-square convolution
    /// of stride <paramref name="stride"/> with 'same' padding: <paramref name="columns"/> gets one row of
    /// <c>kernel · kernel · channels</c> floats per output pixel (<c>ceil(size / stride)</c> squared), row-major.
    /// </summary>
    public static void Unfold(NativeBuffer input, int size, int channels, int kernel, int stride, NativeBuffer columns, int threads)
    {
        int outputSize = HybridGeometry.SameOutput(size, stride);
        int width = kernel * kernel * channels;
        LayerNorm.CheckRows(input, 0, size * size, channels);
        LayerNorm.CheckRows(columns, 0, outputSize * outputSize, width);
        var job = new UnfoldJob
        {
            Input = input.Data, Columns = columns.Data, Size = size, Channels = channels, Kernel = kernel, Stride = stride,
            OutputSize = outputSize, Pad = HybridGeometry.SamePadBefore(size, kernel, stride),
        };
        int parts = (long)outputSize * outputSize * width >= ParallelFloats ? Math.Min(threads, outputSize) : 1;
        job.Parts = parts;
        WorkerPool.Shared.Run(parts, parts, ref job);
    }

    private struct UnfoldJob : IParallelJob
    {
        public float* Input, Columns;
        public int Size, Channels, Kernel, Stride, OutputSize, Pad, Parts;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int worker)
        {
            int begin = OutputSize * part / Parts, end = OutputSize * (part + 1) / Parts;
            long rowFloats = (long)Kernel * Kernel * Channels, kernelRow = (long)Kernel * Channels;
            for (int oy = begin; oy < end; oy++)
            {
                for (int ox = 0; ox < OutputSize; ox++)
                {
                    float* row = Columns + ((long)oy * OutputSize + ox) * rowFloats;
                    int x0 = ox * Stride - Pad;
                    // The kernel columns inside the map: one contiguous run of pixels per kernel row.
                    int first = Math.Max(0, -x0), last = Math.Min(Kernel, Size - x0);
                    for (int ky = 0; ky < Kernel; ky++)
                    {
                        float* target = row + ky * kernelRow;
                        int iy = oy * Stride - Pad + ky;
                        if ((uint)iy >= (uint)Size || first >= last)
                        {
                            new Span<float>(target, (int)kernelRow).Clear();
                            continue;
                        }
                        if (first > 0) new Span<float>(target, first * Channels).Clear();
                        long bytes = (long)(last - first) * Channels * sizeof(float);
                        Buffer.MemoryCopy(Input + ((long)iy * Size + x0 + first) * Channels, target + first * Channels, bytes, bytes);
                        if (last < Kernel) new Span<float>(target + last * Channels, (Kernel - last) * Channels).Clear();
                    }
                }
            }
        }
    }

    /// <summary>
    /// Reads a convolution <c>{prefix}.weight [outputs, inputs, kernel, kernel]</c> (plus <c>{prefix}.bias</c> when
    /// <paramref name="hasBias"/>) and packs it as a Linear over <c>(ky, kx, channel)</c> columns. With a positive
    /// <paramref name="standardizationEps"/> each output filter is first standardized as timm's <c>StdConv2dSame</c>
    /// does on every call, <c>(w - mean) / sqrt(var + eps)</c> over the filter (biased variance), computed in double.
    /// </summary>
    public static PackedLinear ReadWeights(CheckpointReader reader, string prefix, int outputs, int inputs, int kernel, bool hasBias, float standardizationEps)
    {
        int taps = kernel * kernel, filter = inputs * taps;
        var weight = new float[outputs * filter];
        var bias = hasBias ? new float[outputs] : [];
        reader.Read(prefix + ".weight", [outputs, inputs, kernel, kernel], weight);
        if (hasBias) reader.Read(prefix + ".bias", [outputs], bias);
        var permuted = new float[weight.Length];
        for (int o = 0; o < outputs; o++)
        {
            var source = weight.AsSpan(o * filter, filter);
            double mean = 0, scale = 1;
            if (standardizationEps > 0)
            {
                foreach (float w in source) mean += w;
                mean /= filter;
                double variance = 0;
                foreach (float w in source) variance += (w - mean) * (w - mean);
                scale = 1 / Math.Sqrt(variance / filter + standardizationEps);
            }
            // PyTorch's (channel, ky, kx) to the unfolded rows' (ky, kx, channel).
            var target = permuted.AsSpan(o * filter, filter);
            for (int c = 0; c < inputs; c++)
                for (int t = 0; t < taps; t++)
                    target[t * inputs + c] = (float)((source[c * taps + t] - mean) * scale);
        }
        return new PackedLinear(permuted, bias, outputs, filter);
    }
}
