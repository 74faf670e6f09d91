using System.Globalization;

namespace ViTGen;

/// <summary>How one timm-named tensor is stored in a checkpoint of some dialect.</summary>
internal enum SourceLayout
{
    /// <summary>One tensor, same shape.</summary>
    Direct,
    /// <summary>One tensor; the model's shape has <see cref="TensorSource.LeadingOnes"/> extra leading 1s.</summary>
    Unsqueeze,
    /// <summary>One matrix stored transposed.</summary>
    Transpose,
    /// <summary>Several tensors concatenated along dimension 0.</summary>
    Concat,
}

/// <summary>Where a timm-named tensor lives in the file, and how to turn it into the model's layout.</summary>
internal sealed record TensorSource(SourceLayout Layout, string[] Names, int LeadingOnes = 0);

/// <summary>Maps timm tensor names to the names of other checkpoint dialects (see VIT.md, checkpoint key names).</summary>
internal sealed class CheckpointNames
{
    private readonly Func<string, bool> _exists;
    private readonly string _hfPrefix;

    private CheckpointNames(CheckpointDialect dialect, string hfPrefix, Func<string, bool> exists)
    {
        Dialect = dialect;
        _hfPrefix = hfPrefix;
        _exists = exists;
    }

    public CheckpointDialect Dialect { get; }

    /// <summary>Detects the dialect from the tensor names of a file.</summary>
    public static CheckpointNames Detect(IReadOnlyCollection<string> names, Func<string, bool> exists)
    {
        bool Any(string prefix) => names.Any(n => n.StartsWith(prefix, StringComparison.Ordinal));

        if (exists("visual.conv1.weight") || Any("visual.transformer.resblocks."))
        {
            return new CheckpointNames(CheckpointDialect.OpenAiClip, "", exists);
        }
        if (exists("conv_proj.weight") || exists("class_token") || Any("encoder.layers.encoder_layer_"))
        {
            return new CheckpointNames(CheckpointDialect.TorchVision, "", exists);
        }
        if (Any("vit.embeddings.") || Any("vit.encoder.layer."))
        {
            return new CheckpointNames(CheckpointDialect.HuggingFace, "vit.", exists);
        }
        if (Any("embeddings.patch_embeddings.") || Any("embeddings.cls_token") || Any("encoder.layer."))
        {
            return new CheckpointNames(CheckpointDialect.HuggingFace, "", exists);
        }
        return new CheckpointNames(CheckpointDialect.Timm, "", exists);
    }

    /// <summary>A readable name of the dialect for messages.</summary>
    public string DisplayName => Dialect switch
    {
        CheckpointDialect.HuggingFace => _hfPrefix.Length == 0 ? "Hugging Face ViTModel" : "Hugging Face ViTForImageClassification",
        CheckpointDialect.TorchVision => "torchvision",
        CheckpointDialect.OpenAiClip => "OpenAI CLIP",
        _ => "timm",
    };

    /// <summary>Tensors of the file that the dialect never maps and that need not be read.</summary>
    public bool IsIgnoredAutomatically(string storedName) => Dialect switch
    {
        CheckpointDialect.OpenAiClip => !storedName.StartsWith("visual.", StringComparison.Ordinal),
        CheckpointDialect.HuggingFace => storedName.StartsWith(_hfPrefix + "pooler.", StringComparison.Ordinal),
        _ => false,
    };

    /// <summary>Where the timm-named tensor is stored, or null when the dialect has no counterpart.</summary>
    public TensorSource? Map(string timmName) => Dialect switch
    {
        CheckpointDialect.HuggingFace => MapHuggingFace(timmName),
        CheckpointDialect.TorchVision => MapTorchVision(timmName),
        CheckpointDialect.OpenAiClip => MapClip(timmName),
        _ => Direct(timmName),
    };

    private static TensorSource Direct(string name) => new(SourceLayout.Direct, [name]);

    /// <summary>Splits <c>blocks.{i}.{rest}</c>.</summary>
    private static bool TrySplitBlock(string name, out int index, out string rest)
    {
        index = 0;
        rest = "";
        const string Prefix = "blocks.";
        if (!name.StartsWith(Prefix, StringComparison.Ordinal)) return false;
        int dot = name.IndexOf('.', Prefix.Length);
        if (dot < 0) return false;
        ReadOnlySpan<char> digits = name.AsSpan(Prefix.Length, dot - Prefix.Length);
        if (digits.Length == 0 || digits.Length > 6) return false;
        foreach (char c in digits)
        {
            if (c is < '0' or > '9') return false;
        }
        if (digits.Length > 1 && digits[0] == '0') return false;
        index = int.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        rest = name[(dot + 1)..];
        return rest.Length > 0;
    }

    /// <summary>Splits <c>module.param</c> at the last dot; param is <c>weight</c> or <c>bias</c>.</summary>
    private static bool TrySplitParameter(string name, out string module, out string parameter)
    {
        int dot = name.LastIndexOf('.');
        module = dot < 0 ? "" : name[..dot];
        parameter = dot < 0 ? "" : name[(dot + 1)..];
        return dot > 0 && parameter is "weight" or "bias";
    }

    private TensorSource? MapHuggingFace(string timmName)
    {
        string p = _hfPrefix;
        switch (timmName)
        {
            case "cls_token": return Direct(p + "embeddings.cls_token");
            case "pos_embed": return Direct(p + "embeddings.position_embeddings");
        }
        if (TrySplitBlock(timmName, out int i, out string rest))
        {
            if (!TrySplitParameter(rest, out string module, out string param)) return null;
            string layer = string.Create(CultureInfo.InvariantCulture, $"{p}encoder.layer.{i}.");
            string? mapped = module switch
            {
                "norm1" => "layernorm_before",
                "attn.proj" => "attention.output.dense",
                "norm2" => "layernorm_after",
                "mlp.fc1" => "intermediate.dense",
                "mlp.fc2" => "output.dense",
                _ => null,
            };
            if (module == "attn.qkv")
            {
                return new TensorSource(SourceLayout.Concat,
                [
                    $"{layer}attention.attention.query.{param}",
                    $"{layer}attention.attention.key.{param}",
                    $"{layer}attention.attention.value.{param}",
                ]);
            }
            return mapped is null ? null : Direct($"{layer}{mapped}.{param}");
        }
        if (!TrySplitParameter(timmName, out string top, out string parameter)) return null;
        return top switch
        {
            "patch_embed.proj" => Direct($"{p}embeddings.patch_embeddings.projection.{parameter}"),
            "norm" => Direct($"{p}layernorm.{parameter}"),
            "head" => Direct($"classifier.{parameter}"),
            _ => null,
        };
    }

    private TensorSource? MapTorchVision(string timmName)
    {
        switch (timmName)
        {
            case "cls_token": return Direct("class_token");
            case "pos_embed": return Direct("encoder.pos_embedding");
        }
        if (TrySplitBlock(timmName, out int i, out string rest))
        {
            string layer = string.Create(CultureInfo.InvariantCulture, $"encoder.layers.encoder_layer_{i}.");
            switch (rest)
            {
                case "attn.qkv.weight": return Direct(layer + "self_attention.in_proj_weight");
                case "attn.qkv.bias": return Direct(layer + "self_attention.in_proj_bias");
            }
            if (!TrySplitParameter(rest, out string module, out string param)) return null;
            return module switch
            {
                "norm1" => Direct($"{layer}ln_1.{param}"),
                "attn.proj" => Direct($"{layer}self_attention.out_proj.{param}"),
                "norm2" => Direct($"{layer}ln_2.{param}"),
                // Older torchvision checkpoints name the MLP layers linear_1 / linear_2.
                "mlp.fc1" => FirstExisting($"{layer}mlp.0.{param}", $"{layer}mlp.linear_1.{param}"),
                "mlp.fc2" => FirstExisting($"{layer}mlp.3.{param}", $"{layer}mlp.linear_2.{param}"),
                _ => null,
            };
        }
        if (!TrySplitParameter(timmName, out string top, out string parameter)) return null;
        return top switch
        {
            "patch_embed.proj" => Direct($"conv_proj.{parameter}"),
            "norm" => Direct($"encoder.ln.{parameter}"),
            "head" => Direct($"heads.head.{parameter}"),
            _ => null,
        };
    }

    private static TensorSource? MapClip(string timmName)
    {
        switch (timmName)
        {
            case "cls_token": return new TensorSource(SourceLayout.Unsqueeze, ["visual.class_embedding"], 2);
            case "pos_embed": return new TensorSource(SourceLayout.Unsqueeze, ["visual.positional_embedding"], 1);
            case "patch_embed.proj.weight": return Direct("visual.conv1.weight");
            case "patch_embed.proj.bias": return null; // CLIP's patch projection has no bias
            case "head.weight": return new TensorSource(SourceLayout.Transpose, ["visual.proj"]);
            case "head.bias": return null; // x @ proj: no bias
        }
        if (TrySplitBlock(timmName, out int i, out string rest))
        {
            string block = string.Create(CultureInfo.InvariantCulture, $"visual.transformer.resblocks.{i}.");
            switch (rest)
            {
                case "attn.qkv.weight": return Direct(block + "attn.in_proj_weight");
                case "attn.qkv.bias": return Direct(block + "attn.in_proj_bias");
            }
            if (!TrySplitParameter(rest, out string module, out string param)) return null;
            string? mapped = module switch
            {
                "norm1" => "ln_1",
                "attn.proj" => "attn.out_proj",
                "norm2" => "ln_2",
                "mlp.fc1" => "mlp.c_fc",
                "mlp.fc2" => "mlp.c_proj",
                _ => null,
            };
            return mapped is null ? null : Direct($"{block}{mapped}.{param}");
        }
        if (!TrySplitParameter(timmName, out string top, out string parameter)) return null;
        return top switch
        {
            "norm_pre" => Direct($"visual.ln_pre.{parameter}"),
            "norm" => Direct($"visual.ln_post.{parameter}"),
            _ => null,
        };
    }

    private TensorSource FirstExisting(string preferred, string alternative)
        => Direct(!_exists(preferred) && _exists(alternative) ? alternative : preferred);
}
