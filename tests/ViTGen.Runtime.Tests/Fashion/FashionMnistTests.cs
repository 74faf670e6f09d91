using System.Text.Json;
using Xunit.Abstractions;

namespace ViTGen.Tests.Fashion;

/// <summary>The bundled model (samples/fashion-mnist), compiled from the attribute its model.json names.</summary>
[VitModel(patch: 4, dim: 64, depth: 4, heads: 4, imageSize: 28, channels: 1, classes: 10, mlpDim: 128)]
public partial class FashionMnistModel;

/// <summary>
/// The trained model end to end against PyTorch: 1000 test-set images (tests/fixtures/fashion/subset.safetensors,
/// written by samples/fashion-mnist/export.py with PyTorch's float64 logits), through the runtime's
/// preprocessing and the compiled model.
/// </summary>
public sealed class FashionMnistTests(ITestOutputHelper output)
{
    private static readonly string ModelDirectory = Path.Combine(AppContext.BaseDirectory, "fixtures", "fashion-model");
    private static readonly string SubsetPath = Path.Combine(AppContext.BaseDirectory, "fixtures", "fashion", "subset.safetensors");

    private sealed record Subset(byte[] Images, long[] Labels, double[] Logits, int Count);

    private static Subset ReadSubset()
    {
        using var file = SafeTensorsFile.Open(SubsetPath);
        var labels = file.ReadInt64("labels");
        var logits = new double[labels.Length * 10];
        file.ReadFloat64("logits", logits);
        return new Subset(file.ReadBytes("images"), labels, logits, labels.Length);
    }

    private static VitPreprocessing Preprocessing()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(ModelDirectory, "model.json")));
        float mean = json.RootElement.GetProperty("mean")[0].GetSingle();
        float std = json.RootElement.GetProperty("std")[0].GetSingle();
        return new VitPreprocessing(FashionMnistModel.ImageSize, 1.0, VitInterpolation.Bicubic, [mean], [std]);
    }

    private float[] Classify(Subset subset)
    {
        var preprocessing = Preprocessing();
        var pixels = new float[subset.Count * FashionMnistModel.InputSize];
        const int Pixels = 28 * 28;
        for (int i = 0; i < subset.Count; i++)
        {
            var image = new VitImage(28, 28, 1, subset.Images.AsMemory(i * Pixels, Pixels));
            preprocessing.Apply(image, pixels.AsSpan(i * FashionMnistModel.InputSize, FashionMnistModel.InputSize));
        }
        using var model = FashionMnistModel.Load(Path.Combine(ModelDirectory, "model.safetensors"));
        var logits = Enumerable.Repeat(float.NaN, subset.Count * FashionMnistModel.OutputSize).ToArray();
        model.Forward(pixels, logits, subset.Count);
        return logits;
    }

    [Fact]
    public void LogitsMatchPyTorchOnTheTestSubset()
    {
        var subset = ReadSubset();
        var logits = Classify(subset);
        double error = Parity.Numerics.RelativeL2(logits, subset.Logits);
        output.WriteLine($"{subset.Count} images: relative L2 {error:E2} against PyTorch float64");
        Parity.Numerics.AssertClose(logits, subset.Logits, 1e-4, out _);
    }

    [Fact]
    public void AccuracyEqualsPyTorchOnTheTestSubset()
    {
        var subset = ReadSubset();
        var logits = Classify(subset);
        int ours = 0, pytorch = 0;
        for (int i = 0; i < subset.Count; i++)
        {
            if (ArgMax(logits.AsSpan(i * 10, 10)) == subset.Labels[i]) ours++;
            if (ArgMax(subset.Logits.AsSpan(i * 10, 10)) == subset.Labels[i]) pytorch++;
        }
        output.WriteLine($"accuracy on {subset.Count} test images: ViTGen {ours / (double)subset.Count:P1}, PyTorch {pytorch / (double)subset.Count:P1}");
        Assert.Equal(pytorch, ours);
    }

    [Fact]
    public void PreprocessingOfA28PixelImageIsTheNormalizationAlone()
    {
        // crop_pct 1.0 at the native size: PIL's resize is a copy, so the transform is (x / 255 - mean) / std.
        var subset = ReadSubset();
        var preprocessing = Preprocessing();
        var image = new VitImage(28, 28, 1, subset.Images.AsMemory(0, 784));
        var result = preprocessing.Apply(image);
        for (int i = 0; i < 784; i++)
            Assert.Equal((subset.Images[i] / 255f - preprocessing.Mean[0]) / preprocessing.Std[0], result[i], 5);
    }

    private static int ArgMax<T>(ReadOnlySpan<T> values) where T : IComparable<T>
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i].CompareTo(values[best]) > 0) best = i;
        return best;
    }
}
