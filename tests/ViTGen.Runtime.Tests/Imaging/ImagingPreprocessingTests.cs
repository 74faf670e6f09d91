using Xunit;

namespace ViTGen.Tests.Imaging;

public sealed class ImagingPreprocessingTests
{
    private static VitImage Noise(int width, int height, int channels, int seed)
    {
        var pixels = new byte[width * height * channels];
        new Random(seed).NextBytes(pixels);
        return new VitImage(width, height, channels, pixels);
    }

    [Fact]
    public void Presets_match_timm()
    {
        Assert.Equal((224, 256, 3), (VitPreprocessing.ImageNetDefault.ImageSize, VitPreprocessing.ImageNetDefault.ResizeSize, VitPreprocessing.ImageNetDefault.Channels));
        Assert.Equal(248, VitPreprocessing.Inception.ResizeSize);
        Assert.Equal(224, VitPreprocessing.Clip.ResizeSize);
        Assert.Equal(VitInterpolation.Bicubic, VitPreprocessing.Inception.Interpolation);
        Assert.Equal(0.5f, VitPreprocessing.Inception.Std[2]);
        Assert.Equal((float)0.229, VitPreprocessing.ImageNetDefault.Std[0]);
        Assert.Equal((float)0.48145466, VitPreprocessing.Clip.Mean[0]);
        Assert.Equal(3 * 224 * 224, VitPreprocessing.Clip.OutputLength);
        Assert.Equal(0.875, VitPreprocessing.ImageNetDefault.CropPct);
    }

    [Theory]
    [InlineData(333, 250, 248, 330, 248)] // int(248 * 333 / 250) = int(330.336)
    [InlineData(250, 333, 248, 248, 330)]
    [InlineData(100, 100, 256, 256, 256)]
    [InlineData(5, 7, 54, 54, 75)] // int(54 * 7 / 5) = int(75.6)
    [InlineData(3000, 1, 10, 30000, 10)]
    public void Resized_size_follows_torchvision(int width, int height, int shorter, int expectedWidth, int expectedHeight)
    {
        var p = VitPreprocessing.Timm(shorter, 1.0, VitInterpolation.Bilinear, VitPreprocessing.ImageNetMean, VitPreprocessing.ImageNetStd);
        Assert.Equal((expectedWidth, expectedHeight), p.ResizedSize(width, height));
    }

    [Fact]
    public void Crop_pct_gives_the_floor()
    {
        Assert.Equal(248, VitPreprocessing.Timm(224, 0.9, VitInterpolation.Bicubic, [0.5f], [0.5f]).ResizeSize);
        Assert.Equal(438, VitPreprocessing.Timm(384, 0.875, VitInterpolation.Bicubic, [0.5f], [0.5f]).ResizeSize); // 438.857
        Assert.Equal(235, VitPreprocessing.Timm(224, 0.95, VitInterpolation.Bicubic, [0.5f], [0.5f]).ResizeSize); // 235.789
    }

    [Fact]
    public void Arguments_are_validated()
    {
        float[] m = [0.5f, 0.5f, 0.5f];
        Assert.Throws<ArgumentOutOfRangeException>(() => VitPreprocessing.Timm(0, 1, VitInterpolation.Bicubic, m, m));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitPreprocessing.Timm(224, 0, VitInterpolation.Bicubic, m, m));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitPreprocessing.Timm(224, double.NaN, VitInterpolation.Bicubic, m, m));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitPreprocessing.Timm(224, 1e-6, VitInterpolation.Bicubic, m, m));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitPreprocessing.Timm(224, 1, (VitInterpolation)17, m, m));
        Assert.Throws<ArgumentException>(() => VitPreprocessing.Timm(224, 1, VitInterpolation.Bicubic, [0.5f, 0.5f], [0.5f, 0.5f]));
        Assert.Throws<ArgumentException>(() => VitPreprocessing.Timm(224, 1, VitInterpolation.Bicubic, m, [0.5f]));
        Assert.Throws<ArgumentException>(() => VitPreprocessing.Timm(224, 1, VitInterpolation.Bicubic, m, [0.5f, 0f, 0.5f]));
        Assert.Throws<ArgumentException>(() => VitPreprocessing.Timm(224, 1, VitInterpolation.Bicubic, [0.5f, float.NaN, 0.5f], m));
        Assert.Throws<ArgumentException>(() => VitPreprocessing.Clip.Apply(Noise(4, 4, 3, 1), new float[10]));
        Assert.Throws<ArgumentNullException>(() => VitPreprocessing.Clip.Apply(null!));
    }

    [Fact]
    public void Gray_images_are_replicated_for_RGB_models()
    {
        VitImage gray = Noise(37, 29, 1, 2);
        var rgbPixels = new byte[37 * 29 * 3];
        for (int i = 0; i < gray.Pixels.Length; i++)
        {
            rgbPixels[3 * i] = rgbPixels[3 * i + 1] = rgbPixels[3 * i + 2] = gray.Pixels.Span[i];
        }
        var p = VitPreprocessing.Timm(24, 0.875, VitInterpolation.Bicubic, VitPreprocessing.ImageNetMean, VitPreprocessing.ImageNetStd);
        Assert.Equal(p.Apply(new VitImage(37, 29, 3, rgbPixels)), p.Apply(gray));
    }

    [Fact]
    public void RGB_images_are_converted_with_PILs_luma_for_gray_models()
    {
        byte[] rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30];
        var p = VitPreprocessing.Timm(2, 1.0, VitInterpolation.Nearest, [0f], [1f]);
        float[] output = p.Apply(new VitImage(2, 2, 3, rgb));
        // PIL 'L': (R*19595 + G*38470 + B*7471 + 0x8000) >> 16
        Assert.Equal(new[] { 76 / 255f, 150 / 255f, 29 / 255f, 124 / 255f }, output);
    }

    [Fact]
    public void Crop_larger_than_the_resized_image_pads_with_black()
    {
        var p = VitPreprocessing.Timm(10, 2.0, VitInterpolation.Bilinear, [0.25f], [0.5f]); // resize to 5, pad to 10
        float[] output = p.Apply(new VitImage(5, 5, 1, Enumerable.Repeat((byte)255, 25).ToArray()));
        float black = (0f - 0.25f) / 0.5f, white = (1f - 0.25f) / 0.5f;
        for (int y = 0; y < 10; y++)
        {
            for (int x = 0; x < 10; x++)
            {
                bool inside = x is >= 2 and < 7 && y is >= 2 and < 7; // (10 - 5) // 2 = 2 before, 3 after
                Assert.Equal(inside ? white : black, output[y * 10 + x]);
            }
        }
    }

    [Fact]
    public void Identity_resize_and_crop_keep_pixels()
    {
        VitImage image = Noise(8, 8, 3, 3);
        var p = VitPreprocessing.Timm(8, 1.0, VitInterpolation.Bicubic, [0f, 0f, 0f], [1f, 1f, 1f]);
        float[] output = p.Apply(image);
        for (int c = 0; c < 3; c++)
        {
            for (int i = 0; i < 64; i++)
            {
                Assert.Equal(image.Pixels.Span[3 * i + c] / 255f, output[c * 64 + i]);
            }
        }
    }

    [Theory]
    [InlineData(VitInterpolation.Bicubic)]
    [InlineData(VitInterpolation.Bilinear)]
    [InlineData(VitInterpolation.Lanczos)]
    [InlineData(VitInterpolation.Nearest)]
    [InlineData(VitInterpolation.Box)]
    [InlineData(VitInterpolation.Hamming)]
    public void Resizing_a_window_equals_cropping_the_full_resize(VitInterpolation interpolation)
    {
        var rng = new Random((int)interpolation + 10);
        for (int round = 0; round < 40; round++)
        {
            int width = rng.Next(1, 60), height = rng.Next(1, 60), channels = rng.Next(2) == 0 ? 1 : 3;
            int outWidth = rng.Next(1, 90), outHeight = rng.Next(1, 90);
            VitImage image = Noise(width, height, channels, round);
            byte[] full = Resampler.ResizeWindow(image.Pixels.Span, width, height, channels, outWidth, outHeight, interpolation,
                0, 0, outWidth, outHeight);
            int left = rng.Next(outWidth), top = rng.Next(outHeight);
            int w = rng.Next(outWidth - left + 1), h = rng.Next(outHeight - top + 1);
            byte[] window = Resampler.ResizeWindow(image.Pixels.Span, width, height, channels, outWidth, outHeight, interpolation,
                left, top, w, h);
            for (int y = 0; y < h; y++)
            {
                Assert.Equal(
                    full.AsSpan(((top + y) * outWidth + left) * channels, w * channels).ToArray(),
                    window.AsSpan(y * w * channels, w * channels).ToArray());
            }
        }
    }

    [Fact]
    public void Constant_images_stay_constant_under_every_filter()
    {
        var image = new VitImage(23, 17, 3, Enumerable.Repeat((byte)173, 23 * 17 * 3).ToArray());
        foreach (VitInterpolation interpolation in Enum.GetValues<VitInterpolation>())
        {
            foreach ((int w, int h) in new[] { (5, 4), (23, 40), (70, 17), (1, 1) })
            {
                byte[] output = Resampler.ResizeWindow(image.Pixels.Span, 23, 17, 3, w, h, interpolation, 0, 0, w, h);
                Assert.All(output, b => Assert.Equal(173, b));
            }
        }
    }
}
