using System.Numerics.Tensors;

namespace ViTGen.CompilerServices;

/// <summary>
/// Multi-head self-attention of one image, <c>softmax(q kᵀ · hd^-0.5) v</c> per head, reading the fused qkv
/// projection (<c>[tokens, q heads | k heads | v heads]</c>, timm's row order) and writing the heads side by
/// side. Heads run in parallel; each runs the same packed GEMM as the Linear layers. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class Attention
{
    /// <summary>Attention from <paramref name="qkv"/> (<c>[Tokens, 3·Dim]</c>) into <paramref name="context"/> (<c>[Tokens, Dim]</c>).</summary>
    public static void Run<TShape>(NativeBuffer qkv, NativeBuffer context, int threads) where TShape : IAttentionShape
        => Run<TShape>(qkv, context, default, threads);

    /// <summary>
    /// <see cref="Run{TShape}(NativeBuffer, NativeBuffer, int)"/>, and, unless <paramref name="probabilities"/> is
    /// empty, a copy of every softmax row the kernel computes: <c>[Heads][Tokens (query)][Tokens (key)]</c>, each row
    /// <c>softmax(q·kᵀ·scale)</c>, the weights that multiply v. Empty for a plain forward: nothing else changes.
    /// </summary>
    public static void Run<TShape>(NativeBuffer qkv, NativeBuffer context, Span<float> probabilities, int threads) where TShape : IAttentionShape
    {
        int dim = TShape.Heads * TShape.HeadDim;
        LayerNorm.CheckRows(qkv, 0, TShape.Tokens, 3 * dim);
        LayerNorm.CheckRows(context, 0, TShape.Tokens, dim);
        if (!probabilities.IsEmpty && probabilities.Length != (long)TShape.Heads * TShape.Tokens * TShape.Tokens)
            throw new ArgumentException($"probabilities has {probabilities.Length} floats; attention maps need {(long)TShape.Heads * TShape.Tokens * TShape.Tokens} (heads x tokens x tokens).", nameof(probabilities));
        (int wholeHeads, int chunks) = Split(TShape.Heads, GemmPacking.RowBlocks(TShape.Tokens), Math.Min(threads, WorkerPool.Shared.Threads));
        fixed (float* capture = probabilities)
        {
            var job = new HeadJob<TShape> { Qkv = qkv.Data, Context = context.Data, Probabilities = capture, WholeHeads = wholeHeads, Chunks = chunks };
            WorkerPool.Shared.Run(wholeHeads + (TShape.Heads - wholeHeads) * chunks, threads, ref job);
        }
    }

    /// <summary>
    /// How the heads are shared among <paramref name="threads"/>: the first <c>WholeHeads</c> run one part each, and the
    /// rest, fewer heads than threads, are each cut into <c>Chunks</c> parts of whole 12-row blocks of queries.
    /// </summary>
    /// <remarks>
    /// A chunk repeats its head's kᵀ and v packing (about a tenth of a head's time), so only the heads that would leave
    /// threads idle are cut: ViT-Ti/16's 3 heads on 2 threads ran 2 heads on one thread and 1 on the other.
    /// </remarks>
    internal static (int WholeHeads, int Chunks) Split(int heads, int rowBlocks, int threads)
    {
        int rest = threads > 1 ? heads % threads : 0;
        if (rest == 0) return (heads, 1);
        return (heads - rest, Math.Clamp(threads / rest, 1, rowBlocks));
    }

    private struct Scores<TShape> : IGemmShape where TShape : IAttentionShape
    {
        public static int M => TShape.Tokens;
        public static int N => TShape.Tokens;
        public static int K => TShape.HeadDim;
        public static int KBlock => TShape.HeadDim;
        public static bool Parallel => false;
    }

    private struct Values<TShape> : IGemmShape where TShape : IAttentionShape
    {
        public static int M => TShape.Tokens;
        public static int N => TShape.HeadDim;
        public static int K => TShape.Tokens;
        public static int KBlock => TShape.Tokens;
        public static bool Parallel => false;
    }

    /// <summary>Row stride of q in the fused qkv matrix.</summary>
    private readonly struct QkvStride<TShape> : IDimension where TShape : IAttentionShape
    {
        public static int Value => 3 * TShape.Heads * TShape.HeadDim;
    }

    /// <summary>
    /// Row stride of the score matrix: the tokens rounded up to whole 16-float vectors, so the softmax runs on full
    /// vectors and masks the padding instead of finishing each row one value at a time.
    /// </summary>
    /// <remarks>
    /// Keep shape properties this small (under 16 bytes of IL): the JIT always inlines those, while a larger one
    /// (a division here) competes for the micro-kernel's inlining budget, lost, and became a call per broadcast,
    /// which made attention 1.6x slower.
    /// </remarks>
    private readonly struct ScoreStride<TShape> : IDimension where TShape : IAttentionShape
    {
        public static int Value => (TShape.Tokens + SoftmaxLanes - 1) & -SoftmaxLanes;
    }

    private struct HeadJob<TShape> : IParallelJob where TShape : IAttentionShape
    {
        public float* Qkv, Context;

        /// <summary>Where each head's softmax rows are copied (<c>[Heads][Tokens][Tokens]</c>), or null.</summary>
        public float* Probabilities;

        /// <summary>See <see cref="Split"/>.</summary>
        public int WholeHeads, Chunks;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int worker)
        {
            int tokens = TShape.Tokens, headDim = TShape.HeadDim, dim = TShape.Heads * headDim, stride = 3 * dim;
            int head = part, blocks = GemmPacking.RowBlocks(tokens), blockBegin = 0, blockEnd = blocks;
            if (part >= WholeHeads)
            {
                int chunk = (part - WholeHeads) % Chunks;
                head = WholeHeads + (part - WholeHeads) / Chunks;
                blockBegin = blocks * chunk / Chunks;
                blockEnd = blocks * (chunk + 1) / Chunks;
            }
            int rowBegin = blockBegin * GemmPacking.RowBlock, rows = Math.Min(blockEnd * GemmPacking.RowBlock, tokens) - rowBegin;
            bool lastChunk = blockEnd == blocks;
            int scoreStride = ScoreStride<TShape>.Value;
            long edge = ThreadScratch.Align(GemmPacking.PackedALength(GemmPacking.RowBlock, Math.Max(tokens, headDim)));
            long packedK = ThreadScratch.Align(GemmPacking.PackedBLength(tokens, headDim));
            long scores = ThreadScratch.Align((long)tokens * scoreStride);
            long packedV = ThreadScratch.Align(GemmPacking.PackedBLength(headDim, tokens));
            float* edgeBlock = ThreadScratch.Get(edge + packedK + scores + packedV);
            float* k = edgeBlock + edge, s = k + packedK, v = s + scores;

            // q and p are read in place (their row strides are constants); only kᵀ and v are packed, and only
            // the last partial block of 12 query rows is copied. A chunk computes its query rows of s in place.
            float* q = Qkv + head * headDim;
            GemmPacking.PackTransposedB(q + dim, stride, tokens, headDim, k);
            float* qEdge = lastChunk ? GemmPacking.PackEdgeBlock(q, stride, tokens, headDim, edgeBlock) : null;
            Gemm.Compute<Scores<TShape>, StoreEpilogue, QkvStride<TShape>>(q, qEdge, k, null, s, scoreStride, 0, GemmPacking.Panels(tokens), blockBegin, blockEnd);
            float* chunkScores = s + (long)rowBegin * scoreStride;
            SoftmaxRows(chunkScores, rows, tokens, scoreStride, TShape.Scale);
            if (Probabilities != null) CopyRows(chunkScores, scoreStride, rows, tokens, Probabilities + ((long)head * tokens + rowBegin) * tokens);
            GemmPacking.PackB(q + 2 * dim, stride, tokens, headDim, v);
            float* pEdge = lastChunk ? GemmPacking.PackEdgeBlock(s, scoreStride, tokens, tokens, edgeBlock) : null;
            Gemm.Compute<Values<TShape>, StoreEpilogue, ScoreStride<TShape>>(s, pEdge, v, null, Context + head * headDim, dim, 0, GemmPacking.Panels(headDim), blockBegin, blockEnd);
        }
    }

    /// <summary>Copies <paramref name="rows"/> score rows of <paramref name="tokens"/> (stride <paramref name="stride"/>) into a dense matrix.</summary>
    private static void CopyRows(float* scores, int stride, int rows, int tokens, float* destination)
    {
        long bytes = (long)tokens * sizeof(float);
        for (int r = 0; r < rows; r++)
            Buffer.MemoryCopy(scores + (long)r * stride, destination + (long)r * tokens, bytes, bytes);
    }

    private const int SoftmaxLanes = 16;

    /// <summary>
    /// <c>softmax(scale · row)</c> of <paramref name="rows"/> rows of <paramref name="cols"/> scores, in place, stable:
    /// <c>exp(scale · (s - max s))</c> (scale is positive, so the max of the scaled row is scale · max). Rows are
    /// <paramref name="stride"/> floats apart; the stride is a multiple of 16 and the padding after each row may be
    /// overwritten.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SoftmaxRows(float* scores, int rows, int cols, int stride, float scale)
    {
        if (stride % SoftmaxLanes != 0 || stride < cols)
            throw new ArgumentException($"the score stride {stride} must be a multiple of {SoftmaxLanes} and at least {cols}", nameof(stride));
        int r = 0;
        if (Simd.Current == SimdTier.Vector512)
        {
            for (; r + 1 < rows; r += 2) SoftmaxRowPair512(scores + (long)r * stride, scores + (long)(r + 1) * stride, cols, scale);
        }
        for (; r < rows; r++)
        {
            float* row = scores + (long)r * stride;
            var tier = Simd.Current;
            if (tier == SimdTier.Vector512) SoftmaxRow512(row, cols, scale);
            else if (tier == SimdTier.Vector128) SoftmaxRow128(row, cols, scale);
            else SoftmaxRowPortable(row, cols, scale);
        }
    }

    /// <summary>
    /// One row in three passes (max; exp and sum; normalize) on whole vectors, the last one masked to the valid
    /// columns. Replaced four TensorPrimitives passes per row and a scalar tail: 8.0 -> 4.2 us per 65-token head.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SoftmaxRow512(float* row, int cols, float scale)
    {
        int last = (cols - 1) / SoftmaxLanes * SoftmaxLanes;
        // The padding lanes may hold anything (denormals, NaN): they become -inf before any arithmetic, so they
        // neither stall the FMA units nor reach the max, and exp turns them into exact zeros.
        var valid = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols - last)).AsSingle();
        var tail = Vector512.ConditionalSelect(valid, Vector512.Load(row + last), Vector512.Create(float.NegativeInfinity));
        var max = tail;
        for (int j = 0; j < last; j += SoftmaxLanes) max = Vector512.Max(max, Vector512.Load(row + j));

        var scaleVector = Vector512.Create(scale);
        var shift = Vector512.Create(-HorizontalMax(max) * scale);
        var sum = Vector512<float>.Zero;
        for (int j = 0; j < last; j += SoftmaxLanes)
        {
            var e = FastExp.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(row + j), scaleVector, shift));
            sum += e;
            e.Store(row + j);
        }
        tail = FastExp.Exp(Vector512.FusedMultiplyAdd(tail, scaleVector, shift));
        sum += tail;
        tail.Store(row + last);

        var inverse = Vector512.Create(1f / Vector512.Sum(sum));
        for (int j = 0; j <= last; j += SoftmaxLanes) (Vector512.Load(row + j) * inverse).Store(row + j);
    }

    /// <summary>
    /// <see cref="SoftmaxRow512"/> on two rows at once, each pass interleaving them: a row's passes depend on each other
    /// (max, then exp and sum, then the normalization), so one row at a time left the FMA pipes waiting on the
    /// horizontal reductions between passes. ViT-Ti/16's attention (197-token heads, Zen 5, one thread) went 2.81 -> 2.71
    /// ms per forward in paired runs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SoftmaxRowPair512(float* row0, float* row1, int cols, float scale)
    {
        int last = (cols - 1) / SoftmaxLanes * SoftmaxLanes;
        var valid = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols - last)).AsSingle();
        var negativeInfinity = Vector512.Create(float.NegativeInfinity);
        var tail0 = Vector512.ConditionalSelect(valid, Vector512.Load(row0 + last), negativeInfinity);
        var tail1 = Vector512.ConditionalSelect(valid, Vector512.Load(row1 + last), negativeInfinity);
        var max0 = tail0;
        var max1 = tail1;
        for (int j = 0; j < last; j += SoftmaxLanes)
        {
            max0 = Vector512.Max(max0, Vector512.Load(row0 + j));
            max1 = Vector512.Max(max1, Vector512.Load(row1 + j));
        }

        var scaleVector = Vector512.Create(scale);
        var shift0 = Vector512.Create(-HorizontalMax(max0) * scale);
        var shift1 = Vector512.Create(-HorizontalMax(max1) * scale);
        var sum0 = Vector512<float>.Zero;
        var sum1 = Vector512<float>.Zero;
        for (int j = 0; j < last; j += SoftmaxLanes)
        {
            var e0 = FastExp.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(row0 + j), scaleVector, shift0));
            var e1 = FastExp.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(row1 + j), scaleVector, shift1));
            sum0 += e0;
            sum1 += e1;
            e0.Store(row0 + j);
            e1.Store(row1 + j);
        }
        tail0 = FastExp.Exp(Vector512.FusedMultiplyAdd(tail0, scaleVector, shift0));
        tail1 = FastExp.Exp(Vector512.FusedMultiplyAdd(tail1, scaleVector, shift1));
        sum0 += tail0;
        sum1 += tail1;
        tail0.Store(row0 + last);
        tail1.Store(row1 + last);

        var inverse0 = Vector512.Create(1f / Vector512.Sum(sum0));
        var inverse1 = Vector512.Create(1f / Vector512.Sum(sum1));
        for (int j = 0; j <= last; j += SoftmaxLanes)
        {
            (Vector512.Load(row0 + j) * inverse0).Store(row0 + j);
            (Vector512.Load(row1 + j) * inverse1).Store(row1 + j);
        }
    }

    /// <summary>
    /// <see cref="SoftmaxRow512"/> on 4 lanes with <see cref="FastExp.Exp(Vector128{float})"/> (the Vector128 tier).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SoftmaxRow128(float* row, int cols, float scale)
    {
        const int Lanes = 4;
        int last = (cols - 1) / Lanes * Lanes;
        var valid = Vector128.LessThan(Vector128<int>.Indices, Vector128.Create(cols - last)).AsSingle();
        var tail = Vector128.ConditionalSelect(valid, Vector128.Load(row + last), Vector128.Create(float.NegativeInfinity));
        var max = tail;
        for (int j = 0; j < last; j += Lanes) max = Vector128.Max(max, Vector128.Load(row + j));

        var scaleVector = Vector128.Create(scale);
        max = Vector128.Max(max, Vector128.Shuffle(max, Vector128.Create(2, 3, 0, 1)));
        max = Vector128.Max(max, Vector128.Shuffle(max, Vector128.Create(1, 0, 3, 2)));
        var shift = Vector128.Create(-max.ToScalar() * scale);
        var sum = Vector128<float>.Zero;
        for (int j = 0; j < last; j += Lanes)
        {
            var e = FastExp.Exp(Simd.MultiplyAdd(Vector128.Load(row + j), scaleVector, shift));
            sum += e;
            e.Store(row + j);
        }
        tail = FastExp.Exp(Simd.MultiplyAdd(tail, scaleVector, shift));
        sum += tail;
        tail.Store(row + last);

        var inverse = Vector128.Create(1f / Vector128.Sum(sum));
        for (int j = 0; j <= last; j += Lanes) (Vector128.Load(row + j) * inverse).Store(row + j);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HorizontalMax(Vector512<float> v)
    {
        var half = Vector256.Max(v.GetLower(), v.GetUpper());
        var quarter = Vector128.Max(half.GetLower(), half.GetUpper());
        quarter = Vector128.Max(quarter, Vector128.Shuffle(quarter, Vector128.Create(2, 3, 0, 1)));
        quarter = Vector128.Max(quarter, Vector128.Shuffle(quarter, Vector128.Create(1, 0, 3, 2)));
        return quarter.ToScalar();
    }

    private static void SoftmaxRowPortable(float* scores, int n, float scale)
    {
        var row = new Span<float>(scores, n);
        TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
        TensorPrimitives.Multiply(row, scale, row);
        TensorPrimitives.Exp(row, row);
        TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
    }
}
