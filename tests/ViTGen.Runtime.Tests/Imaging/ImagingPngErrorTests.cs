using System.Buffers.Binary;
using Xunit;

namespace ViTGen.Tests.Imaging;

/// <summary>Broken PNG files give <see cref="VitImageException"/> with a useful message, never another exception.</summary>
public sealed class ImagingPngErrorTests
{
    private static VitImageException Fails(byte[] data, string? messagePart = null)
    {
        var e = Assert.Throws<VitImageException>(() => VitImage.Decode(data, "test.png"));
        Assert.Contains("test.png", e.Message, StringComparison.Ordinal);
        if (messagePart is not null)
        {
            Assert.Contains(messagePart, e.Message, StringComparison.OrdinalIgnoreCase);
        }
        return e;
    }

    [Fact]
    public void The_helper_builds_a_valid_file()
    {
        VitImage image = VitImage.Decode(TestPng.SmallRgb());
        Assert.Equal((5, 4, 3), (image.Width, image.Height, image.Channels));
        Assert.Equal(17 + 31, image.Pixels.Span[3 * 5 + 1]); // row 1, byte 1
    }

    [Theory]
    [InlineData("rgb_5x7_filters.png", 1)]
    [InlineData("palette4_45x33_adam7.png", 1)]
    [InlineData("rgba16_23x19_adam7.png", 1)]
    [InlineData("rgb_333x250.png", 397)]
    public void Every_truncation_fails(string file, int step)
    {
        byte[] data = ImagingFixtures.Bytes(file);
        for (int length = 0; length < data.Length; length += length > data.Length - 40 ? 1 : step)
        {
            var e = Assert.Throws<VitImageException>(() => VitImage.Decode(data.AsSpan(0, length), "cut.png"));
            Assert.Contains("cut.png", e.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("rgb_5x7_filters.png")]
    [InlineData("gray2_37x19_adam7.png")]
    public void Every_bit_flip_after_the_signature_fails(string file)
    {
        // The CRC covers type and data; a flipped length breaks the framing. Either way it is caught.
        byte[] original = ImagingFixtures.Bytes(file);
        for (int i = 0; i < original.Length; i++)
        {
            foreach (int bit in new[] { 0, 5 })
            {
                byte[] data = (byte[])original.Clone();
                data[i] ^= (byte)(1 << bit);
                Assert.Throws<VitImageException>(() => VitImage.Decode(data, "flip.png"));
            }
        }
    }

    [Fact]
    public void Bad_crc_is_named()
    {
        byte[] data = TestPng.SmallRgb();
        data[^1] ^= 1; // IEND's CRC
        Fails(data, "'IEND'");
        data = TestPng.SmallRgb();
        data[8 + 8 + 13] ^= 0x80; // IHDR's CRC
        Fails(data, "bad CRC");
    }

    [Theory]
    [InlineData(0u, 4u, "invalid dimensions")]
    [InlineData(4u, 0u, "invalid dimensions")]
    [InlineData(0x80000000u, 1u, "invalid dimensions")]
    [InlineData(20000u, 20000u, "exceed")]
    [InlineData(1u << 28, 2u, "exceed")]
    public void Bad_dimensions_fail(uint width, uint height, string message)
    {
        Fails(TestPng.File(TestPng.Ihdr(width, height), TestPng.Chunk("IDAT", TestPng.Zlib(new byte[16]))), message);
    }

    [Fact]
    public void Huge_dimensions_with_little_data_fail_before_allocating()
    {
        // 16384 x 16384 is allowed by the hard cap (2^28 pixels) but 20 bytes of deflate cannot hold it.
        byte[] data = TestPng.File(TestPng.Ihdr(16384, 16384), TestPng.Chunk("IDAT", TestPng.Zlib(new byte[16])));
        var e = Assert.Throws<VitImageException>(() =>
            VitImage.Decode(data, "test.png", new VitImageOptions { MaxPixels = VitImage.MaxPixels }));
        Assert.Contains("too short", e.Message, StringComparison.Ordinal);
        // With the default options the pixel limit refuses it first.
        Fails(data, "exceed the limit");
    }

    [Theory]
    [InlineData(16, 3)]
    [InlineData(4, 2)]
    [InlineData(1, 6)]
    [InlineData(2, 4)]
    [InlineData(3, 0)]
    [InlineData(8, 1)]
    [InlineData(8, 7)]
    public void Invalid_depth_and_color_type_combinations_fail(byte depth, byte colorType)
    {
        var e = Fails(TestPng.File(TestPng.Ihdr(4, 4, depth, colorType), TestPng.Chunk("IDAT", TestPng.Zlib(new byte[80]))));
        Assert.Contains("color type", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, 0, 0, "compression method")]
    [InlineData(0, 1, 0, "filter method")]
    [InlineData(0, 0, 2, "interlace method")]
    public void Unsupported_methods_fail(byte compression, byte filter, byte interlace, string message)
    {
        Fails(TestPng.File(TestPng.Ihdr(4, 4, 8, 2, compression, filter, interlace), TestPng.Chunk("IDAT", TestPng.Zlib(new byte[52]))), message);
    }

    [Fact]
    public void Structural_errors_fail()
    {
        byte[] idat = TestPng.Chunk("IDAT", TestPng.Zlib(new byte[4 * 13]));
        byte[] ihdr = TestPng.Ihdr(4, 4);
        byte[] iend = TestPng.Chunk("IEND", []);
        Fails(TestPng.Join(TestPng.Signature, idat, ihdr, iend), "IHDR");
        Fails(TestPng.Join(TestPng.Signature, ihdr, ihdr, idat, iend), "two IHDR");
        Fails(TestPng.Join(TestPng.Signature, ihdr, idat), "no IEND");
        Fails(TestPng.File(ihdr), "no IDAT");
        Fails(TestPng.File(ihdr, TestPng.Chunk("ABCD", [1, 2]), idat), "unknown critical chunk 'ABCD'");
        Fails(TestPng.File(TestPng.Chunk("IHDR", new byte[12]), idat), "13");
        Fails(TestPng.Join(TestPng.Signature, ihdr, [0, 0, 0, 1, (byte)'I', (byte)'D', 0x01, (byte)'T', 0, 0, 0, 0, 0]), "chunk type");
        var hugeLength = TestPng.SmallRgb();
        BinaryPrimitives.WriteUInt32BigEndian(hugeLength.AsSpan(8), 0xFFFFFFF0u);
        Fails(hugeLength, "length");
    }

    [Fact]
    public void Ancillary_chunks_are_ignored()
    {
        byte[] idat = TestPng.Chunk("IDAT", TestPng.Zlib(new byte[4 * 13]));
        VitImage image = VitImage.Decode(TestPng.File(TestPng.Ihdr(4, 4), TestPng.Chunk("abCD", [1, 2, 3]),
            TestPng.Chunk("tEXt", "Title\0x"u8), idat, TestPng.Chunk("zzZz", [])));
        Assert.Equal(4, image.Width);
    }

    [Fact]
    public void Palette_errors_fail()
    {
        byte[] ihdr = TestPng.Ihdr(2, 2, 8, 3);
        byte[] idat = TestPng.Chunk("IDAT", TestPng.Zlib(new byte[6]));
        Fails(TestPng.File(ihdr, idat), "PLTE");
        Fails(TestPng.File(ihdr, TestPng.Chunk("PLTE", [1, 2, 3, 4]), idat), "PLTE");
        Fails(TestPng.File(ihdr, TestPng.Chunk("PLTE", []), idat), "PLTE");
        Fails(TestPng.File(ihdr, TestPng.Chunk("PLTE", new byte[771]), idat), "PLTE");
        Fails(TestPng.File(ihdr, idat, TestPng.Chunk("PLTE", [1, 2, 3])), "PLTE");
    }

    [Fact]
    public void Palette_indices_past_the_palette_use_PILs_gray_ramp()
    {
        byte[] raw = [0, 0, 1, 2, 200];
        VitImage image = VitImage.Decode(TestPng.File(TestPng.Ihdr(4, 1, 8, 3),
            TestPng.Chunk("PLTE", [10, 20, 30]), TestPng.Chunk("IDAT", TestPng.Zlib(raw))));
        Assert.Equal(new byte[] { 10, 20, 30, 1, 1, 1, 2, 2, 2, 200, 200, 200 }, image.Pixels.ToArray());
    }

    [Fact]
    public void Bad_filter_type_fails()
    {
        Fails(TestPng.SmallRgb(filter: 5), "filter type 5");
    }

    [Fact]
    public void Bad_zlib_data_fails()
    {
        byte[] raw = new byte[4 * 13];
        byte[] z = TestPng.Zlib(raw);

        byte[] badHeader = (byte[])z.Clone();
        badHeader[0] = 0x79; // compression method 9
        Fails(TestPng.File(TestPng.Ihdr(4, 4), TestPng.Chunk("IDAT", badHeader)), "zlib");

        byte[] badBlock = [0x78, 0x9C, 0x07, 0, 0, 0, 0]; // BTYPE = 11 (reserved)
        Fails(TestPng.File(TestPng.Ihdr(4, 4), TestPng.Chunk("IDAT", badBlock)), "zlib");

        byte[] badAdler = (byte[])z.Clone();
        badAdler[^1] ^= 0xFF;
        Fails(TestPng.File(TestPng.Ihdr(4, 4), TestPng.Chunk("IDAT", badAdler)), "zlib");

        byte[] shortData = TestPng.Zlib(new byte[4 * 13 - 1]);
        Fails(TestPng.File(TestPng.Ihdr(4, 4), TestPng.Chunk("IDAT", shortData)), "ends early");
    }

    [Fact]
    public void Extra_image_data_is_ignored()
    {
        VitImage image = VitImage.Decode(TestPng.File(TestPng.Ihdr(4, 4), TestPng.Chunk("IDAT", TestPng.Zlib(new byte[4 * 13 + 9]))));
        Assert.Equal(48, image.Pixels.Length);
    }

    [Fact]
    public void Random_damage_to_image_data_with_fixed_crcs_never_escapes_as_another_exception()
    {
        byte[] original = ImagingFixtures.Bytes("rgb_97x61_adam7.png");
        var rng = new Random(1234);
        int decoded = 0;
        for (int round = 0; round < 300; round++)
        {
            byte[] data = (byte[])original.Clone();
            int changes = 1 + rng.Next(4);
            for (int c = 0; c < changes; c++)
            {
                data[8 + 25 + rng.Next(data.Length - 8 - 25 - 12)] = (byte)rng.Next(256); // after IHDR, before IEND
            }
            FixCrcs(data);
            try
            {
                VitImage.Decode(data, "fuzz.png");
                decoded++;
            }
            catch (VitImageException)
            {
            }
        }
        Assert.True(decoded < 300);
    }

    /// <summary>Recomputes every chunk CRC of a file whose lengths are intact.</summary>
    private static void FixCrcs(byte[] data)
    {
        int pos = 8;
        while (pos + 12 <= data.Length)
        {
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos));
            if (length < 0 || pos + 12 + length > data.Length)
            {
                return;
            }
            BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(pos + 8 + length), TestPng.Crc(data.AsSpan(pos + 4, 4 + length)));
            pos += 12 + length;
        }
    }
}
