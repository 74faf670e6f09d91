namespace ViTGen;

/// <summary>
/// Binary PGM (P5) and PPM (P6). Samples are bytes when maxval &lt; 256, else big-endian 16-bit words.
/// A maxval other than 255 is rescaled as PIL does: <c>min(255, round(v / maxval * 255))</c>, rounding half to even.
/// </summary>
internal static class NetpbmDecoder
{
    internal static VitImage Decode(ReadOnlySpan<byte> data, string source, long maxPixels)
    {
        char kind = (char)data[1];
        int channels = kind switch
        {
            '5' => 1,
            '6' => 3,
            '1' or '2' or '3' => throw VitImageException.For(source, $"plain (ASCII) Netpbm P{kind} is not supported; use binary P5/P6"),
            '4' => throw VitImageException.For(source, "PBM bitmaps (P4) are not supported; use binary P5/P6"),
            _ => throw VitImageException.For(source, $"Netpbm P{kind} is not supported; use binary P5/P6"),
        };
        int pos = 2;
        int width = ReadNumber(data, ref pos, "width", source);
        int height = ReadNumber(data, ref pos, "height", source);
        int maxval = ReadNumber(data, ref pos, "maxval", source);
        if (pos >= data.Length || !IsSpace(data[pos]))
        {
            throw VitImageException.For(source, "Netpbm header does not end with a whitespace character");
        }
        pos++;
        VitImage.CheckDecodedSize(width, height, source, maxPixels);
        if (maxval is < 1 or > 65535)
        {
            throw VitImageException.For(source, $"Netpbm maxval {maxval} is outside 1..65535");
        }
        int bytesPerSample = maxval < 256 ? 1 : 2;
        long samples = (long)width * height * channels;
        if (data.Length - pos < samples * bytesPerSample)
        {
            throw VitImageException.For(source,
                $"Netpbm raster is truncated: {samples * bytesPerSample} bytes needed, {data.Length - pos} present");
        }
        ReadOnlySpan<byte> raster = data.Slice(pos, (int)(samples * bytesPerSample));
        var pixels = new byte[samples];
        if (maxval == 255)
        {
            raster.CopyTo(pixels);
        }
        else
        {
            byte[] table = ScaleTable(maxval, bytesPerSample == 1 ? 256 : 65536);
            if (bytesPerSample == 1)
            {
                for (int i = 0; i < pixels.Length; i++)
                {
                    pixels[i] = table[raster[i]];
                }
            }
            else
            {
                for (int i = 0; i < pixels.Length; i++)
                {
                    pixels[i] = table[(raster[2 * i] << 8) | raster[2 * i + 1]];
                }
            }
        }
        return new VitImage(width, height, channels, pixels);
    }

    /// <summary>min(255, round-half-even(v / maxval * 255)) for every possible sample value v.</summary>
    private static byte[] ScaleTable(int maxval, int entries)
    {
        var table = new byte[entries];
        for (int v = 0; v < entries; v++)
        {
            table[v] = (byte)Math.Min(255.0, Math.Round((double)v / maxval * 255.0, MidpointRounding.ToEven));
        }
        return table;
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or 0x0B or 0x0C;

    /// <summary>Skips whitespace and '#' comments, then reads a decimal number of at most 9 digits.</summary>
    private static int ReadNumber(ReadOnlySpan<byte> data, ref int pos, string what, string source)
    {
        while (pos < data.Length)
        {
            if (IsSpace(data[pos]))
            {
                pos++;
            }
            else if (data[pos] == (byte)'#')
            {
                while (pos < data.Length && data[pos] is not ((byte)'\n' or (byte)'\r'))
                {
                    pos++;
                }
            }
            else
            {
                break;
            }
        }
        if (pos >= data.Length)
        {
            throw VitImageException.For(source, $"Netpbm header is truncated before the {what}");
        }
        int start = pos;
        long value = 0;
        while (pos < data.Length && data[pos] is >= (byte)'0' and <= (byte)'9')
        {
            if (pos - start >= 9)
            {
                throw VitImageException.For(source, $"Netpbm {what} is too large");
            }
            value = value * 10 + (data[pos] - '0');
            pos++;
        }
        if (pos == start)
        {
            throw VitImageException.For(source, $"Netpbm header has a non-numeric {what} (byte 0x{data[pos]:X2} at {pos})");
        }
        return (int)value;
    }
}
