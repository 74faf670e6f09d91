namespace ViTGen;

/// <summary>
/// Limits applied while decoding an image with <see cref="VitImage.Load(string, VitImageOptions?)"/> or
/// <see cref="VitImage.Decode(ReadOnlySpan{byte}, string, VitImageOptions?)"/>.
/// The limits are checked against the dimensions declared in the file's header (PNG IHDR, JPEG SOF, PGM/PPM header)
/// before any pixel buffer is allocated, so a small file that declares a huge image (a "decompression bomb") is
/// refused cheaply.
/// </summary>
public sealed class VitImageOptions
{
    /// <summary>
    /// The default <see cref="MaxPixels"/>: 178,956,970 pixels, twice PIL's <c>Image.MAX_IMAGE_PIXELS</c>
    /// (89,478,485), the size at which PIL raises <c>DecompressionBombError</c>.
    /// </summary>
    public const long DefaultMaxPixels = 178_956_970;

    /// <summary>The options used when none are given: <see cref="MaxPixels"/> = <see cref="DefaultMaxPixels"/>.</summary>
    public static VitImageOptions Default { get; } = new();

    private readonly long _maxPixels = DefaultMaxPixels;

    /// <summary>
    /// The largest number of pixels (width x height) an image may declare; a larger one is refused with a
    /// <see cref="VitImageException"/> naming the file, its dimensions and this limit.
    /// Defaults to <see cref="DefaultMaxPixels"/>. Values above the hard cap <see cref="VitImage.MaxPixels"/>
    /// (2^28) are accepted but clamped to it: no image larger than <see cref="VitImage.MaxPixels"/> is ever decoded.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public long MaxPixels
    {
        get => _maxPixels;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1L);
            _maxPixels = value;
        }
    }

    /// <summary>The limit actually applied: <see cref="MaxPixels"/> clamped to <see cref="VitImage.MaxPixels"/>.</summary>
    internal long EffectiveMaxPixels => Math.Min(_maxPixels, VitImage.MaxPixels);
}
