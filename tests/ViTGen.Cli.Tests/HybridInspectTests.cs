using System.Text.Json;

namespace ViTGen.Cli.Tests;

/// <summary>
/// <c>vitgen inspect</c> on hybrid ViT checkpoints: it reports the ResNetV2 trunk, the image (not the feature map) and
/// an attribute with <c>hybridLayers</c> and <c>hybridWidth</c>; a malformed trunk is a clear error or note.
/// </summary>
[Collection(nameof(Console))]
public sealed class HybridInspectTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("vitgen-hybrid-inspect").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "hybrid", name + ".safetensors");

    /// <summary>
    /// The fixtures of tests/fixtures/make_hybrid_fixtures.py, with the values of its FIXTURES configurations:
    /// layers, width, patch, and the image size it was made at. The rest is derived by hand from timm's geometry
    /// (every 'same'-padded stride-2 layer rounds up, so n pixels leave ceil(n / stride) after the trunk):
    /// feature channels are the width (stem only) or 4 · width · 2^(stages - 1); the grid is the script's
    /// trunk sizes (its README) over the patch; the image sizes giving that grid run from
    /// (grid · patch - 1) · stride + 1 to grid · patch · stride.
    /// </summary>
    public static TheoryData<string, int[], int, int, int, int, int, int, int, int> Fixtures => new()
    {
        // name, layers, width, patch, classes, config image size, feature channels, grid, smallest, largest
        { "hybrid_stem", [], 32, 2, 10, 72, 32, 9, 69, 72 },      // 72 -> 36 -> 18; 18 / 2 = 9; stride 4: 4·17+1 .. 4·18
        { "hybrid_stem_w64", [], 64, 1, 7, 50, 64, 13, 49, 52 },  // 50 -> 25 -> 13; stride 4: 4·12+1 .. 4·13
        { "hybrid_r1", [1], 64, 1, 5, 50, 256, 13, 49, 52 },      // stage 0 has stride 1: as above, 4·64 channels
        { "hybrid_r21", [2, 1], 32, 1, 10, 72, 256, 9, 65, 72 },  // 72 -> 36 -> 18 -> 18 -> 9; stride 8: 8·8+1 .. 8·9
        { "hybrid_r111", [1, 1, 1], 32, 1, 6, 33, 512, 3, 33, 48 }, // 33 -> 17 -> 9 -> 9 -> 5 -> 3; stride 16: 16·2+1 .. 16·3
    };

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void JsonReportsTheTrunk(string name, int[] layers, int width, int patch, int classes, int configImageSize,
        int featureChannels, int grid, int smallest, int largest)
    {
        var result = CliRunner.Run("inspect", Fixture(name), "--json");
        Assert.Equal("", result.Error);
        Assert.Equal(0, result.ExitCode);
        var root = JsonDocument.Parse(result.Out).RootElement;
        var a = root.GetProperty("architecture");
        Assert.Equal(patch, a.GetProperty("patch").GetInt32());
        Assert.Equal(3, a.GetProperty("channels").GetInt32());
        Assert.Equal(classes, a.GetProperty("classes").GetInt32());
        var hybrid = a.GetProperty("hybrid");
        Assert.Equal(layers, hybrid.GetProperty("layers").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(width, hybrid.GetProperty("width").GetInt32());
        Assert.Equal(featureChannels, hybrid.GetProperty("feature_channels").GetInt32());
        Assert.Equal(grid * patch, hybrid.GetProperty("feature_size").GetInt32());
        var pos = a.GetProperty("pos_embed");
        Assert.Equal([grid, grid], pos.GetProperty("grid").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(largest, a.GetProperty("image_size").GetInt32());
        Assert.Equal(largest, pos.GetProperty("image_size").GetInt32());
        Assert.Equal(smallest, pos.GetProperty("smallest_image_size").GetInt32());
        Assert.InRange(configImageSize, smallest, largest);
        string hybridArguments = (layers.Length == 0 ? "hybridLayers: new int[0]" : "hybridLayers: new[] { " + string.Join(", ", layers) + " }")
            + (width == 64 ? "" : $", hybridWidth: {width}");
        // heads: 1 is inspect's placeholder for dim 32 (weights do not record heads).
        Assert.Equal($"[VitModel(patch: {patch}, dim: 32, depth: 1, heads: 1, imageSize: {largest}, classes: {classes}, {hybridArguments})]",
            root.GetProperty("attribute").GetString());
        // Every tensor is one the attribute's model reads: no missing or unread-tensor notes.
        Assert.DoesNotContain(root.GetProperty("notes").EnumerateArray(), n => n.GetString()!.Contains("tensor", StringComparison.Ordinal));
    }

    [Fact]
    public void TextReportsTheTrunkAndTheImageSizeRange()
    {
        var result = CliRunner.Run("inspect", Fixture("hybrid_r21"));
        Assert.Equal(0, result.ExitCode);
        string[] lines = result.OutLines;
        Assert.Contains("channels     3", lines);
        Assert.Contains("imageSize    72 (the largest of 65..72, which all give the same grid)", lines);
        Assert.Contains("hybridLayers [2, 1] (bottlenecks per ResNetV2 stage)", lines);
        Assert.Contains("hybridWidth  32 (the stem's channels)", lines);
        Assert.Contains("featureMap   256 channels, 9 x 9 (the trunk's stride is 8; the patch embedding reads this map)", lines);
        Assert.Contains(lines, l => l.StartsWith("posEmbed     9 x 9 grid + 1 prefix row: trained at 65 to 72 pixels square", StringComparison.Ordinal));
        Assert.Contains("[VitModel(patch: 1, dim: 32, depth: 1, heads: 1, imageSize: 72, classes: 10, hybridLayers: new[] { 2, 1 }, hybridWidth: 32)]", lines);
    }

    [Fact]
    public void StemOnlyTextSaysSo()
    {
        var result = CliRunner.Run("inspect", Fixture("hybrid_stem"));
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("hybridLayers [] (the stem only)", result.OutLines);
        Assert.Contains("featureMap   32 channels, 18 x 18 (the trunk's stride is 4; the patch embedding reads this map)", result.OutLines);
    }

    /// <summary>hybrid_r21's tensors, changed by <paramref name="change"/>, written to a new file.</summary>
    private string Malformed(Func<List<(string Name, long[] Shape, float[] Data)>, List<(string Name, long[] Shape, float[] Data)>> change)
    {
        var tensors = new List<(string Name, long[] Shape, float[] Data)>();
        using (var file = SafeTensorsFile.Open(Fixture("hybrid_r21")))
        {
            foreach (var t in file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                var data = new float[t.ElementCount];
                file.ReadFloat32(t.Name, data);
                tensors.Add((t.Name, t.Shape.ToArray(), data));
            }
        }
        string path = Path.Combine(_directory, "malformed.safetensors");
        ResampledCheckpointTests.WriteSafeTensors(path, change(tensors));
        return path;
    }

    private static (string, long[], float[]) Filled(string name, params long[] shape)
        => (name, shape, new float[shape.Aggregate(1L, (a, b) => a * b)]);

    private const string Stage = "patch_embed.backbone.stages.";

    [Fact]
    public void AMissingStageTensorIsANoteNamingIt()
    {
        string path = Malformed(ts => ts.Where(t => t.Name != Stage + "1.blocks.0.conv2.weight").ToList());
        var result = CliRunner.Run("inspect", path);
        Assert.Equal("", result.Error);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("hybridLayers [2, 1] (bottlenecks per ResNetV2 stage)", result.OutLines);
        Assert.Contains(result.OutLines, l => l.StartsWith("- a model with this attribute would read 1 tensor the checkpoint lacks: 'patch_embed.backbone.stages.1.blocks.0.conv2.weight'", StringComparison.Ordinal));
    }

    public static TheoryData<string, string> Errors => new()
    {
        { "width", "'patch_embed.backbone.stages.0.blocks.0.conv1.weight' has shape [40, 32, 1, 1], but a ResNetV2 trunk of width 32 (from the stem convolution) has [32, 32, 1, 1] there: the trunk's widths are inconsistent" },
        { "stage-gap", "the ResNetV2 trunk has tensors for stage 1 but none for stage 0 ('patch_embed.backbone.stages.0.*')" },
        { "block-gap", "stage 0 of the ResNetV2 trunk has tensors for block 99999999 but none for block 2 ('patch_embed.backbone.stages.0.blocks.2.*')" },
        { "fifth-stage", "'patch_embed.backbone.stages.4.blocks.0.conv1.weight' belongs to stage 4; a hybrid trunk has at most 4 stages" },
        { "no-stem", "has ResNetV2 trunk tensors ('patch_embed.backbone.*') but no stem convolution 'patch_embed.backbone.stem.conv.weight'" },
        { "stem-kernel", "the stem convolution 'patch_embed.backbone.stem.conv.weight' has shape [32, 3, 3, 3]; expected [width, channels, 7, 7]" },
        { "proj-channels", "the patch embedding reads 128 channels, but a ResNetV2 trunk of width 32 with 2 stages ends with 256: the trunk's widths are inconsistent" },
        { "bad-name", "'patch_embed.backbone.stages.x.blocks.0.conv1.weight' is not a ResNetV2 bottleneck tensor" },
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public void AMalformedTrunkIsAClearError(string kind, string message)
    {
        string path = Malformed(ts => kind switch
        {
            "width" => ts.Select(t => t.Name == Stage + "0.blocks.0.conv1.weight" ? Filled(t.Name, 40, 32, 1, 1) : t).ToList(),
            "stage-gap" => ts.Where(t => !t.Name.StartsWith(Stage + "0.", StringComparison.Ordinal)).ToList(),
            "block-gap" => [.. ts, Filled(Stage + "0.blocks.99999999.conv1.weight", 32, 128, 1, 1)],
            "fifth-stage" => [.. ts, Filled(Stage + "4.blocks.0.conv1.weight", 1, 1, 1, 1)],
            "no-stem" => ts.Where(t => t.Name != "patch_embed.backbone.stem.conv.weight").ToList(),
            "stem-kernel" => ts.Select(t => t.Name == "patch_embed.backbone.stem.conv.weight" ? Filled(t.Name, 32, 3, 3, 3) : t).ToList(),
            "proj-channels" => ts.Select(t => t.Name == "patch_embed.proj.weight" ? Filled(t.Name, 32, 128, 1, 1) : t).ToList(),
            "bad-name" => [.. ts, Filled(Stage + "x.blocks.0.conv1.weight", 1)],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        });
        foreach (string[] args in new[] { new[] { "inspect", path }, new[] { "inspect", path, "--json" } })
        {
            var result = CliRunner.Run(args);
            Assert.Equal(2, result.ExitCode);
            Assert.Equal("", result.Out);
            Assert.StartsWith("error: ", result.Error, StringComparison.Ordinal);
            Assert.Contains(message, result.Error, StringComparison.Ordinal);
        }
    }
}
