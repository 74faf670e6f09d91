using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace ViTGen.Tests.Imaging;

/// <summary>Runs alone, so that <see cref="GC.GetTotalAllocatedBytes(bool)"/> counts only the decoder's allocations.</summary>
[CollectionDefinition(nameof(HostileImageTests), DisableParallelization = true)]
public sealed class HostileImageCollection;

[Collection(nameof(HostileImageTests))]
public sealed class HostileImageTests(ITestOutputHelper output)
{
    /// <summary>No hostile input may make the decoder allocate more than this before refusing it.</summary>
    private const long MaxAllocation = 16 << 20;

    public static TheoryData<string> CaseNames()
    {
        var names = new TheoryData<string>();
        foreach (HostileImages.Case c in HostileImages.All())
        {
            names.Add(c.Name);
        }
        return names;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Hostile_input_is_refused_with_a_VitImageException_and_bounded_allocation(string name)
    {
        HostileImages.Case c = HostileImages.All().Single(x => x.Name == name);
        const string source = "hostile-input.bin";
        Exception? thrown = null;
        long before = GC.GetTotalAllocatedBytes(true);
        try
        {
            VitImage.Decode(c.Data, source);
        }
        catch (Exception e)
        {
            thrown = e;
        }
        long allocated = GC.GetTotalAllocatedBytes(true) - before;

        Assert.NotNull(thrown);
        var error = Assert.IsType<VitImageException>(thrown);
        output.WriteLine($"{c.Name} ({c.Data.Length} bytes): {allocated} bytes allocated: {error.Message}");
        Assert.Contains(source, error.Message, StringComparison.Ordinal);
        Assert.Contains(c.MessageContains, error.Message, StringComparison.Ordinal);
        Assert.True(allocated < MaxAllocation, $"{c.Name}: {allocated} bytes allocated before refusing it");
    }

    [Fact]
    public void Bombs_name_the_file_the_declared_dimensions_the_pixel_count_and_the_limit()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vitgen-bomb-{Environment.ProcessId}.png");
        File.WriteAllBytes(path, HostileImages.PngBomb(16000, 16000));
        try
        {
            var e = Assert.Throws<VitImageException>(() => VitImage.Load(path));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains("16000x16000", e.Message, StringComparison.Ordinal);
            Assert.Contains("256,000,000 pixels", e.Message, StringComparison.Ordinal);
            Assert.Contains("178,956,970", e.Message, StringComparison.Ordinal);

            e = Assert.Throws<VitImageException>(() => VitImage.Load(path, new VitImageOptions { MaxPixels = 1000 }));
            Assert.Contains("limit of 1,000 pixels", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Every_format_in_the_corpus_has_bombs_truncations_and_bad_magic()
    {
        List<HostileImages.Case> all = HostileImages.All().ToList();
        Assert.Equal(all.Count, all.Select(c => c.Name).Distinct().Count());
        foreach (string format in new[] { "PNG", "JPEG", "PPM" })
        {
            Assert.Contains(all, c => c.Name.StartsWith(format, StringComparison.Ordinal) && c.IsBomb);
            Assert.Contains(all, c => c.Name.StartsWith(format, StringComparison.Ordinal) && c.Name.Contains("truncated", StringComparison.Ordinal));
            Assert.Contains(all, c => c.Name.StartsWith(format, StringComparison.Ordinal) && c.Name.Contains("wrong magic", StringComparison.Ordinal));
        }
    }

    private static byte[] Image(string format, int width, int height) => format switch
    {
        "png" => TestPng.SmallRgb(width, height),
        "ppm" => [.. System.Text.Encoding.ASCII.GetBytes($"P6 {width} {height} 255\n"), .. new byte[width * height * 3]],
        _ => WithJpegSize(ImagingFixtures.Bytes("gray_64x48.jpg"), width, height),
    };

    /// <summary>The 64x48 fixture with a smaller declared size: libjpeg decodes the top-left part and ignores the rest.</summary>
    private static byte[] WithJpegSize(byte[] jpeg, int width, int height)
    {
        int sof = jpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]);
        jpeg[sof + 5] = (byte)(height >> 8);
        jpeg[sof + 6] = (byte)height;
        jpeg[sof + 7] = (byte)(width >> 8);
        jpeg[sof + 8] = (byte)width;
        return jpeg;
    }

    [Theory]
    [InlineData("png")]
    [InlineData("ppm")]
    [InlineData("jpeg")]
    public void An_image_exactly_at_a_custom_limit_decodes_and_one_pixel_more_is_refused(string format)
    {
        var options = new VitImageOptions { MaxPixels = 100 };
        VitImage atLimit = VitImage.Decode(Image(format, 10, 10), "at-limit", options);
        Assert.Equal(100, atLimit.Width * atLimit.Height);
        VitImage tall = VitImage.Decode(Image(format, 1, 100), "tall", options);
        Assert.Equal(100, tall.Height);

        var e = Assert.Throws<VitImageException>(() => VitImage.Decode(Image(format, 1, 101), "over-limit", options));
        Assert.Contains("over-limit", e.Message, StringComparison.Ordinal);
        Assert.Contains("1x101 (101 pixels) exceed the limit of 100 pixels", e.Message, StringComparison.Ordinal);
        Assert.Throws<VitImageException>(() => VitImage.Decode(Image(format, 11, 10), "over-limit", options));

        // The default still accepts it; the hard cap VitImage.MaxPixels is unchanged.
        Assert.Equal(11, VitImage.Decode(Image(format, 11, 10), "default").Width);
    }

    [Fact]
    public void Options_validate_and_clamp_the_limit()
    {
        Assert.Equal(178_956_970, VitImageOptions.DefaultMaxPixels);
        Assert.Equal(VitImageOptions.DefaultMaxPixels, new VitImageOptions().MaxPixels);
        Assert.Equal(VitImageOptions.DefaultMaxPixels, VitImageOptions.Default.MaxPixels);
        Assert.Throws<ArgumentOutOfRangeException>(() => new VitImageOptions { MaxPixels = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new VitImageOptions { MaxPixels = -5 });
        var huge = new VitImageOptions { MaxPixels = long.MaxValue };
        Assert.Equal(long.MaxValue, huge.MaxPixels);
        Assert.Equal(VitImage.MaxPixels, huge.EffectiveMaxPixels);
        var e = Assert.Throws<VitImageException>(() => VitImage.Decode(HostileImages.PngBomb(1, (1u << 28) + 1), "tall.png", huge));
        Assert.Contains("268,435,456", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Decoding a 12-megapixel photo-like image allocates little more than the decoded pixels themselves:
    /// no buffer sized by the declared dimensions beyond the output (and, for JPEG, the component planes).
    /// </summary>
    [Theory]
    [InlineData("png", 1.1)] // the pixels only: IDAT is inflated in place, row by row
    [InlineData("jpeg", 1.8)] // the pixels and the Y, Cb, Cr planes (1.5 bytes a pixel at 4:2:0)
    [InlineData("progressive-jpeg", 3.5)] // also libjpeg's whole-image coefficient buffer (3 bytes a pixel at 4:2:0); measured 3.05
    public void A_12_megapixel_image_decodes_with_allocation_near_its_own_size(string format, double maxRatio)
    {
        const int width = 4000, height = 3000;
        byte[] encoded = format == "png"
            ? PhotoLike(width, height).EncodePng()
            : TestJpeg.Encode(PhotoLike(width, height), 90, progressive: format == "progressive-jpeg");
        GC.Collect();
        long before = GC.GetTotalAllocatedBytes(true);
        var clock = Stopwatch.StartNew();
        VitImage image = VitImage.Decode(encoded, $"photo.{format}");
        clock.Stop();
        long allocated = GC.GetTotalAllocatedBytes(true) - before;
        long decoded = image.Pixels.Length;
        double ratio = (double)allocated / decoded;
        output.WriteLine($"{format} {width}x{height}: {encoded.Length:N0} bytes encoded, {decoded:N0} bytes decoded, " +
            $"{allocated:N0} bytes allocated while decoding (ratio {ratio:F2}), {clock.ElapsedMilliseconds} ms");
        Assert.Equal(width * height * 3, decoded);
        Assert.True(ratio < maxRatio, $"{format}: decoding allocated {ratio:F2} x the decoded size");
    }

    /// <summary>Smooth gradients with a little noise: compresses like a photo, not like a flat fill.</summary>
    private static VitImage PhotoLike(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        var random = new Random(12);
        for (int y = 0, i = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int n = random.Next(8);
                pixels[i++] = (byte)((x * 255 / width + n) & 0xFF);
                pixels[i++] = (byte)((y * 255 / height + n) & 0xFF);
                pixels[i++] = (byte)(((x + y) * 128 / (width + height) + 64 + n) & 0xFF);
            }
        }
        return new VitImage(width, height, 3, pixels);
    }
}
