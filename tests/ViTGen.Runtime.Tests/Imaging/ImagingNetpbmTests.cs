using System.Text;
using Xunit;

namespace ViTGen.Tests.Imaging;

public sealed class ImagingNetpbmTests
{
    private static byte[] File(string header, params byte[] raster) => [.. Encoding.ASCII.GetBytes(header), .. raster];

    private static VitImageException Fails(byte[] data, string messagePart)
    {
        var e = Assert.Throws<VitImageException>(() => VitImage.Decode(data, "test.ppm"));
        Assert.Contains("test.ppm", e.Message, StringComparison.Ordinal);
        Assert.Contains(messagePart, e.Message, StringComparison.OrdinalIgnoreCase);
        return e;
    }

    [Fact]
    public void Header_with_comments_and_odd_whitespace()
    {
        VitImage image = VitImage.Decode(File("P6# c1\r\n 2\t# c2\n1\r\n# c3\n255\r", 1, 2, 3, 4, 5, 6));
        Assert.Equal((2, 1, 3), (image.Width, image.Height, image.Channels));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6 }, image.Pixels.ToArray());
    }

    [Fact]
    public void Raster_bytes_that_look_like_whitespace_or_comments_are_data()
    {
        VitImage image = VitImage.Decode(File("P5 3 1 255 ", (byte)'#', (byte)'\n', (byte)' '));
        Assert.Equal(new byte[] { 35, 10, 32 }, image.Pixels.ToArray());
    }

    [Fact]
    public void Maxval_scaling_rounds_half_to_even_and_clamps_like_PIL()
    {
        // maxval 2: v * 127.5 -> 0, 127.5 -> 128 (even), 255; 3 > maxval -> clamped to 255.
        VitImage image = VitImage.Decode(File("P5 4 1 2\n", 0, 1, 2, 3));
        Assert.Equal(new byte[] { 0, 128, 255, 255 }, image.Pixels.ToArray());
        VitImage bilevel = VitImage.Decode(File("P5 2 1 1\n", 0, 1));
        Assert.Equal(new byte[] { 0, 255 }, bilevel.Pixels.ToArray());
        VitImage wide = VitImage.Decode(File("P5 2 1 65535\n", 0xFF, 0xFF, 0x80, 0x80));
        Assert.Equal(new byte[] { 255, 128 }, wide.Pixels.ToArray());
    }

    [Theory]
    [InlineData("P5 2 1 0\n", "maxval")]
    [InlineData("P5 2 1 65536\n", "maxval")]
    [InlineData("P5 0 1 255\n", "invalid dimensions")]
    [InlineData("P5 1 0 255\n", "invalid dimensions")]
    [InlineData("P5 100000 100000 255\n", "exceed")]
    [InlineData("P5 1234567890 1 255\n", "too large")]
    [InlineData("P5 x 1 255\n", "non-numeric width")]
    [InlineData("P5 2 -1 255\n", "non-numeric height")]
    [InlineData("P5 2 1", "maxval")]
    [InlineData("P5 2 1 255", "whitespace")]
    [InlineData("P5 2 1 255\n", "truncated")]
    [InlineData("P6 2 1 255\n\u0001\u0002\u0003", "truncated")]
    [InlineData("P6 1 1 1000\n\u0001\u0002\u0003", "truncated")]
    [InlineData("P3 1 1 255\n1 2 3\n", "plain")]
    [InlineData("P2 1 1 255\n1\n", "plain")]
    [InlineData("P4 8 1\n\u0001", "P4")]
    [InlineData("P7\nWIDTH 1\n", "P7")]
    [InlineData("P5", "truncated")]
    public void Bad_files_fail(string file, string messagePart)
    {
        Fails(Encoding.Latin1.GetBytes(file), messagePart);
    }

    [Fact]
    public void Every_truncation_of_a_fixture_fails()
    {
        foreach (string name in new[] { "rgb_5x7.ppm", "rgb_19x13_max1000.ppm", "gray_10x8_max15.pgm" })
        {
            byte[] data = ImagingFixtures.Bytes(name);
            for (int length = 0; length < data.Length; length++)
            {
                Assert.Throws<VitImageException>(() => VitImage.Decode(data.AsSpan(0, length), name));
            }
        }
    }
}
