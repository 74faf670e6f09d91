using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Numerics.Tensors;

namespace ViTGen;

/// <summary>
/// Which safetensors dtypes a read accepts and the conversions from their little-endian bytes: to float32 (F32
/// copied, F16 and BF16 widened exactly, F64 rounded) and to float64 (exact). Problems are reported as
/// <see cref="VitWeightsException"/>s naming the file and the tensor.
/// </summary>
internal static class SafeTensorConversion
{
    /// <summary>Converts F32, F16, BF16 or F64 (anything else) bytes to float32; <paramref name="source"/> holds <c>destination.Length</c> elements.</summary>
    public static void ToFloat32(SafeTensorDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        switch (dtype)
        {
            case SafeTensorDType.F32:
                Float32FromF32(source, destination);
                break;
            case SafeTensorDType.F16:
                Float32FromF16(source, destination);
                break;
            case SafeTensorDType.BF16:
                Float32FromBF16(source, destination);
                break;
            default:
                Float32FromF64(source, destination);
                break;
        }
    }

    /// <summary>Converts F64, F32, F16 or BF16 (anything else) bytes to float64; <paramref name="source"/> holds <c>destination.Length</c> elements.</summary>
    public static void ToFloat64(SafeTensorDType dtype, ReadOnlySpan<byte> source, Span<double> destination)
    {
        int n = destination.Length;
        switch (dtype)
        {
            case SafeTensorDType.F64:
                for (int i = 0; i < n; i++) destination[i] = BinaryPrimitives.ReadDoubleLittleEndian(source.Slice(i * 8, 8));
                break;
            case SafeTensorDType.F32:
                for (int i = 0; i < n; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source.Slice(i * 4, 4));
                break;
            case SafeTensorDType.F16:
                for (int i = 0; i < n; i++) destination[i] = (double)BinaryPrimitives.ReadHalfLittleEndian(source.Slice(i * 2, 2));
                break;
            default:
                for (int i = 0; i < n; i++) destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source.Slice(i * 2, 2)) << 16);
                break;
        }
    }

    /// <summary>Checks that <paramref name="info"/> has <paramref name="dtype"/> and fits in an array.</summary>
    public static void CheckArray(string path, SafeTensorInfo info, string wanted, SafeTensorDType dtype)
    {
        if (info.DType != dtype)
        {
            throw new VitWeightsException($"tensor '{info.Name}' in '{path}' has dtype {SafeTensorDTypes.ToHeaderString(info.DType)}, but {wanted} was requested");
        }
        if (info.ByteLength > int.MaxValue / 8)
        {
            throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                $"tensor '{info.Name}' in '{path}' has {info.ElementCount} elements, too many to read into an array"));
        }
    }

    /// <summary>Checks that <paramref name="info"/> has one of the <paramref name="accepted"/> dtypes and <paramref name="length"/> elements.</summary>
    public static void CheckDestination(string path, SafeTensorInfo info, int length, string target, params SafeTensorDType[] accepted)
    {
        if (Array.IndexOf(accepted, info.DType) < 0)
        {
            string list = string.Join(", ", accepted.Select(SafeTensorDTypes.ToHeaderString));
            throw new VitWeightsException($"tensor '{info.Name}' in '{path}' has dtype {SafeTensorDTypes.ToHeaderString(info.DType)}, which cannot be read as {target} (supported: {list})");
        }
        if (info.ElementCount != length)
        {
            throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                $"tensor '{info.Name}' in '{path}' has {info.ElementCount} elements (shape {ShapeText.Format(info.Shape)}) but the destination holds {length}"));
        }
    }

    private static void Float32FromF32(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
            return;
        }
        for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source.Slice(i * 4, 4));
    }

    private static void Float32FromF16(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (BitConverter.IsLittleEndian)
        {
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
            return;
        }
        for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source.Slice(i * 2, 2));
    }

    private static void Float32FromBF16(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int i = 0;
        if (BitConverter.IsLittleEndian)
        {
            ReadOnlySpan<ushort> halves = MemoryMarshal.Cast<byte, ushort>(source);
            Span<uint> words = MemoryMarshal.Cast<float, uint>(destination);
            if (Vector.IsHardwareAccelerated)
            {
                int step = Vector<ushort>.Count;
                for (; i + step <= halves.Length; i += step)
                {
                    Vector.Widen(new Vector<ushort>(halves.Slice(i, step)), out Vector<uint> low, out Vector<uint> high);
                    Vector.ShiftLeft(low, 16).CopyTo(words.Slice(i, step / 2));
                    Vector.ShiftLeft(high, 16).CopyTo(words.Slice(i + step / 2, step / 2));
                }
            }
            for (; i < halves.Length; i++) words[i] = (uint)halves[i] << 16;
            return;
        }
        for (; i < destination.Length; i++)
        {
            destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source.Slice(i * 2, 2)) << 16);
        }
    }

    private static void Float32FromF64(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (BitConverter.IsLittleEndian)
        {
            ReadOnlySpan<double> doubles = MemoryMarshal.Cast<byte, double>(source);
            for (int i = 0; i < destination.Length; i++) destination[i] = (float)doubles[i];
            return;
        }
        for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(source.Slice(i * 8, 8));
    }
}
