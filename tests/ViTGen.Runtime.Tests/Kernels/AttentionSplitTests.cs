using ViTGen.CompilerServices;

namespace ViTGen.Tests.Kernels;

/// <summary>
/// How attention shares heads among threads (<see cref="Attention.Split"/>), and that cutting a head into chunks of query
/// rows changes no bit of the context or of the attention maps, which match a double-precision reference.
/// </summary>
public sealed class AttentionSplitTests
{
    [Theory]
    [InlineData(3, 17, 1, 3, 1)]     // one thread: whole heads
    [InlineData(12, 17, 2, 12, 1)]   // divides evenly
    [InlineData(3, 17, 2, 2, 2)]     // ViT-Ti/16 on 2 threads: heads 0 and 1 whole, head 2 in two halves
    [InlineData(5, 17, 2, 4, 2)]
    [InlineData(16, 17, 12, 12, 3)]  // 4 leftover heads in 3 chunks each: 12 parts for 12 threads
    [InlineData(3, 17, 16, 0, 5)]    // fewer heads than threads: every head cut
    [InlineData(3, 2, 16, 0, 2)]     // never more chunks than row blocks
    [InlineData(12, 17, 16, 0, 1)]   // 12 heads on 16 threads: cutting would only add packing
    public void SplitSharesTheHeadsEvenly(int heads, int rowBlocks, int threads, int wholeHeads, int chunks)
        => Assert.Equal((wholeHeads, chunks), Attention.Split(heads, rowBlocks, threads));

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
        Assert.Equal(context1, context2);
        Assert.Equal(maps1, maps2);

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
