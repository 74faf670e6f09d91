using System.Runtime.Intrinsics.X86;

namespace ViTGen.CompilerServices;

/// <summary>
/// What a GEMM does to each finished tile before storing it: optionally add the existing output (a residual
/// connection), then apply an activation. Operator structs in the style of TensorPrimitives: the JIT inlines
/// the one that is used and drops the others. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IGemmEpilogue
{
    /// <summary>Whether the product is added to what the output already holds (<c>x += f(x)</c>).</summary>
    static abstract bool AddToOutput { get; }
    /// <summary>Whether <see cref="Activate(Vector512{float})"/> is the identity (lets the JIT skip it).</summary>
    static abstract bool IsIdentity { get; }
    /// <summary>The activation on 16 lanes.</summary>
    static abstract Vector512<float> Activate(Vector512<float> x);
    /// <summary>The activation on 8 lanes.</summary>
    static abstract Vector256<float> Activate(Vector256<float> x);
    /// <summary>The activation on one value.</summary>
    static abstract float Activate(float x);
    /// <summary>The activation on 4 lanes (the Vector128 tier).</summary>
    static abstract Vector128<float> Activate(Vector128<float> x);
}

/// <summary>Store the product (plus bias) as it is.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct StoreEpilogue : IGemmEpilogue
{
    /// <inheritdoc/>
    public static bool AddToOutput => false;
    /// <inheritdoc/>
    public static bool IsIdentity => true;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Activate(Vector512<float> x) => x;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Activate(Vector256<float> x) => x;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Activate(Vector128<float> x) => x;
    /// <inheritdoc/>
    public static float Activate(float x) => x;
}

/// <summary>Add the product (plus bias) to the output: the residual connection after proj and fc2.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct ResidualEpilogue : IGemmEpilogue
{
    /// <inheritdoc/>
    public static bool AddToOutput => true;
    /// <inheritdoc/>
    public static bool IsIdentity => true;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Activate(Vector512<float> x) => x;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Activate(Vector256<float> x) => x;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Activate(Vector128<float> x) => x;
    /// <inheritdoc/>
    public static float Activate(float x) => x;
}

/// <summary>Exact GELU, <c>0.5 x (1 + erf(x / sqrt 2))</c>, as PyTorch's <c>nn.GELU()</c>.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct GeluEpilogue : IGemmEpilogue
{
    // erf from Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7): t = 1/(1+p|x|),
    // erf|x| = 1 - t(a1 + t(a2 + t(a3 + t(a4 + t a5)))) exp(-x^2). Far below float32 GEMM rounding at ViT widths.
    private const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f,
        A4 = -1.453152027f, A5 = 1.061405429f, InvSqrt2 = 0.70710678118654752f;

    /// <inheritdoc/>
    public static bool AddToOutput => false;
    /// <inheritdoc/>
    public static bool IsIdentity => false;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Activate(Vector512<float> x)
    {
        var z = Vector512.Abs(x * InvSqrt2);
        var d = Vector512<float>.One + P * z;
        Vector512<float> t, e;
        if (FastExp.IsSupported)
        {
            // 1/d as rcp14 plus one Newton step (relative error ~2^-28) instead of a division, and the inlined exp
            // instead of the Vector512.Exp call: B/16's fc1 went from 0.87x to 1.05x the GFLOP/s of qkv.
            t = Avx512F.Reciprocal14(d);
            t *= Vector512.FusedMultiplyAdd(-d, t, Vector512.Create(2f));
            e = FastExp.Exp(-(z * z));
        }
        else
        {
            t = Vector512<float>.One / d;
            e = Vector512.Exp(-(z * z));
        }
        var poly = t * (Vector512.Create(A1) + t * (Vector512.Create(A2) + t * (Vector512.Create(A3) + t * (Vector512.Create(A4) + t * A5))));
        var erfAbs = Vector512<float>.One - poly * e;
        var erf = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), -erfAbs, erfAbs);
        return 0.5f * x * (Vector512<float>.One + erf);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Activate(Vector256<float> x)
    {
        var z = Vector256.Abs(x * InvSqrt2);
        var t = Vector256<float>.One / (Vector256<float>.One + P * z);
        var poly = t * (Vector256.Create(A1) + t * (Vector256.Create(A2) + t * (Vector256.Create(A3) + t * (Vector256.Create(A4) + t * A5))));
        var erfAbs = Vector256<float>.One - poly * Vector256.Exp(-(z * z));
        var erf = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), -erfAbs, erfAbs);
        return 0.5f * x * (Vector256<float>.One + erf);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Activate(Vector128<float> x)
    {
        var z = Vector128.Abs(x * InvSqrt2);
        var t = Vector128<float>.One / (Vector128<float>.One + P * z);
        var poly = t * (Vector128.Create(A1) + t * (Vector128.Create(A2) + t * (Vector128.Create(A3) + t * (Vector128.Create(A4) + t * A5))));
        var erfAbs = Vector128<float>.One - poly * FastExp.Exp(-(z * z));
        var erf = Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128<float>.Zero), -erfAbs, erfAbs);
        return 0.5f * x * (Vector128<float>.One + erf);
    }

    /// <inheritdoc/>
    public static float Activate(float x)
    {
        float z = MathF.Abs(x * InvSqrt2);
        float t = 1f / (1f + P * z);
        float erfAbs = 1f - t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5)))) * MathF.Exp(-z * z);
        return 0.5f * x * (1f + (x < 0 ? -erfAbs : erfAbs));
    }
}

/// <summary>GELU with the tanh approximation, as <c>nn.GELU(approximate='tanh')</c>.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct GeluTanhEpilogue : IGemmEpilogue
{
    private const float Sqrt2OverPi = 0.7978845608028654f, Cubic = 0.044715f;

    /// <inheritdoc/>
    public static bool AddToOutput => false;
    /// <inheritdoc/>
    public static bool IsIdentity => false;

    // tanh(u) = 1 - 2 / (exp(2u) + 1): exp overflows to +inf for large u, which still gives exactly 1.
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Activate(Vector512<float> x)
    {
        var u = Sqrt2OverPi * (x + Cubic * x * x * x);
        var exp = FastExp.IsSupported ? FastExp.Exp(u + u) : Vector512.Exp(u + u);
        var tanh = Vector512<float>.One - Vector512.Create(2f) / (exp + Vector512<float>.One);
        return 0.5f * x * (Vector512<float>.One + tanh);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Activate(Vector256<float> x)
    {
        var u = Sqrt2OverPi * (x + Cubic * x * x * x);
        var tanh = Vector256<float>.One - Vector256.Create(2f) / (Vector256.Exp(u + u) + Vector256<float>.One);
        return 0.5f * x * (Vector256<float>.One + tanh);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Activate(Vector128<float> x)
    {
        var u = Sqrt2OverPi * (x + Cubic * x * x * x);
        var tanh = Vector128<float>.One - Vector128.Create(2f) / (FastExp.Exp(u + u) + Vector128<float>.One);
        return 0.5f * x * (Vector128<float>.One + tanh);
    }

    /// <inheritdoc/>
    public static float Activate(float x) => 0.5f * x * (1f + MathF.Tanh(Sqrt2OverPi * (x + Cubic * x * x * x)));
}

/// <summary>OpenAI CLIP's QuickGELU, <c>x * sigmoid(1.702 x)</c>.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct QuickGeluEpilogue : IGemmEpilogue
{
    private const float Slope = 1.702f;

    /// <inheritdoc/>
    public static bool AddToOutput => false;
    /// <inheritdoc/>
    public static bool IsIdentity => false;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Activate(Vector512<float> x)
        => x / (Vector512<float>.One + (FastExp.IsSupported ? FastExp.Exp(x * -Slope) : Vector512.Exp(x * -Slope)));
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Activate(Vector256<float> x) => x / (Vector256<float>.One + Vector256.Exp(x * -Slope));
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Activate(Vector128<float> x) => x / (Vector128<float>.One + FastExp.Exp(x * -Slope));
    /// <inheritdoc/>
    public static float Activate(float x) => x / (1f + MathF.Exp(-Slope * x));
}

/// <summary><c>max(x, 0)</c>.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct ReluEpilogue : IGemmEpilogue
{
    /// <inheritdoc/>
    public static bool AddToOutput => false;
    /// <inheritdoc/>
    public static bool IsIdentity => false;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Activate(Vector512<float> x) => Vector512.Max(x, Vector512<float>.Zero);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Activate(Vector256<float> x) => Vector256.Max(x, Vector256<float>.Zero);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Activate(Vector128<float> x) => Vector128.Max(x, Vector128<float>.Zero);
    /// <inheritdoc/>
    public static float Activate(float x) => MathF.Max(x, 0f);
}
