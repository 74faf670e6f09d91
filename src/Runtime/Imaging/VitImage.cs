namespace ViTGen;

/// <summary>
/// An 8-bit image: <see cref="Width"/> x <see cref="Height"/> pixels of <see cref="Channels"/> interleaved
/// samples (1 = gray, 3 = RGB), row by row from the top-left pixel, no padding between rows.
/// Decoded images drop any alpha channel, as PIL's <c>convert('RGB')</c> does.
/// </summary>
public sealed class VitImage
{
    /// <summary>The largest number of pixels (width x height) an image may have: 2^28.</summary>
    public const long MaxPixels = 1L << 28;

    /// <summary>
    /// Wraps raw pixels. The memory is not copied: do not change it while the image is in use.
    /// </summary>
    /// <param name="width">Width in pixels, at least 1.</param>
    /// <param name="height">Height in pixels, at least 1.</param>
    /// <param name="channels">1 (gray) or 3 (RGB).</param>
    /// <param name="pixels">Exactly <c>width * height * channels</c> bytes, interleaved, row-major.</param>
    /// <exception cref="ArgumentOutOfRangeException">A dimension is not positive, the channel count is not 1 or 3,
    /// or the image has more than <see cref="MaxPixels"/> pixels.</exception>
    /// <exception cref="ArgumentException"><paramref name="pixels"/> has the wrong length.</exception>
    public VitImage(int width, int height, int channels, ReadOnlyMemory<byte> pixels)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (channels is not (1 or 3))
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "An image has 1 (gray) or 3 (RGB) channels.");
        }
        if ((long)width * height > MaxPixels)
        {
            throw new ArgumentOutOfRangeException(nameof(width), $"A {width}x{height} image has more than {MaxPixels} pixels.");
        }
        long expected = (long)width * height * channels;
        if (pixels.Length != expected)
        {
            throw new ArgumentException(
                $"A {width}x{height} image with {channels} channel(s) needs {expected} bytes, not {pixels.Length}.", nameof(pixels));
        }
        Width = width;
        Height = height;
        Channels = channels;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Samples per pixel: 1 (gray) or 3 (RGB).</summary>
    public int Channels { get; }

    /// <summary>The interleaved 8-bit samples, row-major, <c>Width * Height * Channels</c> bytes.</summary>
    public ReadOnlyMemory<byte> Pixels { get; }

    /// <summary>
    /// Reads and decodes an image file. The format is found from the first bytes, not from the file name:
    /// PNG, JPEG (baseline and progressive, 8-bit grayscale or YCbCr/RGB), binary PGM (P5) or PPM (P6).
    /// </summary>
    /// <param name="path">The file to read.</param>
    /// <returns>The decoded image, 1 or 3 channels.</returns>
    /// <exception cref="VitImageException">The file cannot be read, or is not a supported, valid image.</exception>
    public static VitImage Load(string path) => Load(path, null);

    /// <summary>
    /// Reads and decodes an image file with the given limits. The format is found from the first bytes, not from the
    /// file name: PNG, JPEG (baseline and progressive, 8-bit grayscale or YCbCr/RGB), binary PGM (P5) or PPM (P6).
    /// The dimensions declared in the header are checked against <see cref="VitImageOptions.MaxPixels"/> before any
    /// pixel memory is allocated.
    /// </summary>
    /// <param name="path">The file to read.</param>
    /// <param name="options">The limits; <see langword="null"/> for <see cref="VitImageOptions.Default"/>.</param>
    /// <returns>The decoded image, 1 or 3 channels.</returns>
    /// <exception cref="VitImageException">The file cannot be read, is not a supported, valid image, or declares
    /// more pixels than <see cref="VitImageOptions.MaxPixels"/>.</exception>
    public static VitImage Load(string path, VitImageOptions? options)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw VitImageException.For(path, $"cannot read the file: {e.Message}", e);
        }
        return Decode(data, path, options);
    }

    /// <summary>
    /// Decodes an image held in memory. The format is found from the first bytes:
    /// PNG, JPEG (baseline and progressive, 8-bit grayscale or YCbCr/RGB), binary PGM (P5) or PPM (P6).
    /// </summary>
    /// <param name="data">The encoded image.</param>
    /// <param name="sourceName">What to call the data in error messages, for example a file name or URL.</param>
    /// <returns>The decoded image, 1 or 3 channels.</returns>
    /// <exception cref="VitImageException">The data is not a supported, valid image.</exception>
    public static VitImage Decode(ReadOnlySpan<byte> data, string sourceName = "image data") => Decode(data, sourceName, null);

    /// <summary>
    /// Decodes an image held in memory with the given limits. The format is found from the first bytes:
    /// PNG, JPEG (baseline and progressive, 8-bit grayscale or YCbCr/RGB), binary PGM (P5) or PPM (P6).
    /// The dimensions declared in the header are checked against <see cref="VitImageOptions.MaxPixels"/> before any
    /// pixel memory is allocated.
    /// </summary>
    /// <param name="data">The encoded image.</param>
    /// <param name="sourceName">What to call the data in error messages, for example a file name or URL.</param>
    /// <param name="options">The limits; <see langword="null"/> for <see cref="VitImageOptions.Default"/>.</param>
    /// <returns>The decoded image, 1 or 3 channels.</returns>
    /// <exception cref="VitImageException">The data is not a supported, valid image, or declares more pixels than
    /// <see cref="VitImageOptions.MaxPixels"/>.</exception>
    public static VitImage Decode(ReadOnlySpan<byte> data, string sourceName, VitImageOptions? options)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        long maxPixels = (options ?? VitImageOptions.Default).EffectiveMaxPixels;
        return ImageFormat.Sniff(data) switch
        {
            ImageFormat.Kind.Png => PngDecoder.Decode(data, sourceName, maxPixels),
            ImageFormat.Kind.Jpeg => JpegDecoder.Decode(data, sourceName, maxPixels),
            ImageFormat.Kind.Netpbm => NetpbmDecoder.Decode(data, sourceName, maxPixels),
            _ => throw VitImageException.For(sourceName, ImageFormat.DescribeUnsupported(data)),
        };
    }

    /// <summary>Encodes the image as an 8-bit PNG (gray or RGB), the format every viewer opens.</summary>
    /// <returns>The PNG file's bytes.</returns>
    public byte[] EncodePng() => PngEncoder.Encode(this);

    /// <summary>Writes the image to <paramref name="path"/> as an 8-bit PNG (gray or RGB).</summary>
    /// <param name="path">The file to create or overwrite.</param>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void SavePng(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        File.WriteAllBytes(path, EncodePng());
    }

    /// <summary>
    /// Checks the dimensions a header declares against <paramref name="maxPixels"/> (already clamped to
    /// <see cref="MaxPixels"/>); throws a decode error naming the source, the dimensions and the limit.
    /// </summary>
    internal static void CheckDecodedSize(long width, long height, string source, long maxPixels)
    {
        if (width < 1 || height < 1)
        {
            throw VitImageException.For(source, $"invalid dimensions {width}x{height}");
        }
        // Both sides are below 2^32 in every format, so the product cannot overflow a long.
        long pixels = width * height;
        if (width > int.MaxValue || height > int.MaxValue || pixels > maxPixels)
        {
            throw VitImageException.For(source, FormattableString.Invariant(
                $"dimensions {width}x{height} ({pixels:N0} pixels) exceed the limit of {maxPixels:N0} pixels"));
        }
    }
}
