namespace ViTGen.Tests.Imaging;

/// <summary>
/// <see cref="VitImage.EncodePng"/>: what it writes decodes back to the same pixels through the PNG decoder (which the
/// fixture tests check against PIL), with the header a viewer reads.
/// </summary>
public class ImagingPngEncoderTests
{
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(37, 23, 1)]
    [InlineData(1, 64, 3)]
    [InlineData(45, 31, 3)]
    public void Round_trips_through_the_decoder(int width, int height, int channels)
    {
        var pixels = new byte[width * height * channels];
        new Random(width * 1000 + height * 10 + channels).NextBytes(pixels);
        var image = new VitImage(width, height, channels, pixels);

        byte[] png = image.EncodePng();
        var decoded = VitImage.Decode(png, "encoded.png");

        Assert.Equal((width, height, channels), (decoded.Width, decoded.Height, decoded.Channels));
        Assert.Equal(pixels, decoded.Pixels.ToArray());
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A], png[..8]);
        Assert.Equal("IHDR"u8.ToArray(), png[12..16]);
        Assert.Equal(channels == 1 ? 0 : 2, png[25]); // color type
    }

    [Fact]
    public void A_damaged_file_is_refused_by_the_decoder()
    {
        byte[] png = new VitImage(8, 8, 3, new byte[8 * 8 * 3]).EncodePng();
        png[30] ^= 0xFF; // a byte of IHDR's CRC
        Assert.Throws<VitImageException>(() => VitImage.Decode(png, "damaged.png"));
    }

    [Fact]
    public void SavePng_writes_the_file()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vitgen-encoder-{Guid.NewGuid():N}.png");
        try
        {
            var image = new VitImage(3, 2, 1, new byte[] { 0, 50, 100, 150, 200, 250 });
            image.SavePng(path);
            Assert.Equal(image.Pixels.ToArray(), VitImage.Load(path).Pixels.ToArray());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
