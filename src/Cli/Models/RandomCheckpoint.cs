using System.Buffers.Binary;
using System.Text;

namespace ViTGen.Cli.Models;

/// <summary>
/// Writes a timm-named safetensors file of random weights for a catalog model, so `vitgen bench` needs no
/// download. Values are small (a ViT with N(0, 0.02)-like weights and unit LayerNorms), like a fresh timm init.
/// </summary>
internal static class RandomCheckpoint
{
    public static string Write(ModelEntry model, string directory)
    {
        var tensors = TimmTensors(model).ToList();
        string path = Path.Combine(directory, $"vitgen-bench-{model.Name}-{Environment.ProcessId}.safetensors");
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
            bool unit = name.EndsWith("norm1.weight", StringComparison.Ordinal) || name.EndsWith("norm2.weight", StringComparison.Ordinal) || name == "norm.weight";
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
        return path;
    }

    private static IEnumerable<(string Name, long[] Shape)> TimmTensors(ModelEntry m)
    {
        int d = m.Dim;
        yield return ("cls_token", [1, 1, d]);
        yield return ("pos_embed", [1, m.Tokens, d]);
        yield return ("patch_embed.proj.weight", [d, m.Channels, m.Patch, m.Patch]);
        yield return ("patch_embed.proj.bias", [d]);
        for (int i = 0; i < m.Depth; i++)
        {
            string p = $"blocks.{i}.";
            yield return (p + "norm1.weight", [d]);
            yield return (p + "norm1.bias", [d]);
            yield return (p + "attn.qkv.weight", [3 * d, d]);
            yield return (p + "attn.qkv.bias", [3 * d]);
            yield return (p + "attn.proj.weight", [d, d]);
            yield return (p + "attn.proj.bias", [d]);
            yield return (p + "norm2.weight", [d]);
            yield return (p + "norm2.bias", [d]);
            yield return (p + "mlp.fc1.weight", [m.MlpDim, d]);
            yield return (p + "mlp.fc1.bias", [m.MlpDim]);
            yield return (p + "mlp.fc2.weight", [d, m.MlpDim]);
            yield return (p + "mlp.fc2.bias", [d]);
        }
        yield return ("norm.weight", [d]);
        yield return ("norm.bias", [d]);
        yield return ("head.weight", [m.Classes, d]);
        yield return ("head.bias", [m.Classes]);
    }
}
