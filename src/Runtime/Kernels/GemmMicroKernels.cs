namespace ViTGen.CompilerServices;

/// <summary>
/// The register-tiled inner kernels of the GEMM. One call computes a 12x32 tile of C over one cache block
/// of the reduction: 24 zmm accumulators, two B loads and twelve broadcasts of A per step, so the loop is
/// bound by FMA throughput rather than by loads. A 256-bit kernel covers machines without AVX-512.
/// </summary>
internal static unsafe class GemmMicroKernels
{
    /// <summary>Tests set this to exercise the 256-bit kernel on AVX-512 machines.</summary>
    internal static bool ForceVector256;

    public static bool UseVector512 => Vector512.IsHardwareAccelerated && !ForceVector256;

    /// <summary>
    /// C tile (<paramref name="rows"/> x <paramref name="cols"/> valid, row stride <paramref name="ldc"/>) from a packed
    /// A block and B panel over <paramref name="kc"/> steps. <paramref name="first"/>: the tile starts from the bias
    /// (plus C when the epilogue adds to the output); otherwise it accumulates onto C.
    /// <paramref name="last"/>: apply the activation before storing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile12x32<TEpilogue>(float* pa, float* pb, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last)
        where TEpilogue : IGemmEpilogue
    {
        Vector512<float> c0a = default, c0b = default;
        Vector512<float> c1a = default, c1b = default;
        Vector512<float> c2a = default, c2b = default;
        Vector512<float> c3a = default, c3b = default;
        Vector512<float> c4a = default, c4b = default;
        Vector512<float> c5a = default, c5b = default;
        Vector512<float> c6a = default, c6b = default;
        Vector512<float> c7a = default, c7b = default;
        Vector512<float> c8a = default, c8b = default;
        Vector512<float> c9a = default, c9b = default;
        Vector512<float> c10a = default, c10b = default;
        Vector512<float> c11a = default, c11b = default;
        for (int k = 0; k < kc; k++)
        {
            var b0 = Vector512.Load(pb);
            var b1 = Vector512.Load(pb + 16);
            Vector512<float> a;
            a = Vector512.Create(pa[0]);
            c0a = Vector512.FusedMultiplyAdd(a, b0, c0a); c0b = Vector512.FusedMultiplyAdd(a, b1, c0b);
            a = Vector512.Create(pa[1]);
            c1a = Vector512.FusedMultiplyAdd(a, b0, c1a); c1b = Vector512.FusedMultiplyAdd(a, b1, c1b);
            a = Vector512.Create(pa[2]);
            c2a = Vector512.FusedMultiplyAdd(a, b0, c2a); c2b = Vector512.FusedMultiplyAdd(a, b1, c2b);
            a = Vector512.Create(pa[3]);
            c3a = Vector512.FusedMultiplyAdd(a, b0, c3a); c3b = Vector512.FusedMultiplyAdd(a, b1, c3b);
            a = Vector512.Create(pa[4]);
            c4a = Vector512.FusedMultiplyAdd(a, b0, c4a); c4b = Vector512.FusedMultiplyAdd(a, b1, c4b);
            a = Vector512.Create(pa[5]);
            c5a = Vector512.FusedMultiplyAdd(a, b0, c5a); c5b = Vector512.FusedMultiplyAdd(a, b1, c5b);
            a = Vector512.Create(pa[6]);
            c6a = Vector512.FusedMultiplyAdd(a, b0, c6a); c6b = Vector512.FusedMultiplyAdd(a, b1, c6b);
            a = Vector512.Create(pa[7]);
            c7a = Vector512.FusedMultiplyAdd(a, b0, c7a); c7b = Vector512.FusedMultiplyAdd(a, b1, c7b);
            a = Vector512.Create(pa[8]);
            c8a = Vector512.FusedMultiplyAdd(a, b0, c8a); c8b = Vector512.FusedMultiplyAdd(a, b1, c8b);
            a = Vector512.Create(pa[9]);
            c9a = Vector512.FusedMultiplyAdd(a, b0, c9a); c9b = Vector512.FusedMultiplyAdd(a, b1, c9b);
            a = Vector512.Create(pa[10]);
            c10a = Vector512.FusedMultiplyAdd(a, b0, c10a); c10b = Vector512.FusedMultiplyAdd(a, b1, c10b);
            a = Vector512.Create(pa[11]);
            c11a = Vector512.FusedMultiplyAdd(a, b0, c11a); c11b = Vector512.FusedMultiplyAdd(a, b1, c11b);
            pa += GemmPacking.RowBlock;
            pb += GemmPacking.PanelWidth;
        }
        FinishRow<TEpilogue>(c0a, c0b, c, bias, cols, first, last);
        if (rows > 1) FinishRow<TEpilogue>(c1a, c1b, c + 1 * ldc, bias, cols, first, last);
        if (rows > 2) FinishRow<TEpilogue>(c2a, c2b, c + 2 * ldc, bias, cols, first, last);
        if (rows > 3) FinishRow<TEpilogue>(c3a, c3b, c + 3 * ldc, bias, cols, first, last);
        if (rows > 4) FinishRow<TEpilogue>(c4a, c4b, c + 4 * ldc, bias, cols, first, last);
        if (rows > 5) FinishRow<TEpilogue>(c5a, c5b, c + 5 * ldc, bias, cols, first, last);
        if (rows > 6) FinishRow<TEpilogue>(c6a, c6b, c + 6 * ldc, bias, cols, first, last);
        if (rows > 7) FinishRow<TEpilogue>(c7a, c7b, c + 7 * ldc, bias, cols, first, last);
        if (rows > 8) FinishRow<TEpilogue>(c8a, c8b, c + 8 * ldc, bias, cols, first, last);
        if (rows > 9) FinishRow<TEpilogue>(c9a, c9b, c + 9 * ldc, bias, cols, first, last);
        if (rows > 10) FinishRow<TEpilogue>(c10a, c10b, c + 10 * ldc, bias, cols, first, last);
        if (rows > 11) FinishRow<TEpilogue>(c11a, c11b, c + 11 * ldc, bias, cols, first, last);
    }

    private static void FinishRow<TEpilogue>(Vector512<float> lo, Vector512<float> hi, float* c, float* bias, int cols, bool first, bool last)
        where TEpilogue : IGemmEpilogue
    {
        if (first && bias != null)
        {
            lo += Vector512.Load(bias);
            hi += Vector512.Load(bias + 16);
        }
        if (!first || TEpilogue.AddToOutput)
        {
            lo += LoadClipped(c, cols);
            hi += LoadClipped(c + 16, cols - 16);
        }
        if (last && !TEpilogue.IsIdentity)
        {
            lo = TEpilogue.Activate(lo);
            hi = TEpilogue.Activate(hi);
        }
        StoreClipped(lo, c, cols);
        StoreClipped(hi, c + 16, cols - 16);
    }

    // Edge tiles go through a 16-float stack copy: only the last panel of a matrix pays for it.
    private static Vector512<float> LoadClipped(float* p, int count)
    {
        if (count >= 16) return Vector512.Load(p);
        if (count <= 0) return Vector512<float>.Zero;
        float* tmp = stackalloc float[16];
        Vector512<float>.Zero.Store(tmp);
        Buffer.MemoryCopy(p, tmp, 64, count * sizeof(float));
        return Vector512.Load(tmp);
    }

    private static void StoreClipped(Vector512<float> v, float* p, int count)
    {
        if (count >= 16) { v.Store(p); return; }
        if (count <= 0) return;
        float* tmp = stackalloc float[16];
        v.Store(tmp);
        Buffer.MemoryCopy(tmp, p, count * sizeof(float), count * sizeof(float));
    }

    /// <summary>The same contract as <see cref="Tile12x32"/> with 256-bit vectors, one row at a time.</summary>
    public static void Tile12x32Vector256<TEpilogue>(float* pa, float* pb, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last)
        where TEpilogue : IGemmEpilogue
    {
        float* tile = stackalloc float[GemmPacking.PanelWidth];
        for (int r = 0; r < rows; r++)
        {
            Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
            float* a = pa + r;
            float* b = pb;
            for (int k = 0; k < kc; k++)
            {
                var x = Vector256.Create(*a);
                acc0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b), acc0);
                acc1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 8), acc1);
                acc2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 16), acc2);
                acc3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 24), acc3);
                a += GemmPacking.RowBlock;
                b += GemmPacking.PanelWidth;
            }
            acc0.Store(tile); acc1.Store(tile + 8); acc2.Store(tile + 16); acc3.Store(tile + 24);
            float* cRow = c + (long)r * ldc;
            for (int j = 0; j < cols; j++)
            {
                float v = tile[j];
                if (first && bias != null) v += bias[j];
                if (!first || TEpilogue.AddToOutput) v += cRow[j];
                cRow[j] = last ? TEpilogue.Activate(v) : v;
            }
        }
    }
}
