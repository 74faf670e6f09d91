using Xunit;

namespace ViTGen.Tests.Imaging;

public sealed class ImagingJpegTests
{
    /// <summary>The file with its frame header (SOF0) changed by <paramref name="edit"/>, which gets the marker's offset.</summary>
    private static byte[] WithFrameHeader(string file, Action<byte[], int> edit)
    {
        byte[] data = ImagingFixtures.Bytes(file);
        int sof = data.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]);
        Assert.True(sof > 0);
        edit(data, sof);
        return data;
    }

    private static void SetSize(byte[] data, int sof, int width, int height)
    {
        data[sof + 5] = (byte)(height >> 8);
        data[sof + 6] = (byte)height;
        data[sof + 7] = (byte)(width >> 8);
        data[sof + 8] = (byte)width;
    }

    [Theory]
    [InlineData(65000, 65000, "exceed the limit")]
    [InlineData(65535, 65535, "exceed the limit")] // the header check comes first
    [InlineData(65535, 1, "unsupported JPEG")] // libjpeg's own limit: 65500 pixels a side
    [InlineData(16000, 16000, "exceed the limit")] // over VitImageOptions.DefaultMaxPixels
    [InlineData(12000, 12000, "coded blocks")] // under the pixel limit, but far more blocks than 1.5 kB can code
    public void Huge_declared_dimensions_are_refused_before_allocating(int width, int height, string message)
    {
        foreach (string file in new[] { "gray_64x48.jpg", "rgb_192x144_q90.jpg" })
        {
            byte[] data = WithFrameHeader(file, (d, sof) => SetSize(d, sof, width, height));
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<VitImageException>(() => VitImage.Decode(data, file));
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Contains(message, e.Message, StringComparison.Ordinal);
            Assert.Contains(file, e.Message, StringComparison.Ordinal);
            Assert.True(allocated < 4 << 20, $"{file}: {allocated} bytes allocated before refusing {width}x{height}");
        }
    }

    [Fact]
    public void Twelve_bit_and_lossless_jpegs_are_unsupported()
    {
        byte[] twelveBit = WithFrameHeader("gray_64x48.jpg", (d, sof) => d[sof + 4] = 12);
        var e = Assert.Throws<VitImageException>(() => VitImage.Decode(twelveBit, "deep.jpg"));
        Assert.Contains("unsupported JPEG", e.Message, StringComparison.Ordinal);
        Assert.Contains("12", e.Message, StringComparison.Ordinal);

        byte[] lossless = WithFrameHeader("gray_64x48.jpg", (d, sof) => d[sof + 1] = 0xC3);
        e = Assert.Throws<VitImageException>(() => VitImage.Decode(lossless, "lossless.jpg"));
        Assert.Contains("unsupported JPEG", e.Message, StringComparison.Ordinal);
        Assert.Contains("lossless.jpg", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Progressive_jpeg_decodes_like_the_baseline_path()
    {
        VitImage image = VitImage.Load(ImagingFixtures.PathOf("rgb_80x60_progressive.jpg"));
        Assert.Equal((80, 60, 3), (image.Width, image.Height, image.Channels));
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
