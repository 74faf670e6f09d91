using System.Globalization;
using ViTGen.CompilerServices;

namespace ViTGen;

/// <summary>
/// The Vision Transformer a checkpoint's tensor shapes describe, as the arguments of the <see cref="VitModelAttribute"/>
/// that compiles a model for it (<see cref="VitArchitecture.ToAttribute"/>). Works for every <see cref="CheckpointDialect"/>: shapes
/// are read under their timm names, after the dialect's renaming, concatenation and transposition.
/// </summary>
/// <remarks>
/// <para>
/// Inferred from shapes: <see cref="VitArchitecture.Patch"/>, <see cref="VitArchitecture.Dim"/> and <see cref="VitArchitecture.Channels"/> from the patch
/// projection; <see cref="VitArchitecture.Depth"/> by counting blocks; <see cref="VitArchitecture.MlpDim"/> from the first MLP layer;
/// <see cref="VitArchitecture.ImageSize"/> from the position embedding (a square grid of patches, plus the prefix tokens unless
/// <see cref="VitArchitecture.NoEmbedClass"/>); <see cref="VitArchitecture.Classes"/> from the head; the flags from which tensors exist
/// (<c>attn.qkv.bias</c>, <c>cls_token</c>, <c>reg_token</c>, <c>ls1.gamma</c>, <c>norm_pre</c>,
/// <c>dist_token</c>, <c>fc_norm</c>).
/// </para>
/// <para>
/// A hybrid (tensors under <c>patch_embed.backbone</c>, timm's <c>HybridEmbed</c>): <see cref="VitArchitecture.HybridLayers"/>
/// from the stage and block indices, <see cref="VitArchitecture.HybridWidth"/> and <see cref="VitArchitecture.Channels"/>
/// from the stem convolution, every other trunk shape checked against them; <see cref="VitArchitecture.ImageSize"/> is
/// the grid × patch × <see cref="TrunkStride"/>, the largest of the sizes from <see cref="SmallestImageSize"/> up that give the grid.
/// </para>
/// <para>
/// Not recorded in weights, so guessed and listed in <see cref="Notes"/>: <see cref="VitArchitecture.Heads"/> (dim / 64, the usual
/// head width; 1 when dim is not a multiple of 64), <see cref="VitArchitecture.Activation"/> and <see cref="VitArchitecture.NormEps"/> (the
/// dialect's convention: exact GELU with eps 1e-6 for timm and torchvision, 1e-12 for Hugging Face, QuickGELU with
/// 1e-5 for OpenAI CLIP).
/// </para>
/// </remarks>
public sealed record CheckpointArchitecture : VitArchitecture
{
    /// <summary>The checkpoint's naming convention.</summary>
    public CheckpointDialect Dialect { get; init; }

    /// <summary>A readable name of the dialect, e.g. <c>Hugging Face ViTModel</c>.</summary>
    public string DialectName { get; init; } = "";

    /// <summary>Elements of the tensors a model with this architecture reads (the checkpoint may hold more).</summary>
    public long ParameterCount { get; init; }

    /// <summary>
    /// What the shapes could not settle and what the attribute cannot express: the guessed heads, activation and
    /// epsilon, tensors a compiled model would not read, tensors it would miss.
    /// </summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>
    /// The smallest image size with the position embedding's grid. <see cref="VitArchitecture.ImageSize"/> is the
    /// largest, grid × patch for a plain ViT; a hybrid's trunk pads the 'same' way, rounding each stride-2 layer up,
    /// so every size from this one to grid × patch × the trunk's stride (4 for the stem, × 2 per stage after the
    /// first; the size timm's configurations use) yields the same tokens.
    /// </summary>
    public int SmallestImageSize { get; init; }

    /// <summary>Channels the patch embedding reads: the image's, or the last feature map's of a hybrid's trunk.</summary>
    public int FeatureChannels => HybridLayers is { } l ? HybridGeometry.FeatureChannels(HybridWidth, l.Count) : Channels;

    /// <summary>Image pixels per feature-map pixel of a hybrid's trunk (4 for the stem, × 2 per stage after the first); 1 for a plain ViT.</summary>
    public int TrunkStride => HybridLayers is { } l ? HybridGeometry.Stride(l.Count) : 1;

    /// <summary>The side of the position embedding's square grid of patches.</summary>
    public int PositionGrid => (HybridLayers is null ? ImageSize : HybridGeometry.FeatureSize(ImageSize, HybridLayers.Count)) / Math.Max(Patch, 1);

    /// <summary>Opens a checkpoint and infers its architecture.</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    /// <param name="options">Prefixes of tensors to leave out of the unread-tensor check; null for none.</param>
    /// <returns>The inferred architecture.</returns>
    /// <exception cref="VitWeightsException">The file is not a valid safetensors file or not a ViT checkpoint.</exception>
    public static CheckpointArchitecture Infer(string path, CheckpointOptions? options = null)
    {
        using CheckpointReader reader = CheckpointReader.Open(path, options);
        return Infer(reader);
    }

    /// <summary>Infers the architecture of an open checkpoint (nothing is read or marked as read).</summary>
    /// <param name="reader">The checkpoint.</param>
    /// <returns>The inferred architecture.</returns>
    /// <exception cref="VitWeightsException">The checkpoint is not a ViT checkpoint.</exception>
    public static CheckpointArchitecture Infer(CheckpointReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var notes = new List<string>();
        string where = $"'{reader.Path}' ({reader.DialectName} checkpoint)";

        const string PatchWeight = TimmNames.PatchEmbedding + TimmNames.Weight;
        long[] patchWeight = reader.TryGetShape(PatchWeight)
            ?? throw new VitWeightsException($"{where} has no patch embedding (timm '{PatchWeight}'): not a Vision Transformer checkpoint ViTGen can read");
        if (patchWeight.Length != 4 || patchWeight[2] != patchWeight[3])
        {
            throw new VitWeightsException(
                $"{where}: the patch embedding has shape {ShapeText.Format(patchWeight)}; expected [dim, channels, patch, patch] with square patches");
        }
        int dim = ToInt(patchWeight[0]), channels = ToInt(patchWeight[1]), patch = ToInt(patchWeight[2]);
        (IReadOnlyList<int> Layers, int Width, int Channels)? trunk = InferTrunk(reader, where);
        if (trunk is { } t)
        {
            int features = HybridGeometry.FeatureChannels(t.Width, t.Layers.Count);
            if (channels != features)
            {
                throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                    $"{where}: the patch embedding reads {channels} channels, but a ResNetV2 trunk of width {t.Width} with {t.Layers.Count} stage{(t.Layers.Count == 1 ? "" : "s")} ends with {features}: the trunk's widths are inconsistent"));
            }
            channels = t.Channels;
        }
        bool patchBias = reader.Contains(TimmNames.PatchEmbedding + TimmNames.Bias);
        bool preNorm = reader.Contains(TimmNames.PreNorm + TimmNames.Weight);

        int depth = 0;
        while (reader.Contains(TimmNames.InBlock(depth, TimmNames.Qkv + TimmNames.Weight))) depth++;
        if (depth == 0)
        {
            throw new VitWeightsException($"{where} has no transformer blocks (timm '{TimmNames.InBlock(0, TimmNames.Qkv + TimmNames.Weight)}'): not a Vision Transformer checkpoint ViTGen can read");
        }
        string fc1Weight = TimmNames.InBlock(0, TimmNames.Fc1 + TimmNames.Weight);
        long[] fc1 = reader.TryGetShape(fc1Weight)
            ?? throw new VitWeightsException($"{where} has no MLP in its first block (timm '{fc1Weight}')");
        int mlpDim = ToInt(fc1[0]);
        bool qkvBias = reader.Contains(TimmNames.InBlock(0, TimmNames.Qkv + TimmNames.Bias));
        bool layerScale = reader.Contains(TimmNames.InBlock(0, TimmNames.LayerScale1));

        bool classToken = reader.Contains(TimmNames.ClassToken);
        bool distilled = reader.Contains(TimmNames.DistillationToken);
        int registers = reader.TryGetShape(TimmNames.RegisterTokens) is { Length: 3 } reg ? ToInt(reg[1]) : 0;
        int classes = reader.TryGetShape(TimmNames.Head + TimmNames.Weight) is { Length: 2 } head ? ToInt(head[0]) : 0;
        VitPooling pooling = reader.Contains(TimmNames.FcNorm + TimmNames.Weight) ? VitPooling.Avg : VitPooling.Token;

        long[] pos = reader.TryGetShape(TimmNames.PositionEmbedding)
            ?? throw new VitWeightsException($"{where} has no position embedding (timm '{TimmNames.PositionEmbedding}'), so the image size cannot be inferred");
        if (pos.Length != 3 || pos[0] != 1 || pos[2] != dim)
        {
            throw new VitWeightsException($"{where}: the position embedding has shape {ShapeText.Format(pos)}; expected [1, tokens, {dim}]");
        }
        int prefix = (classToken ? 1 : 0) + (distilled ? 1 : 0) + registers;
        bool noEmbedClass;
        int grid;
        if (IsSquare(pos[1] - prefix, out grid))
        {
            noEmbedClass = false;
        }
        else if (prefix > 0 && IsSquare(pos[1], out grid))
        {
            noEmbedClass = true;
        }
        else
        {
            throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                $"{where}: the position embedding has {pos[1]} rows, which is neither a square grid of patches plus {prefix} prefix token{(prefix == 1 ? "" : "s")} nor a square grid alone; non-square images are not supported"));
        }

        int stride = trunk is { } s ? HybridGeometry.Stride(s.Layers.Count) : 1;
        if ((long)grid * patch * stride > int.MaxValue)
        {
            throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                $"{where}: the position embedding's {grid} x {grid} grid of {patch}-pixel patches makes images wider than {int.MaxValue} pixels"));
        }

        int heads = dim % 64 == 0 ? dim / 64 : 1;
        notes.Add(dim % 64 == 0
            ? string.Create(CultureInfo.InvariantCulture, $"heads: weights do not record the number of attention heads; {heads} assumes the usual head width of 64 (dim / 64). Check the model's config.")
            : string.Create(CultureInfo.InvariantCulture, $"heads: weights do not record the number of attention heads, and dim {dim} is not a multiple of the usual head width of 64; 1 is a placeholder. Check the model's config."));

        (VitActivation activation, float eps, string convention) = reader.Dialect switch
        {
            CheckpointDialect.OpenAiClip => (VitActivation.QuickGelu, 1e-5f, "OpenAI CLIP's QuickGELU and eps 1e-5"),
            CheckpointDialect.HuggingFace => (VitActivation.Gelu, 1e-12f, "Hugging Face ViTConfig's defaults, exact GELU and eps 1e-12"),
            CheckpointDialect.TorchVision => (VitActivation.Gelu, 1e-6f, "torchvision's exact GELU and eps 1e-6"),
            _ => (VitActivation.Gelu, 1e-6f, "timm's defaults, exact GELU and eps 1e-6"),
        };
        notes.Add($"activation, normEps: not recorded in weights; {convention} assumed.");

        var architecture = new CheckpointArchitecture
        {
            Patch = patch, Dim = dim, Depth = depth, Heads = heads, ImageSize = grid * patch * stride, Channels = channels,
            Classes = classes, MlpDim = mlpDim, QkvBias = qkvBias, ClassToken = classToken, Pooling = pooling,
            Activation = activation, NormEps = eps, LayerScale = layerScale, Registers = registers,
            NoEmbedClass = noEmbedClass, PreNorm = preNorm, Distilled = distilled,
            Dialect = reader.Dialect, DialectName = reader.DialectName,
            HybridLayers = trunk?.Layers, HybridWidth = trunk?.Width ?? 64,
            // 'same' padding rounds up: every size whose trunk output is grid * patch wide has the same tokens.
            SmallestImageSize = trunk is null ? grid * patch : (grid * patch - 1) * stride + 1,
        };
        if (trunk is { } hybrid && hybrid.Width % HybridGeometry.Groups != 0)
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"hybridWidth: the trunk's width {hybrid.Width} is not a multiple of the {HybridGeometry.Groups} GroupNorm groups; the generator refuses it (VITG0020)."));
        }

        if (preNorm && patchBias)
        {
            notes.Add($"the checkpoint has both a pre-norm ('{TimmNames.PreNorm}') and a patch-embedding bias; compiled preNorm models have no patch bias, so loading will fail on the unread bias.");
        }
        if (!preNorm && !patchBias)
        {
            notes.Add($"the patch embedding has no bias but there is no pre-norm ('{TimmNames.PreNorm}'); compiled models without preNorm need the bias, so loading will fail.");
        }
        if (distilled && classes == 0)
        {
            notes.Add($"the checkpoint has a distillation token but no head; compiled distilled models need '{TimmNames.Head}' and '{TimmNames.DistillationHead}'.");
        }

        // Walk the tensors a model with this attribute reads (as the generated Load does) to find gaps and leftovers.
        var used = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        long parameters = 0;
        foreach ((string timmName, int[] expected) in architecture.Manifest().Tensors(reader.Dialect == CheckpointDialect.OpenAiClip))
        {
            long[]? shape = reader.TryGetShape(timmName);
            IReadOnlyList<string>? stored = reader.StoredNames(timmName);
            if (shape is null || stored is null)
            {
                missing.Add(timmName);
                continue;
            }
            if (timmName.StartsWith(TimmNames.Backbone + ".", StringComparison.Ordinal) && !shape.SequenceEqual(expected.Select(d => (long)d)))
            {
                throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                    $"{where}: '{timmName}' has shape {ShapeText.Format(shape)}, but a ResNetV2 trunk of width {architecture.HybridWidth} (from the stem convolution) has {ShapeText.Format(expected.Select(d => (long)d).ToArray())} there: the trunk's widths are inconsistent"));
            }
            // Saturating: the shapes come from the header, and an empty tensor may claim huge dimensions.
            Int128 count = 1;
            foreach (long d in shape) count = Int128.Min(count * d, long.MaxValue);
            parameters = (long)Int128.Min((Int128)parameters + count, long.MaxValue);
            foreach (string name in stored) used.Add(name);
        }
        if (missing.Count > 0)
        {
            notes.Add($"a model with this attribute would read {missing.Count} tensor{(missing.Count == 1 ? "" : "s")} the checkpoint lacks: {List(missing)}.");
        }
        var unread = reader.File.Tensors.Select(t => t.Name).Where(n => !used.Contains(n) && !reader.IsIgnored(n)).ToList();
        if (unread.Count > 0)
        {
            notes.Add($"{unread.Count} tensor{(unread.Count == 1 ? "" : "s")} would not be read (loading fails unless CheckpointOptions.IgnoredPrefixes covers them): {List(unread)}.");
        }
        return architecture with { ParameterCount = parameters, Notes = notes.AsReadOnly() };
    }

    /// <summary>
    /// A hybrid's ResNetV2 trunk from its <c>patch_embed.backbone.*</c> tensors: stages and blocks by their indices,
    /// the width and the image channels from the stem convolution; null when there are none (a plain ViT). The
    /// other tensors' shapes are checked against the width by the manifest walk in <see cref="Infer(CheckpointReader)"/>.
    /// </summary>
    private static (IReadOnlyList<int> Layers, int Width, int Channels)? InferTrunk(CheckpointReader reader, string where)
    {
        const string Stages = TimmNames.Backbone + ".stages.";
        var blocks = new SortedDictionary<int, SortedSet<int>>();
        bool any = false;
        foreach (SafeTensorInfo tensor in reader.File.Tensors)
        {
            if (!tensor.Name.StartsWith(TimmNames.Backbone + ".", StringComparison.Ordinal)) continue;
            any = true;
            if (!tensor.Name.StartsWith(Stages, StringComparison.Ordinal)) continue;
            string[] parts = tensor.Name[Stages.Length..].Split('.');
            if (parts.Length < 4 || parts[1] != "blocks" || !Index(parts[0], out int stage) || !Index(parts[2], out int block))
            {
                throw new VitWeightsException($"{where}: '{tensor.Name}' is not a ResNetV2 bottleneck tensor (expected '{Stages}STAGE.blocks.BLOCK.NAME')");
            }
            if (stage >= HybridGeometry.MaxStages)
            {
                throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                    $"{where}: '{tensor.Name}' belongs to stage {stage}; a hybrid trunk has at most {HybridGeometry.MaxStages} stages"));
            }
            if (!blocks.TryGetValue(stage, out var set)) blocks[stage] = set = [];
            set.Add(block);
        }
        if (!any) return null;

        var layers = new List<int>();
        for (int stage = 0; stage < blocks.Count; stage++)
        {
            // Indices must run 0, 1, 2, ... without gaps, which also bounds them by the number of tensors.
            if (!blocks.TryGetValue(stage, out var set))
            {
                throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                    $"{where}: the ResNetV2 trunk has tensors for stage {blocks.Keys.Max()} but none for stage {stage} ('{Stages}{stage}.*')"));
            }
            for (int block = 0; block < set.Count; block++)
            {
                if (!set.Contains(block))
                {
                    throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                        $"{where}: stage {stage} of the ResNetV2 trunk has tensors for block {set.Max} but none for block {block} ('{Stages}{stage}.blocks.{block}.*')"));
                }
            }
            layers.Add(set.Count);
        }

        string stemConv = TimmNames.Stem(layers.Count > 0) + ".conv" + TimmNames.Weight;
        long[] stem = reader.TryGetShape(stemConv)
            ?? throw new VitWeightsException($"{where} has ResNetV2 trunk tensors ('{TimmNames.Backbone}.*') but no stem convolution '{stemConv}'");
        if (stem.Length != 4 || stem[2] != 7 || stem[3] != 7 || stem[0] <= 0 || stem[1] <= 0)
        {
            throw new VitWeightsException($"{where}: the stem convolution '{stemConv}' has shape {ShapeText.Format(stem)}; expected [width, channels, 7, 7]");
        }
        return (layers.AsReadOnly(), ToInt(stem[0]), ToInt(stem[1]));

        static bool Index(string text, out int value)
            => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value.ToString(CultureInfo.InvariantCulture) == text;
    }

    private static bool IsSquare(long value, out int root)
    {
        root = 0;
        if (value <= 0) return false;
        long r = (long)Math.Round(Math.Sqrt(value));
        if (r * r != value || r > int.MaxValue) return false;
        root = (int)r;
        return true;
    }

    private static int ToInt(long value) => value is >= 0 and <= int.MaxValue
        ? (int)value
        : throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture, $"a dimension of {value} is too large for a compiled model"));

    private static string List(List<string> names)
    {
        const int Shown = 8;
        string shown = string.Join(", ", names.Take(Shown).Select(n => $"'{n}'"));
        return names.Count > Shown ? string.Create(CultureInfo.InvariantCulture, $"{shown} and {names.Count - Shown} more") : shown;
    }
}
