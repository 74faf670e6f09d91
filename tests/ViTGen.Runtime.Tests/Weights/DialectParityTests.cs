using ViTGen.Tests.Parity;
using Xunit.Abstractions;

namespace ViTGen.Tests.Weights;

/// <summary>
/// End to end: a PyTorch parity fixture (timm names) rewritten under each dialect's names and layouts, loaded by the
/// compiled fixture model, matches the PyTorch reference output, and is bit-identical to loading the timm file.
/// </summary>
/// <remarks>
/// Each dialect gets fixtures it can express exactly:
/// <list type="bullet">
/// <item>Hugging Face <c>ViTForImageClassification</c>: <c>basic</c>, <c>odd</c> (MLP 200) and <c>gray</c>
/// (1 channel, <c>qkv_bias=False</c>, which HF stores as query/key/value without biases). HF ViT has no pre-norm,
/// LayerScale, registers, distillation token or fc_norm, so the other fixtures have no HF form.</item>
/// <item>Hugging Face bare <c>ViTModel</c> (no classifier; its pooler is ignored): <c>no_head</c> (classes 0:
/// pooled features).</item>
/// <item>torchvision: <c>basic</c> (the fixture the PyTorch script also checks against torchvision), <c>odd</c>,
/// <c>patch32</c> (1 channel), and <c>basic</c> with the older <c>mlp.linear_1</c> names. torchvision's attention
/// always has an input-projection bias, so <c>gray</c> has no torchvision form.</item>
/// <item>OpenAI CLIP: <c>combo_clip</c> (pre-norm without patch bias, QuickGELU, eps 1e-5: CLIP's image tower).
/// CLIP's <c>visual.proj</c> has no bias while the fixture's head has one, so the test zeroes <c>head.bias</c> in
/// the timm weights and subtracts it from the PyTorch reference (logits = features · Wᵀ + b, exactly linear in b).</item>
/// </list>
/// </remarks>
public sealed class DialectParityTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    public enum Dialect
    {
        HuggingFaceClassifier,
        HuggingFaceModel,
        TorchVision,
        TorchVisionOldMlpNames,
        OpenAiClip,
    }

    public static TheoryData<Dialect, string> Cases() => new()
    {
        { Dialect.HuggingFaceClassifier, "basic" },
        { Dialect.HuggingFaceClassifier, "odd" },
        { Dialect.HuggingFaceClassifier, "gray" },
        { Dialect.HuggingFaceModel, "no_head" },
        { Dialect.TorchVision, "basic" },
        { Dialect.TorchVision, "odd" },
        { Dialect.TorchVision, "patch32" },
        { Dialect.TorchVisionOldMlpNames, "basic" },
        { Dialect.OpenAiClip, "combo_clip" },
    };

    internal static List<RawTensor> Rewrite(Dialect dialect, List<RawTensor> timm) => dialect switch
    {
        Dialect.HuggingFaceClassifier => DialectFiles.HuggingFace(timm, classifier: true),
        Dialect.HuggingFaceModel => DialectFiles.HuggingFace(timm, classifier: false),
        Dialect.TorchVision => DialectFiles.TorchVision(timm),
        Dialect.TorchVisionOldMlpNames => DialectFiles.TorchVision(timm, oldMlpNames: true),
        _ => DialectFiles.OpenAiClip(timm),
    };

    internal static CheckpointDialect Expected(Dialect dialect) => dialect switch
    {
        Dialect.HuggingFaceClassifier or Dialect.HuggingFaceModel => CheckpointDialect.HuggingFace,
        Dialect.TorchVision or Dialect.TorchVisionOldMlpNames => CheckpointDialect.TorchVision,
        _ => CheckpointDialect.OpenAiClip,
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Dialect_file_matches_PyTorch_and_the_timm_file(Dialect dialect, string name)
    {
        Fixture fixture = Fixture.Read(name);
        List<RawTensor> timm = DialectFiles.ReadAll(fixture.WeightsPath);
        double[] expected = fixture.Expected;
        string timmPath = fixture.WeightsPath;
        if (dialect == Dialect.OpenAiClip)
        {
            // CLIP cannot store a head bias: compare the bias-free model with the reference minus the bias.
            float[] bias = DialectFiles.Floats(timm.Single(t => t.Name == "head.bias"));
            expected = (double[])expected.Clone();
            for (int i = 0; i < expected.Length; i++) expected[i] -= bias[i % bias.Length];
            timm = DialectFiles.WithZeros(timm, "head.bias");
            timmPath = _folder.Write(SafeTensorsWriter.Build(timm), name + ".nobias.safetensors");
        }

        // Shuffle the storage order too: dialect files come from other writers.
        List<RawTensor> rewritten = Rewrite(dialect, timm);
        rewritten.Sort((a, b) => string.CompareOrdinal(b.Name, a.Name));
        string path = _folder.Write(SafeTensorsWriter.Build(rewritten), $"{name}.{dialect}.safetensors");
        using (var reader = CompilerServices.CheckpointReader.Open(path))
        {
            Assert.Equal(Expected(dialect), reader.Dialect);
        }

        float[] viaDialect = Forward(name, path, fixture);
        Numerics.AssertClose(viaDialect, expected, ParityTests.Bound, out double error);
        output.WriteLine($"{name} as {dialect}: relative L2 {error:E2}");

        float[] viaTimm = Forward(name, timmPath, fixture);
        Assert.Equal(viaTimm, viaDialect);
    }

    [Fact]
    public void Compiled_classes_load_dialect_files_directly()
    {
        // The same check through the generated Load of the concrete classes (no test indirection).
        Fixture basic = Fixture.Read("basic");
        string hf = _folder.Write(SafeTensorsWriter.Build(DialectFiles.HuggingFace(DialectFiles.ReadAll(basic.WeightsPath), classifier: true)));
        using var model = FixtureBasic.Load(hf);
        float[] result = basic.PoisonedOutput();
        model.Forward(basic.Input, result, basic.Batch);
        Numerics.AssertClose(result, basic.Expected, ParityTests.Bound, out _);

        Fixture gray = Fixture.Read("gray");
        string grayHf = _folder.Write(SafeTensorsWriter.Build(DialectFiles.HuggingFace(DialectFiles.ReadAll(gray.WeightsPath), classifier: true)));
        Assert.DoesNotContain(DialectFiles.ReadAll(grayHf), t => t.Name.EndsWith("query.bias", StringComparison.Ordinal));
        using var grayModel = FixtureGray.Load(grayHf);
        float[] grayResult = gray.PoisonedOutput();
        grayModel.Forward(gray.Input, grayResult, gray.Batch);
        Numerics.AssertClose(grayResult, gray.Expected, ParityTests.Bound, out _);
    }

    [Fact]
    public void Dialects_reject_what_they_cannot_express()
    {
        // The rewriters refuse tensors a dialect has no name for, which is why each dialect gets its own fixtures.
        Assert.Throws<NotSupportedException>(() => DialectFiles.HuggingFace(DialectFiles.ReadAll(Fixture.Read("prenorm").WeightsPath), classifier: true));
        Assert.Throws<NotSupportedException>(() => DialectFiles.HuggingFace(DialectFiles.ReadAll(Fixture.Read("layerscale").WeightsPath), classifier: true));
        Assert.Throws<NotSupportedException>(() => DialectFiles.TorchVision(DialectFiles.ReadAll(Fixture.Read("registers").WeightsPath)));
        Assert.Throws<NotSupportedException>(() => DialectFiles.TorchVision(DialectFiles.ReadAll(Fixture.Read("avg_pool").WeightsPath)));
        Assert.Throws<NotSupportedException>(() => DialectFiles.OpenAiClip(DialectFiles.ReadAll(Fixture.Read("basic").WeightsPath)));
        Assert.Throws<NotSupportedException>(() => DialectFiles.OpenAiClip(DialectFiles.ReadAll(Fixture.Read("combo_clip").WeightsPath)));
    }

    private static float[] Forward(string name, string weights, Fixture fixture)
    {
        using IParityModel model = ParityModels.Load[name](weights, null);
        float[] result = fixture.PoisonedOutput();
        model.Forward(fixture.Input, result, fixture.Batch);
        return result;
    }
}
