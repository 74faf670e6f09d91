using System.Linq;

using ViTGen.Generator.Helpers;

namespace ViTGen.Generator.Model;

/// <summary>Mirrors the runtime's <c>ViTGen.VitPooling</c> (the generator cannot reference the runtime).</summary>
internal enum Pooling { Token, Avg }

/// <summary>Mirrors the runtime's <c>ViTGen.VitActivation</c>.</summary>
internal enum Activation { Gelu, GeluTanh, QuickGelu, Relu }

/// <summary>
/// Everything the emitter needs about one <c>[VitModel]</c> class, as plain values: no symbols, syntax or
/// compilations, so the incremental pipeline can compare runs and skip emission when nothing changed.
/// </summary>
internal sealed record VitModelSpec(
    TypeLocation Type,
    string AttributeText,
    int Patch, int Dim, int Depth, int Heads, int ImageSize, int Channels, int Classes, int MlpDim,
    bool QkvBias, bool ClassToken, Pooling Pooling, Activation Activation, float NormEps,
    bool LayerScale, int Registers, bool NoEmbedClass, bool PreNorm, bool Distilled,
    bool Hybrid, EquatableArray<int> HybridLayers, int HybridWidth)
{
    public int HeadDim => Dim / Heads;
    /// <summary>Side of what the patch embedding reads: the image, or a hybrid trunk's feature map.</summary>
    public int FeatureMapSize => Hybrid ? HybridGeometry.FeatureSize(ImageSize, HybridLayers.Count) : ImageSize;
    /// <summary>Channels of what the patch embedding reads.</summary>
    public int FeatureMapChannels => Hybrid ? HybridGeometry.FeatureChannels(HybridWidth, HybridLayers.Count) : Channels;
    public int Grid => FeatureMapSize / Patch;
    public int NumPatches => Grid * Grid;
    /// <summary>Tokens before the patches: class, distillation, registers (timm's <c>num_prefix_tokens</c>).</summary>
    public int PrefixTokens => (ClassToken ? 1 : 0) + (Distilled ? 1 : 0) + Registers;
    public int Tokens => PrefixTokens + NumPatches;
    public int PatchFeatures => FeatureMapChannels * Patch * Patch;
    public int OutputSize => Classes > 0 ? Classes : Dim;
    /// <summary>Rows the position embedding covers: all tokens, or only the patches with <c>no_embed_class</c>.</summary>
    public int PositionRows => NoEmbedClass ? NumPatches : Tokens;
}

/// <summary>
/// Where the partial class lives: namespace, containing types (outermost first) with their declaration keywords
/// (<c>class</c>, <c>struct</c>, <c>record</c>, <c>record struct</c>, <c>interface</c>), and its own name. Names are plain
/// (no '@'); the emitter escapes keywords.
/// </summary>
internal sealed record TypeLocation(string? Namespace, EquatableArray<string> ContainingTypes, EquatableArray<string> ContainingKinds, string Name)
{
    public string FullName => string.Join(".", new[] { Namespace }.Where(n => n is not null).Concat(ContainingTypes).Append(Name));
}
