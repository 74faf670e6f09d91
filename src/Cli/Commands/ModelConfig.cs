using System.Text.Json;
using ViTGen.Cli.Models;

namespace ViTGen.Cli.Commands;

/// <summary>
/// A model directory's <c>model.json</c>: timm's VisionTransformer keyword arguments, the eval transform and
/// the labels. Parsed with JsonDocument (no reflection, so it survives NativeAOT trimming).
/// </summary>
internal sealed record ModelConfig(
    int ImageSize, int Patch, int Channels, int Classes, int Dim, int Depth, int Heads, int MlpDim,
    float[] Mean, float[] Std, double CropPct, VitInterpolation Interpolation, string[] Labels)
{
    /// <summary>
    /// The model of <c>--model DIR</c> (<c>DIR/model.json</c> and <c>DIR/model.safetensors</c>), or the bundled
    /// Fashion-MNIST model when <paramref name="directory"/> is null: its config and the path of its weights.
    /// </summary>
    public static (ModelConfig Config, string Weights) Open(string? directory)
    {
        if (directory is null)
        {
            using var bundled = BundledModel.Open("model.json");
            return (Parse(bundled, "bundled model.json"), BundledModel.ExtractWeights());
        }
        string jsonPath = Path.Combine(directory, "model.json");
        using var json = File.OpenRead(jsonPath);
        return (Parse(json, jsonPath), Path.Combine(directory, "model.safetensors"));
    }

    public static ModelConfig Parse(Stream json, string source)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            var timm = root.GetProperty("timm");
            int dim = timm.GetProperty("embed_dim").GetInt32();
            double ratio = timm.TryGetProperty("mlp_ratio", out var r) ? r.GetDouble() : 4.0;
            int classes = timm.TryGetProperty("num_classes", out var c) ? c.GetInt32() : 1000;
            var labels = root.TryGetProperty("labels", out var l) ? l.EnumerateArray().Select(e => e.GetString() ?? "").ToArray() : [];
            if (labels.Length == 0 && classes == 1000) labels = ImageNetLabels.Load();
            string interpolation = root.TryGetProperty("interpolation", out var i) ? i.GetString() ?? "bicubic" : "bicubic";
            return new ModelConfig(
                timm.GetProperty("img_size").GetInt32(), timm.GetProperty("patch_size").GetInt32(),
                timm.TryGetProperty("in_chans", out var ch) ? ch.GetInt32() : 3, classes, dim,
                timm.GetProperty("depth").GetInt32(), timm.GetProperty("num_heads").GetInt32(), (int)(dim * ratio),
                Floats(root, "mean", [0.485f, 0.456f, 0.406f]), Floats(root, "std", [0.229f, 0.224f, 0.225f]),
                root.TryGetProperty("crop_pct", out var crop) ? crop.GetDouble() : 0.875,
                interpolation.Equals("bilinear", StringComparison.OrdinalIgnoreCase) ? VitInterpolation.Bilinear : VitInterpolation.Bicubic,
                labels);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: not a valid model.json ({e.Message})", e);
        }
    }

    private static float[] Floats(JsonElement root, string name, float[] fallback)
        => root.TryGetProperty(name, out var array) ? array.EnumerateArray().Select(e => e.GetSingle()).ToArray() : fallback;

    /// <summary>The architecture the timm keyword arguments describe (the other arguments at timm's defaults).</summary>
    public VitArchitecture Architecture => new()
    {
        Patch = Patch, Dim = Dim, Depth = Depth, Heads = Heads, ImageSize = ImageSize, Channels = Channels, Classes = Classes,
        MlpDim = MlpDim,
    };

    /// <summary>The attribute that compiles this architecture.</summary>
    public string Attribute => Architecture.ToAttribute();

    /// <summary>The compiled catalog model of exactly this architecture, if any.</summary>
    public ModelEntry? FindCompiled() => ModelCatalog.All.FirstOrDefault(m => m.Architecture == Architecture);

    public VitPreprocessing Preprocessing => new(ImageSize, CropPct, Interpolation, Mean, Std);
}

/// <summary>The ImageNet-1k class names (timm's order), from the copy of shared/data embedded in the binary.</summary>
internal static class ImageNetLabels
{
    public static string[] Load()
    {
        using var stream = typeof(ImageNetLabels).Assembly.GetManifestResourceStream("imagenet-1k-classes.tsv")!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(line => line.Split('\t')[2].Split(',')[0].Trim()).ToArray();
    }
}
