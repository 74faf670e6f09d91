using ViTGen.CompilerServices;

namespace ViTGen.Tests.Kernels;

/// <summary>
/// The GEMM (packing, micro-kernel, epilogue) against a double-precision product on every SIMD tier, over shapes with
/// partial row blocks, partial panels and several reduction blocks.
/// </summary>
[Collection(nameof(KernelSwitches))]
public sealed unsafe class GemmTierTests
{
    private struct Tiny : IGemmShape { public static int M => 1; public static int N => 8; public static int K => 3; public static int KBlock => 3; public static bool Parallel => true; }
    private struct Edges : IGemmShape { public static int M => 13; public static int N => 33; public static int K => 64; public static int KBlock => 24; public static bool Parallel => true; }
    private struct Wide : IGemmShape { public static int M => 50; public static int N => 100; public static int K => 131; public static int KBlock => 64; public static bool Parallel => true; }
    private struct Tall : IGemmShape { public static int M => 197; public static int N => 17; public static int K => 7; public static int KBlock => 7; public static bool Parallel => false; }

    [Theory]
    [TierData(512, 0, 1, 2, 3)]
    [TierData(256, 0, 1, 2, 3)]
    [TierData(128, 0, 1, 2, 3)]
    public void LinearMatchesDoublePrecision(int bits, int shape)
    {
        using var tier = Simd.Force(Tiers.Of(bits));
        switch (shape)
        {
            case 0: Check<Tiny>(); break;
            case 1: Check<Edges>(); break;
            case 2: Check<Wide>(); break;
            default: Check<Tall>(); break;
        }
    }

    /// <summary>
    /// The 128-bit micro-kernel's two pass heights directly, whichever this machine would pick: 6 rows (x86) and 12 rows
    /// (ARM64, whose 32 registers hold 24 accumulators), on packed A and B with partial rows and columns.
    /// </summary>
    [Theory]
    [InlineData(6, 12, 32)]
    [InlineData(6, 5, 11)]
    [InlineData(12, 12, 32)]
    [InlineData(12, 7, 20)]
    [InlineData(12, 1, 4)]
    public void Vector128PassesMatchDoublePrecision(int passRows, int rows, int cols)
        => CheckTile(passRows * 100 + rows * 10 + cols, rows, cols, passRows == 6
            ? GemmMicroKernels.Tile12x32Vector128Passes<StoreEpilogue, PackedA, GemmMicroKernels.Rows6>
            : GemmMicroKernels.Tile12x32Vector128Passes<StoreEpilogue, PackedA, GemmMicroKernels.Rows12>);

    /// <summary>
    /// Both broadcast forms of the 512-bit kernel, whichever this machine's vendor picks (Intel: embedded, others: register),
    /// over full and partial tiles (the 4- and 8-row and 16-column variants).
    /// </summary>
    [Theory]
    [TierData(512, 0, 1)]
    public void Vector512BroadcastFormsMatchDoublePrecision(int bits, int embedded)
    {
        using var tier = Simd.Force(Tiers.Of(bits));
        foreach ((int rows, int cols) in new[] { (12, 32), (9, 17), (8, 16), (5, 32), (4, 7), (1, 1) })
        {
            CheckTile(rows * 10 + cols, rows, cols, embedded == 1
                ? GemmMicroKernels.Tile12x32<StoreEpilogue, PackedA, EmbeddedBroadcast>
                : GemmMicroKernels.Tile12x32<StoreEpilogue, PackedA, RegisterBroadcast>);
        }
    }

    private delegate void TileKernel(float* pa, float* pb, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last, float* prefetch, int prefetchLines);

    /// <summary>One tile of <paramref name="rows"/> x <paramref name="cols"/> from packed A and B plus a bias, against a double-precision sum; nothing outside the tile may be written.</summary>
    private static void CheckTile(int seed, int rows, int cols, TileKernel kernel)
    {
        const int kc = 37, ldc = 40;
        var random = new Random(seed);
        var a = new float[GemmPacking.RowBlock * kc];    // packed [k][12], zero past the valid rows
        var b = new float[GemmPacking.PanelWidth * kc];  // one panel [k][32], zero past the valid columns
        for (int kk = 0; kk < kc; kk++)
        {
            for (int r = 0; r < rows; r++) a[kk * GemmPacking.RowBlock + r] = (float)(random.NextDouble() * 2 - 1);
            for (int j = 0; j < cols; j++) b[kk * GemmPacking.PanelWidth + j] = (float)(random.NextDouble() * 2 - 1);
        }
        var bias = Enumerable.Range(0, GemmPacking.PanelWidth).Select(j => j * 0.25f).ToArray();
        var c = new float[GemmPacking.RowBlock * ldc];
        Array.Fill(c, float.NaN);
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        fixed (float* pBias = bias)
        {
            kernel(pa, pb, kc, pc, ldc, pBias, rows, cols, true, true, null, 0);
        }
        for (int r = 0; r < GemmPacking.RowBlock; r++)
        {
            for (int j = 0; j < ldc; j++)
            {
                if (r >= rows || j >= cols)
                {
                    Assert.True(float.IsNaN(c[r * ldc + j]), $"[{r},{j}] outside the {rows}x{cols} tile was written");
                    continue;
                }
                double expected = bias[j];
                for (int kk = 0; kk < kc; kk++) expected += (double)a[kk * GemmPacking.RowBlock + r] * b[kk * GemmPacking.PanelWidth + j];
                Assert.True(Math.Abs(c[r * ldc + j] - expected) <= 1e-5 * kc, $"[{r},{j}]: {c[r * ldc + j]} vs {expected:G9}");
            }
        }
    }

    private static void Check<TShape>() where TShape : IGemmShape
    {
        Check<TShape, StoreEpilogue>(withBias: true);
        Check<TShape, StoreEpilogue>(withBias: false);
        Check<TShape, ResidualEpilogue>(withBias: true);
        Check<TShape, GeluEpilogue>(withBias: true);
        Check<TShape, ReluEpilogue>(withBias: false);
    }

    private static void Check<TShape, TEpilogue>(bool withBias) where TShape : IGemmShape where TEpilogue : IGemmEpilogue
    {
        int m = TShape.M, n = TShape.N, k = TShape.K;
        var random = new Random(m * 1000 + n * 10 + k);
        float[] Random(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var a = Random(m * k);
        var w = Random(n * k);
        var bias = withBias ? Random(n) : [];
        var residual = Random(m * n);
        using var weight = new PackedLinear(w, bias, n, k);
        using var input = new NativeBuffer(m * k);
        using var output = new NativeBuffer(m * n);
        a.CopyTo(input.Span);
        residual.CopyTo(output.Span);
        Gemm.Linear<TShape, TEpilogue>(input, 0, weight, output, 0, threads: 2);
        var actual = output.Span.ToArray();
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = withBias ? bias[j] : 0, magnitude = 1;
                for (int kk = 0; kk < k; kk++)
                {
                    sum += (double)a[i * k + kk] * w[j * k + kk];
                    magnitude += Math.Abs((double)a[i * k + kk] * w[j * k + kk]);
                }
                if (TEpilogue.AddToOutput) sum += residual[i * n + j];
                double expected = TEpilogue.IsIdentity ? sum : TEpilogue.Activate((float)sum);
                Assert.True(Math.Abs(actual[i * n + j] - expected) <= 1e-5 * magnitude,
                    $"{typeof(TShape).Name} {typeof(TEpilogue).Name} bias={withBias} [{i},{j}] on {Simd.Current}: {actual[i * n + j]} vs {expected:G9}");
            }
        }
    }
}
