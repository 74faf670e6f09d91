using System.Numerics.Tensors;

namespace ViTGen.CompilerServices;

/// <summary>Row copies, sums and means over token matrices. Used by generated code.</summary>
/// <remarks>
/// These are memory-bound passes through TensorPrimitives and span copies, which pick their own vector width from the
/// hardware (never an emulated one) on every tier, so they need no branch on <see cref="Simd.Current"/>.
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class TokenOps
{
    /// <summary>Copies <paramref name="rows"/> rows of <paramref name="width"/> floats.</summary>
    public static void CopyRows(NativeBuffer source, int sourceRow, NativeBuffer destination, int destinationRow, int rows, int width)
        => Rows(source, sourceRow, rows, width).CopyTo(Rows(destination, destinationRow, rows, width));

    /// <summary>Adds <paramref name="rows"/> rows of <paramref name="source"/> to <paramref name="destination"/>.</summary>
    public static void AddRows(NativeBuffer source, int sourceRow, NativeBuffer destination, int destinationRow, int rows, int width)
    {
        var target = Rows(destination, destinationRow, rows, width);
        TensorPrimitives.Add(target, Rows(source, sourceRow, rows, width), target);
    }

    /// <summary>Writes the mean of <paramref name="rows"/> rows into row <paramref name="destinationRow"/> of <paramref name="destination"/>.</summary>
    public static void MeanRows(NativeBuffer source, int sourceRow, int rows, int width, NativeBuffer destination, int destinationRow)
    {
        var mean = Rows(destination, destinationRow, 1, width);
        mean.Clear();
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(mean, Rows(source, sourceRow + r, 1, width), mean);
        TensorPrimitives.Multiply(mean, 1f / rows, mean);
    }

    /// <summary>Writes <c>(a + b) / 2</c> of two rows into <paramref name="output"/> (DeiT's distilled inference).</summary>
    public static void AverageRows(NativeBuffer source, int rowA, int rowB, int width, Span<float> output)
    {
        TensorPrimitives.Add(Rows(source, rowA, 1, width), Rows(source, rowB, 1, width), output[..width]);
        TensorPrimitives.Multiply(output[..width], 0.5f, output[..width]);
    }

    /// <summary>Copies <paramref name="rows"/> rows from row 0 into <paramref name="output"/>.</summary>
    public static void CopyRowsToOutput(NativeBuffer source, int rows, int width, Span<float> output)
        => Rows(source, 0, rows, width).CopyTo(output);

    /// <summary>Copies one row into <paramref name="output"/>.</summary>
    public static void CopyRow(NativeBuffer source, int row, int width, Span<float> output)
        => Rows(source, row, 1, width).CopyTo(output);

    private static Span<float> Rows(NativeBuffer buffer, int row, int rows, int width)
    {
        LayerNorm.CheckRows(buffer, row, rows, width);
        return new Span<float>(buffer.Data + (long)row * width, rows * width);
    }
}
