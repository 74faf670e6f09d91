namespace ViTGen.CompilerServices;

// Why static abstract members: the generator emits one small struct per shape, and the JIT (and NativeAOT)
// compiles one copy of each generic kernel per struct with every bound folded to a constant. The kernels
// stay hand-written C#; only the numbers are generated.

/// <summary>A GEMM shape <c>C[M,N] = A[M,K] · B[K,N]</c> fixed at build time. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IGemmShape
{
    /// <summary>Rows of A and C (tokens).</summary>
    static abstract int M { get; }
    /// <summary>Columns of B and C (output features).</summary>
    static abstract int N { get; }
    /// <summary>The reduction length (input features).</summary>
    static abstract int K { get; }
    /// <summary>Depth of one cache block of the reduction, chosen per shape by the generator.</summary>
    static abstract int KBlock { get; }
    /// <summary>Whether the shape is large enough to split over worker threads.</summary>
    static abstract bool Parallel { get; }
}

/// <summary>Multi-head attention over one image, fixed at build time. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IAttentionShape
{
    /// <summary>Tokens per image (prefix tokens and patches).</summary>
    static abstract int Tokens { get; }
    /// <summary>Number of heads.</summary>
    static abstract int Heads { get; }
    /// <summary>Width of one head.</summary>
    static abstract int HeadDim { get; }
    /// <summary><c>HeadDim ^ -0.5</c>, applied inside the softmax.</summary>
    static abstract float Scale { get; }
}

/// <summary>A vector length fixed at build time (LayerNorm width, for example). Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IDimension
{
    /// <summary>The length.</summary>
    static abstract int Value { get; }
}
