using System.Globalization;
using System.Text.Json;
using ViTGen.Cli.Models;

namespace ViTGen.Cli.Commands;

/// <summary>
/// A model directory's <c>model.json</c>: timm's VisionTransformer keyword arguments, the eval transform and
/// the labels. Parsed with JsonDocument (no reflection, so it survives NativeAOT trimming).
/// </summary>
/// <remarks>
/// Every field the CLI reads is validated; a bad one is an <see cref="InvalidDataException"/> whose one-line message
/// names the file and the field. Keys of <c>timm</c> this binary cannot honour are rejected rather than ignored (an
/// ignored architecture argument would run the weights through the wrong model); the training-only ones (dropout
/// rates) are ignored. Top-level keys other than the eval transform and <c>labels</c> are not read.
/// </remarks>
internal sealed record ModelConfig(
    int ImageSize, int Patch, int Channels, int Classes, int Dim, int Depth, int Heads, int MlpDim,
    float[] Mean, float[] Std, double CropPct, VitInterpolation Interpolation, string[] Labels)
{
    /// <summary>The rest of the architecture (qkv bias, class token, pooling, activation, eps, ...).</summary>
    public VitArchitecture Extra { get; init; } = new();

    /// <summary>timm's interpolation names (timm.data.transforms str_to_pil_interp), as the runtime's filters.</summary>
    private static readonly Dictionary<string, VitInterpolation> Interpolations = new(StringComparer.Ordinal)
    {
        ["nearest"] = VitInterpolation.Nearest, ["bilinear"] = VitInterpolation.Bilinear, ["bicubic"] = VitInterpolation.Bicubic,
        ["box"] = VitInterpolation.Box, ["hamming"] = VitInterpolation.Hamming, ["lanczos"] = VitInterpolation.Lanczos,
    };

    /// <summary>timm's act_layer names (timm.layers.create_act), as the runtime's activations.</summary>
    private static readonly Dictionary<string, VitActivation> Activations = new(StringComparer.Ordinal)
    {
        ["gelu"] = VitActivation.Gelu, ["gelu_tanh"] = VitActivation.GeluTanh, ["quick_gelu"] = VitActivation.QuickGelu,
        ["relu"] = VitActivation.Relu,
    };

    /// <summary>timm keyword arguments that only matter for training: accepted and ignored.</summary>
    private static readonly HashSet<string> TrainingOnly = new(StringComparer.Ordinal)
    {
        "drop_rate", "pos_drop_rate", "patch_drop_rate", "proj_drop_rate", "attn_drop_rate", "drop_path_rate", "weight_init",
    };

    /// <summary>
    /// The model of <c>--model DIR</c> (<c>DIR/model.json</c> and <c>DIR/model.safetensors</c>), or the bundled
    /// Fashion-MNIST model when <paramref name="directory"/> is null: its config and the path of its weights.
    /// </summary>
    public static (ModelConfig Config, string Weights) Open(string? directory)
    {
        if (directory is null)
        {
            ModelConfig bundled;
            using (var stream = BundledModel.Open("model.json")) bundled = Parse(stream, "bundled model.json");
            return (bundled, BundledModel.ExtractWeights());
        }
        string jsonPath = Path.Combine(directory, "model.json");
        using var json = File.OpenRead(jsonPath);
        return (Parse(json, jsonPath), Path.Combine(directory, "model.safetensors"));
    }

    /// <summary>Parses and validates a model.json; <see cref="InvalidDataException"/> naming the field when it is not valid.</summary>
    public static ModelConfig Parse(Stream json, string source)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON ({OneLine(e.Message)})", e);
        }
        using (document)
        {
            try
            {
                return Parse(document.RootElement);
            }
            catch (FieldException e)
            {
                throw new InvalidDataException($"{source}: {e.Message}", e);
            }
        }
    }

    private static ModelConfig Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new FieldException("the top level must be a JSON object");
        if (!root.TryGetProperty("timm", out var timm)) throw new FieldException("timm: missing (timm's VisionTransformer keyword arguments)");
        if (timm.ValueKind != JsonValueKind.Object) throw new FieldException("timm: must be an object of timm's VisionTransformer keyword arguments");

        var known = new HashSet<string>(StringComparer.Ordinal)
        {
            "img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias",
            "class_token", "global_pool", "act_layer", "activation", "norm_eps", "reg_tokens", "no_embed_class", "pre_norm",
            "init_values",
        };
        foreach (var property in timm.EnumerateObject())
        {
            if (!known.Contains(property.Name) && !TrainingOnly.Contains(property.Name))
                throw new FieldException($"timm.{property.Name}: not a VisionTransformer argument this vitgen reads (it would change the model; remove it if it is at timm's default)");
        }

        int imageSize = Int(timm, "img_size", null, 1, 16384);
        int patch = Int(timm, "patch_size", null, 1, imageSize);
        if (imageSize % patch != 0) throw new FieldException($"timm.patch_size: {patch} does not divide img_size {imageSize}");
        int channels = Int(timm, "in_chans", 3, 1, 3);
        if (channels == 2) throw new FieldException("timm.in_chans: must be 1 or 3 (images are decoded as gray or RGB), not 2");
        int classes = Int(timm, "num_classes", 1000, 1, 1 << 20);
        int dim = Int(timm, "embed_dim", null, 1, 1 << 16);
        int depth = Int(timm, "depth", null, 1, 1024);
        int heads = Int(timm, "num_heads", null, 1, dim);
        if (dim % heads != 0) throw new FieldException($"timm.num_heads: {heads} does not divide embed_dim {dim}");
        double ratio = Number(timm, "mlp_ratio", 4.0);
        if (!(ratio > 0) || dim * ratio >= 1 << 20) throw new FieldException($"timm.mlp_ratio: must be a positive number, not {Text(ratio)}");
        int mlpDim = (int)(dim * ratio); // timm: int(embed_dim * mlp_ratio)
        if (mlpDim < 1) throw new FieldException($"timm.mlp_ratio: {Text(ratio)} gives an MLP of {mlpDim} features");

        bool classToken = Bool(timm, "class_token", true);
        string pool = String(timm, "global_pool", "token");
        VitPooling pooling = pool switch
        {
            "token" => VitPooling.Token,
            "avg" => VitPooling.Avg,
            _ => throw new FieldException($"timm.global_pool: \"{pool}\" is not supported (\"token\" or \"avg\")"),
        };
        if (pooling == VitPooling.Token && !classToken) throw new FieldException("timm.global_pool: \"token\" needs class_token true");
        if (timm.TryGetProperty("act_layer", out _) && timm.TryGetProperty("activation", out _))
            throw new FieldException("timm.activation: give act_layer or activation, not both");
        string activationField = timm.TryGetProperty("activation", out _) ? "activation" : "act_layer";
        string activationName = String(timm, activationField, "gelu");
        if (!Activations.TryGetValue(activationName, out var activation))
            throw new FieldException($"timm.{activationField}: \"{activationName}\" is not one of {string.Join(", ", Activations.Keys)}");
        double eps = Number(timm, "norm_eps", 1e-6);
        if (!(eps > 0) || eps >= 1) throw new FieldException($"timm.norm_eps: must be a small positive number, not {Text(eps)}");
        int registers = Int(timm, "reg_tokens", 0, 0, 1024);
        bool layerScale = timm.TryGetProperty("init_values", out var init) && init.ValueKind != JsonValueKind.Null;
        if (layerScale && init.ValueKind != JsonValueKind.Number) throw new FieldException("timm.init_values: must be a number or null");
        var extra = new VitArchitecture
        {
            QkvBias = Bool(timm, "qkv_bias", true), ClassToken = classToken, Pooling = pooling, Activation = activation,
            NormEps = (float)eps, Registers = registers, NoEmbedClass = Bool(timm, "no_embed_class", false),
            PreNorm = Bool(timm, "pre_norm", false), LayerScale = layerScale,
        };

        var mean = Floats(root, "mean", channels == 3 ? [0.485f, 0.456f, 0.406f] : null, channels, positive: false);
        var std = Floats(root, "std", channels == 3 ? [0.229f, 0.224f, 0.225f] : null, channels, positive: true);
        double cropPct = Number(root, "crop_pct", 0.875, prefix: "");
        if (!(cropPct > 0 && cropPct <= 1)) throw new FieldException($"crop_pct: must be in (0, 1], not {Text(cropPct)}");
        if (Math.Floor(imageSize / cropPct) > 65536) throw new FieldException($"crop_pct: {Text(cropPct)} resizes img_size {imageSize} beyond 65536 pixels");
        string interpolationName = String(root, "interpolation", "bicubic", prefix: "");
        if (!Interpolations.TryGetValue(interpolationName, out var interpolation))
            throw new FieldException($"interpolation: \"{interpolationName}\" is not one of {string.Join(", ", Interpolations.Keys)}");

        string[] labels = [];
        if (root.TryGetProperty("labels", out var l) && l.ValueKind != JsonValueKind.Null)
        {
            if (l.ValueKind != JsonValueKind.Array) throw new FieldException("labels: must be an array of strings");
            labels = l.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.String
                ? e.GetString()!
                : throw new FieldException($"labels: item {i} is not a string")).ToArray();
            if (labels.Length != classes) throw new FieldException($"labels: {labels.Length} labels for num_classes {classes}");
        }
        if (labels.Length == 0 && classes == 1000) labels = ImageNetLabels.Load();

        return new ModelConfig(imageSize, patch, channels, classes, dim, depth, heads, mlpDim, mean, std, cropPct, interpolation, labels)
        {
            Extra = extra,
        };
    }

    private static int Int(JsonElement obj, string name, int? fallback, int min, int max, string prefix = "timm.")
    {
        if (!obj.TryGetProperty(name, out var value))
            return fallback ?? throw new FieldException($"{prefix}{name}: missing");
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long n))
            throw new FieldException($"{prefix}{name}: must be an integer, not {Show(value)}");
        if (n < min || n > max) throw new FieldException($"{prefix}{name}: {n} is out of range [{min}, {max}]");
        return (int)n;
    }

    private static double Number(JsonElement obj, string name, double fallback, string prefix = "timm.")
    {
        if (!obj.TryGetProperty(name, out var value)) return fallback;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double x) || !double.IsFinite(x))
            throw new FieldException($"{prefix}{name}: must be a number, not {Show(value)}");
        return x;
    }

    private static bool Bool(JsonElement obj, string name, bool fallback, string prefix = "timm.")
    {
        if (!obj.TryGetProperty(name, out var value)) return fallback;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new FieldException($"{prefix}{name}: must be true or false, not {Show(value)}"),
        };
    }

    private static string String(JsonElement obj, string name, string fallback, string prefix = "timm.")
    {
        if (!obj.TryGetProperty(name, out var value)) return fallback;
        if (value.ValueKind != JsonValueKind.String) throw new FieldException($"{prefix}{name}: must be a string, not {Show(value)}");
        return value.GetString()!;
    }

    private static float[] Floats(JsonElement root, string name, float[]? fallback, int channels, bool positive)
    {
        if (!root.TryGetProperty(name, out var array))
            return fallback ?? throw new FieldException($"{name}: missing (no default for in_chans {channels})");
        if (array.ValueKind != JsonValueKind.Array) throw new FieldException($"{name}: must be an array of {channels} numbers, not {Show(array)}");
        var values = array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetSingle(out float f) && float.IsFinite(f)
            ? f
            : throw new FieldException($"{name}: {Show(e)} is not a finite number")).ToArray();
        if (values.Length != channels) throw new FieldException($"{name}: {values.Length} values for in_chans {channels}");
        if (positive && values.Any(v => !(v > 0))) throw new FieldException($"{name}: values must be positive");
        return values;
    }

    private static string Show(JsonElement value)
    {
        string text = value.GetRawText();
        return OneLine(text.Length > 40 ? text[..40] + "..." : text);
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private static string Text(double x) => x.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A bad field: the message starts with the field's name.</summary>
    private sealed class FieldException(string message) : Exception(message);

    /// <summary>The architecture model.json describes: the timm keyword arguments it gives, the others at timm's defaults.</summary>
    public VitArchitecture Architecture => Extra with
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
