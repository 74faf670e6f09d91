using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace ViTGen.CompilerServices;

/// <summary>
/// Panel layouts of the GEMM micro-kernel. B is stored as panels of <see cref="PanelWidth"/> output columns,
/// each panel k-major (<c>[panel][k][32]</c>), so the kernel streams one contiguous panel; A is stored as
/// blocks of <see cref="RowBlock"/> rows, k-major (<c>[block][k][12]</c>). Both are zero-padded, so edge
/// tiles run the same kernel and only the final store is clipped.
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>Output columns per B panel: two 16-lane vectors.</summary>
    public const int PanelWidth = 32;

    /// <summary>Rows per A block: 12 rows x 2 vectors = 24 zmm accumulators of the 32.</summary>
    public const int RowBlock = 12;

    /// <summary>Floats per 64-byte cache line (the unit of the GEMM's software prefetch).</summary>
    public const int CacheLineFloats = 16;

    public static int Panels(int n) => (n + PanelWidth - 1) / PanelWidth;

    public static int RowBlocks(int m) => (m + RowBlock - 1) / RowBlock;

    /// <summary>Floats of a packed B with <paramref name="n"/> columns and reduction <paramref name="k"/>.</summary>
    public static long PackedBLength(int n, int k) => (long)Panels(n) * PanelWidth * k;

    /// <summary>Floats of a packed A with <paramref name="m"/> rows and reduction <paramref name="k"/>.</summary>
    public static long PackedALength(int m, int k) => (long)RowBlocks(m) * RowBlock * k;

    /// <summary>
    /// Packs B given as its transpose: <paramref name="src"/> holds <paramref name="n"/> rows of
    /// <paramref name="k"/> floats (a PyTorch Linear weight <c>[out, in]</c>, or the keys of one head).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackTransposedB(float* src, int ld, int n, int k, float* dst)
    {
        for (int panel = 0; panel < Panels(n); panel++)
        {
            float* panelDst = dst + (long)panel * PanelWidth * k;
            float* panelSrc = src + (long)panel * PanelWidth * ld;
            int cols = Math.Min(PanelWidth, n - panel * PanelWidth);
            if (cols == PanelWidth && Simd.Current == SimdTier.Vector512)
                TransposePanel512(panelSrc, ld, k, panelDst);
            else if (cols == PanelWidth && Avx2.IsSupported && Simd.Current >= SimdTier.Vector256 && (long)PanelWidth * ld <= int.MaxValue)
                GatherPanel(panelSrc, ld, k, panelDst);
            else if (cols == PanelWidth && Simd.Current == SimdTier.Vector128)
                TransposePanel128(panelSrc, ld, k, panelDst);
            else
                CopyPanel(panelSrc, ld, cols, k, panelDst);
        }
    }

    /// <summary>
    /// One full panel with four 8-lane gathers per step (one float from each of 32 rows; .NET has no 16-lane
    /// gather): several times faster than the element loop, which wrote each float to a different cache line.
    /// </summary>
    private static void GatherPanel(float* src, int ld, int k, float* dst)
    {
        var rows0 = Vector256<int>.Indices * ld;
        var rows8 = (Vector256<int>.Indices + Vector256.Create(8)) * ld;
        var rows16 = (Vector256<int>.Indices + Vector256.Create(16)) * ld;
        var rows24 = (Vector256<int>.Indices + Vector256.Create(24)) * ld;
        for (int kk = 0; kk < k; kk++)
        {
            float* column = src + kk;
            float* to = dst + (long)kk * PanelWidth;
            Avx2.GatherVector256(column, rows0, sizeof(float)).Store(to);
            Avx2.GatherVector256(column, rows8, sizeof(float)).Store(to + 8);
            Avx2.GatherVector256(column, rows16, sizeof(float)).Store(to + 16);
            Avx2.GatherVector256(column, rows24, sizeof(float)).Store(to + 24);
        }
    }

    /// <summary>
    /// One full panel by 16x16 register transposes (AVX-512): each block reads 16 floats of 16 rows and writes 16 floats to
    /// each of 16 k rows of the panel; the k columns past the last multiple of 16 are copied one by one.
    /// </summary>
    /// <remarks>
    /// Replaced the 8-lane gathers on the AVX-512 tier: gathers are slow on Zen 5, where packing kᵀ took 8% of an attention
    /// head (ViT-Ti/16, one thread: 6.5 us of 77). With the transposes its attention went 2.71-2.75 -> 2.50-2.57 ms per
    /// forward (paired runs).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposePanel512(float* src, int ld, int k, float* dst)
    {
        int k16 = k & ~15;
        for (int j0 = 0; j0 < PanelWidth; j0 += 16)
        {
            float* rows = src + (long)j0 * ld;
            for (int kk = 0; kk < k16; kk += 16)
                Transpose16x16(rows + kk, ld, dst + (long)kk * PanelWidth + j0);
            for (int kk = k16; kk < k; kk++)
            {
                for (int j = 0; j < 16; j++) dst[(long)kk * PanelWidth + j0 + j] = rows[(long)j * ld + kk];
            }
        }
    }

    /// <summary>
    /// Writes the transpose of the 16x16 block at <paramref name="src"/> (row stride <paramref name="ld"/>) to
    /// <paramref name="dst"/> (row stride <see cref="PanelWidth"/>): four stages of two-input shuffles, no gathers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // not inlined anyway: it uses stackalloc
    private static void Transpose16x16(float* src, int ld, float* dst)
    {
        // Stage 1: rows 2i and 2i+1 interleaved; stage 2: four rows interleaved, so b[4g + c] holds, in each 128-bit
        // lane L, column 4L + c of rows 4g..4g+3.
        var b = stackalloc Vector512<float>[16];
        for (int g = 0; g < 4; g++)
        {
            float* r = src + (long)(4 * g) * ld;
            var r0 = Vector512.Load(r);
            var r1 = Vector512.Load(r + ld);
            var r2 = Vector512.Load(r + 2 * ld);
            var r3 = Vector512.Load(r + 3 * ld);
            var a0 = Avx512F.UnpackLow(r0, r1).AsDouble();
            var a1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
            var a2 = Avx512F.UnpackLow(r2, r3).AsDouble();
            var a3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
            b[4 * g + 0] = Avx512F.UnpackLow(a0, a2).AsSingle();
            b[4 * g + 1] = Avx512F.UnpackHigh(a0, a2).AsSingle();
            b[4 * g + 2] = Avx512F.UnpackLow(a1, a3).AsSingle();
            b[4 * g + 3] = Avx512F.UnpackHigh(a1, a3).AsSingle();
        }
        // Stages 3 and 4 gather the four row groups' 128-bit lanes: 0x88 takes lanes 0 and 2 of each input, 0xDD lanes 1 and 3.
        for (int c = 0; c < 4; c++)
        {
            var low01 = Avx512F.Shuffle4x128(b[c], b[4 + c], 0x88);     // columns c and 8+c of rows 0-7
            var high01 = Avx512F.Shuffle4x128(b[c], b[4 + c], 0xDD);    // columns 4+c and 12+c of rows 0-7
            var low23 = Avx512F.Shuffle4x128(b[8 + c], b[12 + c], 0x88);
            var high23 = Avx512F.Shuffle4x128(b[8 + c], b[12 + c], 0xDD);
            Avx512F.Shuffle4x128(low01, low23, 0x88).Store(dst + c * PanelWidth);
            Avx512F.Shuffle4x128(low01, low23, 0xDD).Store(dst + (8 + c) * PanelWidth);
            Avx512F.Shuffle4x128(high01, high23, 0x88).Store(dst + (4 + c) * PanelWidth);
            Avx512F.Shuffle4x128(high01, high23, 0xDD).Store(dst + (12 + c) * PanelWidth);
        }
    }

    /// <summary>
    /// One full panel by 4x4 transposes of Vector128 (the Vector128 tier, which has no gather): each step reads 4 floats of
    /// 4 rows and writes 4 floats to each of 4 k rows of the panel, instead of one float per cache line.
    /// </summary>
    private static void TransposePanel128(float* src, int ld, int k, float* dst)
    {
        int k4 = k & ~3;
        for (int j = 0; j < PanelWidth; j += 4)
        {
            float* r0 = src + (long)j * ld, r1 = r0 + ld, r2 = r1 + ld, r3 = r2 + ld;
            for (int kk = 0; kk < k4; kk += 4)
            {
                var a = Vector128.Load(r0 + kk);
                var b = Vector128.Load(r1 + kk);
                var c = Vector128.Load(r2 + kk);
                var d = Vector128.Load(r3 + kk);
                var ab01 = Zip(a, b, false);   // [a0 b0 a1 b1]
                var ab23 = Zip(a, b, true);    // [a2 b2 a3 b3]
                var cd01 = Zip(c, d, false);
                var cd23 = Zip(c, d, true);
                float* to = dst + (long)kk * PanelWidth + j;
                Zip(ab01.AsDouble(), cd01.AsDouble(), false).AsSingle().Store(to);                  // [a0 b0 c0 d0]
                Zip(ab01.AsDouble(), cd01.AsDouble(), true).AsSingle().Store(to + PanelWidth);
                Zip(ab23.AsDouble(), cd23.AsDouble(), false).AsSingle().Store(to + 2 * PanelWidth);
                Zip(ab23.AsDouble(), cd23.AsDouble(), true).AsSingle().Store(to + 3 * PanelWidth);
            }
            for (int kk = k4; kk < k; kk++)
            {
                float* to = dst + (long)kk * PanelWidth + j;
                to[0] = r0[kk]; to[1] = r1[kk]; to[2] = r2[kk]; to[3] = r3[kk];
            }
        }
    }

    /// <summary>The low (or high) halves of <paramref name="a"/> and <paramref name="b"/> interleaved: <c>[a0 b0 a1 b1]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Zip(Vector128<float> a, Vector128<float> b, bool high)
    {
        if (AdvSimd.Arm64.IsSupported) return high ? AdvSimd.Arm64.ZipHigh(a, b) : AdvSimd.Arm64.ZipLow(a, b);
        if (Sse.IsSupported) return high ? Sse.UnpackHigh(a, b) : Sse.UnpackLow(a, b);
        int i = high ? 2 : 0;
        return Vector128.Create(a.GetElement(i), b.GetElement(i), a.GetElement(i + 1), b.GetElement(i + 1));
    }

    /// <summary>The low (or high) lanes of <paramref name="a"/> and <paramref name="b"/>: <c>[a0 b0]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<double> Zip(Vector128<double> a, Vector128<double> b, bool high)
    {
        if (AdvSimd.Arm64.IsSupported) return high ? AdvSimd.Arm64.ZipHigh(a, b) : AdvSimd.Arm64.ZipLow(a, b);
        if (Sse2.IsSupported) return high ? Sse2.UnpackHigh(a, b) : Sse2.UnpackLow(a, b);
        int i = high ? 1 : 0;
        return Vector128.Create(a.GetElement(i), b.GetElement(i));
    }

    /// <summary>One panel element by element, zero-padding columns <paramref name="cols"/>..31.</summary>
    private static void CopyPanel(float* src, int ld, int cols, int k, float* dst)
    {
        for (int j = 0; j < cols; j++)
        {
            float* row = src + (long)j * ld;
            for (int kk = 0; kk < k; kk++) dst[kk * PanelWidth + j] = row[kk];
        }
        for (int j = cols; j < PanelWidth; j++)
        {
            for (int kk = 0; kk < k; kk++) dst[kk * PanelWidth + j] = 0f;
        }
    }

    /// <summary>Packs B given row-major: <paramref name="k"/> rows of <paramref name="n"/> floats (the values of one head).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackB(float* src, int ld, int k, int n, float* dst)
    {
        for (int panel = 0; panel < Panels(n); panel++)
        {
            float* panelDst = dst + (long)panel * PanelWidth * k;
            int col0 = panel * PanelWidth;
            int cols = Math.Min(PanelWidth, n - col0);
            for (int kk = 0; kk < k; kk++)
            {
                var from = new ReadOnlySpan<float>(src + (long)kk * ld + col0, cols);
                var to = new Span<float>(panelDst + kk * PanelWidth, PanelWidth);
                from.CopyTo(to);
                to[cols..].Clear();
            }
        }
    }

    /// <summary>
    /// Full 12-row blocks of A are read in place; the last, partial block would read past the matrix, so it is
    /// copied zero-padded to <paramref name="destination"/>. Returns null when <paramref name="m"/> is a multiple of 12.
    /// </summary>
    public static float* PackEdgeBlock(float* a, int ld, int m, int k, float* destination)
    {
        int fullRows = m / RowBlock * RowBlock;
        if (fullRows == m) return null;
        PackA(a + (long)fullRows * ld, ld, m - fullRows, k, destination);
        return destination;
    }

    /// <summary>Packs A (<paramref name="m"/> rows of <paramref name="k"/> floats, row stride <paramref name="ld"/>), zero-padding to 12 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackA(float* src, int ld, int m, int k, float* dst)
    {
        for (int block = 0; block < RowBlocks(m); block++)
        {
            float* blockDst = dst + (long)block * RowBlock * k;
            int rows = Math.Min(RowBlock, m - block * RowBlock);
            for (int r = 0; r < rows; r++)
            {
                float* row = src + (long)(block * RowBlock + r) * ld;
                for (int kk = 0; kk < k; kk++) blockDst[kk * RowBlock + r] = row[kk];
            }
            for (int r = rows; r < RowBlock; r++)
            {
                for (int kk = 0; kk < k; kk++) blockDst[kk * RowBlock + r] = 0f;
            }
        }
    }
}
