using Xunit;

namespace ViTGen.Tests.Imaging;

public sealed class ImagingJpegTests
{
    [Fact]
    public void Missing_library_gives_the_install_hint()
    {
        byte[] jpeg = ImagingFixtures.Bytes("gray_64x48.jpg");
        var e = Assert.Throws<VitImageException>(
            () => TurboJpeg.Decode(jpeg, "photo.jpg", ["libturbojpeg-does-not-exist.so.9", "/nonexistent/libturbojpeg.so.0"]));
        Assert.Contains("photo.jpg", e.Message, StringComparison.Ordinal);
        Assert.Contains("JPEG decoding needs libjpeg-turbo: install Debian/Ubuntu package libturbojpeg0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_library_without_the_TurboJPEG_API_counts_as_missing()
    {
        byte[] jpeg = ImagingFixtures.Bytes("gray_64x48.jpg");
        string[] names = OperatingSystem.IsWindows() ? ["kernel32.dll"] : OperatingSystem.IsMacOS() ? ["libSystem.dylib"] : ["libc.so.6"];
        var e = Assert.Throws<VitImageException>(() => TurboJpeg.Decode(jpeg, "photo.jpg", names));
        Assert.Contains(TurboJpeg.MissingLibraryMessage, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Grayscale_jpeg_decodes_to_one_channel()
    {
        VitImage image = VitImage.Load(ImagingFixtures.PathOf("gray_64x48.jpg"));
        Assert.Equal((64, 48, 1), (image.Width, image.Height, image.Channels));
    }

    [Theory]
    [InlineData("rgb_61x43_444.jpg")]
    [InlineData("rgb_80x60_progressive.jpg")]
    [InlineData("gray_64x48.jpg")]
    public void Truncated_jpeg_fails(string file)
    {
        byte[] data = ImagingFixtures.Bytes(file);
        var lengths = new List<int> { 3, 4, 10, 20, 100, 150, 300, 600, data.Length / 3, data.Length / 2, data.Length - 100, data.Length - 2, data.Length - 1 };
        foreach (int length in lengths)
        {
            var e = Assert.Throws<VitImageException>(() => VitImage.Decode(data.AsSpan(0, length), file));
            Assert.Contains(file, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Recoverable_damage_is_tolerated_like_PIL()
    {
        // Extraneous bytes before EOI: libjpeg warns "Corrupt JPEG data: 3 extraneous bytes before marker 0xd9";
        // PIL decodes the image anyway, and so do we.
        byte[] original = ImagingFixtures.Bytes("rgb_61x43_444.jpg");
        byte[] damaged = [.. original.AsSpan(0, original.Length - 2), 0, 1, 2, 0xFF, 0xD9];
        Assert.Equal(VitImage.Decode(original).Pixels.ToArray(), VitImage.Decode(damaged).Pixels.ToArray());

        // Two stray bytes between the header's segments (after APP0, before DQT): a warning while reading the header.
        original = ImagingFixtures.Bytes("gray_64x48.jpg");
        int afterApp0 = 4 + (original[4] << 8 | original[5]);
        damaged = [.. original.AsSpan(0, afterApp0), 0, 0, .. original.AsSpan(afterApp0)];
        Assert.Equal(VitImage.Decode(original).Pixels.ToArray(), VitImage.Decode(damaged).Pixels.ToArray());
    }

    [Fact]
    public void Tables_only_stream_fails()
    {
        byte[] tablesOnly = [0xFF, 0xD8, 0xFF, 0xD9];
        var e = Assert.Throws<VitImageException>(() => VitImage.Decode(tablesOnly, "t.jpg"));
        Assert.Contains("JPEG", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Garbage_after_the_start_marker_fails()
    {
        byte[] data = [0xFF, 0xD8, 0xFF, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
        var e = Assert.Throws<VitImageException>(() => VitImage.Decode(data, "junk.jpg"));
        Assert.Contains("JPEG", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Damaged_entropy_data_never_escapes_as_another_exception()
    {
        byte[] original = ImagingFixtures.Bytes("rgb_61x43_444.jpg");
        var rng = new Random(42);
        for (int round = 0; round < 100; round++)
        {
            byte[] data = (byte[])original.Clone();
            for (int c = 0; c < 3; c++)
            {
                data[2 + rng.Next(data.Length - 2)] = (byte)rng.Next(256);
            }
            try
            {
                VitImage image = VitImage.Decode(data, "fuzz.jpg");
                Assert.Equal(image.Width * image.Height * image.Channels, image.Pixels.Length);
            }
            catch (VitImageException)
            {
            }
        }
    }
}
