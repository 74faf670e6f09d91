using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ViTGen.Tests.Imaging;

/// <summary>Builds PNG files chunk by chunk (with correct CRCs) so tests can break exactly one thing.</summary>
internal static class TestPng
{
    internal static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    internal static byte[] Chunk(string type, ReadOnlySpan<byte> data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, chunk.AsSpan(4, 4));
        data.CopyTo(chunk.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    internal static byte[] Ihdr(uint width, uint height, byte bitDepth = 8, byte colorType = 2,
        byte compression = 0, byte filter = 0, byte interlace = 0)
    {
        var body = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(body, width);
        BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(4), height);
        body[8] = bitDepth;
        body[9] = colorType;
        body[10] = compression;
        body[11] = filter;
        body[12] = interlace;
        return Chunk("IHDR", body);
    }

    internal static byte[] Zlib(ReadOnlySpan<byte> raw)
    {
        using var buffer = new MemoryStream();
        using (var z = new ZLibStream(buffer, CompressionLevel.Optimal, leaveOpen: true))
        {
            z.Write(raw);
        }
        return buffer.ToArray();
    }

    internal static byte[] Join(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    /// <summary>A whole file: signature, IHDR, the given middle chunks, IEND.</summary>
    internal static byte[] File(byte[] ihdr, params byte[][] chunks) =>
        Join([Signature, ihdr, .. chunks, Chunk("IEND", [])]);

    /// <summary>A w x h 8-bit RGB image with filter type 0 on every row and pixel values from a simple pattern.</summary>
    internal static byte[] SmallRgb(int width = 5, int height = 4, int filter = 0)
    {
        var raw = new byte[height * (1 + 3 * width)];
        for (int y = 0, i = 0; y < height; y++)
        {
            raw[i++] = (byte)filter;
            for (int x = 0; x < 3 * width; x++)
            {
                raw[i++] = (byte)(x * 17 + y * 31);
            }
        }
        return File(Ihdr((uint)width, (uint)height), Chunk("IDAT", Zlib(raw)));
    }

    internal static uint Crc(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
        }
        return ~c;
    }
}
