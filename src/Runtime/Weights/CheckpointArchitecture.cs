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

        if ((long)grid * patch > int.MaxValue)
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
            Patch = patch, Dim = dim, Depth = depth, Heads = heads, ImageSize = grid * patch, Channels = channels,
            Classes = classes, MlpDim = mlpDim, QkvBias = qkvBias, ClassToken = classToken, Pooling = pooling,
            Activation = activation, NormEps = eps, LayerScale = layerScale, Registers = registers,
            NoEmbedClass = noEmbedClass, PreNorm = preNorm, Distilled = distilled,
            Dialect = reader.Dialect, DialectName = reader.DialectName,
        };

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
        foreach (string timmName in architecture.Manifest().Tensors(reader.Dialect == CheckpointDialect.OpenAiClip).Select(t => t.Key))
        {
            long[]? shape = reader.TryGetShape(timmName);
            IReadOnlyList<string>? stored = reader.StoredNames(timmName);
            if (shape is null || stored is null)
            {
                missing.Add(timmName);
                continue;
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
