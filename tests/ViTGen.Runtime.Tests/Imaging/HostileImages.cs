using System.Buffers.Binary;
using System.Text;

namespace ViTGen.Tests.Imaging;

/// <summary>
/// A corpus of hostile image inputs, built in code: decompression bombs declared by the header, truncations,
/// CRC errors, corrupt compressed data, absurd dimensions, wrong magic and an empty file, for PNG, JPEG and PGM/PPM.
/// Every case must be refused with a <see cref="VitImageException"/> whose message contains
/// <see cref="Case.MessageContains"/>, without allocating memory in proportion to the declared size.
/// Reusable from other test projects (for example the CLI's <c>--max-pixels</c> tests) by linking this file.
/// </summary>
internal static class HostileImages
{
    /// <summary>The message fragment of the pixel-limit error (<see cref="VitImageOptions.MaxPixels"/>).</summary>
    internal const string LimitMessage = "exceed the limit";

    /// <summary>One hostile input: a name for test output, the bytes, and a fragment the error message must contain.</summary>
    internal sealed record Case(string Name, byte[] Data, string MessageContains)
    {
        /// <summary>True for the decompression bombs, which must be refused by the pixel limit.</summary>
        internal bool IsBomb => MessageContains == LimitMessage;

        public override string ToString() => Name;
    }

    /// <summary>The whole corpus. JPEG cases start from the committed fixtures in tests/fixtures/imaging.</summary>
    internal static IEnumerable<Case> All() => Png().Concat(Jpeg()).Concat(Netpbm()).Concat(Common());

    internal static IEnumerable<Case> Common()
    {
        yield return new("empty file", [], "the data is empty");
        yield return new("one byte", [0x89], "");
        yield return new("text file", Encoding.ASCII.GetBytes("hello, this is not an image\n"), "unrecognised image format");
        yield return new("GIF magic", Encoding.ASCII.GetBytes("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "not supported");
    }

    // ---------------------------------------------------------------- PNG

    /// <summary>A ~1 kB PNG that declares <paramref name="width"/> x <paramref name="height"/> RGB pixels.</summary>
    internal static byte[] PngBomb(uint width, uint height) =>
        TestPng.File(TestPng.Ihdr(width, height), TestPng.Chunk("IDAT", TestPng.Zlib(new byte[4096])), TestPng.Chunk("tEXt", Padding(700)));

    internal static IEnumerable<Case> Png()
    {
        yield return new("PNG bomb 16000x16000", PngBomb(16000, 16000), LimitMessage);
        yield return new("PNG bomb 65535x65535", PngBomb(65535, 65535), LimitMessage);
        yield return new("PNG bomb 16384x16384 gray", TestPng.File(TestPng.Ihdr(16384, 16384, colorType: 0),
            TestPng.Chunk("IDAT", TestPng.Zlib(new byte[1024]))), LimitMessage);
        yield return new("PNG 1 x 2^28+1 (tall bomb)", PngBomb(1, (1u << 28) + 1), LimitMessage);
        yield return new("PNG width 0", PngBomb(0, 16), "invalid dimensions");
        yield return new("PNG height 0", PngBomb(16, 0), "invalid dimensions");
        yield return new("PNG width 2^31", PngBomb(0x80000000u, 1), "invalid dimensions");
        yield return new("PNG width 2^32-1 (negative as int32)", PngBomb(0xFFFFFFFFu, 0xFFFFFFFFu), "invalid dimensions");

        byte[] good = TestPng.SmallRgb(16, 12);
        foreach (int cut in new[] { 4, 8, 12, 20, 33, 40, good.Length / 2, good.Length - 12, good.Length - 1 })
        {
            yield return new($"PNG truncated at {cut} of {good.Length}", good[..cut], cut < 8 ? "PNG signature" : "truncated");
        }

        byte[] badIhdrCrc = (byte[])good.Clone();
        badIhdrCrc[8 + 8 + 13] ^= 0x01; // first CRC byte of IHDR
        yield return new("PNG IHDR CRC error", badIhdrCrc, "bad CRC");
        byte[] badIdatCrc = (byte[])good.Clone();
        badIdatCrc[good.Length - 12 - 2] ^= 0x80; // last CRC byte of IDAT (IEND is the last 12 bytes)
        yield return new("PNG IDAT CRC error", badIdatCrc, "bad CRC");
        byte[] badBody = (byte[])good.Clone();
        badBody[45] ^= 0xFF; // a byte of the IDAT payload (it starts at 41), CRC left stale
        yield return new("PNG IDAT body flipped, stale CRC", badBody, "bad CRC");

        // Valid CRCs around invalid zlib data.
        byte[] garbage = new byte[200];
        new Random(20).NextBytes(garbage);
        yield return new("PNG IDAT not zlib", TestPng.File(TestPng.Ihdr(16, 12), TestPng.Chunk("IDAT", garbage)), "PNG image data");
        byte[] zlib = TestPng.Zlib(new byte[12 * (1 + 3 * 16)]);
        byte[] brokenDeflate = (byte[])zlib.Clone();
        for (int i = 2; i < brokenDeflate.Length - 4; i++)
        {
            brokenDeflate[i] = 0xFF; // a reserved block type, or garbage Huffman codes
        }
        yield return new("PNG corrupt deflate stream", TestPng.File(TestPng.Ihdr(16, 12), TestPng.Chunk("IDAT", brokenDeflate)), "PNG image data");
        byte[] badAdler = (byte[])zlib.Clone();
        badAdler[^1] ^= 0x55;
        yield return new("PNG bad Adler-32", TestPng.File(TestPng.Ihdr(16, 12), TestPng.Chunk("IDAT", badAdler)), "zlib");
        yield return new("PNG too little data for the rows",
            TestPng.File(TestPng.Ihdr(16, 12), TestPng.Chunk("IDAT", TestPng.Zlib(new byte[10]))), "ends early");
        yield return new("PNG chunk length 2^31+", TestPng.Join(TestPng.Signature, TestPng.Ihdr(4, 4),
            [0x80, 0, 0, 0, (byte)'I', (byte)'D', (byte)'A', (byte)'T', 0, 0, 0, 0]), "invalid length");

        byte[] wrongMagic = (byte[])good.Clone();
        wrongMagic[1] = (byte)'Q';
        yield return new("PNG wrong magic", wrongMagic, "");
    }

    // ---------------------------------------------------------------- JPEG

    private static int FrameHeader(byte[] data)
    {
        for (int i = 2; i + 1 < data.Length; i++)
        {
            if (data[i] == 0xFF && data[i + 1] is 0xC0 or 0xC2)
            {
                return i;
            }
        }
        throw new InvalidOperationException("no SOF0/SOF2 marker");
    }

    private static byte[] WithJpegSize(byte[] jpeg, int width, int height)
    {
        byte[] data = (byte[])jpeg.Clone();
        int sof = FrameHeader(data);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(sof + 5), (ushort)height);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(sof + 7), (ushort)width);
        return data;
    }

    private static int StartOfScan(byte[] data) => data.AsSpan().IndexOf([(byte)0xFF, (byte)0xDA]);

    internal static IEnumerable<Case> Jpeg()
    {
        foreach (string file in new[] { "gray_64x48.jpg", "rgb_192x144_q90.jpg" })
        {
            byte[] good = ImagingFixtures.Bytes(file);
            yield return new($"JPEG {file} bomb 16000x16000", WithJpegSize(good, 16000, 16000), LimitMessage);
            yield return new($"JPEG {file} bomb 65535x65535", WithJpegSize(good, 65535, 65535), LimitMessage);
            int sos = StartOfScan(good);
            yield return new($"JPEG {file} truncated bomb 16000x16000",
                WithJpegSize(good, 16000, 16000)[..(sos + 20)], LimitMessage);
            yield return new($"JPEG {file} width 0", WithJpegSize(good, 0, 48), "JPEG");
            yield return new($"JPEG {file} height 0 (DNL)", WithJpegSize(good, 64, 0), "JPEG");
            foreach (int cut in new[] { 2, 3, 10, sos, sos + 20, good.Length / 2, good.Length - 2, good.Length - 1 })
            {
                yield return new($"JPEG {file} truncated at {cut} of {good.Length}", good[..cut], cut < 3 ? "unrecognised image format" : "JPEG");
            }

            byte[] badTableRef = (byte[])good.Clone();
            badTableRef[FrameHeader(badTableRef) + 12] = 7; // quantization table selector of component 1
            yield return new($"JPEG {file} undefined quantization table", badTableRef, "JPEG");
            byte[] badHuffman = (byte[])good.Clone();
            int dht = badHuffman.AsSpan().IndexOf([(byte)0xFF, (byte)0xC4]);
            badHuffman.AsSpan(dht + 5, 16).Fill(0xFF); // code counts that overflow the code space
            yield return new($"JPEG {file} bogus Huffman table", badHuffman, "JPEG");
            byte[] badComponents = (byte[])good.Clone();
            badComponents[FrameHeader(badComponents) + 9] = 0; // zero components
            yield return new($"JPEG {file} zero components", badComponents, "JPEG");
            byte[] wrongMagic = (byte[])good.Clone();
            wrongMagic[1] = 0x00;
            yield return new($"JPEG {file} wrong magic", wrongMagic, "");
        }
    }

    // ---------------------------------------------------------------- PGM / PPM

    private static byte[] Pnm(string header, int rasterBytes) =>
        [.. Encoding.ASCII.GetBytes(header), .. new byte[rasterBytes]];

    internal static IEnumerable<Case> Netpbm()
    {
        yield return new("PPM bomb 16000x16000", Pnm("P6\n16000 16000\n255\n", 1000), LimitMessage);
        yield return new("PGM bomb 65535x65535", Pnm("P5\n65535 65535\n255\n", 1000), LimitMessage);
        yield return new("PGM bomb 16-bit 20000x20000", Pnm("P5 20000 20000 65535\n", 1000), LimitMessage);
        yield return new("PPM width 0", Pnm("P6 0 4 255\n", 12), "invalid dimensions");
        yield return new("PGM height 0", Pnm("P5 4 0 255\n", 12), "invalid dimensions");
        yield return new("PPM negative width", Pnm("P6 -4 4 255\n", 48), "non-numeric width");
        yield return new("PGM width 2^32", Pnm("P5 4294967296 1 255\n", 16), "too large");
        yield return new("PGM width 999999999 x 999999999", Pnm("P5 999999999 999999999 255\n", 16), LimitMessage);
        yield return new("PPM maxval 0", Pnm("P6 4 4 0\n", 48), "maxval");
        yield return new("PPM maxval 65536", Pnm("P6 4 4 65536\n", 96), "maxval");
        yield return new("PPM no whitespace after maxval", Pnm("P6 4 4 255X", 48), "whitespace");
        yield return new("PPM plain P3", Encoding.ASCII.GetBytes("P3 1 1 255\n0 0 0\n"), "not supported");

        byte[] good = Pnm("P6\n# a comment\n8 6\n255\n", 8 * 6 * 3);
        int header = good.Length - 8 * 6 * 3;
        foreach (int cut in new[] { 2, 3, 10, header - 1, header, header + 1, good.Length / 2, good.Length - 1 })
        {
            yield return new($"PPM truncated at {cut} of {good.Length}", good[..cut], cut < header ? "Netpbm header" : "truncated");
        }
        yield return new("PGM 16-bit raster truncated", Pnm("P5 8 8 65535\n", 8 * 8 * 2 - 1), "truncated");
        yield return new("PPM wrong magic", [.. "Q6"u8, .. good[2..]], "");
    }

    private static byte[] Padding(int length)
    {
        var text = new byte[length];
        text.AsSpan().Fill((byte)'a');
        text[7] = 0; // keyword "aaaaaaa", then text
        return text;
    }
}
