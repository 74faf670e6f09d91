using System.Numerics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace ViTGen.CompilerServices;

/// <summary>
/// The register-tiled inner kernels of the GEMM. One call computes a 12x32 tile of C over one cache block
/// of the reduction: 24 zmm accumulators, two B loads, 12 broadcasts of A and 24 FMAs per step, so the loop is
/// bound by FMA throughput rather than by loads. A 256-bit kernel covers machines without AVX-512, a 128-bit
/// one ARM64 and x86 machines without AVX2+FMA; <see cref="Simd.Current"/> picks one (see <see cref="Gemm"/>).
/// </summary>
/// <remarks>
/// Why the accumulators go through a stack tile before the epilogue: every zmm register is caller-saved, so
/// if an accumulator were still live at a call the JIT would spill it on every iteration of the k loop
/// (measured: 4x slower). Storing the tile first ends all 24 live ranges before any call.
/// </remarks>
internal static unsafe class GemmMicroKernels
{
    private const int TileFloats = GemmPacking.RowBlock * GemmPacking.PanelWidth;

    /// <summary>
    /// C tile (<paramref name="rows"/> x <paramref name="cols"/> valid, row stride <paramref name="ldc"/>) from a packed
    /// A block and B panel over <paramref name="kc"/> steps. <paramref name="first"/>: the tile starts from the bias
    /// (plus C when the epilogue adds to the output); otherwise it accumulates onto C.
    /// <paramref name="last"/>: apply the activation before storing. Meanwhile the first <paramref name="prefetchLines"/>
    /// cache lines at <paramref name="prefetch"/> (part of the next B panel) are prefetched into L2, spread over the steps.
    /// </summary>
    /// <remarks>
    /// A partial block of at most 4 or 8 rows, or a last panel of at most 16 columns, runs a kernel with only those
    /// FMAs (row count and width are type arguments, so the JIT drops the rest): M = 50 (B/32) computes 52 rows instead
    /// of 60, M = 197 computes 200, not 204, and the 65-column scores of a 32x32 image compute 80 columns, not 96.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Tile12x32<TEpilogue, TLayout>(float* pa, float* pb, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last, float* prefetch, int prefetchLines)
        where TEpilogue : IGemmEpilogue where TLayout : IALayout
    {
        if (Simd.EmbeddedBroadcast)
            Tile12x32<TEpilogue, TLayout, EmbeddedBroadcast>(pa, pb, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
        else
            Tile12x32<TEpilogue, TLayout, RegisterBroadcast>(pa, pb, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
    }

    /// <summary><see cref="Tile12x32{TEpilogue, TLayout}"/> with the broadcast form fixed (internal so tests run both on any AVX-512 machine).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Tile12x32<TEpilogue, TLayout, TBroadcast>(float* pa, float* pb, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last, float* prefetch, int prefetchLines)
        where TEpilogue : IGemmEpilogue where TLayout : IALayout where TBroadcast : IBroadcastForm
    {
        if (cols <= 16)
            Tile12x32Rows<TEpilogue, TLayout, TBroadcast, Width16>(pa, pb, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
        else
            Tile12x32Rows<TEpilogue, TLayout, TBroadcast, Width32>(pa, pb, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile12x32Rows<TEpilogue, TLayout, TBroadcast, TWidth>(float* pa, float* pb, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last, float* prefetch, int prefetchLines)
        where TEpilogue : IGemmEpilogue where TLayout : IALayout where TBroadcast : IBroadcastForm where TWidth : IDimension
    {
        if (rows > 8) Tile12x32Core<TEpilogue, TLayout, TBroadcast, Rows12, TWidth>(pa, pa, pb, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
        else if (rows > 4) Tile12x32Core<TEpilogue, TLayout, TBroadcast, Rows8, TWidth>(pa, pa, pb, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
        else Tile12x32Core<TEpilogue, TLayout, TBroadcast, Rows4, TWidth>(pa, pa, pb, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
    }

    private readonly struct Rows4 : IDimension { public static int Value => 4; }
    private readonly struct Rows8 : IDimension { public static int Value => 8; }
    internal readonly struct Rows12 : IDimension { public static int Value => 12; }
    private readonly struct Width16 : IDimension { public static int Value => 16; }
    private readonly struct Width32 : IDimension { public static int Value => 32; }

    /// <summary>
    /// <see cref="Tile12x32{TEpilogue, TLayout}"/>: per step two B loads and, for each of the 12 rows, one broadcast of A feeding the row's
    /// two FMAs (<see cref="RegisterBroadcast"/>), or two embedded broadcasts, one per FMA (<see cref="EmbeddedBroadcast"/>).
    /// </summary>
    /// <remarks>
    /// Which form is faster depends on the core (<see cref="Simd.EmbeddedBroadcast"/> picks). The embedded form,
    /// <c>vfmadd231ps zmm, zmm, dword ptr [a] {1to16}</c>, needs no shuffle but issues 26 loads per 24 FMAs; the register
    /// form, <c>vbroadcastss</c> + two FMAs, issues 14. On Zen 5 (two 512-bit loads per cycle) the register form won in
    /// paired runs: a 12x32 tile over L1-resident panels 194-205 vs 178-182 GFLOP/s, the B/16 blocks at one thread
    /// 193-197 vs 223-225 ms (peak.c 207-213). On Sapphire Rapids the embedded form won: 8-10% with L1-resident panels
    /// and 0-15% on the B/16 Linear shapes. The embedded form needs A passed twice (<paramref name="paLeft"/> ==
    /// <paramref name="paRight"/>), one pointer for the left 16 columns' FMAs and one for the right: with a single
    /// pointer the JIT merges the two loads into one <c>vbroadcastss</c>. NoInlining keeps the two arguments opaque, so
    /// the JIT cannot prove them equal.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile12x32Core<TEpilogue, TLayout, TBroadcast, TRows, TWidth>(float* paLeft, float* paRight, float* pb, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last, float* prefetch, int prefetchLines)
        where TEpilogue : IGemmEpilogue where TLayout : IALayout where TBroadcast : IBroadcastForm where TRows : IDimension where TWidth : IDimension
    {
        (int spacing, int shift) = PrefetchSpacing(kc, prefetchLines);   // before the accumulators: no call while they are live
        float* tile = stackalloc float[TileFloats];
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
        float* l = paLeft, r = paRight;
        for (int k = 0; k < kc; k++)
        {
            var b0 = Vector512.Load(pb);
            var b1 = TWidth.Value > 16 ? Vector512.Load(pb + 16) : default;
            Vector512<float> a;
            if (Sse.IsSupported && (k & spacing) == 0 && (k >> shift) < prefetchLines) Sse.Prefetch1(prefetch + (k >> shift) * GemmPacking.CacheLineFloats);
            if (Sse.IsSupported && k + kc < prefetchLines) Sse.Prefetch1(prefetch + (k + kc) * GemmPacking.CacheLineFloats);
            a = Vector512.Create(l[0 * TLayout.RowStride]); c0a = Vector512.FusedMultiplyAdd(a, b0, c0a);
            if (TWidth.Value > 16) c0b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[0 * TLayout.RowStride]) : a, b1, c0b);
            a = Vector512.Create(l[1 * TLayout.RowStride]); c1a = Vector512.FusedMultiplyAdd(a, b0, c1a);
            if (TWidth.Value > 16) c1b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[1 * TLayout.RowStride]) : a, b1, c1b);
            a = Vector512.Create(l[2 * TLayout.RowStride]); c2a = Vector512.FusedMultiplyAdd(a, b0, c2a);
            if (TWidth.Value > 16) c2b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[2 * TLayout.RowStride]) : a, b1, c2b);
            a = Vector512.Create(l[3 * TLayout.RowStride]); c3a = Vector512.FusedMultiplyAdd(a, b0, c3a);
            if (TWidth.Value > 16) c3b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[3 * TLayout.RowStride]) : a, b1, c3b);
            if (TRows.Value > 4)
            {
                a = Vector512.Create(l[4 * TLayout.RowStride]); c4a = Vector512.FusedMultiplyAdd(a, b0, c4a);
                if (TWidth.Value > 16) c4b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[4 * TLayout.RowStride]) : a, b1, c4b);
                a = Vector512.Create(l[5 * TLayout.RowStride]); c5a = Vector512.FusedMultiplyAdd(a, b0, c5a);
                if (TWidth.Value > 16) c5b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[5 * TLayout.RowStride]) : a, b1, c5b);
                a = Vector512.Create(l[6 * TLayout.RowStride]); c6a = Vector512.FusedMultiplyAdd(a, b0, c6a);
                if (TWidth.Value > 16) c6b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[6 * TLayout.RowStride]) : a, b1, c6b);
                a = Vector512.Create(l[7 * TLayout.RowStride]); c7a = Vector512.FusedMultiplyAdd(a, b0, c7a);
                if (TWidth.Value > 16) c7b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[7 * TLayout.RowStride]) : a, b1, c7b);
            }
            if (TRows.Value > 8)
            {
                a = Vector512.Create(l[8 * TLayout.RowStride]); c8a = Vector512.FusedMultiplyAdd(a, b0, c8a);
                if (TWidth.Value > 16) c8b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[8 * TLayout.RowStride]) : a, b1, c8b);
                a = Vector512.Create(l[9 * TLayout.RowStride]); c9a = Vector512.FusedMultiplyAdd(a, b0, c9a);
                if (TWidth.Value > 16) c9b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[9 * TLayout.RowStride]) : a, b1, c9b);
                a = Vector512.Create(l[10 * TLayout.RowStride]); c10a = Vector512.FusedMultiplyAdd(a, b0, c10a);
                if (TWidth.Value > 16) c10b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[10 * TLayout.RowStride]) : a, b1, c10b);
                a = Vector512.Create(l[11 * TLayout.RowStride]); c11a = Vector512.FusedMultiplyAdd(a, b0, c11a);
                if (TWidth.Value > 16) c11b = Vector512.FusedMultiplyAdd(TBroadcast.Embedded ? Vector512.Create(r[11 * TLayout.RowStride]) : a, b1, c11b);
            }
            l += TLayout.Step;
            r += TLayout.Step;
            pb += GemmPacking.PanelWidth;
        }
        c0a.Store(tile + 0); if (TWidth.Value > 16) c0b.Store(tile + 16);
        c1a.Store(tile + 32); if (TWidth.Value > 16) c1b.Store(tile + 48);
        c2a.Store(tile + 64); if (TWidth.Value > 16) c2b.Store(tile + 80);
        c3a.Store(tile + 96); if (TWidth.Value > 16) c3b.Store(tile + 112);
        if (TRows.Value > 4)
        {
            c4a.Store(tile + 128); if (TWidth.Value > 16) c4b.Store(tile + 144);
            c5a.Store(tile + 160); if (TWidth.Value > 16) c5b.Store(tile + 176);
            c6a.Store(tile + 192); if (TWidth.Value > 16) c6b.Store(tile + 208);
            c7a.Store(tile + 224); if (TWidth.Value > 16) c7b.Store(tile + 240);
        }
        if (TRows.Value > 8)
        {
            c8a.Store(tile + 256); if (TWidth.Value > 16) c8b.Store(tile + 272);
            c9a.Store(tile + 288); if (TWidth.Value > 16) c9b.Store(tile + 304);
            c10a.Store(tile + 320); if (TWidth.Value > 16) c10b.Store(tile + 336);
            c11a.Store(tile + 352); if (TWidth.Value > 16) c11b.Store(tile + 368);
        }
        FinishTile<TEpilogue, Lanes16>(tile, c, ldc, bias, rows, cols, first, last);
    }

    /// <summary>
    /// The same contract as <see cref="Tile12x32{TEpilogue, TLayout}"/> for machines without AVX-512 (and NativeAOT's portable x86-64-v3
    /// target): four passes of a 6x16 register tile, 12 ymm accumulators of the 16, each pass bound by FMAs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile12x32Vector256<TEpilogue, TLayout>(float* pa, float* pb, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last, float* prefetch, int prefetchLines)
        where TEpilogue : IGemmEpilogue where TLayout : IALayout
    {
        float* tile = stackalloc float[TileFloats];
        (int spacing, int shift) = PrefetchSpacing(kc, prefetchLines);
        // Passes beyond the valid rows and columns of an edge tile are skipped (FinishTile reads only those).
        for (int half = 0; half < cols; half += 16)
        {
            for (int r0 = 0; r0 < rows; r0 += 6)
            {
                Vector256<float> c0a = default, c0b = default, c1a = default, c1b = default, c2a = default, c2b = default, c3a = default, c3b = default, c4a = default, c4b = default, c5a = default, c5b = default;
                float* a0 = pa;
                float* b = pb + half;
                for (int k = 0; k < kc; k++)
                {
                    var b0 = Vector256.Load(b);
                    var b1 = Vector256.Load(b + 8);
                    if (Sse.IsSupported && (k & spacing) == 0 && (k >> shift) < prefetchLines) Sse.Prefetch1(prefetch + (k >> shift) * GemmPacking.CacheLineFloats);
            if (Sse.IsSupported && k + kc < prefetchLines) Sse.Prefetch1(prefetch + (k + kc) * GemmPacking.CacheLineFloats);
                    Vector256<float> a;
                    a = Vector256.Create(a0[(r0 + 0) * TLayout.RowStride]);
                    c0a = Vector256.FusedMultiplyAdd(a, b0, c0a); c0b = Vector256.FusedMultiplyAdd(a, b1, c0b);
                    a = Vector256.Create(a0[(r0 + 1) * TLayout.RowStride]);
                    c1a = Vector256.FusedMultiplyAdd(a, b0, c1a); c1b = Vector256.FusedMultiplyAdd(a, b1, c1b);
                    a = Vector256.Create(a0[(r0 + 2) * TLayout.RowStride]);
                    c2a = Vector256.FusedMultiplyAdd(a, b0, c2a); c2b = Vector256.FusedMultiplyAdd(a, b1, c2b);
                    a = Vector256.Create(a0[(r0 + 3) * TLayout.RowStride]);
                    c3a = Vector256.FusedMultiplyAdd(a, b0, c3a); c3b = Vector256.FusedMultiplyAdd(a, b1, c3b);
                    a = Vector256.Create(a0[(r0 + 4) * TLayout.RowStride]);
                    c4a = Vector256.FusedMultiplyAdd(a, b0, c4a); c4b = Vector256.FusedMultiplyAdd(a, b1, c4b);
                    a = Vector256.Create(a0[(r0 + 5) * TLayout.RowStride]);
                    c5a = Vector256.FusedMultiplyAdd(a, b0, c5a); c5b = Vector256.FusedMultiplyAdd(a, b1, c5b);
                    a0 += TLayout.Step;
                    b += GemmPacking.PanelWidth;
                }
                prefetchLines = 0;   // the first pass has issued them
                float* t0 = tile + (r0 + 0) * GemmPacking.PanelWidth + half;
                c0a.Store(t0); c0b.Store(t0 + 8);
                float* t1 = tile + (r0 + 1) * GemmPacking.PanelWidth + half;
                c1a.Store(t1); c1b.Store(t1 + 8);
                float* t2 = tile + (r0 + 2) * GemmPacking.PanelWidth + half;
                c2a.Store(t2); c2b.Store(t2 + 8);
                float* t3 = tile + (r0 + 3) * GemmPacking.PanelWidth + half;
                c3a.Store(t3); c3b.Store(t3 + 8);
                float* t4 = tile + (r0 + 4) * GemmPacking.PanelWidth + half;
                c4a.Store(t4); c4b.Store(t4 + 8);
                float* t5 = tile + (r0 + 5) * GemmPacking.PanelWidth + half;
                c5a.Store(t5); c5b.Store(t5 + 8);
            }
        }
        FinishTile<TEpilogue, Lanes8>(tile, c, ldc, bias, rows, cols, first, last);
    }

    /// <summary>
    /// The same contract as <see cref="Tile12x32{TEpilogue, TLayout}"/> on 4-lane vectors (ARM64 AdvSimd; x86 SSE without AVX2+FMA): passes
    /// of an 8-column register tile over the 32-column panel, 12 rows per pass on ARM64 (24 accumulators of its 32
    /// registers), 6 rows on x86 (12 of its 16 xmm registers, so nothing spills).
    /// </summary>
    /// <remarks>
    /// A broadcast of A is a load-and-replicate on ARM64 (<c>ld1r</c>); the fused multiply-add is <c>fmla</c> there,
    /// <c>vfmadd231ps</c> on x86 with FMA, and a multiply plus an add on x86 without it (<see cref="Simd.MultiplyAdd"/>).
    /// With DOTNET_EnableAVX2=0 the JIT keeps the 6-row pass in registers (12 accumulators, 2 B vectors, the broadcast and
    /// one product: all 16 xmm, no spills in the k loop) and ViT-S/16 runs at 3.3-4.8x the AVX-512 time (see <see cref="Simd"/>).
    /// The broadcast costs <c>vmovss</c> + <c>vpermilps</c> there; <c>Avx.BroadcastScalarToVector128</c> did not change the
    /// code (AVX is reported off along with AVX2), and pre-broadcast A panels are left for later.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Tile12x32Vector128<TEpilogue, TLayout>(float* pa, float* pb, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last, float* prefetch, int prefetchLines)
        where TEpilogue : IGemmEpilogue where TLayout : IALayout
    {
        if (AdvSimd.Arm64.IsSupported)
            Tile12x32Vector128Passes<TEpilogue, TLayout, Rows12>(pa, pb, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
        else
            Tile12x32Vector128Passes<TEpilogue, TLayout, Rows6>(pa, pb, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
    }

    /// <remarks>Internal so tests can run the 12-row ARM64 pass on x86 too (correct there, only spilling).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Tile12x32Vector128Passes<TEpilogue, TLayout, TPassRows>(float* pa, float* pb, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last, float* prefetch, int prefetchLines)
        where TEpilogue : IGemmEpilogue where TLayout : IALayout where TPassRows : IDimension
    {
        float* tile = stackalloc float[TileFloats];
        (int spacing, int shift) = PrefetchSpacing(kc, prefetchLines);
        for (int quarter = 0; quarter < cols; quarter += 8)
        {
            for (int r0 = 0; r0 < rows; r0 += TPassRows.Value)
            {
                Vector128<float> c0a = default, c0b = default, c1a = default, c1b = default, c2a = default, c2b = default;
                Vector128<float> c3a = default, c3b = default, c4a = default, c4b = default, c5a = default, c5b = default;
                Vector128<float> c6a = default, c6b = default, c7a = default, c7b = default, c8a = default, c8b = default;
                Vector128<float> c9a = default, c9b = default, c10a = default, c10b = default, c11a = default, c11b = default;
                float* a0 = pa + r0 * TLayout.RowStride;
                float* b = pb + quarter;
                for (int k = 0; k < kc; k++)
                {
                    var b0 = Vector128.Load(b);
                    var b1 = Vector128.Load(b + 4);
                    if (Sse.IsSupported && (k & spacing) == 0 && (k >> shift) < prefetchLines) Sse.Prefetch1(prefetch + (k >> shift) * GemmPacking.CacheLineFloats);
            if (Sse.IsSupported && k + kc < prefetchLines) Sse.Prefetch1(prefetch + (k + kc) * GemmPacking.CacheLineFloats);
                    Vector128<float> a;
                    a = Vector128.Create(a0[0 * TLayout.RowStride]);
                    c0a = Simd.MultiplyAdd(a, b0, c0a); c0b = Simd.MultiplyAdd(a, b1, c0b);
                    a = Vector128.Create(a0[1 * TLayout.RowStride]);
                    c1a = Simd.MultiplyAdd(a, b0, c1a); c1b = Simd.MultiplyAdd(a, b1, c1b);
                    a = Vector128.Create(a0[2 * TLayout.RowStride]);
                    c2a = Simd.MultiplyAdd(a, b0, c2a); c2b = Simd.MultiplyAdd(a, b1, c2b);
                    a = Vector128.Create(a0[3 * TLayout.RowStride]);
                    c3a = Simd.MultiplyAdd(a, b0, c3a); c3b = Simd.MultiplyAdd(a, b1, c3b);
                    a = Vector128.Create(a0[4 * TLayout.RowStride]);
                    c4a = Simd.MultiplyAdd(a, b0, c4a); c4b = Simd.MultiplyAdd(a, b1, c4b);
                    a = Vector128.Create(a0[5 * TLayout.RowStride]);
                    c5a = Simd.MultiplyAdd(a, b0, c5a); c5b = Simd.MultiplyAdd(a, b1, c5b);
                    if (TPassRows.Value > 6)
                    {
                        a = Vector128.Create(a0[6 * TLayout.RowStride]);
                        c6a = Simd.MultiplyAdd(a, b0, c6a); c6b = Simd.MultiplyAdd(a, b1, c6b);
                        a = Vector128.Create(a0[7 * TLayout.RowStride]);
                        c7a = Simd.MultiplyAdd(a, b0, c7a); c7b = Simd.MultiplyAdd(a, b1, c7b);
                        a = Vector128.Create(a0[8 * TLayout.RowStride]);
                        c8a = Simd.MultiplyAdd(a, b0, c8a); c8b = Simd.MultiplyAdd(a, b1, c8b);
                        a = Vector128.Create(a0[9 * TLayout.RowStride]);
                        c9a = Simd.MultiplyAdd(a, b0, c9a); c9b = Simd.MultiplyAdd(a, b1, c9b);
                        a = Vector128.Create(a0[10 * TLayout.RowStride]);
                        c10a = Simd.MultiplyAdd(a, b0, c10a); c10b = Simd.MultiplyAdd(a, b1, c10b);
                        a = Vector128.Create(a0[11 * TLayout.RowStride]);
                        c11a = Simd.MultiplyAdd(a, b0, c11a); c11b = Simd.MultiplyAdd(a, b1, c11b);
                    }
                    a0 += TLayout.Step;
                    b += GemmPacking.PanelWidth;
                }
                prefetchLines = 0;   // the first pass has issued them
                float* t = tile + r0 * GemmPacking.PanelWidth + quarter;
                c0a.Store(t); c0b.Store(t + 4); t += GemmPacking.PanelWidth;
                c1a.Store(t); c1b.Store(t + 4); t += GemmPacking.PanelWidth;
                c2a.Store(t); c2b.Store(t + 4); t += GemmPacking.PanelWidth;
                c3a.Store(t); c3b.Store(t + 4); t += GemmPacking.PanelWidth;
                c4a.Store(t); c4b.Store(t + 4); t += GemmPacking.PanelWidth;
                c5a.Store(t); c5b.Store(t + 4); t += GemmPacking.PanelWidth;
                if (TPassRows.Value > 6)
                {
                    c6a.Store(t); c6b.Store(t + 4); t += GemmPacking.PanelWidth;
                    c7a.Store(t); c7b.Store(t + 4); t += GemmPacking.PanelWidth;
                    c8a.Store(t); c8b.Store(t + 4); t += GemmPacking.PanelWidth;
                    c9a.Store(t); c9b.Store(t + 4); t += GemmPacking.PanelWidth;
                    c10a.Store(t); c10b.Store(t + 4); t += GemmPacking.PanelWidth;
                    c11a.Store(t); c11b.Store(t + 4);
                }
            }
        }
        FinishTile<TEpilogue, Lanes4>(tile, c, ldc, bias, rows, cols, first, last);
    }

    /// <summary>
    /// How a tile spreads its <paramref name="lines"/> prefetches over its <paramref name="kc"/> steps: line
    /// <c>k >> shift</c> at every step <c>k</c> with <c>(k &amp; spacing) == 0</c> (<paramref name="lines"/> &lt;
    /// <paramref name="kc"/>), or one or two per step. Written out in each kernel's loop: a helper call there, even one
    /// marked for inlining, was not inlined into the large 512-bit loop and made it 3x slower (every zmm register is caller-saved).
    /// </summary>
    /// <remarks>
    /// Issuing them in the first steps of each tile (one per step, then none) asked DRAM for a tile's whole share within
    /// ~1,100 cycles (B/16's 96 KiB panel blocks over 17 tiles: 91 lines in the first 91 of 768 steps). Spread over the
    /// tile, the B/16 blocks ran 183-186 vs 194 ms at 1 thread and 97.5-99.5 vs 100.5-102.6 ms at 2 (paired, Zen 5).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (int Spacing, int Shift) PrefetchSpacing(int kc, int lines)
    {
        int shift = lines > 0 && lines < kc ? BitOperations.Log2((uint)(kc / lines)) : 0;
        return ((1 << shift) - 1, shift);
    }

    internal readonly struct Rows6 : IDimension { public static int Value => 6; }
    private readonly struct Lanes4 : IDimension { public static int Value => 4; }
    private readonly struct Lanes8 : IDimension { public static int Value => 8; }
    private readonly struct Lanes16 : IDimension { public static int Value => 16; }

    /// <summary>
    /// The epilogue of one tile: bias on the first reduction block, the running sum (or the residual) from C,
    /// the activation on the last block. It runs once per 12x32 tile and k block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FinishTile<TEpilogue, TLanes>(float* tile, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last)
        where TEpilogue : IGemmEpilogue where TLanes : IDimension
    {
        bool addBias = first && bias != null;
        bool addOutput = !first || TEpilogue.AddToOutput;
        bool activate = last && !TEpilogue.IsIdentity;
        for (int r = 0; r < rows; r++)
        {
            float* acc = tile + r * GemmPacking.PanelWidth;
            float* cRow = c + (long)r * ldc;
            int j = 0;
            if (TLanes.Value == 16)
            {
                for (; j + 16 <= cols; j += 16)
                {
                    var v = Vector512.Load(acc + j);
                    if (addBias) v += Vector512.Load(bias + j);
                    if (addOutput) v += Vector512.Load(cRow + j);
                    if (activate) v = TEpilogue.Activate(v);
                    v.Store(cRow + j);
                }
            }
            if (TLanes.Value >= 8)
            {
                for (; j + 8 <= cols; j += 8)
                {
                    var v = Vector256.Load(acc + j);
                    if (addBias) v += Vector256.Load(bias + j);
                    if (addOutput) v += Vector256.Load(cRow + j);
                    if (activate) v = TEpilogue.Activate(v);
                    v.Store(cRow + j);
                }
            }
            else
            {
                for (; j + 4 <= cols; j += 4)
                {
                    var v = Vector128.Load(acc + j);
                    if (addBias) v += Vector128.Load(bias + j);
                    if (addOutput) v += Vector128.Load(cRow + j);
                    if (activate) v = TEpilogue.Activate(v);
                    v.Store(cRow + j);
                }
            }
            for (; j < cols; j++)
            {
                float v = acc[j];
                if (addBias) v += bias[j];
                if (addOutput) v += cRow[j];
                cRow[j] = activate ? TEpilogue.Activate(v) : v;
            }
        }
    }
}

/// <summary>
/// Where the kernel finds A: row <c>r</c>, step <c>k</c> of a 12-row block is <c>a[r * RowStride + k * Step]</c>.
/// Both are build-time constants, so each broadcast of A is one load with an immediate offset.
/// </summary>
internal interface IALayout
{
    static abstract int RowStride { get; }
    static abstract int Step { get; }
}

/// <summary>A packed by <see cref="GemmPacking.PackA"/>: <c>[k][12]</c>.</summary>
internal readonly struct PackedA : IALayout
{
    public static int RowStride => 1;
    public static int Step => GemmPacking.RowBlock;
}

/// <summary>A read in place from row-major memory with a constant row stride.</summary>
internal readonly struct RowMajorA<TStride> : IALayout where TStride : IDimension
{
    public static int RowStride => TStride.Value;
    public static int Step => 1;
}

/// <summary>How the 512-bit GEMM kernel broadcasts A into its FMAs (see <see cref="GemmMicroKernels"/>).</summary>
internal interface IBroadcastForm
{
    /// <summary>True: each FMA broadcasts from memory itself; false: one <c>vbroadcastss</c> per row feeds both FMAs.</summary>
    static abstract bool Embedded { get; }
}

/// <summary>One embedded broadcast per FMA (faster on Sapphire Rapids).</summary>
internal readonly struct EmbeddedBroadcast : IBroadcastForm
{
    public static bool Embedded => true;
}

/// <summary>One register broadcast per row shared by its two FMAs (faster on Zen 5).</summary>
internal readonly struct RegisterBroadcast : IBroadcastForm
{
    public static bool Embedded => false;
}
