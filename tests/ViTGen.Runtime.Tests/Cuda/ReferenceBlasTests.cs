using ViTGen.CompilerServices;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// The CPU executor's GEMM against cuBLAS's documented semantics, written out independently: C_p(i, j) =
/// alpha Σ op(A_p)(i, l) op(B_p)(l, j) + beta C_p(i, j), column-major, with padding in every leading dimension.
/// </summary>
public sealed class ReferenceBlasTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void StridedBatchedGemmFollowsCublasSemantics(bool transA, bool transB)
    {
        const int M = 5, N = 4, K = 3, Batch = 3, Pad = 2;
        int rowsA = transA ? K : M, colsA = transA ? M : K, rowsB = transB ? N : K, colsB = transB ? K : N;
        int lda = rowsA + Pad, ldb = rowsB + Pad, ldc = M + Pad;
        long strideA = lda * colsA + 7, strideB = ldb * colsB + 5, strideC = ldc * N + 3;
        long a = 11, b = a + Batch * strideA, c = b + Batch * strideB;
        var random = new Random(42);
        var arena = new float[c + Batch * strideC + 13];
        for (int i = 0; i < arena.Length; i++) arena[i] = (float)(random.NextDouble() * 2 - 1);
        var before = (float[])arena.Clone();
        const float Alpha = 0.75f, Beta = -0.5f;

        var gemm = new GpuGemm("test", transA, transB, M, N, K, Alpha, a, lda, strideA, b, ldb, strideB, Beta, c, ldc, strideC, Batch);
        ReferenceBlas.Gemm(gemm, arena);

        for (int p = 0; p < Batch; p++)
        {
            // X(r, s) of a column-major matrix at base + r + s * ld.
            float A(int r, int s) => before[a + p * strideA + r + s * lda];
            float B(int r, int s) => before[b + p * strideB + r + s * ldb];
            for (int i = 0; i < M; i++)
            {
                for (int j = 0; j < N; j++)
                {
                    double sum = 0;
                    for (int l = 0; l < K; l++) sum += (transA ? A(l, i) : A(i, l)) * (double)(transB ? B(j, l) : B(l, j));
                    long at = c + p * strideC + i + j * ldc;
                    Assert.Equal(Alpha * sum + Beta * before[at], arena[at], tolerance: 1e-5);
                    arena[at] = before[at]; // so the untouched-elements check below sees only what the GEMM must not write
                }
            }
        }
        Assert.Equal(before, arena);
    }

    [Fact]
    public void BetaZeroDoesNotReadC()
    {
        var arena = new float[] { 1, 2, 3, 4, float.NaN };
        ReferenceBlas.Gemm(new GpuGemm("test", false, false, 1, 1, 2, 1f, 0, 1, 0, 2, 2, 0, 0f, 4, 1, 0, 1), arena);
        Assert.Equal(1 * 3 + 2 * 4, arena[4]);
    }

    [Fact]
    public void LeadingDimensionSmallerThanRowsIsRejected()
    {
        var arena = new float[64];
        // op(A) = Aᵀ is m x k, so A is k x m and needs lda >= k.
        var gemm = new GpuGemm("test", true, false, 4, 2, 3, 1f, 0, 2, 0, 16, 3, 0, 0f, 32, 4, 0, 1);
        Assert.Throws<ArgumentException>(() => ReferenceBlas.Gemm(gemm, arena));
    }
}
