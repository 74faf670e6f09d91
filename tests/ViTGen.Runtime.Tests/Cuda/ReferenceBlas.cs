using ViTGen.CompilerServices;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// cuBLAS's SGEMM semantics on a float[] arena, written for clarity rather than speed: column-major matrices,
/// op(A) and op(B), leading dimensions, strides between the problems of a batch, alpha and beta (with beta 0 the
/// output is not read, as in cuBLAS, so NaN garbage there does not leak through). It checks what cuBLAS checks
/// (<c>CUBLAS_STATUS_INVALID_VALUE</c>) and, through the spans, that every element lies inside the arena.
/// </summary>
internal static class ReferenceBlas
{
    /// <summary>Runs <paramref name="g"/> on <paramref name="arena"/>.</summary>
    public static void Gemm(GpuGemm g, Span<float> arena)
    {
        if (g.M < 0 || g.N < 0 || g.K < 0 || g.Batch < 0)
            throw new ArgumentException($"negative size: {g}", nameof(g));
        if (g.Lda < Math.Max(1, g.TransA ? g.K : g.M) || g.Ldb < Math.Max(1, g.TransB ? g.N : g.K) || g.Ldc < Math.Max(1, g.M))
            throw new ArgumentException($"a leading dimension is smaller than its matrix's rows (CUBLAS_STATUS_INVALID_VALUE): {g}", nameof(g));

        for (int p = 0; p < g.Batch; p++)
        {
            long a = g.A + p * g.StrideA, b = g.B + p * g.StrideB, c = g.C + p * g.StrideC;
            for (int j = 0; j < g.N; j++)
            {
                for (int i = 0; i < g.M; i++)
                {
                    double sum = 0;
                    for (int l = 0; l < g.K; l++)
                    {
                        // op(A)(i, l) and op(B)(l, j); element (r, s) of a column-major matrix is at r + s * ld.
                        float aValue = g.TransA ? arena[Index(a + l + (long)i * g.Lda)] : arena[Index(a + i + (long)l * g.Lda)];
                        float bValue = g.TransB ? arena[Index(b + j + (long)l * g.Ldb)] : arena[Index(b + l + (long)j * g.Ldb)];
                        sum += (double)aValue * bValue;
                    }
                    int at = Index(c + i + (long)j * g.Ldc);
                    float product = g.Alpha * (float)sum;
                    arena[at] = g.Beta == 0f ? product : product + g.Beta * arena[at];
                }
            }
        }
    }

    private static int Index(long offset) => checked((int)offset);
}
