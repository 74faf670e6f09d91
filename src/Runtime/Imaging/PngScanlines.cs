using System.Numerics;

namespace ViTGen;

/// <summary>PNG scanline work: undoing the five filters and turning samples into 8-bit gray or RGB.</summary>
internal static class PngScanlines
{
    /// <summary>Undoes filter <paramref name="type"/> (0..4) on <paramref name="row"/> in place.</summary>
    /// <param name="type">None, Sub, Up, Average or Paeth.</param>
    /// <param name="row">The filtered bytes of this scanline (without the type byte).</param>
    /// <param name="previous">The unfiltered previous scanline of the same pass, zeros for the first; as long as <paramref name="row"/>.</param>
    /// <param name="stride">Bytes per complete pixel, at least 1.</param>
    internal static unsafe void Unfilter(int type, Span<byte> row, ReadOnlySpan<byte> previous, int stride)
    {
        if (previous.Length < row.Length || stride < 1)
        {
            throw new ArgumentException("The previous row is too short.", nameof(previous));
        }
        int n = row.Length, head = Math.Min(stride, n);
        fixed (byte* r = row)
        fixed (byte* p = previous)
        {
            switch (type)
            {
                case 0:
                    break;
                case 1:
                    for (int i = stride; i < n; i++)
                    {
                        r[i] += r[i - stride];
                    }
                    break;
                case 2:
                    int v = 0;
                    if (Vector.IsHardwareAccelerated)
                    {
                        for (; v <= n - Vector<byte>.Count; v += Vector<byte>.Count)
                        {
                            (Vector.Load(r + v) + Vector.Load(p + v)).Store(r + v); // wraps modulo 256
                        }
                    }
                    for (int i = v; i < n; i++)
                    {
                        r[i] += p[i];
                    }
                    break;
                case 3:
                    for (int i = 0; i < head; i++)
                    {
                        r[i] += (byte)(p[i] >> 1);
                    }
                    for (int i = stride; i < n; i++)
                    {
                        r[i] += (byte)((r[i - stride] + p[i]) >> 1);
                    }
                    break;
                case 4:
                    for (int i = 0; i < head; i++)
                    {
                        r[i] += p[i]; // Paeth(0, b, 0) = b
                    }
                    for (int i = stride; i < n; i++)
                    {
                        r[i] += Paeth(r[i - stride], p[i], p[i - stride]);
                    }
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(type));
            }
        }
    }

    /// <summary>The PNG Paeth predictor: whichever of left, up, up-left is closest to left + up - up-left (ties in that order).</summary>
    private static byte Paeth(int a, int b, int c)
    {
        int pa = Math.Abs(b - c), pb = Math.Abs(a - c), pc = Math.Abs(a + b - 2 * c);
        int predictor = pb < pa ? b : a;
        int best = pb < pa ? pb : pa;
        return (byte)(pc < best ? c : predictor);
    }

    /// <summary>
    /// Converts <paramref name="count"/> pixels of an unfiltered scanline to 8-bit output samples:
    /// 16-bit samples keep their high byte (as PIL does), 1/2/4-bit gray is scaled to 0..255,
    /// palette indices are looked up, alpha is dropped.
    /// </summary>
    /// <param name="header">The image header.</param>
    /// <param name="row">Unfiltered scanline bytes.</param>
    /// <param name="count">Pixels in the scanline.</param>
    /// <param name="palette">768 bytes of RGB palette entries (palette images only).</param>
    /// <param name="destination">At least <c>count * header.OutputChannels</c> bytes.</param>
    internal static void Expand(in PngHeader header, ReadOnlySpan<byte> row, int count, ReadOnlySpan<byte> palette, Span<byte> destination)
    {
        int depth = header.BitDepth;
        if (header.ColorType == PngHeader.Palette)
        {
            ExpandPalette(row, count, depth, palette, destination);
            return;
        }
        if (depth < 8)
        {
            int mask = (1 << depth) - 1, scale = 255 / mask;
            for (int i = 0; i < count; i++)
            {
                destination[i] = (byte)(Unpack(row, i, depth, mask) * scale);
            }
            return;
        }
        int samplesPerPixel = header.SamplesPerPixel, outChannels = header.OutputChannels, bytesPerSample = depth / 8;
        if (bytesPerSample == 1 && samplesPerPixel == outChannels)
        {
            row[..(count * outChannels)].CopyTo(destination);
            return;
        }
        int pixelBytes = samplesPerPixel * bytesPerSample;
        for (int i = 0; i < count; i++)
        {
            int s = i * pixelBytes, d = i * outChannels;
            for (int c = 0; c < outChannels; c++)
            {
                destination[d + c] = row[s + c * bytesPerSample]; // big-endian: the high byte comes first
            }
        }
    }

    private static void ExpandPalette(ReadOnlySpan<byte> row, int count, int depth, ReadOnlySpan<byte> palette, Span<byte> destination)
    {
        int mask = (1 << depth) - 1;
        for (int i = 0; i < count; i++)
        {
            int index = depth == 8 ? row[i] : Unpack(row, i, depth, mask);
            palette.Slice(index * 3, 3).CopyTo(destination.Slice(i * 3, 3));
        }
    }

    /// <summary>Sample <paramref name="i"/> of a row packed at 1, 2 or 4 bits, most significant bits first.</summary>
    private static int Unpack(ReadOnlySpan<byte> row, int i, int depth, int mask)
    {
        int bit = i * depth;
        return (row[bit >> 3] >> (8 - depth - (bit & 7))) & mask;
    }
}
