namespace ViTGen;

/// <summary>Channel conversions that match PIL's <c>Image.convert</c>.</summary>
internal static class PixelConversion
{
    /// <summary>
    /// RGB to gray as PIL's <c>convert('L')</c>: L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16,
    /// its 16-bit fixed-point form of ITU-R 601-2 luma (0.299, 0.587, 0.114).
    /// </summary>
    internal static byte[] RgbToGray(ReadOnlySpan<byte> rgb)
    {
        var gray = new byte[rgb.Length / 3];
        for (int i = 0, j = 0; i < gray.Length; i++, j += 3)
        {
            gray[i] = (byte)((rgb[j] * 19595 + rgb[j + 1] * 38470 + rgb[j + 2] * 7471 + 0x8000) >> 16);
        }
        return gray;
    }
}
