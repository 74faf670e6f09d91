namespace ViTGen.CompilerServices;

/// <summary>
/// Reads timm-named tensors from a checkpoint into the kernels' layouts, checking every shape against the
/// compiled model. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class WeightLoading
{
    /// <summary>The timm name prefix of block <paramref name="index"/> (<c>blocks.{index}</c>), from the weight manifest.</summary>
    public static string BlockPrefix(int index) => TimmNames.Block(index);

    /// <summary>Reads a tensor of the given shape into a new buffer.</summary>
    public static NativeBuffer ReadBuffer(CheckpointReader reader, string name, params int[] shape)
    {
        long length = 1;
        foreach (int d in shape) length *= d;
        var buffer = new NativeBuffer(length);
        try
        {
            reader.Read(name, shape, buffer.Span);
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>Reads <c>{prefix}.weight</c> and <c>{prefix}.bias</c>, both <c>[width]</c>.</summary>
    public static LayerNormWeights ReadLayerNorm(CheckpointReader reader, string prefix, int width)
    {
        var norm = new LayerNormWeights(width);
        try
        {
            reader.Read(prefix + ".weight", [width], norm.Weight.Span);
            reader.Read(prefix + ".bias", [width], norm.Bias.Span);
            return norm;
        }
        catch
        {
            norm.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads a Linear layer <c>{prefix}.weight [outFeatures, inFeatures]</c> (plus <c>{prefix}.bias</c> when
    /// <paramref name="hasBias"/>) and packs it. With <paramref name="layerScale"/>, the tensor <c>[outFeatures]</c>
    /// of that name multiplies the weight's rows and the bias: timm's <c>ls(fc(x))</c> folded into the layer.
    /// </summary>
    public static PackedLinear ReadLinear(CheckpointReader reader, string prefix, int outFeatures, int inFeatures, bool hasBias, string? layerScale = null)
        => ReadPacked(reader, prefix, [outFeatures, inFeatures], outFeatures, inFeatures, hasBias, layerScale);

    /// <summary>Reads a patch-embedding convolution <c>[dim, channels, patch, patch]</c> as a Linear over unfolded patches.</summary>
    public static PackedLinear ReadPatchEmbedding(CheckpointReader reader, string prefix, int dim, int channels, int patch, bool hasBias)
        => ReadPacked(reader, prefix, [dim, channels, patch, patch], dim, channels * patch * patch, hasBias, null);

    private static PackedLinear ReadPacked(CheckpointReader reader, string prefix, int[] shape, int outFeatures, int inFeatures, bool hasBias, string? layerScale)
    {
        var weight = new float[outFeatures * inFeatures];
        var bias = hasBias ? new float[outFeatures] : [];
        reader.Read(prefix + ".weight", shape, weight);
        if (hasBias) reader.Read(prefix + ".bias", [outFeatures], bias);
        if (layerScale is not null) FoldLayerScale(reader, layerScale, weight, bias, outFeatures, inFeatures);
        return new PackedLinear(weight, bias, outFeatures, inFeatures);
    }

    /// <summary>
    /// timm's <c>ls(fc(x)) = gamma ⊙ (W x + b)</c> folded into the layer: reads <paramref name="layerScale"/>
    /// (<c>[outFeatures]</c>) and scales row <c>o</c> of <paramref name="weight"/> and <c>bias[o]</c> (when not empty) by <c>gamma[o]</c>.
    /// Shared by the CPU and GPU loaders.
    /// </summary>
    internal static void FoldLayerScale(CheckpointReader reader, string layerScale, Span<float> weight, Span<float> bias, int outFeatures, int inFeatures)
    {
        var gamma = new float[outFeatures];
        reader.Read(layerScale, [outFeatures], gamma);
        for (int o = 0; o < outFeatures; o++)
        {
            var row = weight.Slice(o * inFeatures, inFeatures);
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, gamma[o], row);
        }
        if (!bias.IsEmpty) System.Numerics.Tensors.TensorPrimitives.Multiply(bias, gamma, bias);
    }
}
