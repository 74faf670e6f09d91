using System.Numerics.Tensors;

namespace ViTGen.CompilerServices;

/// <summary>
/// The weight region of a GPU arena, on the host: tensors are read into it at the generated plan's offsets, then it
/// is copied to the device in one transfer. Regions nothing is read into stay zero (a head bias the checkpoint's
/// dialect lacks). LayerScale is folded into the layer it scales, as on the CPU. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed unsafe class GpuWeightImage : IDisposable
{
    /// <summary>Pass as a bias offset when the checkpoint has no bias for the layer.</summary>
    public const long NoBias = -1;

    private readonly NativeBuffer _buffer;

    /// <summary>Allocates <paramref name="floats"/> zeroed floats.</summary>
    public GpuWeightImage(long floats) => _buffer = new NativeBuffer(floats);

    /// <summary>The size in floats.</summary>
    public long Length => _buffer.Length;

    /// <summary>The first float; valid until disposed.</summary>
    public float* Data => _buffer.Data;

    /// <summary><paramref name="length"/> floats from <paramref name="offset"/>.</summary>
    public Span<float> Slice(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > _buffer.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"floats {offset}..{offset + length} lie outside a weight image of {_buffer.Length}");
        return new Span<float>(_buffer.Data + offset, length);
    }

    /// <summary>Reads tensor <paramref name="name"/>, which must have exactly <paramref name="shape"/>, to <paramref name="offset"/>.</summary>
    public void Read(CheckpointReader checkpoint, string name, long offset, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(shape);
        long count = 1;
        foreach (int d in shape) count = checked(count * d);
        checkpoint.Read(name, shape, Slice(offset, checked((int)count)));
    }

    /// <summary>
    /// Reads the position embedding <c>[1, prefixRows + gridHeight · gridWidth, dim]</c> to <paramref name="offset"/>,
    /// resampling one of another grid as the CPU loader does (<see cref="WeightLoading.ReadPositionEmbedding(CheckpointReader, string, int, int, int, int, Span{float})"/>).
    /// </summary>
    public void ReadPositionEmbedding(CheckpointReader checkpoint, string name, long offset, int prefixRows, int gridHeight, int gridWidth, int dim)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        int count = checked((prefixRows + gridHeight * gridWidth) * dim);
        WeightLoading.ReadPositionEmbedding(checkpoint, name, prefixRows, gridHeight, gridWidth, dim, Slice(offset, count));
    }

    /// <summary>Reads <c>{prefix}.weight</c> and <c>{prefix}.bias</c>, both <c>[width]</c>.</summary>
    public void ReadLayerNorm(CheckpointReader checkpoint, string prefix, int width, long weightOffset, long biasOffset)
    {
        Read(checkpoint, prefix + ".weight", weightOffset, width);
        Read(checkpoint, prefix + ".bias", biasOffset, width);
    }

    /// <summary>
    /// Reads a Linear layer in PyTorch's layout: <c>{prefix}.weight [outFeatures, inFeatures]</c> (row-major, which
    /// cuBLAS sees as the column-major transpose) and <c>{prefix}.bias</c> unless <paramref name="biasOffset"/> is
    /// <see cref="NoBias"/>. With <paramref name="layerScale"/>, that <c>[outFeatures]</c> tensor scales the weight's rows
    /// and the bias (timm's <c>ls(fc(x))</c>).
    /// </summary>
    public void ReadLinear(CheckpointReader checkpoint, string prefix, int outFeatures, int inFeatures, long weightOffset, long biasOffset, string? layerScale = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        Read(checkpoint, prefix + ".weight", weightOffset, outFeatures, inFeatures);
        if (biasOffset != NoBias) Read(checkpoint, prefix + ".bias", biasOffset, outFeatures);
        if (layerScale is null) return;
        WeightLoading.FoldLayerScale(checkpoint, layerScale, Slice(weightOffset, checked(outFeatures * inFeatures)),
            biasOffset == NoBias ? [] : Slice(biasOffset, outFeatures), outFeatures, inFeatures);
    }

    /// <summary>Frees the image.</summary>
    public void Dispose() => _buffer.Dispose();
}
