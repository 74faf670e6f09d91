using System.Globalization;

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

    /// <summary>
    /// Opens the checkpoint a generated <c>Load</c> reads, with the options that govern reading it: the tensors to
    /// ignore (<see cref="VitOptions.Checkpoint"/>) and whether a position embedding of another grid is resampled
    /// (<see cref="VitOptions.ResamplePositionEmbedding"/>).
    /// </summary>
    /// <exception cref="VitWeightsException">The file cannot be opened or is not a valid safetensors file.</exception>
    public static CheckpointReader OpenCheckpoint(string path, VitOptions? options)
    {
        CheckpointReader reader = CheckpointReader.Open(path, options?.Checkpoint);
        reader.ResamplePositionEmbedding = options?.ResamplePositionEmbedding ?? true;
        return reader;
    }

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

    /// <summary>
    /// Reads the position embedding <c>[1, prefixRows + gridHeight · gridWidth, dim]</c> into a new buffer, resampling
    /// a checkpoint's embedding of another grid as timm's loader does (see <see cref="ReadPositionEmbedding(CheckpointReader, string, int, int, int, int, Span{float})"/>).
    /// </summary>
    public static NativeBuffer ReadPositionEmbedding(CheckpointReader reader, string name, int prefixRows, int gridHeight, int gridWidth, int dim)
    {
        var buffer = new NativeBuffer(((long)prefixRows + (long)gridHeight * gridWidth) * dim);
        try
        {
            ReadPositionEmbedding(reader, name, prefixRows, gridHeight, gridWidth, dim, buffer.Span);
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads the position embedding <c>[1, prefixRows + gridHeight · gridWidth, dim]</c> (<paramref name="prefixRows"/>:
    /// the class, distillation and register tokens' rows; 0 for <c>noEmbedClass</c> models) into
    /// <paramref name="destination"/>. When the checkpoint's embedding has another number of rows and
    /// <see cref="CheckpointReader.ResamplePositionEmbedding"/> is on, it is resampled as timm's
    /// <c>checkpoint_filter_fn</c> does: the prefix rows are kept, the rest is taken as a square grid and resized to
    /// <paramref name="gridHeight"/> x <paramref name="gridWidth"/> with <see cref="PositionEmbeddingResampler"/>.
    /// </summary>
    /// <exception cref="VitWeightsException">
    /// The tensor is missing or has another width; its rows after the prefix do not form a square grid; or resampling
    /// is off and its shape differs.
    /// </exception>
    public static void ReadPositionEmbedding(CheckpointReader reader, string name, int prefixRows, int gridHeight, int gridWidth, int dim, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentOutOfRangeException.ThrowIfNegative(prefixRows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(gridHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(gridWidth);
        int rows = prefixRows + gridHeight * gridWidth;
        long[]? stored = reader.ResamplePositionEmbedding ? reader.TryGetShape(name) : null;
        // Anything but [1, other rows, dim] is read as it is, so that it fails with the usual shape error; timm also
        // leaves an embedding alone whose rows already match a square grid (resample_abs_pos_embed's early return).
        if (stored is not [1, long storedRows, long storedDim] || storedDim != dim || (storedRows == rows && gridHeight == gridWidth))
        {
            reader.Read(name, [1, rows, dim], destination);
            return;
        }

        long cells = storedRows - prefixRows;
        long side = cells > 0 ? (long)Math.Round(Math.Sqrt(cells)) : 0;
        if (cells <= 0 || side * side != cells)
        {
            string after = prefixRows == 0 ? "with no prefix rows (noEmbedClass)" : $"after the model's {prefixRows} prefix row{(prefixRows == 1 ? "" : "s")}";
            string problem = cells <= 0 ? "no rows are left for the patch grid" : $"its {cells} remaining rows are not a square grid of patches";
            throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                $"tensor '{name}' in '{reader.Path}' has shape [1, {storedRows}, {dim}]: {after}, {problem}, so it cannot be resampled to the model's {gridHeight} x {gridWidth} grid (the model expects [1, {rows}, {dim}])"));
        }
        if (storedRows * dim > Array.MaxLength)
        {
            throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                $"tensor '{name}' in '{reader.Path}' has shape [1, {storedRows}, {dim}]: its {side} x {side} grid is too large to resample to the model's {gridHeight} x {gridWidth} grid"));
        }

        var source = new float[storedRows * dim];
        reader.Read(name, [1, (int)storedRows, dim], source);
        int prefixFloats = prefixRows * dim;
        source.AsSpan(0, prefixFloats).CopyTo(destination);
        PositionEmbeddingResampler.Resample(source.AsSpan(prefixFloats), (int)side, (int)side,
            destination.Slice(prefixFloats), gridHeight, gridWidth, dim);
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
