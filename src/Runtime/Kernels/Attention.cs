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

    private struct HeadJob<TShape> : IParallelJob where TShape : IAttentionShape
    {
        public float* Qkv, Context;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int head, int worker)
        {
            int tokens = TShape.Tokens, headDim = TShape.HeadDim, dim = TShape.Heads * headDim, stride = 3 * dim;
            long packedQ = ThreadScratch.Align(GemmPacking.PackedALength(tokens, headDim));
            long packedK = ThreadScratch.Align(GemmPacking.PackedBLength(tokens, headDim));
            long scores = ThreadScratch.Align((long)tokens * tokens);
            long packedP = ThreadScratch.Align(GemmPacking.PackedALength(tokens, tokens));
            long packedV = ThreadScratch.Align(GemmPacking.PackedBLength(headDim, tokens));
            float* q = ThreadScratch.Get(packedQ + packedK + scores + packedP + packedV);
            float* k = q + packedQ, s = k + packedK, p = s + scores, v = p + packedP;

            float* qkvHead = Qkv + head * headDim;
            GemmPacking.PackA(qkvHead, stride, tokens, headDim, TShape.Scale, q);      // the scale rides along with Q
            GemmPacking.PackTransposedB(qkvHead + dim, stride, tokens, headDim, k);  // kᵀ: keys are rows of B's transpose
            Gemm.RunPacked<Scores<TShape>, StoreEpilogue>(q, k, null, s, tokens);
            SoftmaxRows(s, tokens);
            GemmPacking.PackA(s, tokens, tokens, tokens, 1f, p);
            GemmPacking.PackB(qkvHead + 2 * dim, stride, tokens, headDim, v);
            Gemm.RunPacked<Values<TShape>, StoreEpilogue>(p, v, null, Context + head * headDim, dim);
        }
    }

    /// <summary>Numerically stable softmax of each row of a square <paramref name="n"/> x <paramref name="n"/> matrix, in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SoftmaxRows(float* scores, int n)
    {
        for (int r = 0; r < n; r++)
        {
            var row = new Span<float>(scores + (long)r * n, n);
            TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
            TensorPrimitives.Exp(row, row);
            TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
        }
    }
}
