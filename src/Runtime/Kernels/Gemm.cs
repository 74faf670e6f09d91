namespace ViTGen.CompilerServices;

/// <summary>
/// <c>C = epilogue(A · B + bias)</c> for shapes fixed at build time, BLIS-style: B is pre-packed into panels
/// (weights once at load), A is packed per call, the reduction is cut into cache blocks of
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
        Run<TShape, TEpilogue>(input.Data + (long)inputRow * TShape.K, TShape.K, 1f, weight.Weight, weight.Bias,
            output.Data + (long)outputRow * TShape.N, TShape.N, threads);
    }

    /// <summary>Runs the GEMM with a raw packed B, on up to <paramref name="threads"/> threads.</summary>
    internal static void Run<TShape, TEpilogue>(float* a, int lda, float aScale, float* packedB, float* bias, float* c, int ldc, int threads)
        where TShape : IGemmShape where TEpilogue : IGemmEpilogue
    {
        int panels = GemmPacking.Panels(TShape.N);
        int parts = TShape.Parallel ? Math.Min(threads, panels) : 1;
        var job = new Job<TShape, TEpilogue>
        {
            A = a, Lda = lda, AScale = aScale, PackedB = packedB, Bias = bias, C = c, Ldc = ldc, Parts = parts, Panels = panels,
        };
        WorkerPool.Shared.Run(parts, parts, ref job);
    }

    /// <summary>Runs on the calling thread with an A already packed by the caller (attention).</summary>
    internal static void RunPacked<TShape, TEpilogue>(float* packedA, float* packedB, float* bias, float* c, int ldc)
        where TShape : IGemmShape where TEpilogue : IGemmEpilogue
        => Compute<TShape, TEpilogue>(packedA, packedB, bias, c, ldc, 0, GemmPacking.Panels(TShape.N));

    private struct Job<TShape, TEpilogue> : IParallelJob where TShape : IGemmShape where TEpilogue : IGemmEpilogue
    {
        public float* A, PackedB, Bias, C;
        public int Lda, Ldc, Parts, Panels;
        public float AScale;

        public readonly void Execute(int part, int worker)
        {
            // Every part packs all of A: at ViT shapes that is ~1% of the part's FMAs, and it needs no barrier.
            float* packedA = ThreadScratch.Get(GemmPacking.PackedALength(TShape.M, TShape.K));
            GemmPacking.PackA(A, Lda, TShape.M, TShape.K, AScale, packedA);
            int begin = (int)((long)Panels * part / Parts);
            int end = (int)((long)Panels * (part + 1) / Parts);
            Compute<TShape, TEpilogue>(packedA, PackedB, Bias, C, Ldc, begin, end);
        }
    }

    // AggressiveOptimization (here and on the other kernels): a forward pass calls each kernel only a few dozen
    // times, so tiered compilation would run the first forwards on unoptimized code (measured 3-8x slower).
    // Loop order: reduction block outermost, so one B panel block (32 x KBlock floats) stays in L1 while every
    // row block of A streams past it from L2.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Compute<TShape, TEpilogue>(float* packedA, float* packedB, float* bias, float* c, int ldc, int panelBegin, int panelEnd)
        where TShape : IGemmShape where TEpilogue : IGemmEpilogue
    {
        const int Width = GemmPacking.PanelWidth, Rows = GemmPacking.RowBlock;
        int rowBlocks = GemmPacking.RowBlocks(TShape.M);
        for (int k0 = 0; k0 < TShape.K; k0 += TShape.KBlock)
        {
            int kc = Math.Min(TShape.KBlock, TShape.K - k0);
            bool first = k0 == 0, last = k0 + kc == TShape.K;
            for (int panel = panelBegin; panel < panelEnd; panel++)
            {
                float* b = packedB + (long)panel * Width * TShape.K + (long)k0 * Width;
                float* panelBias = bias == null ? null : bias + panel * Width;
                int cols = Math.Min(Width, TShape.N - panel * Width);
                for (int block = 0; block < rowBlocks; block++)
                {
                    float* aBlock = packedA + (long)block * Rows * TShape.K + (long)k0 * Rows;
                    float* cTile = c + (long)block * Rows * ldc + panel * Width;
                    int rows = Math.Min(Rows, TShape.M - block * Rows);
                    if (GemmMicroKernels.UseVector512)
                        GemmMicroKernels.Tile12x32<TEpilogue>(aBlock, b, kc, cTile, ldc, panelBias, rows, cols, first, last);
                    else
                        GemmMicroKernels.Tile12x32Vector256<TEpilogue>(aBlock, b, kc, cTile, ldc, panelBias, rows, cols, first, last);
                }
            }
        }
    }
}
