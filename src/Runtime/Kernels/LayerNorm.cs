using System.Numerics.Tensors;

namespace ViTGen.CompilerServices;

/// <summary>A LayerNorm's affine parameters. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class LayerNormWeights : IDisposable
{
    /// <summary>Creates the parameters for a norm over <paramref name="width"/> features (weight 1, bias 0).</summary>
    public LayerNormWeights(int width)
    {
        Weight = new NativeBuffer(width);
        Bias = new NativeBuffer(width);
        Weight.Span.Fill(1f);
    }

    /// <summary>The scale (gamma).</summary>
    public NativeBuffer Weight { get; }
    /// <summary>The shift (beta).</summary>
    public NativeBuffer Bias { get; }

    /// <summary>Frees the parameters.</summary>
    public void Dispose()
    {
        Weight.Dispose();
        Bias.Dispose();
    }
}

/// <summary>LayerNorm over rows of a width fixed at build time. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class LayerNorm
{
    /// <summary>
    /// Normalizes <paramref name="rows"/> rows of <paramref name="input"/> starting at <paramref name="inputRow"/>
    /// into <paramref name="output"/> starting at <paramref name="outputRow"/> (may be the same rows).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply<TWidth>(NativeBuffer input, int inputRow, int rows, LayerNormWeights weights, float epsilon, NativeBuffer output, int outputRow)
        where TWidth : IDimension
    {
        int width = TWidth.Value;
        CheckRows(input, inputRow, rows, width);
        CheckRows(output, outputRow, rows, width);
        var gamma = new ReadOnlySpan<float>(weights.Weight.Data, width);
        var beta = new ReadOnlySpan<float>(weights.Bias.Data, width);
        for (int r = 0; r < rows; r++)
        {
            var x = new ReadOnlySpan<float>(input.Data + (long)(inputRow + r) * width, width);
            var y = new Span<float>(output.Data + (long)(outputRow + r) * width, width);
            // Two reductions over a row that sits in L1: the mean first, then the centered sum of squares,
            // which avoids the cancellation of E[x²] - E[x]² that a single-sum variance suffers.
            float mean = TensorPrimitives.Sum(x) / width;
            TensorPrimitives.Subtract(x, mean, y);
            float variance = TensorPrimitives.Dot(y, y) / width;
            float inverseStd = 1f / MathF.Sqrt(variance + epsilon);
            TensorPrimitives.Multiply(y, inverseStd, y);
            TensorPrimitives.FusedMultiplyAdd(y, gamma, beta, y);
        }
    }

    internal static void CheckRows(NativeBuffer buffer, int row, int rows, int width)
    {
        if (row < 0 || rows < 0 || (long)(row + rows) * width > buffer.Length)
            throw new ArgumentOutOfRangeException(nameof(row), $"rows {row}..{row + rows} of width {width} exceed a buffer of {buffer.Length} floats");
    }
}
