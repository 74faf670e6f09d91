using ViTGen.CompilerServices;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// C# twins of the kernels in kernels.cu, one method per kernel with the same arguments, the same index
/// arithmetic and the same math (exp, erf, the reductions' order), run on a float[] arena. What they prove is the
/// plan: that its grids cover every element, its offsets and strides address the right buffers, and its arguments
/// mean what the kernels take them to mean.
/// </summary>
/// <remarks>
/// Element-wise kernels run thread <c>i = blockIdx.x * blockDim.x + threadIdx.x</c> for every thread of the grid with
/// the kernel's <c>i &lt; total</c> check, which is the loop below over <c>min(total, gridX * blockX)</c>: a grid that is
/// too small leaves elements unwritten (the tests poison the activations with NaN, so they show). Row kernels run
/// block by block, each thread's strided partial sums first and then the warp butterflies and the cross-warp step in
/// the GPU's order. The GPU contracts some multiply-adds into FMAs where these do not, so results agree to float
/// rounding, not bit for bit.
/// </remarks>
internal static class KernelTwins
{
    /// <summary>Runs one launch on <paramref name="arena"/>.</summary>
    public static void Launch(GpuLaunch launch, Span<float> arena)
    {
        var a = new Args(launch);
        switch (launch.Kernel)
        {
            case GpuKernel.PatchUnfold: PatchUnfold(launch, arena, a.Ptr(0), a.Ptr(1), a.Int(2), a.Int(3), a.Int(4), a.Int(5)); break;
            case GpuKernel.EmbedTokens:
                EmbedTokens(launch, arena, a.Ptr(0), a.Ptr(1), a.Ptr(2), a.Ptr(3), a.Ptr(4), a.Int(5), a.Int(6), a.Int(7), a.Int(8), a.Int(9));
                break;
            case GpuKernel.LayerNorm: LayerNorm(launch, arena, a.Ptr(0), a.Ptr(1), a.Ptr(2), a.Ptr(3), a.Int(4), a.Int(5), a.Int(6), a.Float(7)); break;
            case GpuKernel.SoftmaxRows: SoftmaxRows(launch, arena, a.Ptr(0), a.Int(1)); break;
            case GpuKernel.MeanTokens: MeanTokens(launch, arena, a.Ptr(0), a.Ptr(1), a.Int(2), a.Int(3), a.Int(4), a.Int(5)); break;
            case GpuKernel.SplitQkv: SplitQkv(launch, arena, a.Ptr(0), a.Ptr(1), a.Ptr(2), a.Int(3), a.Int(4), a.Int(5), a.Int(6)); break;
            case GpuKernel.MergeHeads: MergeHeads(launch, arena, a.Ptr(0), a.Ptr(1), a.Int(2), a.Int(3), a.Int(4), a.Int(5)); break;
            case GpuKernel.BiasResidual: BiasResidual(launch, arena, a.Ptr(0), a.Ptr(1), a.Ptr(2), a.Int(3), a.Int(4)); break;
            case GpuKernel.BiasAdd: BiasActivation(launch, arena, a.Ptr(0), a.Ptr(1), a.Int(2), a.Int(3), static x => x); break;
            case GpuKernel.BiasGelu: BiasActivation(launch, arena, a.Ptr(0), a.Ptr(1), a.Int(2), a.Int(3), DeviceMath.Gelu); break;
            case GpuKernel.BiasGeluTanh: BiasActivation(launch, arena, a.Ptr(0), a.Ptr(1), a.Int(2), a.Int(3), DeviceMath.GeluTanh); break;
            case GpuKernel.BiasQuickGelu: BiasActivation(launch, arena, a.Ptr(0), a.Ptr(1), a.Int(2), a.Int(3), DeviceMath.QuickGelu); break;
            case GpuKernel.BiasRelu: BiasActivation(launch, arena, a.Ptr(0), a.Ptr(1), a.Int(2), a.Int(3), DeviceMath.Relu); break;
            case GpuKernel.DistilledAverage: DistilledAverage(launch, arena, a.Ptr(0), a.Ptr(1), a.Ptr(2), a.Ptr(3), a.Int(4), a.Int(5)); break;
            default: throw new ArgumentOutOfRangeException(nameof(launch), launch.Kernel, "no twin for this kernel");
        }
    }

    /// <summary>Arguments by position, checked against the kernel's signature. A null pointer reads as -1.</summary>
    private readonly struct Args
    {
        private readonly GpuLaunch _launch;

        public Args(GpuLaunch launch)
        {
            var parameters = GpuKernels.Parameters(launch.Kernel);
            if (parameters.Length != launch.Args.Length)
                throw new ArgumentException($"{GpuKernels.EntryName(launch.Kernel)} takes {parameters.Length} arguments: {launch}", nameof(launch));
            _launch = launch;
        }

        public long Ptr(int index)
        {
            GpuArg arg = _launch.Args[index];
            return arg.Kind switch
            {
                GpuParameterKind.Pointer => arg.Value,
                GpuParameterKind.OptionalPointer when GpuKernels.Parameters(_launch.Kernel)[index].Kind == GpuParameterKind.OptionalPointer => -1,
                _ => throw new ArgumentException($"argument {index} is not a pointer: {_launch}"),
            };
        }

        public int Int(int index) => _launch.Args[index].Kind == GpuParameterKind.Int
            ? (int)_launch.Args[index].Value
            : throw new ArgumentException($"argument {index} is not an int: {_launch}");

        public float Float(int index) => _launch.Args[index].Kind == GpuParameterKind.Float
            ? _launch.Args[index].FloatValue
            : throw new ArgumentException($"argument {index} is not a float: {_launch}");
    }

    /// <summary>The threads of a 1-D element-wise launch that pass the kernel's <c>i &lt; total</c> check.</summary>
    private static int Covered(GpuLaunch launch, int total)
    {
        if (launch.GridY != 1) throw new ArgumentException($"an element-wise kernel takes a 1-D grid: {launch}", nameof(launch));
        return (int)Math.Min(total, (long)launch.GridX * launch.BlockX);
    }

    private static void PatchUnfold(GpuLaunch launch, Span<float> m, long image, long patches, int channels, int imageSize, int patch, int total)
    {
        int grid = imageSize / patch, area = patch * patch, features = channels * area, count = grid * grid;
        for (int i = 0, n = Covered(launch, total); i < n; i++)
        {
            int f = i % features, row = i / features;
            int b = row / count, p = row % count;
            int c = f / area, y = f % area / patch, x = f % patch;
            int sourceY = p / grid * patch + y, sourceX = p % grid * patch + x;
            m[At(patches, i)] = m[At(image, ((b * channels + c) * imageSize + sourceY) * imageSize + sourceX)];
        }
    }

    private static void EmbedTokens(GpuLaunch launch, Span<float> m, long patchTokens, long patchBias, long prefix, long pos, long x,
        int tokens, int prefixTokens, int dim, int posFirstRow, int total)
    {
        for (int i = 0, n = Covered(launch, total); i < n; i++)
        {
            int d = i % dim, row = i / dim, t = row % tokens, b = row / tokens;
            float v;
            if (t < prefixTokens)
            {
                v = m[At(prefix, t * dim + d)];
            }
            else
            {
                v = m[At(patchTokens, (b * (tokens - prefixTokens) + t - prefixTokens) * dim + d)];
                if (patchBias >= 0) v += m[At(patchBias, d)];
            }
            if (t >= posFirstRow) v += m[At(pos, (t - posFirstRow) * dim + d)];
            m[At(x, i)] = v;
        }
    }

    private static void LayerNorm(GpuLaunch launch, Span<float> m, long x, long y, long gamma, long beta, int dim, int xGroupStride, int yGroupStride, float eps)
    {
        Span<float> partials = stackalloc float[launch.BlockX];
        for (int group = 0; group < launch.GridY; group++)
        {
            for (int row = 0; row < launch.GridX; row++)
            {
                long input = x + (long)group * xGroupStride + (long)row * dim, output = y + (long)group * yGroupStride + (long)row * dim;
                for (int thread = 0; thread < partials.Length; thread++)
                {
                    float sum = 0f;
                    for (int j = thread; j < dim; j += partials.Length) sum += m[At(input, j)];
                    partials[thread] = sum;
                }
                float mean = BlockReduce(partials, Sum) / dim;
                for (int thread = 0; thread < partials.Length; thread++)
                {
                    float squares = 0f;
                    for (int j = thread; j < dim; j += partials.Length)
                    {
                        float centered = m[At(input, j)] - mean;
                        squares = MathF.FusedMultiplyAdd(centered, centered, squares);
                    }
                    partials[thread] = squares;
                }
                float inverseStd = 1f / MathF.Sqrt(BlockReduce(partials, Sum) / dim + eps);
                for (int j = 0; j < dim; j++)
                    m[At(output, j)] = MathF.FusedMultiplyAdd((m[At(input, j)] - mean) * inverseStd, m[At(gamma, j)], m[At(beta, j)]);
            }
        }
    }

    private static void SoftmaxRows(GpuLaunch launch, Span<float> m, long scores, int cols)
    {
        if (launch.GridY != 1) throw new ArgumentException($"softmax takes a 1-D grid: {launch}", nameof(launch));
        Span<float> partials = stackalloc float[launch.BlockX];
        for (int block = 0; block < launch.GridX; block++)
        {
            long row = scores + (long)block * cols;
            for (int thread = 0; thread < partials.Length; thread++)
            {
                float max = float.NegativeInfinity;
                for (int j = thread; j < cols; j += partials.Length) max = DeviceMath.FMax(max, m[At(row, j)]);
                partials[thread] = max;
            }
            float rowMax = BlockReduce(partials, DeviceMath.FMax, float.NegativeInfinity);
            for (int thread = 0; thread < partials.Length; thread++)
            {
                float sum = 0f;
                for (int j = thread; j < cols; j += partials.Length)
                {
                    float e = DeviceMath.Exp(m[At(row, j)] - rowMax);
                    m[At(row, j)] = e;
                    sum += e;
                }
                partials[thread] = sum;
            }
            float inverseSum = 1f / BlockReduce(partials, Sum);
            for (int j = 0; j < cols; j++) m[At(row, j)] *= inverseSum;
        }
    }

    private static void MeanTokens(GpuLaunch launch, Span<float> m, long x, long pooled, int tokens, int firstToken, int count, int dim)
    {
        if (launch.GridY != 1) throw new ArgumentException($"mean_tokens takes a 1-D grid: {launch}", nameof(launch));
        float scale = 1f / count;
        for (int image = 0; image < launch.GridX; image++)
        {
            long rows = x + ((long)image * tokens + firstToken) * dim;
            for (int d = 0; d < dim; d++)
            {
                float sum = 0f;
                for (int r = 0; r < count; r++) sum += m[At(rows, (long)r * dim + d)];
                m[At(pooled, (long)image * dim + d)] = sum * scale;
            }
        }
    }

    private static void SplitQkv(GpuLaunch launch, Span<float> m, long qkv, long bias, long planes, int tokens, int heads, int headDim, int total)
    {
        int dim = heads * headDim, width = 3 * dim;
        for (int i = 0, n = Covered(launch, total); i < n; i++)
        {
            int c = i % width, row = i / width, b = row / tokens, t = row % tokens;
            int plane = c / dim, h = c % dim / headDim, e = c % headDim;
            float v = m[At(qkv, i)];
            if (bias >= 0) v += m[At(bias, c)];
            m[At(planes, (long)plane * (total / 3) + ((b * heads + h) * tokens + t) * headDim + e)] = v;
        }
    }

    private static void MergeHeads(GpuLaunch launch, Span<float> m, long headContext, long context, int tokens, int heads, int headDim, int total)
    {
        int dim = heads * headDim;
        for (int i = 0, n = Covered(launch, total); i < n; i++)
        {
            int d = i % dim, row = i / dim, b = row / tokens, t = row % tokens;
            int h = d / headDim, e = d % headDim;
            m[At(context, i)] = m[At(headContext, ((b * heads + h) * tokens + t) * headDim + e)];
        }
    }

    private static void BiasResidual(GpuLaunch launch, Span<float> m, long x, long y, long bias, int cols, int total)
    {
        for (int i = 0, n = Covered(launch, total); i < n; i++)
            m[At(x, i)] = m[At(y, i)] + m[At(bias, i % cols)] + m[At(x, i)];
    }

    private static void BiasActivation(GpuLaunch launch, Span<float> m, long x, long bias, int cols, int total, Func<float, float> activation)
    {
        for (int i = 0, n = Covered(launch, total); i < n; i++)
            m[At(x, i)] = activation(m[At(x, i)] + m[At(bias, i % cols)]);
    }

    private static void DistilledAverage(GpuLaunch launch, Span<float> m, long logits, long bias, long distBias, long output, int classes, int total)
    {
        for (int i = 0, n = Covered(launch, total); i < n; i++)
        {
            int c = i % classes, b = i / classes;
            long image = logits + 2L * b * classes;
            m[At(output, i)] = (m[At(image, c)] + m[At(bias, c)] + (m[At(image, classes + c)] + m[At(distBias, c)])) * 0.5f;
        }
    }

    private static float Sum(float a, float b) => a + b;

    /// <summary>
    /// kernels.cu's block_sum / block_max: a butterfly in each warp (lane l adds lane l ^ mask, masks 16 to 1), lane 0
    /// of warp w stores partial[w], then every warp runs the butterfly over the first <c>warps</c> partials (the rest
    /// read the identity). Every lane ends with the same value (the operations commute), so one lane is returned.
    /// </summary>
    private static float BlockReduce(Span<float> threads, Func<float, float, float> combine, float identity = 0f)
    {
        int warps = threads.Length / 32;
        Span<float> lanes = stackalloc float[32];
        for (int warp = 0; warp < warps; warp++) WarpReduce(threads.Slice(warp * 32, 32), combine);
        for (int lane = 0; lane < 32; lane++) lanes[lane] = lane < warps ? threads[lane * 32] : identity;
        WarpReduce(lanes, combine);
        return lanes[0];
    }

    private static void WarpReduce(Span<float> lanes, Func<float, float, float> combine)
    {
        Span<float> next = stackalloc float[32];
        for (int mask = 16; mask > 0; mask >>= 1)
        {
            for (int lane = 0; lane < 32; lane++) next[lane] = combine(lanes[lane], lanes[lane ^ mask]);
            next.CopyTo(lanes);
        }
    }

    private static int At(long pointer, long index)
    {
        if (pointer < 0) throw new InvalidOperationException("a kernel dereferenced a null pointer");
        return checked((int)(pointer + index));
    }
}

/// <summary>The device functions of kernels.cu, operation for operation.</summary>
internal static class DeviceMath
{
    /// <summary>fmaxf: the other operand when one is NaN.</summary>
    public static float FMax(float a, float b) => float.IsNaN(a) ? b : float.IsNaN(b) ? a : Math.Max(a, b);

    /// <summary>vit_exp: Cody-Waite reduction by ln 2, Taylor series to r^7, the power of two applied in two halves.</summary>
    public static float Exp(float x)
    {
        if (x < -87f) return 0f;
        if (x > 88.5f) return float.PositiveInfinity;
        float n = MathF.Round(x * 1.44269504f, MidpointRounding.ToEven);
        float r = MathF.FusedMultiplyAdd(n, -0.693145751953125f, x);
        r = MathF.FusedMultiplyAdd(n, -1.42860677e-6f, r);
        float p = 1.98412698e-4f;
        p = MathF.FusedMultiplyAdd(p, r, 1.38888889e-3f);
        p = MathF.FusedMultiplyAdd(p, r, 8.33333333e-3f);
        p = MathF.FusedMultiplyAdd(p, r, 4.16666667e-2f);
        p = MathF.FusedMultiplyAdd(p, r, 1.66666667e-1f);
        p = MathF.FusedMultiplyAdd(p, r, 0.5f);
        p = MathF.FusedMultiplyAdd(p, r, 1f);
        p = MathF.FusedMultiplyAdd(p, r, 1f);
        int k = (int)n, half = k >> 1;
        return p * Pow2(half) * Pow2(k - half);
    }

    private static float Pow2(int k) => BitConverter.Int32BitsToSingle((k + 127) << 23);

    /// <summary>GELU with the A&amp;S 7.1.26 erf.</summary>
    public static float Gelu(float x)
    {
        float z = MathF.Abs(x * 0.70710678f);
        float t = 1f / (1f + 0.3275911f * z);
        float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        float erfAbs = 1f - poly * Exp(-(z * z));
        return 0.5f * x * (1f + (x < 0f ? -erfAbs : erfAbs));
    }

    /// <summary>GELU with tanh, <c>tanh(u) = 1 - 2 / (e^2u + 1)</c>.</summary>
    public static float GeluTanh(float x)
    {
        float u = 0.79788456f * (x + 0.044715f * x * x * x);
        float tanh = 1f - 2f / (Exp(u + u) + 1f);
        return 0.5f * x * (1f + tanh);
    }

    /// <summary>x · sigmoid(1.702 x).</summary>
    public static float QuickGelu(float x) => x / (1f + Exp(-1.702f * x));

    /// <summary>max(x, 0).</summary>
    public static float Relu(float x) => x > 0f ? x : 0f;
}
