using ViTGen.CompilerServices;
using Xunit;
using Xunit.Abstractions;
using static ViTGen.Tests.Weights.SafeTensorsWriter;

namespace ViTGen.Tests.Weights;

/// <summary>
/// The same random ViT weights stored under timm names and under each dialect's names read back identically
/// through <see cref="CheckpointReader"/>; missing, misshapen and unexpected tensors fail with precise messages.
/// </summary>
public sealed class CheckpointReaderTests(ITestOutputHelper output) : IDisposable
{
    // A tiny ViT: 8x8 image, patch 4 (N = 4), width 8, 2 blocks, MLP 16, 5 classes.
    private const int D = 8, Depth = 2, Mlp = 16, Classes = 5, Patch = 4, Channels = 3, Tokens = 5;

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>A tensor under its timm name, with the model's shape.</summary>
    private sealed record Weight(string Name, int[] Shape, float[] Values);

    private static List<Weight> TimmWeights(int seed, bool clip = false)
    {
        var rng = new Random(seed);
        var list = new List<Weight>();
        void Add(string name, params int[] shape)
            => list.Add(new Weight(name, shape, RandomFloats(rng, shape.Aggregate(1, (a, b) => a * b))));
        Add("cls_token", 1, 1, D);
        Add("pos_embed", 1, Tokens, D);
        Add("patch_embed.proj.weight", D, Channels, Patch, Patch);
        if (!clip) Add("patch_embed.proj.bias", D);
        if (clip)
        {
            Add("norm_pre.weight", D);
            Add("norm_pre.bias", D);
        }
        for (int i = 0; i < Depth; i++)
        {
            string b = $"blocks.{i}.";
            Add(b + "norm1.weight", D);
            Add(b + "norm1.bias", D);
            Add(b + "attn.qkv.weight", 3 * D, D);
            Add(b + "attn.qkv.bias", 3 * D);
            Add(b + "attn.proj.weight", D, D);
            Add(b + "attn.proj.bias", D);
            Add(b + "norm2.weight", D);
            Add(b + "norm2.bias", D);
            Add(b + "mlp.fc1.weight", Mlp, D);
            Add(b + "mlp.fc1.bias", Mlp);
            Add(b + "mlp.fc2.weight", D, Mlp);
            Add(b + "mlp.fc2.bias", D);
        }
        Add("norm.weight", D);
        Add("norm.bias", D);
        Add("head.weight", Classes, D);
        if (!clip) Add("head.bias", Classes);
        return list;
    }

    private static long[] L(int[] shape) => shape.Select(d => (long)d).ToArray();

    private static RawTensor Timm(Weight w) => F32(w.Name, L(w.Shape), w.Values);

    private static IEnumerable<RawTensor> HuggingFace(List<Weight> weights, string prefix)
    {
        foreach (Weight w in weights)
        {
            string n = w.Name;
            if (n.StartsWith("blocks.", StringComparison.Ordinal))
            {
                string[] parts = n.Split('.', 3);
                string layer = $"{prefix}encoder.layer.{parts[1]}.";
                string rest = parts[2];
                if (rest.StartsWith("attn.qkv.", StringComparison.Ordinal))
                {
                    string param = rest["attn.qkv.".Length..];
                    int rows = w.Shape[0] / 3, cols = w.Shape.Length == 2 ? w.Shape[1] : 1;
                    long[] shape = w.Shape.Length == 2 ? [rows, cols] : [rows];
                    string[] names = ["query", "key", "value"];
                    for (int k = 0; k < 3; k++)
                    {
                        yield return F32($"{layer}attention.attention.{names[k]}.{param}", shape, w.Values.AsSpan(k * rows * cols, rows * cols));
                    }
                    continue;
                }
                string mapped = rest
                    .Replace("norm1.", "layernorm_before.", StringComparison.Ordinal)
                    .Replace("norm2.", "layernorm_after.", StringComparison.Ordinal)
                    .Replace("attn.proj.", "attention.output.dense.", StringComparison.Ordinal)
                    .Replace("mlp.fc1.", "intermediate.dense.", StringComparison.Ordinal)
                    .Replace("mlp.fc2.", "output.dense.", StringComparison.Ordinal);
                yield return F32(layer + mapped, L(w.Shape), w.Values);
                continue;
            }
            string name = n switch
            {
                "cls_token" => prefix + "embeddings.cls_token",
                "pos_embed" => prefix + "embeddings.position_embeddings",
                _ when n.StartsWith("patch_embed.proj.", StringComparison.Ordinal) => prefix + "embeddings.patch_embeddings.projection." + n["patch_embed.proj.".Length..],
                _ when n.StartsWith("norm.", StringComparison.Ordinal) => prefix + "layernorm." + n["norm.".Length..],
                _ when n.StartsWith("head.", StringComparison.Ordinal) => "classifier." + n["head.".Length..],
                _ => throw new InvalidOperationException(n),
            };
            yield return F32(name, L(w.Shape), w.Values);
        }
    }

    private static IEnumerable<RawTensor> TorchVision(List<Weight> weights, bool oldMlpNames = false)
    {
        foreach (Weight w in weights)
        {
            string n = w.Name;
            string name;
            if (n.StartsWith("blocks.", StringComparison.Ordinal))
            {
                string[] parts = n.Split('.', 3);
                string rest = parts[2] switch
                {
                    "attn.qkv.weight" => "self_attention.in_proj_weight",
                    "attn.qkv.bias" => "self_attention.in_proj_bias",
                    var r => r.Replace("norm1.", "ln_1.", StringComparison.Ordinal)
                        .Replace("norm2.", "ln_2.", StringComparison.Ordinal)
                        .Replace("attn.proj.", "self_attention.out_proj.", StringComparison.Ordinal)
                        .Replace("mlp.fc1.", oldMlpNames ? "mlp.linear_1." : "mlp.0.", StringComparison.Ordinal)
                        .Replace("mlp.fc2.", oldMlpNames ? "mlp.linear_2." : "mlp.3.", StringComparison.Ordinal),
                };
                name = $"encoder.layers.encoder_layer_{parts[1]}.{rest}";
            }
            else
            {
                name = n switch
                {
                    "cls_token" => "class_token",
                    "pos_embed" => "encoder.pos_embedding",
                    _ when n.StartsWith("patch_embed.proj.", StringComparison.Ordinal) => "conv_proj." + n["patch_embed.proj.".Length..],
                    _ when n.StartsWith("norm.", StringComparison.Ordinal) => "encoder.ln." + n["norm.".Length..],
                    _ when n.StartsWith("head.", StringComparison.Ordinal) => "heads.head." + n["head.".Length..],
                    _ => throw new InvalidOperationException(n),
                };
            }
            yield return F32(name, L(w.Shape), w.Values);
        }
    }

    private static IEnumerable<RawTensor> Clip(List<Weight> weights)
    {
        foreach (Weight w in weights)
        {
            string n = w.Name;
            if (n == "cls_token")
            {
                yield return F32("visual.class_embedding", [D], w.Values);
                continue;
            }
            if (n == "pos_embed")
            {
                yield return F32("visual.positional_embedding", [Tokens, D], w.Values);
                continue;
            }
            if (n == "head.weight")
            {
                // visual.proj is [W, out], applied as x @ proj: the transpose of head.weight [out, W].
                var proj = new float[D * Classes];
                for (int o = 0; o < Classes; o++)
                {
                    for (int c = 0; c < D; c++) proj[c * Classes + o] = w.Values[o * D + c];
                }
                yield return F32("visual.proj", [D, Classes], proj);
                continue;
            }
            string name;
            if (n.StartsWith("blocks.", StringComparison.Ordinal))
            {
                string[] parts = n.Split('.', 3);
                string rest = parts[2] switch
                {
                    "attn.qkv.weight" => "attn.in_proj_weight",
                    "attn.qkv.bias" => "attn.in_proj_bias",
                    var r => r.Replace("norm1.", "ln_1.", StringComparison.Ordinal)
                        .Replace("norm2.", "ln_2.", StringComparison.Ordinal)
                        .Replace("attn.proj.", "attn.out_proj.", StringComparison.Ordinal)
                        .Replace("mlp.fc1.", "mlp.c_fc.", StringComparison.Ordinal)
                        .Replace("mlp.fc2.", "mlp.c_proj.", StringComparison.Ordinal),
                };
                name = $"visual.transformer.resblocks.{parts[1]}.{rest}";
            }
            else
            {
                name = n switch
                {
                    "patch_embed.proj.weight" => "visual.conv1.weight",
                    _ when n.StartsWith("norm_pre.", StringComparison.Ordinal) => "visual.ln_pre." + n["norm_pre.".Length..],
                    _ when n.StartsWith("norm.", StringComparison.Ordinal) => "visual.ln_post." + n["norm.".Length..],
                    _ => throw new InvalidOperationException(n),
                };
            }
            yield return F32(name, L(w.Shape), w.Values);
        }
    }

    /// <summary>Reads every timm weight through the reader and asserts bit-identical floats, then the strict check.</summary>
    private static void ReadsIdentically(CheckpointReader reader, List<Weight> weights)
    {
        foreach (Weight w in weights)
        {
            Assert.True(reader.Contains(w.Name), w.Name);
            var read = new float[w.Values.Length];
            reader.Read(w.Name, w.Shape, read);
            Assert.True(w.Values.AsSpan().SequenceEqual(read), w.Name);
        }
        reader.EnsureAllRead();
    }

    private string WriteShuffled(IEnumerable<RawTensor> tensors, int seed)
    {
        var list = tensors.ToList();
        var rng = new Random(seed);
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
        return _folder.Write(Build(list));
    }

    [Fact]
    public void Timm_names_are_read_as_they_are()
    {
        var weights = TimmWeights(1);
        using var reader = CheckpointReader.Open(WriteShuffled(weights.Select(Timm), 1));
        Assert.Equal(CheckpointDialect.Timm, reader.Dialect);
        ReadsIdentically(reader, weights);
    }

    [Fact]
    public void HuggingFace_ViTForImageClassification_concatenates_query_key_value()
    {
        var weights = TimmWeights(2);
        using var reader = CheckpointReader.Open(WriteShuffled(HuggingFace(weights, "vit."), 2));
        Assert.Equal(CheckpointDialect.HuggingFace, reader.Dialect);
        ReadsIdentically(reader, weights);
    }

    [Fact]
    public void HuggingFace_ViTModel_has_no_prefix_and_its_pooler_is_ignored()
    {
        var weights = TimmWeights(3).Where(w => !w.Name.StartsWith("head.", StringComparison.Ordinal)).ToList();
        var rng = new Random(3);
        var tensors = HuggingFace(weights, "").Concat(
        [
            F32("pooler.dense.weight", [D, D], RandomFloats(rng, D * D)),
            F32("pooler.dense.bias", [D], RandomFloats(rng, D)),
        ]);
        using var reader = CheckpointReader.Open(WriteShuffled(tensors, 3));
        Assert.Equal(CheckpointDialect.HuggingFace, reader.Dialect);
        Assert.False(reader.Contains("head.weight"));
        ReadsIdentically(reader, weights);
    }

    [Fact]
    public void TorchVision_names_are_mapped()
    {
        var weights = TimmWeights(4);
        using var reader = CheckpointReader.Open(WriteShuffled(TorchVision(weights), 4));
        Assert.Equal(CheckpointDialect.TorchVision, reader.Dialect);
        ReadsIdentically(reader, weights);
    }

    [Fact]
    public void TorchVision_older_mlp_names_are_mapped()
    {
        var weights = TimmWeights(5);
        using var reader = CheckpointReader.Open(WriteShuffled(TorchVision(weights, oldMlpNames: true), 5));
        Assert.Equal(CheckpointDialect.TorchVision, reader.Dialect);
        ReadsIdentically(reader, weights);
    }

    [Fact]
    public void OpenAI_CLIP_image_tower_is_reshaped_and_transposed_and_the_text_tower_ignored()
    {
        var weights = TimmWeights(6, clip: true);
        var rng = new Random(6);
        var text = new[]
        {
            F32("positional_embedding", [7, 4], RandomFloats(rng, 28)),
            F32("token_embedding.weight", [11, 4], RandomFloats(rng, 44)),
            F32("transformer.resblocks.0.attn.in_proj_weight", [12, 4], RandomFloats(rng, 48)),
            F32("text_projection", [4, 4], RandomFloats(rng, 16)),
            F32("logit_scale", [], [4.6f]),
        };
        using var reader = CheckpointReader.Open(WriteShuffled(Clip(weights).Concat(text), 6));
        Assert.Equal(CheckpointDialect.OpenAiClip, reader.Dialect);
        Assert.False(reader.Contains("head.bias"));
        Assert.False(reader.Contains("patch_embed.proj.bias"));
        ReadsIdentically(reader, weights);
    }

    [Fact]
    public void Dialects_read_converted_dtypes()
    {
        // BF16 storage in the Hugging Face layout: the concatenated qkv equals the widened parts.
        var weights = TimmWeights(7);
        var tensors = HuggingFace(weights, "vit.").Select(t =>
        {
            var bits = new ushort[t.Data.Length / 4];
            for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)(BitConverter.ToUInt32(t.Data, i * 4) >> 16);
            return BF16Bits(t.Name, t.Shape, bits);
        });
        using var reader = CheckpointReader.Open(WriteShuffled(tensors, 7));
        foreach (Weight w in weights)
        {
            var read = new float[w.Values.Length];
            reader.Read(w.Name, w.Shape, read);
            for (int i = 0; i < read.Length; i++)
            {
                int truncated = (int)(BitConverter.SingleToUInt32Bits(w.Values[i]) & 0xFFFF0000u);
                Assert.Equal(truncated, BitConverter.SingleToInt32Bits(read[i]));
            }
        }
        reader.EnsureAllRead();
    }

    [Fact]
    public void Wrong_shape_names_the_tensor_the_file_and_both_shapes()
    {
        string path = _folder.Write(Build([F32("blocks.0.attn.qkv.weight", [2304, 768], new float[2304 * 768])]));
        using var reader = CheckpointReader.Open(path);
        var e = Assert.Throws<VitWeightsException>(() => reader.Read("blocks.0.attn.qkv.weight", [2304, 512], new float[2304 * 512]));
        output.WriteLine(e.Message);
        Assert.Equal($"tensor 'blocks.0.attn.qkv.weight' in '{path}' has shape [2304, 768] but the model expects [2304, 512]", e.Message);
        e = Assert.Throws<VitWeightsException>(() => reader.Read("blocks.0.attn.qkv.weight", [2304, 768, 1], new float[2304 * 768]));
        Assert.Contains("[2304, 768, 1]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_shape_in_a_dialect_names_the_stored_tensors()
    {
        var weights = TimmWeights(8);
        string path = _folder.Write(Build(HuggingFace(weights, "vit.")));
        using var reader = CheckpointReader.Open(path);
        var e = Assert.Throws<VitWeightsException>(() => reader.Read("blocks.1.attn.qkv.weight", [3 * D, D + 1], new float[3 * D * (D + 1)]));
        output.WriteLine(e.Message);
        Assert.StartsWith($"tensor 'blocks.1.attn.qkv.weight' in '{path}' has shape [24, 8] but the model expects [24, 9]", e.Message, StringComparison.Ordinal);
        Assert.Contains("'vit.encoder.layer.1.attention.attention.query.weight' [8, 8]", e.Message, StringComparison.Ordinal);
        Assert.Contains("concatenated", e.Message, StringComparison.Ordinal);

        // CLIP: the check applies to the transposed / reshaped result.
        var clip = TimmWeights(9, clip: true);
        string clipPath = _folder.Write(Build(Clip(clip)));
        using var clipReader = CheckpointReader.Open(clipPath);
        e = Assert.Throws<VitWeightsException>(() => clipReader.Read("head.weight", [D, Classes], new float[D * Classes]));
        output.WriteLine(e.Message);
        Assert.Contains("has shape [5, 8] but the model expects [8, 5]", e.Message, StringComparison.Ordinal);
        Assert.Contains("'visual.proj' [8, 5]", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VitWeightsException>(() => clipReader.Read("cls_token", [D], new float[D]));
        Assert.Contains("has shape [1, 1, 8] but the model expects [8]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_tensor_names_the_timm_name_the_dialect_name_and_the_file()
    {
        var weights = TimmWeights(10);
        string timmPath = _folder.Write(Build(weights.Where(w => w.Name != "norm.bias").Select(Timm)));
        using (var reader = CheckpointReader.Open(timmPath))
        {
            var e = Assert.Throws<VitWeightsException>(() => reader.Read("norm.bias", [D], new float[D]));
            output.WriteLine(e.Message);
            Assert.Contains("'norm.bias'", e.Message, StringComparison.Ordinal);
            Assert.Contains(timmPath, e.Message, StringComparison.Ordinal);
            Assert.False(reader.Contains("norm.bias"));
        }

        string hfPath = _folder.Write(Build(HuggingFace(weights, "vit.").Where(t => t.Name != "vit.encoder.layer.0.attention.attention.key.bias")));
        using (var reader = CheckpointReader.Open(hfPath))
        {
            Assert.False(reader.Contains("blocks.0.attn.qkv.bias"));
            var e = Assert.Throws<VitWeightsException>(() => reader.Read("blocks.0.attn.qkv.bias", [3 * D], new float[3 * D]));
            output.WriteLine(e.Message);
            Assert.Contains("'blocks.0.attn.qkv.bias'", e.Message, StringComparison.Ordinal);
            Assert.Contains(hfPath, e.Message, StringComparison.Ordinal);
            Assert.Contains("'vit.encoder.layer.0.attention.attention.key.bias'", e.Message, StringComparison.Ordinal);
            Assert.Contains("Hugging Face", e.Message, StringComparison.Ordinal);
        }

        string clipPath = _folder.Write(Build(Clip(TimmWeights(11, clip: true))));
        using (var reader = CheckpointReader.Open(clipPath))
        {
            var e = Assert.Throws<VitWeightsException>(() => reader.Read("head.bias", [Classes], new float[Classes]));
            output.WriteLine(e.Message);
            Assert.Contains("'head.bias'", e.Message, StringComparison.Ordinal);
            Assert.Contains("OpenAI CLIP", e.Message, StringComparison.Ordinal);
            Assert.Contains(clipPath, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Unexpected_tensors_fail_EnsureAllRead_unless_ignored()
    {
        var weights = TimmWeights(12);
        var extra = new[] { F32("dist_token", [1, 1, D], new float[D]), F32("head_dist.weight", [Classes, D], new float[Classes * D]) };
        string path = _folder.Write(Build(weights.Select(Timm).Concat(extra)));
        using (var reader = CheckpointReader.Open(path))
        {
            foreach (Weight w in weights) reader.Read(w.Name, w.Shape, new float[w.Values.Length]);
            var e = Assert.Throws<VitWeightsException>(reader.EnsureAllRead);
            output.WriteLine(e.Message);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains("2 unexpected tensors", e.Message, StringComparison.Ordinal);
            Assert.Contains("'dist_token' [1, 1, 8]", e.Message, StringComparison.Ordinal);
            Assert.Contains("'head_dist.weight' [5, 8]", e.Message, StringComparison.Ordinal);
        }
        using (var reader = CheckpointReader.Open(path, new CheckpointOptions { IgnoredPrefixes = ["dist_token", "head_dist."] }))
        {
            foreach (Weight w in weights) reader.Read(w.Name, w.Shape, new float[w.Values.Length]);
            reader.EnsureAllRead();
        }
        using (var reader = CheckpointReader.Open(path, new CheckpointOptions { IgnoredPrefixes = ["head_dist."] }))
        {
            foreach (Weight w in weights.Where(w => w.Name != "norm.weight")) reader.Read(w.Name, w.Shape, new float[w.Values.Length]);
            var e = Assert.Throws<VitWeightsException>(reader.EnsureAllRead);
            Assert.Contains("'norm.weight'", e.Message, StringComparison.Ordinal);
            Assert.Contains("'dist_token'", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("head_dist", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Integer_weights_and_bad_destinations_are_rejected()
    {
        string path = _folder.Write(Build([I64("norm.weight", [D], new long[D]), F32("norm.bias", [D], new float[D])]));
        using var reader = CheckpointReader.Open(path);
        var e = Assert.Throws<VitWeightsException>(() => reader.Read("norm.weight", [D], new float[D]));
        output.WriteLine(e.Message);
        Assert.Contains("'norm.weight'", e.Message, StringComparison.Ordinal);
        Assert.Contains("I64", e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => reader.Read("norm.bias", [D], new float[D - 1]));
    }

    [Fact]
    public void Open_rejects_invalid_files_with_VitWeightsException()
    {
        string path = _folder.Write([1, 2, 3]);
        var e = Assert.Throws<VitWeightsException>(() => CheckpointReader.Open(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }
}
