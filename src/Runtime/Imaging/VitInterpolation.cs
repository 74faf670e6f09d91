namespace ViTGen;

/// <summary>
/// Resampling filters, as PIL's <c>Image.resize</c> implements them (the numbers are PIL's).
/// All but <see cref="Nearest"/> widen their support by the scale factor when shrinking (antialiasing).
/// timm's configs use <see cref="Bicubic"/> almost everywhere, some <see cref="Bilinear"/>.
/// </summary>
public enum VitInterpolation
{
    /// <summary>Nearest neighbour (PIL NEAREST): no filtering, picks the source pixel under each output pixel centre.</summary>
    Nearest = 0,

    /// <summary>Lanczos with three lobes (PIL LANCZOS).</summary>
    Lanczos = 1,

    /// <summary>Triangle filter (PIL BILINEAR).</summary>
    Bilinear = 2,

    /// <summary>Cubic convolution with a = -0.5 (PIL BICUBIC).</summary>
    Bicubic = 3,

    /// <summary>Box filter: area average when shrinking (PIL BOX).</summary>
    Box = 4,

    /// <summary>Hamming-windowed sinc with a one-pixel support (PIL HAMMING).</summary>
    Hamming = 5,
}
