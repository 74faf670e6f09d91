using Xunit;

namespace ViTGen.Tests.Imaging;

public sealed class ImagingVitImageTests
{
    [Fact]
    public void Constructor_keeps_the_pixels()
    {
        byte[] pixels = [1, 2, 3, 4, 5, 6];
        var image = new VitImage(2, 1, 3, pixels);
        Assert.Equal((2, 1, 3), (image.Width, image.Height, image.Channels));
        Assert.Equal(pixels, image.Pixels.ToArray());
    }

    [Fact]
    public void Constructor_validates()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new VitImage(0, 1, 1, new byte[0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VitImage(1, -1, 1, new byte[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VitImage(1, 1, 2, new byte[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VitImage(1, 1, 4, new byte[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VitImage(1 << 15, 1 << 14, 1, ReadOnlyMemory<byte>.Empty));
        Assert.Throws<ArgumentException>(() => new VitImage(2, 2, 3, new byte[11]));
        Assert.Throws<ArgumentException>(() => new VitImage(2, 2, 1, new byte[5]));
    }

    [Theory]
    [InlineData(new byte[0], "empty")]
    [InlineData(new byte[] { (byte)'G', (byte)'I', (byte)'F', (byte)'8', (byte)'9', (byte)'a', 1, 0 }, "GIF images are not supported")]
    [InlineData(new byte[] { (byte)'B', (byte)'M', 0, 0 }, "BMP")]
    [InlineData(new byte[] { (byte)'R', (byte)'I', (byte)'F', (byte)'F', 0, 0, 0, 0, (byte)'W', (byte)'E', (byte)'B', (byte)'P' }, "WebP")]
    [InlineData(new byte[] { (byte)'I', (byte)'I', (byte)'*', 0 }, "TIFF")]
    [InlineData(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D }, "PNG signature")]
    [InlineData(new byte[] { 1, 2, 3, 4, 5 }, "unrecognised image format")]
    [InlineData(new byte[] { 0xFF, 0xD8 }, "unrecognised")]
    public void Unsupported_data_is_named(byte[] data, string messagePart)
    {
        var e = Assert.Throws<VitImageException>(() => VitImage.Decode(data, "upload.bin"));
        Assert.Contains(messagePart, e.Message, StringComparison.Ordinal);
        Assert.Contains("upload.bin", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_without_a_name_uses_a_generic_one()
    {
        var e = Assert.Throws<VitImageException>(() => VitImage.Decode([1, 2, 3]));
        Assert.Contains("image data", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_of_a_missing_file_names_it()
    {
        string path = Path.Combine(Path.GetTempPath(), "vitgen-no-such-image-" + Guid.NewGuid() + ".png");
        var e = Assert.Throws<VitImageException>(() => VitImage.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<IOException>(e.InnerException);
    }

    [Fact]
    public void Format_is_sniffed_not_taken_from_the_name()
    {
        string path = Path.Combine(Path.GetTempPath(), "vitgen-sniff-" + Guid.NewGuid() + ".jpg");
        File.WriteAllBytes(path, ImagingFixtures.Bytes("rgb_5x7.ppm"));
        try
        {
            VitImage image = VitImage.Load(path);
            Assert.Equal((5, 7, 3), (image.Width, image.Height, image.Channels));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
