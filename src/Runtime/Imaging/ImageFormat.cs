namespace ViTGen;

/// <summary>Finds an image's format from its magic bytes.</summary>
internal static class ImageFormat
{
    internal enum Kind
    {
        Unknown,
        Png,
        Jpeg,
        Netpbm,
    }

    private static ReadOnlySpan<byte> PngSignature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    internal static Kind Sniff(ReadOnlySpan<byte> data)
    {
        if (data.StartsWith(PngSignature))
        {
            return Kind.Png;
        }
        if (data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        {
            return Kind.Jpeg;
        }
        if (data.Length >= 2 && data[0] == (byte)'P' && data[1] is >= (byte)'1' and <= (byte)'7')
        {
            return Kind.Netpbm; // the decoder says which variants it supports
        }
        return Kind.Unknown;
    }

    /// <summary>A message for data that is not PNG, JPEG or Netpbm, naming the format where it is recognisable.</summary>
    internal static string DescribeUnsupported(ReadOnlySpan<byte> data)
    {
        const string Supported = "supported formats are PNG, JPEG and binary PGM/PPM (P5/P6)";
        if (data.IsEmpty)
        {
            return "the data is empty";
        }
        string? name = null;
        if (data.StartsWith("GIF8"u8))
        {
            name = "GIF";
        }
        else if (data.StartsWith("BM"u8))
        {
            name = "BMP";
        }
        else if (data.Length >= 12 && data.StartsWith("RIFF"u8) && data.Slice(8, 4).SequenceEqual("WEBP"u8))
        {
            name = "WebP";
        }
        else if (data.StartsWith("II*\0"u8) || data.StartsWith("MM\0*"u8))
        {
            name = "TIFF";
        }
        else if (data.Length >= 12 && data.Slice(4, 4).SequenceEqual("ftyp"u8))
        {
            name = "HEIF/AVIF";
        }
        else if (data.StartsWith(PngSignature[..4]))
        {
            return "the PNG signature is damaged or truncated";
        }
        return name is null
            ? $"unrecognised image format; {Supported}"
            : $"{name} images are not supported; {Supported}";
    }
}
