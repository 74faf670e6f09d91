// Shared source: compiled into ViTGen.Runtime and, as a linked file, into ViTGen.Generator (netstandard2.0), the
// way dotnet/runtime shares a source file between a library and its generator. So the timm names of a ViT's
// weights, their shapes and what each becomes at load time are written once: the generator lowers a model with
// this manifest (CPU loader, GPU arena), and the runtime uses the same one to infer and check checkpoints and to
// list a compiled model's tensors. Keep it free of anything netstandard2.0 lacks.
using System;
using System.Collections.Generic;
using System.Globalization;

namespace ViTGen;

/// <summary>
/// The timm names of a ViT's weights. Other dialects (Hugging Face, torchvision, OpenAI CLIP) are mapped to these
/// by <c>CheckpointNames</c>; nothing else in the product spells them.
/// </summary>
internal static class TimmNames
{
    public const string PatchEmbedding = "patch_embed.proj";
    public const string ClassToken = "cls_token";
    public const string DistillationToken = "dist_token";
    public const string RegisterTokens = "reg_token";
    public const string PositionEmbedding = "pos_embed";
    public const string PreNorm = "norm_pre";
    /// <summary>The final LayerNorm of token pooling, before the head.</summary>
    public const string Norm = "norm";
    /// <summary>The final LayerNorm of average pooling, after the mean.</summary>
    public const string FcNorm = "fc_norm";
    public const string Head = "head";
    public const string DistillationHead = "head_dist";

    // Inside a block, after "blocks.{index}.".
    public const string Norm1 = "norm1";
    public const string Qkv = "attn.qkv";
    public const string Proj = "attn.proj";
    public const string LayerScale1 = "ls1.gamma";
    public const string Norm2 = "norm2";
    public const string Fc1 = "mlp.fc1";
    public const string Fc2 = "mlp.fc2";
    public const string LayerScale2 = "ls2.gamma";

    public const string Weight = ".weight";
    public const string Bias = ".bias";

    /// <summary>The name prefix of block <paramref name="index"/>: <c>blocks.{index}</c>.</summary>
    public static string Block(int index) => "blocks." + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The full name of a tensor inside block <paramref name="index"/>.</summary>
    public static string InBlock(int index, string name) => Block(index) + "." + name;
}

/// <summary>What a parameter becomes when it is loaded.</summary>
internal enum WeightKind
{
    /// <summary>A tensor copied as it is (class, distillation and register tokens, position embedding).</summary>
    Buffer,
    /// <summary><c>.weight</c> and <c>.bias</c> of width <c>Shape[0]</c>.</summary>
    LayerNorm,
    /// <summary><c>.weight [out, in]</c> and maybe <c>.bias [out]</c>, packed for the GEMM; LayerScale folded in.</summary>
    Linear,
    /// <summary>The patch convolution <c>.weight [dim, channels, patch, patch]</c>, read as a Linear over unfolded patches.</summary>
    PatchEmbedding,
}

/// <summary>One parameter of the model: a buffer, a LayerNorm or a Linear layer, with its timm name and shape.</summary>
internal sealed class WeightParameter
{
    public WeightParameter(string key, string name, WeightKind kind, int[] shape, string[] shapeSymbols,
        bool hasBias = false, string? layerScale = null, bool biasAbsentInOpenAiClip = false)
    {
        Key = key;
        Name = name;
        Kind = kind;
        Shape = shape;
        ShapeSymbols = shapeSymbols;
        HasBias = hasBias;
        LayerScale = layerScale;
        BiasAbsentInOpenAiClip = biasAbsentInOpenAiClip;
    }

    /// <summary>The parameter's name in generated code (field, arena region), e.g. <c>Qkv</c>.</summary>
    public string Key { get; }

    /// <summary>The timm name: the tensor's for a buffer, else the prefix of <c>.weight</c>/<c>.bias</c>; in a block, after <c>blocks.N.</c>.</summary>
    public string Name { get; }

    public WeightKind Kind { get; }

    /// <summary>The stored shape of the tensor (a buffer) or of <c>.weight</c>.</summary>
    public int[] Shape { get; }

    /// <summary>The generated class's constant for each dimension of <see cref="Shape"/> (e.g. <c>3 * Dim</c>), for readable loaders.</summary>
    public string[] ShapeSymbols { get; }

    public bool HasBias { get; }

    /// <summary>A <c>[out]</c> gamma (timm <c>ls1</c>/<c>ls2</c>) folded into the weight's rows and the bias at load.</summary>
    public string? LayerScale { get; }

    /// <summary>OpenAI CLIP's projection, loaded as the head, has no bias: the bias is read as zeros there.</summary>
    public bool BiasAbsentInOpenAiClip { get; }

    /// <summary>Output features of a Linear or patch embedding; the width of a LayerNorm.</summary>
    public int OutFeatures => Shape[0];

    /// <summary>Input features of a Linear (the patch embedding's: channels · patch²).</summary>
    public int InFeatures
    {
        get
        {
            int features = 1;
            for (int i = 1; i < Shape.Length; i++) features *= Shape[i];
            return features;
        }
    }

    /// <summary>The tensors this parameter reads, in load order, under <paramref name="prefix"/> (<c>blocks.N.</c> or empty).</summary>
    public IEnumerable<KeyValuePair<string, int[]>> Tensors(string prefix, bool openAiClip)
    {
        if (Kind == WeightKind.Buffer)
        {
            yield return Pair(prefix + Name, Shape);
            yield break;
        }
        yield return Pair(prefix + Name + TimmNames.Weight, Shape);
        if (Kind == WeightKind.LayerNorm || (HasBias && !(BiasAbsentInOpenAiClip && openAiClip)))
            yield return Pair(prefix + Name + TimmNames.Bias, new[] { Shape[0] });
        if (LayerScale is not null) yield return Pair(prefix + LayerScale, new[] { Shape[0] });
    }

    private static KeyValuePair<string, int[]> Pair(string name, int[] shape) => new(name, shape);
}

/// <summary>
/// Every parameter a compiled ViT reads, in load order: the embedding's, one block's (repeated <see cref="Depth"/>
/// times under <c>blocks.N.</c>), and the final norm's and heads'.
/// </summary>
internal sealed class WeightManifest
{
    // The generated constants that spell each shape (WeightParameter.ShapeSymbols).
    private static readonly string[] DimSymbols = { "Dim" };
    private static readonly string[] PatchSymbols = { "Dim", "Channels", "PatchSize", "PatchSize" };
    private static readonly string[] QkvSymbols = { "3 * Dim", "Dim" };
    private static readonly string[] SquareSymbols = { "Dim", "Dim" };
    private static readonly string[] Fc1Symbols = { "MlpDim", "Dim" };
    private static readonly string[] Fc2Symbols = { "Dim", "MlpDim" };
    private static readonly string[] HeadSymbols = { "NumClasses", "Dim" };

    private WeightManifest(int depth, List<WeightParameter> embedding, List<WeightParameter> block, List<WeightParameter> final)
    {
        Depth = depth;
        Embedding = embedding;
        Block = block;
        Final = final;
    }

    public int Depth { get; }

    /// <summary>Patch embedding, prefix tokens, position embedding, pre-norm.</summary>
    public IReadOnlyList<WeightParameter> Embedding { get; }

    /// <summary>One block's parameters, named relative to <c>blocks.N.</c>.</summary>
    public IReadOnlyList<WeightParameter> Block { get; }

    /// <summary>The final LayerNorm and the heads.</summary>
    public IReadOnlyList<WeightParameter> Final { get; }

    /// <summary>The manifest of a model with the attribute's arguments (<paramref name="mlpDim"/> resolved, not 0).</summary>
    public static WeightManifest Create(
        int channels, int patch, int dim, int depth, int mlpDim, int classes, int registers, int positionRows,
        bool classToken, bool distilled, bool qkvBias, bool layerScale, bool preNorm, bool averagePooling)
    {
        var embedding = new List<WeightParameter>
        {
            // pre_norm models (CLIP) have no patch bias: the LayerNorm after the position embedding replaces it.
            new("PatchEmbedding", TimmNames.PatchEmbedding, WeightKind.PatchEmbedding, new[] { dim, channels, patch, patch },
                PatchSymbols, hasBias: !preNorm),
        };
        if (classToken) embedding.Add(Token("ClassToken", TimmNames.ClassToken, 1, "1", dim));
        if (distilled) embedding.Add(Token("DistillationToken", TimmNames.DistillationToken, 1, "1", dim));
        if (registers > 0) embedding.Add(Token("RegisterTokens", TimmNames.RegisterTokens, registers, registers.ToString(CultureInfo.InvariantCulture), dim));
        embedding.Add(Token("PositionEmbedding", TimmNames.PositionEmbedding, positionRows, "PositionRows", dim));
        if (preNorm) embedding.Add(new("PreNorm", TimmNames.PreNorm, WeightKind.LayerNorm, new[] { dim }, DimSymbols));

        var block = new List<WeightParameter>
        {
            new("Norm1", TimmNames.Norm1, WeightKind.LayerNorm, new[] { dim }, DimSymbols),
            new("Qkv", TimmNames.Qkv, WeightKind.Linear, new[] { 3 * dim, dim }, QkvSymbols, hasBias: qkvBias),
            new("Proj", TimmNames.Proj, WeightKind.Linear, new[] { dim, dim }, SquareSymbols, hasBias: true,
                layerScale: layerScale ? TimmNames.LayerScale1 : null),
            new("Norm2", TimmNames.Norm2, WeightKind.LayerNorm, new[] { dim }, DimSymbols),
            new("Fc1", TimmNames.Fc1, WeightKind.Linear, new[] { mlpDim, dim }, Fc1Symbols, hasBias: true),
            new("Fc2", TimmNames.Fc2, WeightKind.Linear, new[] { dim, mlpDim }, Fc2Symbols, hasBias: true,
                layerScale: layerScale ? TimmNames.LayerScale2 : null),
        };

        var final = new List<WeightParameter>
        {
            new("FinalNorm", averagePooling ? TimmNames.FcNorm : TimmNames.Norm, WeightKind.LayerNorm, new[] { dim }, DimSymbols),
        };
        if (classes > 0)
        {
            final.Add(new("Head", TimmNames.Head, WeightKind.Linear, new[] { classes, dim }, HeadSymbols,
                hasBias: true, biasAbsentInOpenAiClip: true));
        }
        if (distilled)
        {
            final.Add(new("DistillationHead", TimmNames.DistillationHead, WeightKind.Linear, new[] { classes, dim }, HeadSymbols, hasBias: true));
        }
        return new WeightManifest(depth, embedding, block, final);
    }

    private static WeightParameter Token(string key, string name, int rows, string rowsSymbol, int dim)
        => new(key, name, WeightKind.Buffer, new[] { 1, rows, dim }, new[] { "1", rowsSymbol, "Dim" });

    /// <summary>Every tensor the model reads, with its timm name and stored shape, in load order.</summary>
    /// <param name="openAiClip">Whether the checkpoint is OpenAI CLIP's, whose projection (the head) has no bias.</param>
    public IEnumerable<KeyValuePair<string, int[]>> Tensors(bool openAiClip)
    {
        foreach (var parameter in Embedding)
            foreach (var tensor in parameter.Tensors("", openAiClip)) yield return tensor;
        for (int i = 0; i < Depth; i++)
        {
            string prefix = TimmNames.Block(i) + ".";
            foreach (var parameter in Block)
                foreach (var tensor in parameter.Tensors(prefix, openAiClip)) yield return tensor;
        }
        foreach (var parameter in Final)
            foreach (var tensor in parameter.Tensors("", openAiClip)) yield return tensor;
    }
}
