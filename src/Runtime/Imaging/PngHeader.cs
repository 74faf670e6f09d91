using System.Buffers.Binary;

namespace ViTGen;

/// <summary>A validated PNG IHDR chunk and the sizes that follow from it.</summary>
internal readonly struct PngHeader
{
    internal const int Gray = 0;
    internal const int Rgb = 2;
    internal const int Palette = 3;
    internal const int GrayAlpha = 4;
    internal const int Rgba = 6;

    private PngHeader(int width, int height, int bitDepth, int colorType, bool interlaced)
    {
        Width = width;
        Height = height;
        BitDepth = bitDepth;
        ColorType = colorType;
        Interlaced = interlaced;
    }

    internal int Width { get; }
    internal int Height { get; }
    internal int BitDepth { get; }
    internal int ColorType { get; }
    internal bool Interlaced { get; }

    /// <summary>Samples per pixel in the file: 1 gray/palette, 2 gray+alpha, 3 RGB, 4 RGBA.</summary>
    internal int SamplesPerPixel => ColorType switch
    {
        Gray or Palette => 1,
        GrayAlpha => 2,
        Rgb => 3,
        _ => 4,
    };

    /// <summary>Channels of the decoded image: gray types give 1, color and palette types give 3; alpha is dropped.</summary>
    internal int OutputChannels => ColorType is Gray or GrayAlpha ? 1 : 3;

    internal int BitsPerPixel => SamplesPerPixel * BitDepth;

    /// <summary>The byte distance the filters look back: whole bytes per pixel, at least 1.</summary>
    internal int FilterStride => Math.Max(1, BitsPerPixel / 8);

    /// <summary>Bytes of one scanline of <paramref name="pixels"/> pixels, without the filter-type byte.</summary>
    internal long RowBytes(long pixels) => (pixels * BitsPerPixel + 7) / 8;

    /// <summary>Parses and validates the 13 bytes of IHDR.</summary>
    internal static PngHeader Parse(ReadOnlySpan<byte> body, string source, long maxPixels)
    {
        if (body.Length != 13)
        {
            throw VitImageException.For(source, $"PNG IHDR chunk has {body.Length} bytes, not 13");
        }
        uint width = BinaryPrimitives.ReadUInt32BigEndian(body);
        uint height = BinaryPrimitives.ReadUInt32BigEndian(body[4..]);
        int bitDepth = body[8], colorType = body[9], compression = body[10], filter = body[11], interlace = body[12];
        if (width == 0 || height == 0 || width > int.MaxValue || height > int.MaxValue)
        {
            throw VitImageException.For(source, $"PNG has invalid dimensions {width}x{height}");
        }
        VitImage.CheckDecodedSize(width, height, source, maxPixels);
        bool depthOk = colorType switch
        {
            Gray => bitDepth is 1 or 2 or 4 or 8 or 16,
            Palette => bitDepth is 1 or 2 or 4 or 8,
            Rgb or GrayAlpha or Rgba => bitDepth is 8 or 16,
            _ => throw VitImageException.For(source, $"PNG has invalid color type {colorType}"),
        };
        if (!depthOk)
        {
            throw VitImageException.For(source, $"PNG bit depth {bitDepth} is invalid for color type {colorType}");
        }
        if (compression != 0)
        {
            throw VitImageException.For(source, $"PNG compression method {compression} is not supported");
        }
        if (filter != 0)
        {
            throw VitImageException.For(source, $"PNG filter method {filter} is not supported");
        }
        if (interlace > 1)
        {
            throw VitImageException.For(source, $"PNG interlace method {interlace} is not supported");
        }
        var header = new PngHeader((int)width, (int)height, bitDepth, colorType, interlace == 1);
        if (header.RowBytes(header.Width) + 1 > Array.MaxLength)
        {
            throw VitImageException.For(source, $"PNG rows of {width} pixels are too long");
        }
        return header;
    }
}
