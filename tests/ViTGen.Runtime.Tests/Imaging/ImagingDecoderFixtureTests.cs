using Xunit;
using Xunit.Abstractions;

namespace ViTGen.Tests.Imaging;

/// <summary>Every fixture decodes to exactly the pixels PIL produced (JPEG too: the managed decoder does libjpeg-turbo's arithmetic).</summary>
public sealed class ImagingDecoderFixtureTests(ITestOutputHelper output)
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var image in ImagingFixtures.Images)
        {
            data.Add(image.File);
        }
        return data;
    }

    [Fact]
    public void Index_lists_every_kind_of_file()
    {
        Assert.True(ImagingFixtures.Images.Count >= 25);
        foreach (string ext in new[] { ".png", ".ppm", ".pgm", ".jpg" })
        {
            Assert.Contains(ImagingFixtures.Images, i => i.File.EndsWith(ext, StringComparison.Ordinal));
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Decodes_like_PIL(string file)
    {
        var expected = ImagingFixtures.Image(file);
        byte[] want = ImagingFixtures.Bytes(expected.Pixels);

        VitImage image = VitImage.Load(ImagingFixtures.PathOf(file));

        Assert.Equal((expected.Width, expected.Height, expected.Channels), (image.Width, image.Height, image.Channels));
        ReadOnlySpan<byte> got = image.Pixels.Span;
        Assert.Equal(want.Length, got.Length);
        int maxDiff = 0, differing = 0;
        for (int i = 0; i < want.Length; i++)
        {
            int d = Math.Abs(want[i] - got[i]);
            maxDiff = Math.Max(maxDiff, d);
            differing += d != 0 ? 1 : 0;
        }
        output.WriteLine($"{file}: max difference {maxDiff}, {differing} of {want.Length} samples differ");
        // JPEG included: islow IDCT, fancy upsampling and YCbCr conversion are libjpeg-turbo's, integer for integer.
        Assert.True(maxDiff == 0, $"{file}: max difference {maxDiff}, {differing} samples differ");
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Decode_from_memory_equals_Load(string file)
    {
        byte[] bytes = ImagingFixtures.Bytes(file);
        VitImage fromMemory = VitImage.Decode(bytes, file);
        VitImage fromFile = VitImage.Load(ImagingFixtures.PathOf(file));
        Assert.Equal(fromFile.Pixels.ToArray(), fromMemory.Pixels.ToArray());
    }

    [Fact]
    public void Refused_files_say_why()
    {
        Assert.NotEmpty(ImagingFixtures.Rejects);
        foreach (var reject in ImagingFixtures.Rejects)
        {
            var e = Assert.Throws<VitImageException>(() => VitImage.Load(ImagingFixtures.PathOf(reject.File)));
            Assert.Contains(reject.MessageContains, e.Message, StringComparison.Ordinal);
            Assert.Contains(reject.File, e.Message, StringComparison.Ordinal);
        }
    }
}
