namespace ViTGen.CompilerServices;

/// <summary>
/// GroupNorm over a channels-last feature map, in place, with the ReLU of timm's <c>GroupNormAct</c> and the
/// bottleneck's residual add fused into its one write: <c>y = x · scale + shift [+ residual] [max 0]</c> with
/// per-channel scale and shift. Statistics are two-pass (mean, then centered squares) and summed in double
/// every <see cref="Chunk"/> pixels, so a 112x112 map's sums keep float32's precision. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class GroupNorm
{
    /// <summary>Pixels summed in float before the running sums move to double.</summary>
    private const int Chunk = 64;

    /// <summary>GroupNorm with no activation (a bottleneck's shortcut projection).</summary>
    public static void Apply(NativeBuffer map, int pixels, int channels, int groups, LayerNormWeights weights, float epsilon, int threads)
        => Run(map, pixels, channels, groups, weights, epsilon, null, relu: false, threads);

    /// <summary>GroupNorm, then ReLU.</summary>
    public static void ApplyRelu(NativeBuffer map, int pixels, int channels, int groups, LayerNormWeights weights, float epsilon, int threads)
        => Run(map, pixels, channels, groups, weights, epsilon, null, relu: true, threads);

    /// <summary>GroupNorm, plus <paramref name="residual"/> (same shape), then ReLU: the end of a bottleneck, <c>act3(norm3(x) + shortcut)</c>.</summary>
    public static void ApplyAddRelu(NativeBuffer map, int pixels, int channels, int groups, LayerNormWeights weights, float epsilon, NativeBuffer residual, int threads)
    {
        LayerNorm.CheckRows(residual, 0, pixels, channels);
        Run(map, pixels, channels, groups, weights, epsilon, residual.Data, relu: true, threads);
    }

    private static void Run(NativeBuffer map, int pixels, int channels, int groups, LayerNormWeights weights, float epsilon, float* residual, bool relu, int threads)
    {
        if (groups <= 0 || channels % groups != 0)
            throw new ArgumentException($"{channels} channels do not split into {groups} groups", nameof(groups));
        LayerNorm.CheckRows(map, 0, pixels, channels);
        LayerNorm.CheckRows(weights.Weight, 0, 1, channels);
        int parts = (long)pixels * channels >= Convolution.ParallelFloats ? Math.Min(threads, groups) : 1;
        var job = new Job
        {
            Map = map.Data, Residual = residual, Gamma = weights.Weight.Data, Beta = weights.Bias.Data,
            Pixels = pixels, Channels = channels, Groups = groups, Epsilon = epsilon, Relu = relu, Parts = parts,
        };
        WorkerPool.Shared.Run(parts, parts, ref job);
    }

    // Each part owns whole groups, a contiguous run of channels, and makes all three passes over them: no part
    // reads another's sums, so the passes need no join between them.
    private struct Job : IParallelJob
    {
        public float* Map, Residual, Gamma, Beta;
        public int Pixels, Channels, Groups, Parts;
        public float Epsilon;
        public bool Relu;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int worker)
        {
            int perGroup = Channels / Groups;
            int firstGroup = Groups * part / Parts, endGroup = Groups * (part + 1) / Parts;
            int c0 = firstGroup * perGroup, count = (endGroup - firstGroup) * perGroup;
            if (count == 0) return;
            long stride = ThreadScratch.Align(count);
            float* scratch = ThreadScratch.Get(6 * stride);
            double* totals = (double*)scratch;            // 2 * stride floats
            float* partial = scratch + 2 * stride, mean = partial + stride, scale = mean + stride, shift = scale + stride;
            float* first = Map + c0;

            Sum(first, partial, totals, count, null);
            for (int g = 0; g < count; g += perGroup)
            {
                double sum = 0;
                for (int c = g; c < g + perGroup; c++) sum += totals[c];
                float groupMean = (float)(sum / ((double)perGroup * Pixels));
                for (int c = g; c < g + perGroup; c++) mean[c] = groupMean;
            }
            Sum(first, partial, totals, count, mean);
            for (int g = 0; g < count; g += perGroup)
            {
                double squares = 0;
                for (int c = g; c < g + perGroup; c++) squares += totals[c];
                double inverseStd = 1 / Math.Sqrt(squares / ((double)perGroup * Pixels) + Epsilon);
                for (int c = g; c < g + perGroup; c++)
                {
                    scale[c] = (float)(Gamma[c0 + c] * inverseStd);
                    shift[c] = (float)(Beta[c0 + c] - mean[c] * (Gamma[c0 + c] * inverseStd));
                }
            }
            for (int p = 0; p < Pixels; p++)
            {
                long offset = (long)p * Channels;
                ConvolutionRows.Affine(first + offset, first + offset, scale, shift, Residual == null ? null : Residual + c0 + offset, Relu, count);
            }
        }

        /// <summary>Per-channel sums over every pixel of <c>x</c>, or of <c>(x - mean)²</c> when <paramref name="mean"/> is set.</summary>
        private readonly void Sum(float* first, float* partial, double* totals, int count, float* mean)
        {
            for (int c = 0; c < count; c++) totals[c] = 0;
            for (int p0 = 0; p0 < Pixels; p0 += Chunk)
            {
                new Span<float>(partial, count).Clear();
                int p1 = Math.Min(p0 + Chunk, Pixels);
                for (int p = p0; p < p1; p++)
                {
                    float* x = first + (long)p * Channels;
                    if (mean == null) ConvolutionRows.Add(partial, x, count);
                    else ConvolutionRows.AddSquaredDeviation(partial, x, mean, count);
                }
                for (int c = 0; c < count; c++) totals[c] += partial[c];
            }
        }
    }
}
