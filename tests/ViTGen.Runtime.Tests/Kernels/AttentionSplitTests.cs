using ViTGen.CompilerServices;

namespace ViTGen.Tests.Kernels;

/// <summary>
/// How attention shares heads among threads (<see cref="Attention.Split"/>), and that cutting a head into chunks of query
/// rows changes no bit of the context or of the attention maps, which match a double-precision reference; the same for
/// LayerNorm's rows split among threads.
/// </summary>
public sealed class AttentionSplitTests
{
    [Theory]
    [InlineData(3, 17, 1, 3, 1)]     // one thread: whole heads
    [InlineData(3, 17, 0, 3, 1)]     // no thread count (0 or negative): whole heads, on the caller
    [InlineData(3, 17, -4, 3, 1)]
    [InlineData(12, 17, 2, 12, 1)]   // divides evenly
    [InlineData(3, 17, 2, 2, 2)]     // ViT-Ti/16 on 2 threads: heads 0 and 1 whole, head 2 in two halves
    [InlineData(5, 17, 2, 4, 2)]
    [InlineData(16, 17, 12, 12, 3)]  // 4 leftover heads in 3 chunks each: 12 parts for 12 threads
    [InlineData(3, 17, 16, 0, 5)]    // fewer heads than threads: every head cut
    [InlineData(3, 2, 16, 0, 2)]     // never more chunks than row blocks
    [InlineData(12, 17, 16, 0, 1)]   // 12 heads on 16 threads: cutting would only add packing
    public void SplitSharesTheHeadsEvenly(int heads, int rowBlocks, int threads, int wholeHeads, int chunks)
        => Assert.Equal((wholeHeads, chunks), Attention.Split(heads, rowBlocks, threads));

    private struct Width48 : IDimension { public static int Value => 48; }

    /// <summary>
    /// LayerNorm over 100 rows split among threads gives the same bits as on one thread, also for a thread count of 0 or
    /// less (the caller alone), and matches a double-precision norm.
    /// </summary>
    [Theory]
    [InlineData(2)]
    [InlineData(0)]
    [InlineData(-3)]
    [InlineData(64)]
    public void LayerNormRowsInParallelMatchOneThread(int threads)
    {
        const int rows = 100, width = 48;
        var random = new Random(3);
        using var input = new NativeBuffer(rows * width);
        foreach (ref float value in input.Span) value = (float)(random.NextDouble() * 6 - 3);
        using var weights = new LayerNormWeights(width);
        foreach (ref float value in weights.Weight.Span) value = (float)(random.NextDouble() + 0.5);
        foreach (ref float value in weights.Bias.Span) value = (float)(random.NextDouble() - 0.5);
        using var one = new NativeBuffer(rows * width);
        using var many = new NativeBuffer(rows * width);
        one.Span.Fill(float.NaN);
        many.Span.Fill(float.NaN);
        LayerNorm.Apply<Width48>(input, 0, rows, weights, 1e-6f, one, 0, threads: 1);
        LayerNorm.Apply<Width48>(input, 0, rows, weights, 1e-6f, many, 0, threads);
        Assert.Equal(one.Span.ToArray(), many.Span.ToArray());
        var x = input.Span.ToArray();
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, variance = 0;
            for (int j = 0; j < width; j++) mean += x[r * width + j];
            mean /= width;
            for (int j = 0; j < width; j++) variance += (x[r * width + j] - mean) * (x[r * width + j] - mean);
            double inverseStd = 1 / Math.Sqrt(variance / width + 1e-6);
            for (int j = 0; j < width; j++)
            {
                double expected = (x[r * width + j] - mean) * inverseStd * weights.Weight.Span[j] + weights.Bias.Span[j];
                Assert.True(Math.Abs(many.Span[r * width + j] - expected) <= 1e-5, $"[{r},{j}]: {many.Span[r * width + j]} vs {expected:G9}");
            }
        }
    }

    private struct ThreeHeads : IAttentionShape
    {
        public static int Tokens => 50;
        public static int Heads => 3;
        public static int HeadDim => 16;
        public static float Scale => 0.25f;
    }

    [Fact]
    public void ChunkedHeadsMatchWholeHeadsBitForBitAndDoublePrecision()
    {
        const int tokens = 50, heads = 3, headDim = 16, dim = heads * headDim;
        var random = new Random(7);
        using var qkv = new NativeBuffer((long)tokens * 3 * dim);
        foreach (ref float value in qkv.Span) value = (float)(random.NextDouble() * 4 - 2);

        (float[] Context, float[] Maps) Run(int threads)
        {
            using var context = new NativeBuffer((long)tokens * dim);
            context.Span.Fill(float.NaN);
            var maps = new float[heads * tokens * tokens];
            Array.Fill(maps, float.NaN);
            Attention.Run<ThreeHeads>(qkv, context, maps, threads);
            return (context.Span.ToArray(), maps);
        }

        var (context1, maps1) = Run(1);
        var (context2, maps2) = Run(2);   // 2 parts of whole heads and head 2 in two chunks, where the pool has 2 threads
        var (context0, maps0) = Run(0);   // no thread count: on the caller
        Assert.Equal(context1, context2);
        Assert.Equal(maps1, maps2);
        Assert.Equal(context1, context0);
        Assert.Equal(maps1, maps0);

        var x = qkv.Span.ToArray();
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < tokens; i++)
            {
                var p = new double[tokens];
                for (int j = 0; j < tokens; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) dot += (double)x[i * 3 * dim + h * headDim + d] * x[j * 3 * dim + dim + h * headDim + d];
                    p[j] = dot * ThreeHeads.Scale;
                }
                double max = p.Max(), sum = 0;
                for (int j = 0; j < tokens; j++) sum += p[j] = Math.Exp(p[j] - max);
                for (int j = 0; j < tokens; j++)
                {
                    p[j] /= sum;
                    float map = maps2[(h * tokens + i) * tokens + j];
                    Assert.True(Math.Abs(map - p[j]) <= 2e-6, $"head {h} map [{i},{j}]: {map} vs {p[j]:G9}");
                }
                for (int d = 0; d < headDim; d++)
                {
                    double expected = 0;
                    for (int j = 0; j < tokens; j++) expected += p[j] * x[j * 3 * dim + 2 * dim + h * headDim + d];
                    float actual = context2[i * dim + h * headDim + d];
                    Assert.True(Math.Abs(actual - expected) <= 1e-5, $"head {h} context [{i},{d}]: {actual} vs {expected:G9}");
                }
            }
        }
    }
}
