using System.Globalization;
using System.Text;

namespace ViTGen;

/// <summary>
/// The arguments of a <see cref="VitModelAttribute"/>, resolved (<see cref="MlpDim"/> is the actual width), with the
/// shapes they imply and the tensors such a model reads. Every generated model exposes its own as the static
/// <c>Architecture</c> property; <see cref="CheckpointArchitecture"/> infers one from a checkpoint.
/// </summary>
/// <remarks>
/// Properties start at the attribute's defaults (224 pixels, 3 channels, 1000 classes, qkv bias, class token, eps
/// 1e-6); <see cref="Patch"/>, <see cref="Dim"/>, <see cref="Depth"/>, <see cref="Heads"/> and <see cref="MlpDim"/>
/// have none and must be set. Equality is a record's: a <see cref="CheckpointArchitecture"/> never equals a plain
/// <see cref="VitArchitecture"/>; compare <see cref="ToAttribute"/> texts to ask whether two describe the same model.
/// </remarks>
public record VitArchitecture
{
    /// <summary>Patch size in pixels.</summary>
    public int Patch { get; init; }

    /// <summary>Embedding width.</summary>
    public int Dim { get; init; }

    /// <summary>Number of transformer blocks.</summary>
    public int Depth { get; init; }

    /// <summary>Attention heads per block.</summary>
    public int Heads { get; init; }

    /// <summary>Square input size in pixels.</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>Input channels.</summary>
    public int Channels { get; init; } = 3;

    /// <summary>Classifier outputs; 0 when the model has no head.</summary>
    public int Classes { get; init; } = 1000;

    /// <summary>Hidden width of the MLP (not 0: the actual width).</summary>
    public int MlpDim { get; init; }

    /// <summary>Whether the qkv projection has a bias.</summary>
    public bool QkvBias { get; init; } = true;

    /// <summary>Whether a class token is prepended.</summary>
    public bool ClassToken { get; init; } = true;

    /// <summary>How tokens are pooled before the head.</summary>
    public VitPooling Pooling { get; init; }

    /// <summary>The MLP activation.</summary>
    public VitActivation Activation { get; init; }

    /// <summary>The LayerNorm epsilon.</summary>
    public float NormEps { get; init; } = 1e-6f;

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

    /// <summary>Bottlenecks per stage of a hybrid's ResNetV2 trunk (empty: the stem only); null for a plain ViT.</summary>
    public IReadOnlyList<int>? HybridLayers { get; init; }

    /// <summary>The hybrid trunk's stem width (timm's default 64).</summary>
    public int HybridWidth { get; init; } = 64;

    /// <summary>Patches per image: of the image, or of a hybrid's feature map.</summary>
    public int NumPatches
    {
        get
        {
            if (Patch <= 0) return 0;
            int side = HybridLayers is null ? ImageSize : HybridGeometry.FeatureSize(ImageSize, HybridLayers.Count);
            return (side / Patch) * (side / Patch);
        }
    }

    /// <summary>Tokens before the patches: class, distillation and register tokens.</summary>
    public int PrefixTokens => (ClassToken ? 1 : 0) + (Distilled ? 1 : 0) + Registers;

    /// <summary>Tokens per image.</summary>
    public int Tokens => PrefixTokens + NumPatches;

    /// <summary>Floats of one input image (normalized CHW pixels).</summary>
    public int InputSize => Channels * ImageSize * ImageSize;

    /// <summary>Floats of one output: the logits, or the pooled features when there is no head.</summary>
    public int OutputSize => Classes > 0 ? Classes : Dim;

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
        if (HybridLayers is not null)
            sb.Append(HybridLayers.Count == 0 ? ", hybridLayers: new int[0]" : ", hybridLayers: new[] { " + string.Join(", ", HybridLayers.Select(l => l.ToString(CultureInfo.InvariantCulture))) + " }");
        if (HybridLayers is not null && HybridWidth != 64) sb.Append(CultureInfo.InvariantCulture, $", hybridWidth: {HybridWidth}");
        return sb.Append(")]").ToString();
    }

    /// <summary>
    /// The tensors a model of this architecture reads from a timm checkpoint, with their shapes, in load order
    /// (other dialects store the same tensors under their own names).
    /// </summary>
    /// <returns>Name and shape of each tensor (each shape a new array).</returns>
    public IReadOnlyList<(string Name, int[] Shape)> TimmTensors()
        => Manifest().Tensors(openAiClip: false).Select(t => (t.Key, t.Value.ToArray())).ToList().AsReadOnly();

    /// <summary>The weight manifest the generator lowered the model with, for these arguments.</summary>
    internal WeightManifest Manifest() => WeightManifest.Create(
        Channels, Patch, Dim, Depth, MlpDim, Classes, Registers, NoEmbedClass ? NumPatches : Tokens,
        ClassToken, Distilled, QkvBias, LayerScale, PreNorm, Pooling == VitPooling.Avg, HybridLayers, HybridWidth);

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
}
