using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ViTGen;

/// <summary>
/// A managed PNG decoder: all color types and bit depths, the five filters, Adam7 interlace,
/// CRC checking. Alpha and tRNS are ignored (PIL's <c>convert('RGB')</c> drops them too).
/// </summary>
internal static unsafe class PngDecoder
{
    private const uint Ihdr = 0x49484452, Plte = 0x504C5445, Idat = 0x49444154, Iend = 0x49454E44;

    /// <summary>Deflate cannot expand data more than about 1032 times; more claimed pixels than that means a bad file.</summary>
    private const long MaxInflateRatio = 1040;

    /// <summary>Adam7 passes: first column, first row, column step, row step.</summary>
    private static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    private static readonly (int X0, int Y0, int Dx, int Dy)[] SinglePass = [(0, 0, 1, 1)];

    internal static VitImage Decode(ReadOnlySpan<byte> data, string source, long maxPixels)
    {
        (PngHeader header, byte[] palette, List<(int Offset, int Length)> idat, long compressedLength) =
            ReadChunks(data, source, maxPixels);

        long rawBytes = 0;
        foreach (var (x0, y0, dx, dy) in Passes(header))
        {
            long pw = PassSize(header.Width, x0, dx), ph = PassSize(header.Height, y0, dy);
            if (pw > 0 && ph > 0)
            {
                rawBytes += ph * (1 + header.RowBytes(pw));
            }
        }
        if (rawBytes > MaxInflateRatio * compressedLength + 1024)
        {
            throw VitImageException.For(source,
                $"PNG image data is too short for {header.Width}x{header.Height} pixels ({compressedLength} compressed bytes)");
        }

        int outChannels = header.OutputChannels;
        // Every pixel is written: each row in a plain image, each Adam7 position once in an interlaced one.
        byte[] pixels = GC.AllocateUninitializedArray<byte>(checked(header.Width * header.Height * outChannels));
        // The IDAT chunks are inflated where they lie in the input: no copy of the compressed data is made.
        fixed (byte* bytes = data)
        {
            using var zlib = new ZLibStream(new ChunkStream(bytes, idat), CompressionMode.Decompress);
            Inflate(zlib, header, palette, pixels, source);
        }
        return new VitImage(header.Width, header.Height, outChannels, pixels);
    }

    private static (int X0, int Y0, int Dx, int Dy)[] Passes(in PngHeader header) => header.Interlaced ? Adam7 : SinglePass;

    private static int PassSize(int size, int start, int step) => size > start ? (size - start + step - 1) / step : 0;

    /// <summary>Walks the chunks up to IEND, checking CRCs and order; returns the header, the palette and where the IDAT data lies.</summary>
    private static (PngHeader Header, byte[] Palette, List<(int Offset, int Length)> Idat, long IdatLength) ReadChunks(ReadOnlySpan<byte> data, string source, long maxPixels)
    {
        int pos = 8;
        PngHeader header = default;
        bool haveHeader = false, havePalette = false;
        byte[] palette = GrayRampPalette();
        var idat = new List<(int Offset, int Length)>();
        long idatTotal = 0;
        while (true)
        {
            if (data.Length - pos < 12)
            {
                throw VitImageException.For(source, pos == data.Length
                    ? "PNG is truncated: no IEND chunk"
                    : $"PNG is truncated inside a chunk header at byte {pos}");
            }
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data[pos..]);
            ReadOnlySpan<byte> typeBytes = data.Slice(pos + 4, 4);
            string name = ChunkName(typeBytes, source);
            if (length > int.MaxValue || length > data.Length - pos - 12)
            {
                throw VitImageException.For(source, length > int.MaxValue
                    ? $"PNG chunk '{name}' has an invalid length {length}"
                    : $"PNG is truncated inside chunk '{name}' ({length} bytes announced, {data.Length - pos - 12} present)");
            }
            ReadOnlySpan<byte> body = data.Slice(pos + 8, (int)length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(data[(pos + 8 + (int)length)..]);
            if (Crc32.Compute(data.Slice(pos + 4, 4 + (int)length)) != crc)
            {
                throw VitImageException.For(source, $"PNG chunk '{name}' at byte {pos} has a bad CRC");
            }
            uint type = BinaryPrimitives.ReadUInt32BigEndian(typeBytes);
            if (!haveHeader && type != Ihdr)
            {
                throw VitImageException.For(source, $"PNG does not start with an IHDR chunk (found '{name}')");
            }
            switch (type)
            {
                case Ihdr:
                    if (haveHeader)
                    {
                        throw VitImageException.For(source, "PNG has two IHDR chunks");
                    }
                    header = PngHeader.Parse(body, source, maxPixels);
                    haveHeader = true;
                    break;
                case Plte:
                    if (body.Length == 0 || body.Length % 3 != 0 || body.Length > 768)
                    {
                        throw VitImageException.For(source, $"PNG PLTE chunk has an invalid length {body.Length}");
                    }
                    if (idat.Count > 0)
                    {
                        throw VitImageException.For(source, "PNG PLTE chunk comes after the image data");
                    }
                    body.CopyTo(palette); // entries past the palette's end keep the gray ramp, as in PIL
                    havePalette = true;
                    break;
                case Idat:
                    if (header.ColorType == PngHeader.Palette && !havePalette)
                    {
                        throw VitImageException.For(source, "PNG palette image has no PLTE chunk before its image data");
                    }
                    idat.Add((pos + 8, (int)length));
                    idatTotal += length;
                    break;
                case Iend:
                    if (idat.Count == 0)
                    {
                        throw VitImageException.For(source, "PNG has no IDAT chunk");
                    }
                    return (header, palette, idat, idatTotal);
                default:
                    if ((typeBytes[0] & 0x20) == 0)
                    {
                        throw VitImageException.For(source, $"PNG has an unknown critical chunk '{name}'");
                    }
                    break; // ancillary chunks (tRNS, gAMA, tEXt, ...) are ignored
            }
            pos += 12 + (int)length;
        }
    }

    private static string ChunkName(ReadOnlySpan<byte> type, string source)
    {
        foreach (byte b in type)
        {
            if (b is not ((>= (byte)'A' and <= (byte)'Z') or (>= (byte)'a' and <= (byte)'z')))
            {
                throw VitImageException.For(source, $"PNG has an invalid chunk type 0x{Convert.ToHexString(type)}");
            }
        }
        return Encoding.ASCII.GetString(type);
    }

    /// <summary>PIL fills palette entries beyond PLTE's with (i, i, i); so do we.</summary>
    private static byte[] GrayRampPalette()
    {
        var palette = new byte[768];
        for (int i = 0; i < 256; i++)
        {
            palette[3 * i] = palette[3 * i + 1] = palette[3 * i + 2] = (byte)i;
        }
        return palette;
    }

    private static void Inflate(Stream zlib, in PngHeader header, byte[] palette, byte[] pixels, string source)
    {
        int width = header.Width, outChannels = header.OutputChannels, stride = header.FilterStride;
        int maxRow = (int)header.RowBytes(width);
        byte[] current = new byte[maxRow + 1];
        byte[] previous = new byte[maxRow];
        byte[]? passPixels = header.Interlaced ? new byte[(long)width * outChannels] : null;
        try
        {
            foreach (var (x0, y0, dx, dy) in Passes(header))
            {
                int pw = PassSize(width, x0, dx), ph = PassSize(header.Height, y0, dy);
                if (pw == 0 || ph == 0)
                {
                    continue; // empty passes have no scanlines at all
                }
                int rowBytes = (int)header.RowBytes(pw);
                Array.Clear(previous, 0, rowBytes);
                for (int r = 0; r < ph; r++)
                {
                    Span<byte> line = current.AsSpan(0, rowBytes + 1);
                    if (zlib.ReadAtLeast(line, line.Length, throwOnEndOfStream: false) < line.Length)
                    {
                        throw VitImageException.For(source, "PNG image data ends early (truncated or corrupt IDAT)");
                    }
                    int filter = line[0];
                    if (filter > 4)
                    {
                        throw VitImageException.For(source, $"PNG scanline has an invalid filter type {filter}");
                    }
                    Span<byte> row = line[1..];
                    PngScanlines.Unfilter(filter, row, previous.AsSpan(0, rowBytes), stride);
                    int y = y0 + r * dy;
                    if (passPixels is null)
                    {
                        PngScanlines.Expand(header, row, pw, palette, pixels.AsSpan(y * width * outChannels, width * outChannels));
                    }
                    else
                    {
                        PngScanlines.Expand(header, row, pw, palette, passPixels);
                        Scatter(passPixels, pixels, pw, outChannels, (y * width + x0) * outChannels, dx * outChannels);
                    }
                    row.CopyTo(previous);
                }
            }
            // Reading past the end makes zlib check the Adler-32 trailer; extra data is ignored.
            Span<byte> probe = stackalloc byte[1];
            _ = zlib.Read(probe);
        }
        catch (InvalidDataException e)
        {
            throw VitImageException.For(source, $"PNG image data is not valid zlib data: {e.Message}", e);
        }
    }

    private static void Scatter(ReadOnlySpan<byte> passRow, Span<byte> pixels, int count, int channels, int start, int step)
    {
        for (int i = 0, d = start; i < count; i++, d += step)
        {
            passRow.Slice(i * channels, channels).CopyTo(pixels[d..]);
        }
    }

    /// <summary>A read-only stream over the IDAT chunk bodies of pinned input, one after the other.</summary>
    private sealed class ChunkStream : Stream
    {
        private readonly byte* _data;
        private readonly List<(int Offset, int Length)> _chunks;
        private int _chunk, _position;

        internal ChunkStream(byte* data, List<(int Offset, int Length)> chunks)
        {
            _data = data;
            _chunks = chunks;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(Span<byte> buffer)
        {
            int total = 0;
            while (buffer.Length > 0 && _chunk < _chunks.Count)
            {
                var (offset, length) = _chunks[_chunk];
                int count = Math.Min(length - _position, buffer.Length);
                new ReadOnlySpan<byte>(_data + offset + _position, count).CopyTo(buffer);
                buffer = buffer[count..];
                total += count;
                _position += count;
                if (_position == length)
                {
                    _chunk++;
                    _position = 0;
                }
            }
            return total;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
