namespace ViTGen.CompilerServices;

/// <summary>
/// <c>C = epilogue(A · B + bias)</c> for shapes fixed at build time, BLIS-style: B is pre-packed into panels
/// (weights once at load), A is read in place (its row stride is a build-time constant), the reduction is cut into cache blocks of
/// <see cref="IGemmShape.KBlock"/>, and the register tile is 12x32. Work is split over B panels so each thread
/// owns whole output columns. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class Gemm
{
    /// <summary>
    /// A Linear layer over <typeparamref name="TShape"/>: rows <c>outputRow..outputRow+M</c> of <paramref name="output"/>
    /// become <c>epilogue(input[inputRow.., K] · Wᵀ + bias)</c>. Buffers are dense row-major (<c>K</c> and <c>N</c> floats per row).
    /// </summary>
    public static void Linear<TShape, TEpilogue>(NativeBuffer input, int inputRow, PackedLinear weight, NativeBuffer output, int outputRow, int threads)
        where TShape : IGemmShape where TEpilogue : IGemmEpilogue
    {
        if (weight.OutFeatures != TShape.N || weight.InFeatures != TShape.K)
            throw new ArgumentException($"weight is [{weight.OutFeatures}, {weight.InFeatures}] but the GEMM shape is [{TShape.N}, {TShape.K}]", nameof(weight));
        LayerNorm.CheckRows(input, inputRow, TShape.M, TShape.K);
        LayerNorm.CheckRows(output, outputRow, TShape.M, TShape.N);
        Run<TShape, TEpilogue>(input.Data + (long)inputRow * TShape.K, weight.Weight, weight.Bias,
            output.Data + (long)outputRow * TShape.N, TShape.N, threads);
    }

    /// <summary>Runs the GEMM on up to <paramref name="threads"/> threads, reading A in place (row stride <c>K</c>).</summary>
    internal static void Run<TShape, TEpilogue>(float* a, float* packedB, float* bias, float* c, int ldc, int threads)
        where TShape : IGemmShape where TEpilogue : IGemmEpilogue
    {
        int panels = GemmPacking.Panels(TShape.N);
        int parts = TShape.Parallel ? Math.Min(threads, panels) : 1;
        var job = new Job<TShape, TEpilogue> { A = a, PackedB = packedB, Bias = bias, C = c, Ldc = ldc, Parts = parts, Panels = panels };
        WorkerPool.Shared.Run(parts, parts, ref job);
    }

    private struct Job<TShape, TEpilogue> : IParallelJob where TShape : IGemmShape where TEpilogue : IGemmEpilogue
    {
        public float* A, PackedB, Bias, C;
        public int Ldc, Parts, Panels;

        public readonly void Execute(int part, int worker)
        {
            float* edge = GemmPacking.PackEdgeBlock(A, TShape.K, TShape.M, TShape.K,
                ThreadScratch.Get(GemmPacking.PackedALength(GemmPacking.RowBlock, TShape.K)));
            int begin = (int)((long)Panels * part / Parts);
            int end = (int)((long)Panels * (part + 1) / Parts);
            Compute<TShape, TEpilogue, KStride<TShape>>(A, edge, PackedB, Bias, C, Ldc, begin, end);
        }
    }

    /// <summary>The row stride of a dense <c>[M, K]</c> input.</summary>
    private readonly struct KStride<TShape> : IDimension where TShape : IGemmShape
    {
        public static int Value => TShape.K;
    }

    // AggressiveOptimization (here and on the other kernels): a forward pass calls each kernel only a few dozen
    // times, so tiered compilation would run the first forwards on unoptimized code (measured 3-8x slower).
    // Loop order: reduction block outermost, so one B panel block (32 x KBlock floats) stays in cache while every
    // row block of A streams past it.
    /// <summary>
    /// Panels <paramref name="panelBegin"/>..<paramref name="panelEnd"/> of C for 12-row blocks <paramref name="blockBegin"/>..
    /// <paramref name="blockEnd"/> (the last block of a partial M is the packed <paramref name="edge"/>; pass an end past
    /// it for all rows). <paramref name="a"/> and <paramref name="c"/> point at row 0 whatever the range.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Compute<TShape, TEpilogue, TStride>(float* a, float* edge, float* packedB, float* bias, float* c, int ldc,
        int panelBegin, int panelEnd, int blockBegin = 0, int blockEnd = int.MaxValue)
        where TShape : IGemmShape where TEpilogue : IGemmEpilogue where TStride : IDimension
    {
        const int Width = GemmPacking.PanelWidth, Rows = GemmPacking.RowBlock;
        int fullBlocks = TShape.M / Rows;
        int fullEnd = Math.Min(blockEnd, fullBlocks);
        bool withEdge = edge != null && blockEnd > fullBlocks;
        for (int k0 = 0; k0 < TShape.K; k0 += TShape.KBlock)
        {
            int kc = Math.Min(TShape.KBlock, TShape.K - k0);
            bool first = k0 == 0, last = k0 + kc == TShape.K;
            for (int panel = panelBegin; panel < panelEnd; panel++)
            {
                float* b = packedB + (long)panel * Width * TShape.K + (long)k0 * Width;
                float* panelBias = bias == null ? null : bias + panel * Width;
                int cols = Math.Min(Width, TShape.N - panel * Width);
                float* cPanel = c + panel * Width;
                // Each tile also prefetches its share of the next panel's block into L2, one cache line per step, so
                // the weights stream in from memory while this panel computes: a forward pass reads every weight
                // once from DRAM (346 MB for B/16), and the hardware prefetcher stops at each 4 KiB page.
                // Measured in paired runs: B/32 -15% and B/16 -5% at 1 thread with all of it issued by the first tile,
                // then B/32 a further -4% (1 thread) and -5% (2 threads) with it spread evenly over the tiles.
                float* next = panel + 1 < panelEnd ? b + (long)Width * TShape.K : null;
                int lines = next == null ? 0 : kc * Width / GemmPacking.CacheLineFloats;
                int tiles = Math.Max(1, fullEnd - blockBegin + (withEdge ? 1 : 0));
                int share = (lines + tiles - 1) / tiles;
                for (int block = blockBegin; block < fullEnd; block++)
                {
                    float* aBlock = a + (long)block * Rows * TStride.Value + k0;
                    int from = Math.Min((block - blockBegin) * share, lines);
                    Tile<TEpilogue, RowMajorA<TStride>>(aBlock, b, kc, cPanel + (long)block * Rows * ldc, ldc, panelBias, Rows, cols, first, last,
                        next + from * GemmPacking.CacheLineFloats, Math.Min(share, lines - from));
                }
                if (withEdge)
                {
                    int from = Math.Min(Math.Max(0, fullEnd - blockBegin) * share, lines);
                    Tile<TEpilogue, PackedA>(edge + (long)k0 * Rows, b, kc, cPanel + (long)fullBlocks * Rows * ldc, ldc, panelBias,
                        TShape.M - fullBlocks * Rows, cols, first, last, next + from * GemmPacking.CacheLineFloats, Math.Min(share, lines - from));
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile<TEpilogue, TLayout>(float* a, float* b, int kc, float* c, int ldc, float* bias, int rows, int cols, bool first, bool last, float* prefetch, int prefetchLines)
        where TEpilogue : IGemmEpilogue where TLayout : IALayout
    {
        var tier = Simd.Current;
        if (tier == SimdTier.Vector512)
            GemmMicroKernels.Tile12x32<TEpilogue, TLayout>(a, b, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
        else if (tier == SimdTier.Vector256)
            GemmMicroKernels.Tile12x32Vector256<TEpilogue, TLayout>(a, b, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
        else
            GemmMicroKernels.Tile12x32Vector128<TEpilogue, TLayout>(a, b, kc, c, ldc, bias, rows, cols, first, last, prefetch, prefetchLines);
    }
}
