using System.Globalization;
using System.Text;
using ViTGen.CompilerServices;

namespace ViTGen;

/// <summary>
/// The Vision Transformer a checkpoint's tensor shapes describe, as the arguments of the <see cref="VitModelAttribute"/>
/// that compiles a model for it (<see cref="ToAttribute"/>). Works for every <see cref="CheckpointDialect"/>: shapes
/// are read under their timm names, after the dialect's renaming, concatenation and transposition.
/// </summary>
/// <remarks>
/// <para>
/// Inferred from shapes: <see cref="Patch"/>, <see cref="Dim"/> and <see cref="Channels"/> from the patch
/// projection; <see cref="Depth"/> by counting blocks; <see cref="MlpDim"/> from the first MLP layer;
/// <see cref="ImageSize"/> from the position embedding (a square grid of patches, plus the prefix tokens unless
/// <see cref="NoEmbedClass"/>); <see cref="Classes"/> from the head; the flags from which tensors exist
/// (<c>attn.qkv.bias</c>, <c>cls_token</c>, <c>reg_token</c>, <c>ls1.gamma</c>, <c>norm_pre</c>,
/// <c>dist_token</c>, <c>fc_norm</c>).
/// </para>
/// <para>
/// Not recorded in weights, so guessed and listed in <see cref="Notes"/>: <see cref="Heads"/> (dim / 64, the usual
/// head width; 1 when dim is not a multiple of 64), <see cref="Activation"/> and <see cref="NormEps"/> (the
/// dialect's convention: exact GELU with eps 1e-6 for timm and torchvision, 1e-12 for Hugging Face, QuickGELU with
/// 1e-5 for OpenAI CLIP).
/// </para>
/// </remarks>
public sealed record CheckpointArchitecture
{
    /// <summary>Patch size in pixels.</summary>
    public int Patch { get; init; }

    /// <summary>Embedding width.</summary>
    public int Dim { get; init; }

    /// <summary>Number of transformer blocks.</summary>
    public int Depth { get; init; }

    /// <summary>Attention heads per block: a guess (dim / 64), since weights do not record it.</summary>
    public int Heads { get; init; }

    /// <summary>Square input size in pixels.</summary>
    public int ImageSize { get; init; }

    /// <summary>Input channels.</summary>
    public int Channels { get; init; }

    /// <summary>Classifier outputs; 0 when the checkpoint has no head.</summary>
    public int Classes { get; init; }

    /// <summary>Hidden width of the MLP (not 0: the actual width).</summary>
    public int MlpDim { get; init; }

    /// <summary>Whether the qkv projection has a bias.</summary>
    public bool QkvBias { get; init; }

    /// <summary>Whether a class token is prepended.</summary>
    public bool ClassToken { get; init; }

    /// <summary><see cref="VitPooling.Avg"/> when the checkpoint has <c>fc_norm</c>, else <see cref="VitPooling.Token"/>.</summary>
    public VitPooling Pooling { get; init; }

    /// <summary>The MLP activation: the dialect's convention, since weights do not record it.</summary>
    public VitActivation Activation { get; init; }

    /// <summary>The LayerNorm epsilon: the dialect's convention, since weights do not record it.</summary>
    public float NormEps { get; init; }

    /// <summary>Whether blocks have LayerScale.</summary>
    public bool LayerScale { get; init; }

    /// <summary>Number of register tokens.</summary>
    public int Registers { get; init; }

    /// <summary>Whether the position embedding covers the patches only.</summary>
    public bool NoEmbedClass { get; init; }

    /// <summary>Whether a LayerNorm follows the position embedding (and the patch projection has no bias).</summary>
    public bool PreNorm { get; init; }

    /// <summary>Whether the model is a distilled DeiT (distillation token and head).</summary>
    public bool Distilled { get; init; }

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

        long[] patchWeight = reader.TryGetShape("patch_embed.proj.weight")
            ?? throw new VitWeightsException($"{where} has no patch embedding (timm 'patch_embed.proj.weight'): not a Vision Transformer checkpoint ViTGen can read");
        if (patchWeight.Length != 4 || patchWeight[2] != patchWeight[3])
        {
            throw new VitWeightsException(
                $"{where}: the patch embedding has shape {ShapeText.Format(patchWeight)}; expected [dim, channels, patch, patch] with square patches");
        }
        int dim = ToInt(patchWeight[0]), channels = ToInt(patchWeight[1]), patch = ToInt(patchWeight[2]);
        bool patchBias = reader.Contains("patch_embed.proj.bias");
        bool preNorm = reader.Contains("norm_pre.weight");

        int depth = 0;
        while (reader.Contains(WeightLoading.BlockPrefix(depth) + ".attn.qkv.weight")) depth++;
        if (depth == 0)
        {
            throw new VitWeightsException($"{where} has no transformer blocks (timm 'blocks.0.attn.qkv.weight'): not a Vision Transformer checkpoint ViTGen can read");
        }
        long[] fc1 = reader.TryGetShape("blocks.0.mlp.fc1.weight")
            ?? throw new VitWeightsException($"{where} has no MLP in its first block (timm 'blocks.0.mlp.fc1.weight')");
        int mlpDim = ToInt(fc1[0]);
        bool qkvBias = reader.Contains("blocks.0.attn.qkv.bias");
        bool layerScale = reader.Contains("blocks.0.ls1.gamma");

        bool classToken = reader.Contains("cls_token");
        bool distilled = reader.Contains("dist_token");
        int registers = reader.TryGetShape("reg_token") is { Length: 3 } reg ? ToInt(reg[1]) : 0;
        int classes = reader.TryGetShape("head.weight") is { Length: 2 } head ? ToInt(head[0]) : 0;
        VitPooling pooling = reader.Contains("fc_norm.weight") ? VitPooling.Avg : VitPooling.Token;

        long[] pos = reader.TryGetShape("pos_embed")
            ?? throw new VitWeightsException($"{where} has no position embedding (timm 'pos_embed'), so the image size cannot be inferred");
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
            notes.Add("the checkpoint has both a pre-norm ('norm_pre') and a patch-embedding bias; compiled preNorm models have no patch bias, so loading will fail on the unread bias.");
        }
        if (!preNorm && !patchBias)
        {
            notes.Add("the patch embedding has no bias but there is no pre-norm ('norm_pre'); compiled models without preNorm need the bias, so loading will fail.");
        }
        if (distilled && classes == 0)
        {
            notes.Add("the checkpoint has a distillation token but no head; compiled distilled models need 'head' and 'head_dist'.");
        }

        // Walk the tensors a model with this attribute reads (as the generated Load does) to find gaps and leftovers.
        var used = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        long parameters = 0;
        foreach (string timmName in architecture.TimmTensorNames())
        {
            long[]? shape = reader.TryGetShape(timmName);
            IReadOnlyList<string>? stored = reader.StoredNames(timmName);
            if (shape is null || stored is null)
            {
                missing.Add(timmName);
                continue;
            }
            long count = 1;
            foreach (long d in shape) count *= d;
            parameters += count;
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
    /// The attribute that compiles this architecture, e.g.
    /// <c>[VitModel(patch: 16, dim: 768, depth: 12, heads: 12, imageSize: 224, classes: 1000)]</c>: patch, dim,
    /// depth, heads, imageSize and classes always, the other arguments when they differ from their defaults, in the
    /// constructor's order.
    /// </summary>
    /// <returns>The attribute as C# source.</returns>
    public string ToAttribute()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"[VitModel(patch: {Patch}, dim: {Dim}, depth: {Depth}, heads: {Heads}, imageSize: {ImageSize}");
        if (Channels != 3) sb.Append(CultureInfo.InvariantCulture, $", channels: {Channels}");
        sb.Append(CultureInfo.InvariantCulture, $", classes: {Classes}");
        if (MlpDim != 4 * Dim) sb.Append(CultureInfo.InvariantCulture, $", mlpDim: {MlpDim}");
        if (!QkvBias) sb.Append(", qkvBias: false");
        if (!ClassToken) sb.Append(", classToken: false");
        if (Pooling != VitPooling.Token) sb.Append(CultureInfo.InvariantCulture, $", pooling: VitPooling.{Pooling}");
        if (Activation != VitActivation.Gelu) sb.Append(CultureInfo.InvariantCulture, $", activation: VitActivation.{Activation}");
        if (NormEps != 1e-6f) sb.Append(", normEps: ").Append(FloatLiteral(NormEps));
        if (LayerScale) sb.Append(", layerScale: true");
        if (Registers != 0) sb.Append(CultureInfo.InvariantCulture, $", registers: {Registers}");
        if (NoEmbedClass) sb.Append(", noEmbedClass: true");
        if (PreNorm) sb.Append(", preNorm: true");
        if (Distilled) sb.Append(", distilled: true");
        return sb.Append(")]").ToString();
    }

    /// <summary>The timm names of the tensors the generated <c>Load</c> reads for this architecture, in its order.</summary>
    internal IEnumerable<string> TimmTensorNames()
    {
        yield return "patch_embed.proj.weight";
        if (!PreNorm) yield return "patch_embed.proj.bias";
        if (ClassToken) yield return "cls_token";
        if (Distilled) yield return "dist_token";
        if (Registers > 0) yield return "reg_token";
        yield return "pos_embed";
        if (PreNorm)
        {
            yield return "norm_pre.weight";
            yield return "norm_pre.bias";
        }
        for (int i = 0; i < Depth; i++)
        {
            string b = WeightLoading.BlockPrefix(i) + ".";
            yield return b + "norm1.weight";
            yield return b + "norm1.bias";
            yield return b + "attn.qkv.weight";
            if (QkvBias) yield return b + "attn.qkv.bias";
            yield return b + "attn.proj.weight";
            yield return b + "attn.proj.bias";
            if (LayerScale) yield return b + "ls1.gamma";
            yield return b + "norm2.weight";
            yield return b + "norm2.bias";
            yield return b + "mlp.fc1.weight";
            yield return b + "mlp.fc1.bias";
            yield return b + "mlp.fc2.weight";
            yield return b + "mlp.fc2.bias";
            if (LayerScale) yield return b + "ls2.gamma";
        }
        string finalNorm = Pooling == VitPooling.Avg ? "fc_norm" : "norm";
        yield return finalNorm + ".weight";
        yield return finalNorm + ".bias";
        if (Classes > 0)
        {
            yield return "head.weight";
            if (Dialect != CheckpointDialect.OpenAiClip) yield return "head.bias";
        }
        if (Distilled)
        {
            yield return "head_dist.weight";
            yield return "head_dist.bias";
        }
    }

    /// <summary>A C# float literal: <c>1e-5f</c>, <c>0.001f</c>.</summary>
    private static string FloatLiteral(float value)
    {
        string text = value.ToString("R", CultureInfo.InvariantCulture);
        int e = text.IndexOf('E', StringComparison.Ordinal);
        if (e >= 0)
        {
            string mantissa = text[..e];
            int exponent = int.Parse(text.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            text = mantissa + "e" + exponent.ToString(CultureInfo.InvariantCulture);
        }
        return text + "f";
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
