using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace ViTGen.Tests.Weights;

/// <summary>A tensor to write: its header dtype string, shape and raw little-endian bytes.</summary>
internal sealed record RawTensor(string Name, string DType, long[] Shape, byte[] Data);

/// <summary>Builds safetensors files (valid and hostile) in memory, and writes them to a temporary folder.</summary>
internal static class SafeTensorsWriter
{
    /// <summary>A valid file: tensors laid out in the given order, header padded with spaces to a multiple of 8 when <paramref name="pad"/>.</summary>
    public static byte[] Build(IEnumerable<RawTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, bool pad = true)
    {
        var list = tensors.ToList();
        var buffer = new MemoryStream();
        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata is not null)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            foreach (RawTensor t in list)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType);
                w.WriteStartArray("shape");
                foreach (long d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(buffer.Length);
                w.WriteNumberValue(buffer.Length + t.Data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                buffer.Write(t.Data);
            }
            w.WriteEndObject();
        }
        byte[] header = json.ToArray();
        if (pad && header.Length % 8 != 0)
        {
            header = [.. header, .. Enumerable.Repeat((byte)' ', 8 - header.Length % 8)];
        }
        return Raw((ulong)header.Length, header, buffer.ToArray());
    }

    /// <summary>A file with the given header text and buffer; the length prefix is the header's byte count.</summary>
    public static byte[] FromHeader(string headerJson, byte[] buffer)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        return Raw((ulong)header.Length, header, buffer);
    }

    /// <summary>A file with an arbitrary length prefix, header bytes and buffer.</summary>
    public static byte[] Raw(ulong headerLength, byte[] header, byte[] buffer)
    {
        var bytes = new byte[8 + header.Length + buffer.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength);
        header.CopyTo(bytes, 8);
        buffer.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    public static RawTensor F32(string name, long[] shape, ReadOnlySpan<float> values)
    {
        var data = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), values[i]);
        return new RawTensor(name, "F32", shape, data);
    }

    public static RawTensor F64(string name, long[] shape, ReadOnlySpan<double> values)
    {
        var data = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(i * 8), values[i]);
        return new RawTensor(name, "F64", shape, data);
    }

    public static RawTensor F16Bits(string name, long[] shape, ReadOnlySpan<ushort> bits) => Bits16(name, "F16", shape, bits);

    public static RawTensor BF16Bits(string name, long[] shape, ReadOnlySpan<ushort> bits) => Bits16(name, "BF16", shape, bits);

    public static RawTensor I64(string name, long[] shape, ReadOnlySpan<long> values)
    {
        var data = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(i * 8), values[i]);
        return new RawTensor(name, "I64", shape, data);
    }

    public static RawTensor U8(string name, long[] shape, byte[] values) => new(name, "U8", shape, values);

    private static RawTensor Bits16(string name, string dtype, long[] shape, ReadOnlySpan<ushort> bits)
    {
        var data = new byte[bits.Length * 2];
        for (int i = 0; i < bits.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(i * 2), bits[i]);
        return new RawTensor(name, dtype, shape, data);
    }

    public static float[] RandomFloats(Random random, int count, float scale = 1f)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return values;
    }
}

/// <summary>A temporary folder for test files, deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    private int _counter;

    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "vitgen-weights-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>Writes the bytes to a fresh file and returns its path.</summary>
    public string Write(byte[] bytes, string? name = null)
    {
        string path = System.IO.Path.Combine(Path, name ?? $"t{Interlocked.Increment(ref _counter)}.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
