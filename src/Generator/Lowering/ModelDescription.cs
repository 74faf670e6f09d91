using System;
using System.Collections.Generic;
using System.Linq;
using ViTGen.Generator.Model;

namespace ViTGen.Generator.Lowering;

/// <summary>
/// A size with the generated class's constant that spells it (<c>Tokens</c>, <c>3 * Dim</c>), so a backend can print
/// either: the CPU emitter writes the name, the GPU emitter the number.
/// </summary>
internal readonly record struct Extent(int Value, string Symbol)
{
    public static Extent Literal(int value) => new(value, value.ToString(System.Globalization.CultureInfo.InvariantCulture));
}

/// <summary>An activation buffer of one image: <c>[Rows, Width]</c> floats, row-major.</summary>
internal sealed record BufferInfo(string Name, Extent Rows, Extent Width, string Comment)
{
    public long Floats => (long)Rows.Value * Width.Value;
}

/// <summary>How a Linear layer writes its result: stored, added to the output (a residual), or through the activation.</summary>
internal enum Epilogue { Store, Residual, Activate }

/// <summary>
/// One step of the forward pass of one image, over named buffers (<see cref="ModelDescription.Buffers"/>) and
/// manifest parameters. Backends translate each kind; a backend may fuse a step into its neighbour (the GPU adds a
/// Linear's bias in the kernel that consumes it) but never reorders or restates the schedule.
/// </summary>
internal abstract record Operation;

/// <summary>The image's patches as rows of <c>PatchFeatures</c> (the receptive fields of the patch convolution).</summary>
internal sealed record UnfoldPatches(string Output) : Operation;

/// <summary>
/// <c>Output[OutputRow + r] ⊕= Input[InputRow + r] · Wᵀ + b</c> for <c>r &lt; Rows</c>, ⊕ by <see cref="Epilogue"/>.
/// <see cref="Label"/> is the layer's timm name, for traces and profiles.
/// </summary>
internal sealed record Linear(
    string Label, WeightParameter Weight, string Input, Extent InputRow, string Output, Extent OutputRow, Extent Rows, Epilogue Epilogue) : Operation
{
    /// <summary>Multiply-adds of the layer for one image: what decides whether it is worth splitting across threads.</summary>
    public long MultiplyAdds => (long)Rows.Value * Weight.OutFeatures * Weight.InFeatures;
}

/// <summary>The prefix tokens (class, distillation, registers) in rows 0.., then the position embedding added from <see cref="PositionFirstRow"/>.</summary>
internal sealed record AssembleTokens(string Output, IReadOnlyList<WeightParameter> Prefix, WeightParameter Position, Extent PositionFirstRow) : Operation;

/// <summary>LayerNorm of rows 0..<see cref="Rows"/> of <see cref="Input"/> into <see cref="Output"/> (may be the same buffer).</summary>
internal sealed record LayerNorm(string Label, WeightParameter Weight, string Input, string Output, Extent Rows) : Operation;

/// <summary>Multi-head self-attention: <see cref="Input"/> holds q, k, v side by side per token; heads side by side in <see cref="Output"/>.</summary>
internal sealed record Attention(string Label, string Input, string Output) : Operation;

/// <summary>The mean of rows <see cref="FirstRow"/>..+<see cref="Rows"/> of <see cref="Input"/> into row 0 of <see cref="Output"/>.</summary>
internal sealed record MeanRows(string Label, string Input, Extent FirstRow, Extent Rows, string Output) : Operation;

/// <summary>The model's output: the mean of rows 0 and 1 of <see cref="Input"/> (DeiT's two heads at inference).</summary>
internal sealed record AverageRowsToOutput(string Label, string Input) : Operation;

/// <summary>The model's output: row 0 of <see cref="Input"/>.</summary>
internal sealed record CopyToOutput(string Input) : Operation;

/// <summary>The output: rows 0..<see cref="Rows"/> of <see cref="Input"/> (every token, for <c>ForwardFeatures</c>).</summary>
internal sealed record CopyRowsToOutput(string Input, Extent Rows) : Operation;

/// <summary>A hybrid's image, CHW as Forward receives it, copied channels-last into <see cref="Output"/> for the trunk.</summary>
internal sealed record ChannelsLast(string Output) : Operation;

/// <summary>
/// The receptive fields of a <see cref="Kernel"/>-square, stride-<see cref="Stride"/> convolution with TensorFlow 'same'
/// padding over the channels-last <see cref="Input"/> (<see cref="Size"/>² pixels of <see cref="Channels"/>): one row
/// of <c>(ky, kx, channel)</c> columns per output pixel in <see cref="Output"/>, the GEMM's input.
/// </summary>
internal sealed record UnfoldMap(string Input, int Size, int Channels, int Kernel, int Stride, string Output) : Operation;

/// <summary>How a <see cref="GroupNorm"/> ends: as it is, through ReLU, or added to a shortcut and then through ReLU.</summary>
internal enum GroupNormEnd { None, Relu, AddRelu }

/// <summary>GroupNorm (32 groups) of <see cref="Pixels"/> channels-last pixels in place; <see cref="Residual"/> is the shortcut for <see cref="GroupNormEnd.AddRelu"/>.</summary>
internal sealed record GroupNorm(string Label, WeightParameter Weight, string Buffer, int Pixels, GroupNormEnd End, string? Residual) : Operation;

/// <summary>The stem's 3x3 stride-2 'same' max pool of a channels-last map of <see cref="Size"/>² pixels.</summary>
internal sealed record MaxPool(string Input, int Size, int Channels, string Output) : Operation;

/// <summary>A named run of operations: the embedding, one transformer block (repeated <c>Depth</c> times), the head.</summary>
internal sealed record Stage(string Summary, IReadOnlyList<Operation> Operations);

/// <summary>
/// The passes besides Forward, over the same stages: <c>ForwardAttention</c> (Forward, plus every block's attention
/// probabilities, when <see cref="AttentionSize"/> fits an int), <c>ForwardFeatures</c> (the embedding and the blocks,
/// then <see cref="Features"/>) and <c>ForwardPooled</c> (then <see cref="ModelDescription.Pool"/> and <see cref="PreLogits"/>).
/// </summary>
/// <param name="AttentionSize">Floats of attention per image, <c>Depth * Heads * Tokens * Tokens</c>.</param>
/// <param name="FeatureSize">Floats of features per image, <c>Tokens * Dim</c>.</param>
/// <param name="PooledSize">Floats of pooled features per image, <c>Dim</c>.</param>
/// <param name="Features">timm's <c>forward_features</c> after the last block: the final norm of every token (the identity for average-pooled models, whose norm is fc_norm after pooling), written out.</param>
/// <param name="PreLogits">timm's <c>forward_head(pre_logits=True)</c> after pooling: the pooled row, or the mean of DeiT's two, written out.</param>
internal sealed record ExplainOutputs(long AttentionSize, int FeatureSize, int PooledSize, Stage Features, Stage PreLogits)
{
    /// <summary>Whether <c>ForwardAttention</c> and <c>AttentionSize</c> exist: the maps of one image must fit a span.</summary>
    public bool HasAttention => AttentionSize <= int.MaxValue;
}

/// <summary>
/// A ViT lowered once, for every backend: shapes (<see cref="Spec"/>), the weight manifest, the activation buffers
/// of one image, and the schedule as three stages. The CPU emitter and the GPU plan emitter translate this; neither
/// decides what the model computes.
/// </summary>
/// <remarks>
/// Equality is the spec's: lowering is a pure function of it, so equal specs give equal descriptions, and the
/// incremental pipeline caches on that without comparing the manifest's arrays.
/// </remarks>
internal sealed class ModelDescription : IEquatable<ModelDescription>
{
    public ModelDescription(VitModelSpec spec, WeightManifest weights, IReadOnlyList<BufferInfo> buffers, Stage embed, Stage block,
        Stage pool, Stage classify, string headSummary, ExplainOutputs explain)
    {
        Spec = spec;
        Weights = weights;
        Buffers = buffers;
        Embed = embed;
        Block = block;
        Pool = pool;
        Classify = classify;
        Head = new Stage(headSummary, pool.Operations.Concat(classify.Operations).ToList());
        Explain = explain;
    }

    public VitModelSpec Spec { get; }
    public WeightManifest Weights { get; }
    public IReadOnlyList<BufferInfo> Buffers { get; }
    public Stage Embed { get; }
    public Stage Block { get; }
    /// <summary>The head as one stage, <see cref="Pool"/> then <see cref="Classify"/> (what the GPU plan translates).</summary>
    public Stage Head { get; }

    /// <summary>The first part of the head: the pooled, normalized rows into the <c>Pooled</c> buffer.</summary>
    public Stage Pool { get; }

    /// <summary>The rest of the head: from <c>Pooled</c> to Forward's output.</summary>
    public Stage Classify { get; }

    /// <summary>The passes besides Forward.</summary>
    public ExplainOutputs Explain { get; }

    public IEnumerable<Stage> Stages
    {
        get
        {
            yield return Embed;
            yield return Block;
            yield return Head;
            yield return Explain.Features;
            yield return Explain.PreLogits;
        }
    }

    public BufferInfo Buffer(string name)
    {
        foreach (var buffer in Buffers)
            if (buffer.Name == name) return buffer;
        throw new InvalidOperationException($"No buffer '{name}' in the model description.");
    }

    public bool Equals(ModelDescription? other) => other is not null && Spec.Equals(other.Spec);

    public override bool Equals(object? obj) => Equals(obj as ModelDescription);

    public override int GetHashCode() => Spec.GetHashCode();
}
