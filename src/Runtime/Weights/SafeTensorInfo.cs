using System.Globalization;
using System.Text;

namespace ViTGen;

/// <summary>
/// One tensor declared in a safetensors header: its name, element type, shape and where its bytes lie.
/// Instances are created by <see cref="SafeTensorsFile.Open"/> and are immutable.
/// </summary>
public sealed class SafeTensorInfo
{
    internal SafeTensorInfo(string name, SafeTensorDType dtype, long[] shape, long elementCount,
        long dataBegin, long dataEnd, long fileOffset)
    {
        Name = name;
        DType = dtype;
        Shape = Array.AsReadOnly(shape);
        ElementCount = elementCount;
        DataBegin = dataBegin;
        DataEnd = dataEnd;
        FileOffset = fileOffset;
    }

    /// <summary>The tensor's name (the header key).</summary>
    public string Name { get; }

    /// <summary>The element type.</summary>
    public SafeTensorDType DType { get; }

    /// <summary>The element type as the header spells it, e.g. <c>F32</c> or <c>F8_E4M3</c>.</summary>
    public string DTypeName => SafeTensorDTypes.ToHeaderString(DType);

    /// <summary>The shape, outermost dimension first (C order). Empty for a scalar.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>The number of elements: the product of <see cref="Shape"/> (1 for a scalar).</summary>
    public long ElementCount { get; }

    /// <summary>Offset of the first byte, relative to the start of the data buffer (the header's <c>data_offsets[0]</c>).</summary>
    public long DataBegin { get; }

    /// <summary>Offset one past the last byte, relative to the start of the data buffer (the header's <c>data_offsets[1]</c>).</summary>
    public long DataEnd { get; }

    /// <summary>The number of bytes the tensor occupies: <see cref="DataEnd"/> - <see cref="DataBegin"/>.</summary>
    public long ByteLength => DataEnd - DataBegin;

    /// <summary>Absolute offset of the first byte in the file (8 + header length + <see cref="DataBegin"/>).</summary>
    public long FileOffset { get; }

    /// <summary>Describes the tensor, e.g. <c>head.bias: F32 [1000] @ 4096..8096</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name}: {SafeTensorDTypes.ToHeaderString(DType)} {ShapeText.Format(Shape)} @ {DataBegin}..{DataEnd}");
}

/// <summary>Formats shapes the way error messages print them: <c>[2304, 768]</c>.</summary>
internal static class ShapeText
{
    public static string Format(IEnumerable<long> shape)
    {
        var sb = new StringBuilder("[");
        bool first = true;
        foreach (long d in shape)
        {
            if (!first) sb.Append(", ");
            sb.Append(d.ToString(CultureInfo.InvariantCulture));
            first = false;
        }
        return sb.Append(']').ToString();
    }

    public static string Format(ReadOnlySpan<int> shape)
    {
        var longs = new long[shape.Length];
        for (int i = 0; i < shape.Length; i++) longs[i] = shape[i];
        return Format(longs);
    }
}
