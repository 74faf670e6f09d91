using System.Text.Json;

namespace ViTGen.Cli.Tests;

/// <summary>
/// <c>vitgen attention</c>, <c>vitgen features</c> and <c>vitgen inspect --positions</c> on the bundled Fashion-MNIST
/// model: the pictures are valid PNGs of the documented sizes that are not blank, and the numbers agree with the
/// library calls they wrap.
/// </summary>
[Collection(nameof(Console))]
public sealed class ExplainCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("vitgen-explain-tests").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static int DistinctColors(VitImage image)
    {
        var pixels = image.Pixels.Span;
        var colors = new HashSet<int>();
        for (int i = 0; i < pixels.Length; i += 3) colors.Add(pixels[i] << 16 | pixels[i + 1] << 8 | pixels[i + 2]);
        return colors.Count;
    }

    [Fact]
    public void Attention_writes_a_heat_map_per_sample_and_a_distance_chart()
    {
        var result = CliRunner.Run("attention", "--out", _directory, "--distance");
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.Error);
        var maps = Directory.GetFiles(_directory, "*.rollout.png");
        Assert.Equal(8, maps.Length); // the bundled samples
        foreach (var map in maps)
        {
            var image = VitImage.Load(map);
            // 28 pixels at 9x, twice, with a gap between: the model's view and the view under the map.
            Assert.Equal((2 * 252 + 7, 252, 3), (image.Width, image.Height, image.Channels));
            Assert.True(DistinctColors(image) > 50, $"{map} looks blank");
        }
        var chart = VitImage.Load(Path.Combine(_directory, "attention-distance.png"));
        Assert.True(DistinctColors(chart) >= 4);
        Assert.Contains(result.OutLines, l => l.StartsWith("block  4:", StringComparison.Ordinal)); // depth 4
    }

    [Fact]
    public void Attention_of_one_layer_and_bad_layers()
    {
        var result = CliRunner.Run("attention", "--out", _directory, "--layer", "1");
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(8, Directory.GetFiles(_directory, "*.layer1.png").Length);

        foreach (var bad in new[] { "0", "5", "-1" })
        {
            var refused = CliRunner.Run("attention", "--out", _directory, "--layer", bad);
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains("--layer must be between 1 and 4", refused.Error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Attention_reports_unreadable_images_and_goes_on()
    {
        string broken = Path.Combine(_directory, "broken.png");
        File.WriteAllBytes(broken, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        var result = CliRunner.Run("attention", "--out", _directory, broken);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("broken.png: error:", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Features_prints_the_pooled_embedding_of_each_sample()
    {
        var result = CliRunner.Run("features", "--json");
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(8, result.OutLines.Length);
        foreach (var line in result.OutLines)
        {
            using var json = JsonDocument.Parse(line);
            var features = json.RootElement.GetProperty("features").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.Equal(64, features.Length); // the bundled model's dim
            Assert.All(features, f => Assert.True(double.IsFinite(f)));
            Assert.Equal(Math.Sqrt(features.Sum(f => f * f)), json.RootElement.GetProperty("norm").GetDouble(), 4);
        }
    }

    [Fact]
    public void Inspect_draws_the_position_embedding_similarities()
    {
        string weights = Path.Combine(_directory, "model.safetensors");
        using (var stream = typeof(Program).Assembly.GetManifestResourceStream("fashion-mnist/model.safetensors")!)
        using (var file = File.Create(weights)) stream.CopyTo(file);
        string png = Path.Combine(_directory, "positions.png");

        var result = CliRunner.Run("inspect", weights, "--positions", png);

        Assert.Equal(0, result.ExitCode);
        var image = VitImage.Load(png);
        // The 7x7 grid of 7x7 maps, 3 pixels a cell, 2 pixels between maps.
        Assert.Equal((7 * 21 + 8 * 2, 7 * 21 + 8 * 2), (image.Width, image.Height));
        Assert.True(DistinctColors(image) > 20);
    }
}
