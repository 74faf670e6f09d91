using System.Runtime.Intrinsics.X86;

namespace ViTGen.CompilerServices;

/// <summary>
/// <c>exp(x)</c> on 16 lanes (AVX-512) or 4 lanes (any machine), inlined into the kernels that need it (the softmax and the GELU epilogue).
/// </summary>
/// <remarks>
/// Why not <see cref="Vector512.Exp(Vector512{float})"/>: it is not inlined, so every GELU tile and softmax row paid a
/// call, and the softmax took four TensorPrimitives passes per row. This is the usual range reduction:
/// <c>x = n ln2 + r</c> with <c>|r| &lt;= ln2/2</c> (ln2 split in two so <c>r</c> is exact), a degree-7 Taylor
/// polynomial for <c>e^r</c> (truncation error <c>(ln2/2)^8/8! &lt; 6e-9</c>, below float rounding), and
/// <c>vscalefps</c> for <c>2^n</c>, which also takes care of overflow to infinity. Results below the smallest normal
/// float (x &lt; -87) are flushed to zero: producing a denormal costs a microcode assist of ~150 cycles, which made
/// the masked padding lanes of the softmax 2.5x slower.
/// </remarks>
internal static class FastExp
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693145752f;      // ln 2 rounded to 16 significant bits: n * Ln2High is exact
    private const float Ln2Low = 1.42860677e-6f;     // ln 2 - Ln2High
    private const float Lowest = -87f;               // exp(-87) = 1.6e-38, just above the smallest normal float
    private const float Highest = 89f;               // exp(89) overflows to infinity

    /// <summary>Whether the 16-lane <see cref="Exp(Vector512{float})"/> may be called (it needs AVX-512F).</summary>
    public static bool IsSupported => Avx512F.IsSupported;

    /// <summary><c>e^x</c>, within 2 ulp for normal results; zero below <c>e^-87</c>; NaN stays NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var clamped = Vector512.Min(Vector512.Max(x, Vector512.Create(Lowest)), Vector512.Create(Highest));
        var n = Vector512.Round(clamped * Log2E);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2High), clamped);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Low), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(1f / 5040), r, Vector512.Create(1f / 720));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        Vector512<float> result;
        if (Avx512F.IsSupported)
            result = Avx512F.Scale(p, n);
        else
        {
            var ni = Vector512.ConvertToInt32Native(n);
            var half = ni >> 1;
            result = p * ((half + Vector512.Create(127)) << 23).AsSingle() * ((ni - half + Vector512.Create(127)) << 23).AsSingle();
        }
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(Lowest)), Vector512<float>.Zero, result);
    }

    /// <summary>
    /// <c>e^x</c> on 4 lanes (the Vector128 tier: ARM64, x86 without AVX2+FMA), with the same reduction and polynomial
    /// and the same edges as the 16-lane version. <c>2^n</c> (<c>|n| &lt;= 128</c>) is built from exponent bits in two
    /// halves, each a normal float, since there is no portable <c>vscalefps</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Exp(Vector128<float> x)
    {
        var clamped = Vector128.Min(Vector128.Max(x, Vector128.Create(Lowest)), Vector128.Create(Highest));
        var n = Vector128.Round(clamped * Log2E);
        var r = Simd.MultiplyAdd(n, Vector128.Create(-Ln2High), clamped);
        r = Simd.MultiplyAdd(n, Vector128.Create(-Ln2Low), r);
        var p = Simd.MultiplyAdd(Vector128.Create(1f / 5040), r, Vector128.Create(1f / 720));
        p = Simd.MultiplyAdd(p, r, Vector128.Create(1f / 120));
        p = Simd.MultiplyAdd(p, r, Vector128.Create(1f / 24));
        p = Simd.MultiplyAdd(p, r, Vector128.Create(1f / 6));
        p = Simd.MultiplyAdd(p, r, Vector128.Create(0.5f));
        p = Simd.MultiplyAdd(p, r, Vector128<float>.One);
        p = Simd.MultiplyAdd(p, r, Vector128<float>.One);
        // n is integral and in [-126, 128] (NaN lanes carry NaN in p, so their n does not matter).
        var ni = Vector128.ConvertToInt32Native(n);
        var half = ni >> 1;
        var scaleLow = ((half + Vector128.Create(127)) << 23).AsSingle();
        var scaleHigh = ((ni - half + Vector128.Create(127)) << 23).AsSingle();
        var result = p * scaleLow * scaleHigh;
        return Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128.Create(Lowest)), Vector128<float>.Zero, result);
    }
}
