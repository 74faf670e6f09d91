using System.Buffers.Binary;
using System.Text;

namespace ViTGen.Cli.Models;

/// <summary>
/// Writes a timm-named safetensors file of random weights for a catalog model, so `vitgen bench` needs no
/// download: the tensors the model's generated metadata lists (<see cref="VitArchitecture.TimmTensors"/>). Values
/// are small (a ViT with N(0, 0.02)-like weights and unit LayerNorm scales), like a fresh timm init.
/// </summary>
/// <remarks>Linked into the GPU smoke program (tests/gpu), so it depends on the runtime only.</remarks>
internal static class RandomCheckpoint
{
    /// <summary>Writes the checkpoint of <paramref name="architecture"/> to <paramref name="path"/>, with seed 0.</summary>
    public static void Write(VitArchitecture architecture, string path)
    {
        var tensors = architecture.TimmTensors();
        var header = new StringBuilder("{");
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = shape.Aggregate(4L, (a, d) => a * d);
            if (header.Length > 1) header.Append(',');
            header.Append($"\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        header.Append('}');
        while ((header.Length + 8) % 8 != 0) header.Append(' ');

        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        file.Write(length);
        file.Write(Encoding.UTF8.GetBytes(header.ToString()));
        var random = new Random(0);
        var buffer = new byte[1 << 20];
        foreach (var (name, shape) in tensors)
        {
            long count = shape.Aggregate(1L, (a, d) => a * d);
            // LayerNorm scales are the 1-D ".weight" tensors (a Linear's weight is 2-D, the patch embedding's 4-D).
            bool unit = shape.Length == 1 && name.EndsWith(".weight", StringComparison.Ordinal);
            for (long written = 0; written < count;)
            {
                int chunk = (int)Math.Min(count - written, buffer.Length / 4);
                for (int i = 0; i < chunk; i++)
                {
                    float value = unit ? 1f : (float)(random.NextDouble() - 0.5) * 0.04f;
                    BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(i * 4), value);
                }
                file.Write(buffer, 0, chunk * 4);
                written += chunk;
            }
        }
    }
}
