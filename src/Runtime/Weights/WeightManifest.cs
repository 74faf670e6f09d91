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

    /// <summary>A hybrid's ResNetV2 trunk (timm <c>HybridEmbed.backbone</c>).</summary>
    public const string Backbone = "patch_embed.backbone";

    /// <summary>
    /// The stem's prefix: a <c>ResNetV2</c> keeps it in <c>stem</c>, while a stem-only backbone (no stages) is the
    /// stem's <c>nn.Sequential</c> itself.
    /// </summary>
    public static string Stem(bool hasStages) => hasStages ? Backbone + ".stem" : Backbone;

    /// <summary>The prefix of bottleneck <paramref name="block"/> of stage <paramref name="stage"/>.</summary>
    public static string Bottleneck(int stage, int block)
        => Backbone + ".stages." + stage.ToString(CultureInfo.InvariantCulture) + ".blocks." + block.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// The geometry of timm's hybrid trunk (<c>_resnetv2(layers, padding_same=True)</c>): a 7x7 stride-2 stem convolution
/// of <c>width</c> channels, a 3x3 stride-2 max pool, then bottleneck stages of strides 1, 2, 2, 2, stage <c>i</c> with
/// bottleneck width <c>width · 2^i</c> and <c>4 · width · 2^i</c> outputs. Every convolution and the pool pad
/// TensorFlow's 'same' way, so a stride-s layer maps n pixels to ceil(n / s).
/// </summary>
internal static class HybridGeometry
{
    /// <summary>timm's <c>output_stride=32</c> and its four default stage widths: a fifth stage would dilate instead.</summary>
    public const int MaxStages = 4;
    /// <summary>GroupNorm groups (timm's <c>GroupNormAct(num_groups=32)</c>).</summary>
    public const int Groups = 32;
    /// <summary>GroupNorm eps (PyTorch's default).</summary>
    public const float NormEps = 1e-5f;
    /// <summary>Weight-standardization eps: <c>_resnetv2</c> passes <c>partial(StdConv2dSame, eps=1e-8)</c>, stem-only trunks too.</summary>
    public const float StandardizationEps = 1e-8f;

    /// <summary>Output size of a 'same'-padded layer of stride <paramref name="stride"/>.</summary>
    public static int SameOutput(int size, int stride) => (size + stride - 1) / stride;

    /// <summary>Padding before (top or left) of a 'same'-padded layer: half the total, rounded down (timm's <c>pad_same</c>).</summary>
    public static int SamePadBefore(int size, int kernel, int stride)
        => Math.Max((SameOutput(size, stride) - 1) * stride + kernel - size, 0) / 2;

    /// <summary>The stride of stage <paramref name="stage"/>.</summary>
    public static int StageStride(int stage) => stage == 0 ? 1 : 2;

    /// <summary>Side of the feature map after the stem (conv and pool), i.e. the input of stage 0.</summary>
    public static int StemOutput(int imageSize) => SameOutput(SameOutput(imageSize, 2), 2);

    /// <summary>Side of the trunk's output feature map for <paramref name="stages"/> stages.</summary>
    public static int FeatureSize(int imageSize, int stages)
    {
        int size = StemOutput(imageSize);
        for (int i = 0; i < stages; i++) size = SameOutput(size, StageStride(i));
        return size;
    }

    /// <summary>How many pixels of the image one pixel of the feature map spans (up to the rounding of 'same' padding).</summary>
    public static int Stride(int stages)
    {
        int stride = 4;
        for (int i = 0; i < stages; i++) stride *= StageStride(i);
        return stride;
    }

    /// <summary>Bottleneck width of stage <paramref name="stage"/>.</summary>
    public static int StageWidth(int width, int stage) => width << stage;

    /// <summary>Output channels of stage <paramref name="stage"/>.</summary>
    public static int StageChannels(int width, int stage) => 4 * (width << stage);

    /// <summary>Channels of the trunk's output: the stem's width, or the last stage's outputs.</summary>
    public static int FeatureChannels(int width, int stages) => stages == 0 ? width : StageChannels(width, stages - 1);
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
    /// <summary>
    /// A convolution <c>.weight [out, in, k, k]</c> over a channels-last feature map, read as a Linear over
    /// <c>(ky, kx, channel)</c> columns; weight standardization folded in when <see cref="WeightParameter.StandardizationEps"/> is set.
    /// </summary>
    Convolution,
}

/// <summary>One parameter of the model: a buffer, a LayerNorm or a Linear layer, with its timm name and shape.</summary>
internal sealed class WeightParameter
{
    public WeightParameter(string key, string name, WeightKind kind, int[] shape, string[] shapeSymbols,
        bool hasBias = false, string? layerScale = null, bool biasAbsentInOpenAiClip = false, float standardizationEps = 0)
    {
        StandardizationEps = standardizationEps;
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

    /// <summary>A convolution's weight-standardization eps (timm <c>StdConv2dSame</c>), or 0 for a plain weight.</summary>
    public float StandardizationEps { get; }

    /// <summary>Output features of a Linear, convolution or patch embedding; the width of a LayerNorm or GroupNorm.</summary>
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

    private WeightManifest(int depth, List<WeightParameter> backbone, List<WeightParameter> embedding, List<WeightParameter> block, List<WeightParameter> final)
    {
        Depth = depth;
        Backbone = backbone;
        Embedding = embedding;
        Block = block;
        Final = final;
    }

    public int Depth { get; }

    /// <summary>A hybrid's ResNetV2 trunk, in timm's order (stem, then each stage's bottlenecks); empty for a plain ViT.</summary>
    public IReadOnlyList<WeightParameter> Backbone { get; }

    /// <summary>Patch embedding, prefix tokens, position embedding, pre-norm.</summary>
    public IReadOnlyList<WeightParameter> Embedding { get; }

    /// <summary>One block's parameters, named relative to <c>blocks.N.</c>.</summary>
    public IReadOnlyList<WeightParameter> Block { get; }

    /// <summary>The final LayerNorm and the heads.</summary>
    public IReadOnlyList<WeightParameter> Final { get; }

    /// <summary>
    /// The manifest of a model with the attribute's arguments (<paramref name="mlpDim"/> resolved, not 0); with
    /// <paramref name="hybridLayers"/> (empty: the stem only) a hybrid whose patch embedding reads the trunk's feature map.
    /// </summary>
    public static WeightManifest Create(
        int channels, int patch, int dim, int depth, int mlpDim, int classes, int registers, int positionRows,
        bool classToken, bool distilled, bool qkvBias, bool layerScale, bool preNorm, bool averagePooling,
        IReadOnlyList<int>? hybridLayers = null, int hybridWidth = 64)
    {
        var backbone = hybridLayers is null ? new List<WeightParameter>() : BackboneParameters(channels, hybridLayers, hybridWidth);
        var embedding = new List<WeightParameter>
        {
            // pre_norm models (CLIP) have no patch bias: the LayerNorm after the position embedding replaces it.
            hybridLayers is null
                ? new("PatchEmbedding", TimmNames.PatchEmbedding, WeightKind.PatchEmbedding, new[] { dim, channels, patch, patch },
                    PatchSymbols, hasBias: !preNorm)
                : Convolution("PatchEmbedding", TimmNames.PatchEmbedding, dim, HybridGeometry.FeatureChannels(hybridWidth, hybridLayers.Count), patch,
                    hasBias: !preNorm, standardize: false),
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
        return new WeightManifest(depth, backbone, embedding, block, final);
    }

    /// <summary>The trunk's parameters: stem conv and norm, then per bottleneck its downsample (first block), conv1..norm3.</summary>
    private static List<WeightParameter> BackboneParameters(int channels, IReadOnlyList<int> layers, int width)
    {
        string stem = TimmNames.Stem(layers.Count > 0);
        var parameters = new List<WeightParameter>
        {
            Convolution("StemConv", stem + ".conv", width, channels, 7),
            Norm("StemNorm", stem + ".norm", width),
        };
        int inputs = width;
        for (int stage = 0; stage < layers.Count; stage++)
        {
            int mid = HybridGeometry.StageWidth(width, stage), outputs = HybridGeometry.StageChannels(width, stage);
            for (int block = 0; block < layers[stage]; block++)
            {
                string prefix = TimmNames.Bottleneck(stage, block);
                string key = "Stage" + stage.ToString(CultureInfo.InvariantCulture) + "Block" + block.ToString(CultureInfo.InvariantCulture);
                if (block == 0)
                {
                    parameters.Add(Convolution(key + "DownsampleConv", prefix + ".downsample.conv", outputs, inputs, 1));
                    parameters.Add(Norm(key + "DownsampleNorm", prefix + ".downsample.norm", outputs));
                }
                parameters.Add(Convolution(key + "Conv1", prefix + ".conv1", mid, inputs, 1));
                parameters.Add(Norm(key + "Norm1", prefix + ".norm1", mid));
                parameters.Add(Convolution(key + "Conv2", prefix + ".conv2", mid, mid, 3));
                parameters.Add(Norm(key + "Norm2", prefix + ".norm2", mid));
                parameters.Add(Convolution(key + "Conv3", prefix + ".conv3", outputs, mid, 1));
                parameters.Add(Norm(key + "Norm3", prefix + ".norm3", outputs));
                inputs = outputs;
            }
        }
        return parameters;
    }

    private static WeightParameter Convolution(string key, string name, int outputs, int inputs, int kernel, bool hasBias = false, bool standardize = true)
    {
        var shape = new[] { outputs, inputs, kernel, kernel };
        return new(key, name, WeightKind.Convolution, shape, Array.ConvertAll(shape, Number), hasBias: hasBias,
            standardizationEps: standardize ? HybridGeometry.StandardizationEps : 0);
    }

    // A GroupNorm's affine parameters are read like a LayerNorm's: .weight and .bias of its channels.
    private static WeightParameter Norm(string key, string name, int channels)
        => new(key, name, WeightKind.LayerNorm, new[] { channels }, new[] { Number(channels) });

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static WeightParameter Token(string key, string name, int rows, string rowsSymbol, int dim)
        => new(key, name, WeightKind.Buffer, new[] { 1, rows, dim }, new[] { "1", rowsSymbol, "Dim" });

    /// <summary>Every tensor the model reads, with its timm name and stored shape, in load order.</summary>
    /// <param name="openAiClip">Whether the checkpoint is OpenAI CLIP's, whose projection (the head) has no bias.</param>
    public IEnumerable<KeyValuePair<string, int[]>> Tensors(bool openAiClip)
    {
        foreach (var parameter in Backbone)
            foreach (var tensor in parameter.Tensors("", openAiClip)) yield return tensor;
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
