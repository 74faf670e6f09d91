using System.Buffers.Binary;
using System.Globalization;

namespace ViTGen.Tests.Weights;

/// <summary>
/// Rewrites the tensors of a timm checkpoint under another dialect's names and layouts (split query/key/value,
/// reshaped embeddings, a transposed CLIP projection), byte for byte: exactly what that library's
/// <c>state_dict()</c> would hold for the same model. Throws <see cref="NotSupportedException"/> for a tensor the
/// dialect has no place for, so a test cannot silently drop part of a model.
/// </summary>
internal static class DialectFiles
{
    /// <summary>Every tensor of a safetensors file, with its raw bytes, in file order.</summary>
    public static List<RawTensor> ReadAll(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        return file.Tensors.OrderBy(t => t.DataBegin)
            .Select(t => new RawTensor(t.Name, t.DTypeName, t.Shape.ToArray(), file.GetBytes(t).ToArray()))
            .ToList();
    }

    /// <summary>
    /// Hugging Face transformers: <c>ViTForImageClassification</c> (<c>vit.</c> prefix, <c>classifier</c>) when
    /// <paramref name="classifier"/>, else a bare <c>ViTModel</c> plus its <c>pooler.dense</c> (which a compiled
    /// model ignores). HF ViT has no pre-norm, LayerScale, registers, distillation token or fc_norm.
    /// </summary>
    public static List<RawTensor> HuggingFace(IEnumerable<RawTensor> timm, bool classifier)
    {
        string p = classifier ? "vit." : "";
        var result = new List<RawTensor>();
        int dim = 0;
        foreach (RawTensor t in timm)
        {
            if (TrySplitBlock(t.Name, out string layerIndex, out string rest))
            {
                string layer = $"{p}encoder.layer.{layerIndex}.";
                if (rest is "attn.qkv.weight" or "attn.qkv.bias")
                {
                    // HF keeps query, key and value apart; timm's qkv is their concatenation along dim 0.
                    string param = rest["attn.qkv.".Length..];
                    RawTensor[] parts = SplitRows(t, 3);
                    string[] names = ["query", "key", "value"];
                    for (int k = 0; k < 3; k++) result.Add(parts[k] with { Name = $"{layer}attention.attention.{names[k]}.{param}" });
                    continue;
                }
                string module = Module(rest, out string parameter) switch
                {
                    "norm1" => "layernorm_before",
                    "attn.proj" => "attention.output.dense",
                    "norm2" => "layernorm_after",
                    "mlp.fc1" => "intermediate.dense",
                    "mlp.fc2" => "output.dense",
                    _ => throw Unsupported("Hugging Face ViT", t.Name),
                };
                result.Add(t with { Name = $"{layer}{module}.{parameter}" });
                continue;
            }
            string name = t.Name switch
            {
                "cls_token" => p + "embeddings.cls_token",
                "pos_embed" => p + "embeddings.position_embeddings",
                "patch_embed.proj.weight" => p + "embeddings.patch_embeddings.projection.weight",
                "patch_embed.proj.bias" => p + "embeddings.patch_embeddings.projection.bias",
                "norm.weight" => p + "layernorm.weight",
                "norm.bias" => p + "layernorm.bias",
                "head.weight" or "head.bias" when classifier => "classifier." + t.Name["head.".Length..],
                _ => throw Unsupported(classifier ? "Hugging Face ViTForImageClassification" : "Hugging Face ViTModel", t.Name),
            };
            if (t.Name == "norm.weight") dim = (int)t.Shape[0];
            result.Add(t with { Name = name });
        }
        if (!classifier)
        {
            // ViTModel's pooler (dense + tanh over the class token): stored, never used by a compiled model.
            var rng = new Random(dim);
            result.Add(SafeTensorsWriter.F32("pooler.dense.weight", [dim, dim], SafeTensorsWriter.RandomFloats(rng, dim * dim)));
            result.Add(SafeTensorsWriter.F32("pooler.dense.bias", [dim], SafeTensorsWriter.RandomFloats(rng, dim)));
        }
        return result;
    }

    /// <summary>
    /// torchvision <c>VisionTransformer</c>: <c>conv_proj</c>, <c>encoder.layers.encoder_layer_{i}</c> (MLP as
    /// <c>mlp.0</c>/<c>mlp.3</c>, or <c>mlp.linear_1</c>/<c>mlp.linear_2</c> in older checkpoints), <c>heads.head</c>.
    /// Its attention always has an input-projection bias; it has no pre-norm, LayerScale, registers or fc_norm.
    /// </summary>
    public static List<RawTensor> TorchVision(IEnumerable<RawTensor> timm, bool oldMlpNames = false)
    {
        var result = new List<RawTensor>();
        foreach (RawTensor t in timm)
        {
            if (TrySplitBlock(t.Name, out string layerIndex, out string rest))
            {
                string layer = $"encoder.layers.encoder_layer_{layerIndex}.";
                string name = rest switch
                {
                    "attn.qkv.weight" => "self_attention.in_proj_weight",
                    "attn.qkv.bias" => "self_attention.in_proj_bias",
                    _ => Module(rest, out string parameter) switch
                    {
                        "norm1" => "ln_1." + parameter,
                        "attn.proj" => "self_attention.out_proj." + parameter,
                        "norm2" => "ln_2." + parameter,
                        "mlp.fc1" => (oldMlpNames ? "mlp.linear_1." : "mlp.0.") + parameter,
                        "mlp.fc2" => (oldMlpNames ? "mlp.linear_2." : "mlp.3.") + parameter,
                        _ => throw Unsupported("torchvision", t.Name),
                    },
                };
                result.Add(t with { Name = layer + name });
                continue;
            }
            string top = t.Name switch
            {
                "cls_token" => "class_token",
                "pos_embed" => "encoder.pos_embedding",
                "patch_embed.proj.weight" => "conv_proj.weight",
                "patch_embed.proj.bias" => "conv_proj.bias",
                "norm.weight" => "encoder.ln.weight",
                "norm.bias" => "encoder.ln.bias",
                "head.weight" => "heads.head.weight",
                "head.bias" => "heads.head.bias",
                _ => throw Unsupported("torchvision", t.Name),
            };
            result.Add(t with { Name = top });
        }
        return result;
    }

    /// <summary>
    /// The image tower of an OpenAI CLIP checkpoint (<c>visual.*</c>) plus a few text-tower tensors that a compiled
    /// model ignores. CLIP's patch projection has no bias and it always has <c>ln_pre</c> (timm <c>pre_norm</c>);
    /// <c>visual.proj</c> is <c>[width, output]</c>, applied as <c>x @ proj</c>, so it is the transpose of a
    /// bias-free head: a timm <c>head.bias</c> is accepted only when it is all zeros.
    /// </summary>
    public static List<RawTensor> OpenAiClip(IEnumerable<RawTensor> timm)
    {
        var result = new List<RawTensor>();
        foreach (RawTensor t in timm)
        {
            if (TrySplitBlock(t.Name, out string blockIndex, out string rest))
            {
                string block = $"visual.transformer.resblocks.{blockIndex}.";
                string name = rest switch
                {
                    "attn.qkv.weight" => "attn.in_proj_weight",
                    "attn.qkv.bias" => "attn.in_proj_bias",
                    _ => Module(rest, out string parameter) switch
                    {
                        "norm1" => "ln_1." + parameter,
                        "attn.proj" => "attn.out_proj." + parameter,
                        "norm2" => "ln_2." + parameter,
                        "mlp.fc1" => "mlp.c_fc." + parameter,
                        "mlp.fc2" => "mlp.c_proj." + parameter,
                        _ => throw Unsupported("OpenAI CLIP", t.Name),
                    },
                };
                result.Add(t with { Name = block + name });
                continue;
            }
            switch (t.Name)
            {
                case "cls_token": // [1, 1, W] -> [W]
                    result.Add(t with { Name = "visual.class_embedding", Shape = [t.Shape[2]] });
                    break;
                case "pos_embed": // [1, T, W] -> [T, W]
                    result.Add(t with { Name = "visual.positional_embedding", Shape = [t.Shape[1], t.Shape[2]] });
                    break;
                case "patch_embed.proj.weight":
                    result.Add(t with { Name = "visual.conv1.weight" });
                    break;
                case "norm_pre.weight" or "norm_pre.bias":
                    result.Add(t with { Name = "visual.ln_pre." + t.Name["norm_pre.".Length..] });
                    break;
                case "norm.weight" or "norm.bias":
                    result.Add(t with { Name = "visual.ln_post." + t.Name["norm.".Length..] });
                    break;
                case "head.weight": // [out, W] -> proj [W, out]
                    result.Add(Transpose(t) with { Name = "visual.proj" });
                    break;
                case "head.bias" when t.Data.All(b => b == 0):
                    break; // x @ proj has no bias; zeros are the same model
                default:
                    throw Unsupported("OpenAI CLIP", t.Name);
            }
        }
        // The text tower, which the image model ignores.
        var rng = new Random(7);
        result.Add(SafeTensorsWriter.F32("positional_embedding", [7, 4], SafeTensorsWriter.RandomFloats(rng, 28)));
        result.Add(SafeTensorsWriter.F32("token_embedding.weight", [11, 4], SafeTensorsWriter.RandomFloats(rng, 44)));
        result.Add(SafeTensorsWriter.F32("transformer.resblocks.0.attn.in_proj_weight", [12, 4], SafeTensorsWriter.RandomFloats(rng, 48)));
        result.Add(SafeTensorsWriter.F32("text_projection", [4, 4], SafeTensorsWriter.RandomFloats(rng, 16)));
        result.Add(SafeTensorsWriter.F32("logit_scale", [], [4.6f]));
        return result;
    }

    /// <summary>The timm tensors with one float32 tensor's elements replaced by zeros.</summary>
    public static List<RawTensor> WithZeros(IEnumerable<RawTensor> timm, string name)
        => timm.Select(t => t.Name == name ? t with { Data = new byte[t.Data.Length] } : t).ToList();

    /// <summary>The float32 values of a raw F32 tensor.</summary>
    public static float[] Floats(RawTensor tensor)
    {
        Assert.Equal("F32", tensor.DType);
        var values = new float[tensor.Data.Length / 4];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(tensor.Data.AsSpan(i * 4));
        return values;
    }

    private static RawTensor[] SplitRows(RawTensor t, int parts)
    {
        long rows = t.Shape[0] / parts;
        int bytes = t.Data.Length / parts;
        var result = new RawTensor[parts];
        for (int k = 0; k < parts; k++)
        {
            long[] shape = [rows, .. t.Shape.Skip(1)];
            result[k] = t with { Shape = shape, Data = t.Data.AsSpan(k * bytes, bytes).ToArray() };
        }
        return result;
    }

    private static RawTensor Transpose(RawTensor t)
    {
        Assert.Equal("F32", t.DType);
        int rows = (int)t.Shape[0], cols = (int)t.Shape[1];
        var data = new byte[t.Data.Length];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++) t.Data.AsSpan((r * cols + c) * 4, 4).CopyTo(data.AsSpan((c * rows + r) * 4));
        }
        return t with { Shape = [cols, rows], Data = data };
    }

    private static bool TrySplitBlock(string name, out string index, out string rest)
    {
        index = rest = "";
        if (!name.StartsWith("blocks.", StringComparison.Ordinal)) return false;
        string[] parts = name.Split('.', 3);
        index = parts[1];
        rest = parts[2];
        _ = int.Parse(index, CultureInfo.InvariantCulture);
        return true;
    }

    private static string Module(string name, out string parameter)
    {
        int dot = name.LastIndexOf('.');
        parameter = name[(dot + 1)..];
        return name[..dot];
    }

    private static NotSupportedException Unsupported(string dialect, string name)
        => new($"{dialect} checkpoints have no counterpart for timm tensor '{name}'");
}
