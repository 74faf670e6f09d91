using System.Buffers.Binary;
using System.IO.Compression;

namespace ViTGen;

/// <summary>
/// Writes 8-bit gray or RGB PNGs with the framework's zlib: signature, IHDR, one IDAT, IEND. Every row uses filter 0
/// (none); the pictures ViTGen writes (heat maps, charts) are small, and any viewer opens them.
/// </summary>
internal static class PngEncoder
{
    private static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static byte[] Encode(VitImage image)
    {
        int rowBytes = image.Width * image.Channels;
        using var idat = new MemoryStream();
        using (var zlib = new ZLibStream(idat, CompressionLevel.Optimal, leaveOpen: true))
        {
            var pixels = image.Pixels.Span;
            for (int y = 0; y < image.Height; y++)
            {
                zlib.WriteByte(0); // filter type: none
                zlib.Write(pixels.Slice(y * rowBytes, rowBytes));
            }
        }

        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], image.Height);
        header[8] = 8;                                      // bit depth
        header[9] = (byte)(image.Channels == 1 ? 0 : 2);    // color type: gray or RGB
        header[10] = header[11] = header[12] = 0;           // deflate, adaptive filtering, no interlace

        using var png = new MemoryStream();
        png.Write(Signature);
        WriteChunk(png, "IHDR"u8, header);
        WriteChunk(png, "IDAT"u8, idat.GetBuffer().AsSpan(0, (int)idat.Length));
        WriteChunk(png, "IEND"u8, []);
        return png.ToArray();
    }

    private static void WriteChunk(Stream stream, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        stream.Write(word);
        byte[] typed = new byte[4 + data.Length];
        type.CopyTo(typed);
        data.CopyTo(typed.AsSpan(4));
        stream.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32.Compute(typed));
        stream.Write(word);
    }
}
