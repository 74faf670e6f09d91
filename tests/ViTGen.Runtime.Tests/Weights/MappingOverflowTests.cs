using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Weights;

/// <summary>
/// Crafted headers whose mapped shapes overflow: empty tensors (a dimension of 0, so no data) that claim huge other
/// dimensions pass the safetensors checks, and every dialect's mapping (timm as stored, Hugging Face's query/key/value
/// concatenation, torchvision's in_proj, OpenAI CLIP's transposed proj and unsqueezed embeddings) must turn them into
/// a <see cref="VitWeightsException"/> naming the file and the tensor, never an <see cref="OverflowException"/> or
/// a silently wrong number.
/// </summary>
public sealed class MappingOverflowTests : IDisposable
{
    private const long Huge = 1L << 62;
    private const long Max = long.MaxValue;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static RawTensor Empty(string name, params long[] shape) => new(name, "F32", shape, []);

    private static List<RawTensor> Replace(List<RawTensor> tensors, params RawTensor[] replacements)
    {
        var result = tensors.Where(t => replacements.All(r => r.Name != t.Name)).ToList();
        foreach (RawTensor r in replacements)
        {
            Assert.Contains(tensors, t => t.Name == r.Name);
            result.Add(r);
        }
        return result;
    }

    public static TheoryData<string, string> Cases() => new()
    {
        // Hugging Face: query + key + value rows add up past long.MaxValue (the reported OverflowException).
        { "hf query/key/value 2^62 x 3", "blocks.0.attn.qkv.weight" },
        { "hf query/key/value long.MaxValue + 1", "blocks.1.attn.qkv.weight" },
        { "hf query/key/value biases", "blocks.0.attn.qkv.bias" },
        // timm: a tensor as stored, with a huge empty shape.
        { "timm qkv 2^62 x 0", "blocks.0.attn.qkv.weight" },
        { "timm pos_embed [1, long.MaxValue, 0]", "pos_embed" },
        // torchvision: in_proj is read as stored.
        { "torchvision in_proj 2^62 x 0", "blocks.0.attn.qkv.weight" },
        { "torchvision class_token [long.MaxValue, 0, long.MaxValue]", "cls_token" },
        // OpenAI CLIP: proj is transposed, class and position embeddings get leading ones.
        { "clip proj [0, long.MaxValue]", "head.weight" },
        { "clip class_embedding [long.MaxValue, 0]", "cls_token" },
        { "clip positional_embedding [long.MaxValue, 0]", "pos_embed" },
    };

    private (string Fixture, List<RawTensor> Tensors) Build(string name)
    {
        List<RawTensor> basic = DialectFiles.ReadAll(Fixture.Read("basic").WeightsPath);
        const string Hf = "vit.encoder.layer.";
        return name switch
        {
            "hf query/key/value 2^62 x 3" => ("basic", Replace(DialectFiles.HuggingFace(basic, classifier: true),
                Empty(Hf + "0.attention.attention.query.weight", Huge, 0), Empty(Hf + "0.attention.attention.key.weight", Huge, 0),
                Empty(Hf + "0.attention.attention.value.weight", Huge, 0))),
            "hf query/key/value long.MaxValue + 1" => ("basic", Replace(DialectFiles.HuggingFace(basic, classifier: true),
                Empty(Hf + "1.attention.attention.query.weight", Max, 0), Empty(Hf + "1.attention.attention.key.weight", 1, 0),
                Empty(Hf + "1.attention.attention.value.weight", 0, 0))),
            "hf query/key/value biases" => ("basic", Replace(DialectFiles.HuggingFace(basic, classifier: true),
                Empty(Hf + "0.attention.attention.query.bias", Max, 0), Empty(Hf + "0.attention.attention.key.bias", Max, 0),
                Empty(Hf + "0.attention.attention.value.bias", Max, 0))),
            "timm qkv 2^62 x 0" => ("basic", Replace(basic, Empty("blocks.0.attn.qkv.weight", Huge, 0))),
            "timm pos_embed [1, long.MaxValue, 0]" => ("basic", Replace(basic, Empty("pos_embed", 1, Max, 0))),
            "torchvision in_proj 2^62 x 0" => ("basic", Replace(DialectFiles.TorchVision(basic),
                Empty("encoder.layers.encoder_layer_0.self_attention.in_proj_weight", Huge, 0))),
            "torchvision class_token [long.MaxValue, 0, long.MaxValue]" => ("basic", Replace(DialectFiles.TorchVision(basic),
                Empty("class_token", Max, 0, Max))),
            _ => ("combo_clip", Replace(Clip(), name switch
            {
                "clip proj [0, long.MaxValue]" => Empty("visual.proj", 0, Max),
                "clip class_embedding [long.MaxValue, 0]" => Empty("visual.class_embedding", Max, 0),
                _ => Empty("visual.positional_embedding", Max, 0),
            })),
        };
    }

    private static List<RawTensor> Clip()
        => DialectFiles.OpenAiClip(DialectFiles.WithZeros(DialectFiles.ReadAll(Fixture.Read("combo_clip").WeightsPath), "head.bias"));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Loading_fails_with_VitWeightsException_naming_file_and_tensor(string name, string timmName)
    {
        (string fixture, List<RawTensor> tensors) = Build(name);
        string path = _folder.Write(SafeTensorsWriter.Build(tensors));

        var e = Assert.Throws<VitWeightsException>(() => ParityModels.Load[fixture](path, null).Dispose());
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains($"'{timmName}'", e.Message, StringComparison.Ordinal);

        // Inspecting the file maps every tensor too: it may describe the file, but must not throw anything else.
        try
        {
            _ = CheckpointArchitecture.Infer(path);
        }
        catch (VitWeightsException)
        {
        }

        // And reading the stored tensor directly is refused by the length check.
        using var file = SafeTensorsFile.Open(path);
        foreach (RawTensor t in tensors.Where(t => t.Data.Length == 0 && t.Shape.Any(d => d > int.MaxValue)))
        {
            Assert.Throws<VitWeightsException>(() => file.ReadFloat32(t.Name, new float[1]));
        }
    }

    [Fact]
    public void Concatenation_overflow_names_the_stored_parts()
    {
        (_, List<RawTensor> tensors) = Build("hf query/key/value 2^62 x 3");
        string path = _folder.Write(SafeTensorsWriter.Build(tensors));
        using var reader = CompilerServices.CheckpointReader.Open(path);
        var e = Assert.Throws<VitWeightsException>(() => reader.Read("blocks.0.attn.qkv.weight", [192, 64], new float[192 * 64]));
        Assert.Contains("'vit.encoder.layer.0.attention.attention.query.weight' [4611686018427387904, 0]", e.Message, StringComparison.Ordinal);
        Assert.Contains("64-bit", e.Message, StringComparison.Ordinal);
        Assert.Throws<VitWeightsException>(() => CheckpointArchitecture.Infer(reader));
    }

    [Fact]
    public void Image_size_overflow_from_an_empty_position_embedding_is_refused()
    {
        // dim 0 makes every tensor empty: a 2^20 x 2^20 grid of 4096-pixel patches is 2^32 pixels wide.
        long tokens = 1 + (1L << 40);
        RawTensor[] tensors =
        [
            Empty("patch_embed.proj.weight", 0, 3, 4096, 4096), Empty("patch_embed.proj.bias", 0),
            Empty("cls_token", 1, 1, 0), Empty("pos_embed", 1, tokens, 0),
            Empty("blocks.0.attn.qkv.weight", 0, 0), Empty("blocks.0.mlp.fc1.weight", 4, 0),
        ];
        string path = _folder.Write(SafeTensorsWriter.Build(tensors));
        var e = Assert.Throws<VitWeightsException>(() => CheckpointArchitecture.Infer(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("position embedding", e.Message, StringComparison.Ordinal);
    }
}
