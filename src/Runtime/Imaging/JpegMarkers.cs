using System.Buffers.Binary;

namespace ViTGen;

/// <summary>A cheap structural look at a JPEG stream, to refuse truncated files as PIL does.</summary>
internal static class JpegMarkers
{
    /// <summary>
    /// Walks the marker segments from SOI to the first SOS, then looks for the EOI marker (FF D9) in what
    /// follows (entropy-coded data never contains it: FF bytes are stuffed). False when the file ends before
    /// that: a truncated JPEG. Malformed marker structure returns true and is left to libjpeg to report.
    /// </summary>
    internal static bool HasEndOfImage(ReadOnlySpan<byte> data)
    {
        int pos = 2; // after SOI
        while (pos + 1 < data.Length)
        {
            if (data[pos] != 0xFF)
            {
                return true; // not a marker where one belongs: libjpeg will say what is wrong
            }
            byte marker = data[pos + 1];
            if (marker == 0xFF)
            {
                pos++; // fill byte
                continue;
            }
            if (marker is 0x01 or 0xD8 or (>= 0xD0 and <= 0xD7))
            {
                pos += 2; // markers without a length
                continue;
            }
            if (marker == 0xD9)
            {
                return true; // EOI before any scan: libjpeg reports the missing image
            }
            if (pos + 4 > data.Length)
            {
                return false;
            }
            int end = pos + 2 + BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 2)..]);
            if (end > data.Length)
            {
                return false;
            }
            if (marker == 0xDA)
            {
                return data[end..].IndexOf([(byte)0xFF, (byte)0xD9]) >= 0;
            }
            pos = end;
        }
        return false;
    }

    /// <summary>
    /// Walks the marker segments from SOI to the first frame header (SOF0..SOF15 but DHT, JPG and DAC) and returns
    /// the dimensions it declares, so limits can be checked before libjpeg reads anything else. False when there
    /// is no complete frame header before the first scan or the end of the data.
    /// </summary>
    internal static bool TryReadFrameSize(ReadOnlySpan<byte> data, out int width, out int height)
    {
        width = height = 0;
        int pos = 2; // after SOI
        while (pos + 1 < data.Length && data[pos] == 0xFF)
        {
            byte marker = data[pos + 1];
            if (marker == 0xFF)
            {
                pos++;
                continue;
            }
            if (marker is 0x01 or 0xD8 or (>= 0xD0 and <= 0xD7))
            {
                pos += 2;
                continue;
            }
            if (marker is 0xD9 or 0xDA || pos + 4 > data.Length)
            {
                return false;
            }
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 2)..]);
            if (marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC))
            {
                if (length < 8 || pos + 9 > data.Length)
                {
                    return false;
                }
                height = BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 5)..]);
                width = BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 7)..]);
                return true;
            }
            pos += 2 + length;
        }
        return false;
    }
}
