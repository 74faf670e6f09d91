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
    {
        int dim = TShape.Heads * TShape.HeadDim;
        LayerNorm.CheckRows(qkv, 0, TShape.Tokens, 3 * dim);
        LayerNorm.CheckRows(context, 0, TShape.Tokens, dim);
        var job = new HeadJob<TShape> { Qkv = qkv.Data, Context = context.Data };
        WorkerPool.Shared.Run(TShape.Heads, threads, ref job);
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

    /// <summary>Row stride of the score matrix.</summary>
    private readonly struct TokenStride<TShape> : IDimension where TShape : IAttentionShape
    {
        public static int Value => TShape.Tokens;
    }

    private struct HeadJob<TShape> : IParallelJob where TShape : IAttentionShape
    {
        public float* Qkv, Context;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int head, int worker)
        {
            int tokens = TShape.Tokens, headDim = TShape.HeadDim, dim = TShape.Heads * headDim, stride = 3 * dim;
            long edge = ThreadScratch.Align(GemmPacking.PackedALength(GemmPacking.RowBlock, Math.Max(tokens, headDim)));
            long packedK = ThreadScratch.Align(GemmPacking.PackedBLength(tokens, headDim));
            long scores = ThreadScratch.Align((long)tokens * tokens);
            long packedV = ThreadScratch.Align(GemmPacking.PackedBLength(headDim, tokens));
            float* edgeBlock = ThreadScratch.Get(edge + packedK + scores + packedV);
            float* k = edgeBlock + edge, s = k + packedK, v = s + scores;

            // q and p are read in place (their row strides are constants); only kᵀ and v are packed, and only
            // the last partial block of 12 query rows is copied.
            float* q = Qkv + head * headDim;
            GemmPacking.PackTransposedB(q + dim, stride, tokens, headDim, k);
            float* qEdge = GemmPacking.PackEdgeBlock(q, stride, tokens, headDim, edgeBlock);
            Gemm.Compute<Scores<TShape>, StoreEpilogue, QkvStride<TShape>>(q, qEdge, k, null, s, tokens, 0, GemmPacking.Panels(tokens));
            SoftmaxRows(s, tokens, TShape.Scale);
            GemmPacking.PackB(q + 2 * dim, stride, tokens, headDim, v);
            float* pEdge = GemmPacking.PackEdgeBlock(s, tokens, tokens, tokens, edgeBlock);
            Gemm.Compute<Values<TShape>, StoreEpilogue, TokenStride<TShape>>(s, pEdge, v, null, Context + head * headDim, dim, 0, GemmPacking.Panels(headDim));
        }
    }

    /// <summary>
    /// <c>softmax(scale · row)</c> of each row of a square <paramref name="n"/> x <paramref name="n"/> matrix, in place,
    /// stable: <c>exp(scale · (s - max s))</c> (scale is positive, so the max of the scaled row is scale · max).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SoftmaxRows(float* scores, int n, float scale)
    {
        for (int r = 0; r < n; r++)
        {
            float* row = scores + (long)r * n;
            if (FastExp.IsSupported) SoftmaxRow512(row, n, scale);
            else SoftmaxRowPortable(row, n, scale);
        }
    }

    /// <summary>
    /// One row in three passes (max; exp and sum; normalize) with the inlined exp; the last <c>n % 16</c> values go
    /// one at a time. Replaced four TensorPrimitives passes per row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SoftmaxRow512(float* row, int n, float scale)
    {
        const int Lanes = 16;
        int full = n - n % Lanes;
        var maxVector = Vector512.Create(float.NegativeInfinity);
        for (int j = 0; j < full; j += Lanes) maxVector = Vector512.Max(maxVector, Vector512.Load(row + j));
        float max = float.NegativeInfinity;
        for (int i = 0; i < Lanes; i++) max = MathF.Max(max, maxVector[i]);
        for (int j = full; j < n; j++) max = MathF.Max(max, row[j]);

        float shift = max * scale;
        var scaleVector = Vector512.Create(scale);
        var shiftVector = Vector512.Create(-shift);
        var sumVector = Vector512<float>.Zero;
        for (int j = 0; j < full; j += Lanes)
        {
            var e = FastExp.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(row + j), scaleVector, shiftVector));
            sumVector += e;
            e.Store(row + j);
        }
        float sum = Vector512.Sum(sumVector);
        for (int j = full; j < n; j++)
        {
            row[j] = MathF.Exp(MathF.FusedMultiplyAdd(row[j], scale, -shift));
            sum += row[j];
        }

        float inverse = 1f / sum;
        var inverseVector = Vector512.Create(inverse);
        for (int j = 0; j < full; j += Lanes) (Vector512.Load(row + j) * inverseVector).Store(row + j);
        for (int j = full; j < n; j++) row[j] *= inverse;
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
