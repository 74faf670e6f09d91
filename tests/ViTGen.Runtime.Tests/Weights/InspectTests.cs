using System.Globalization;
using System.Text.Json;
using ViTGen.CompilerServices;
using ViTGen.Tests.Parity;
using Xunit.Abstractions;
using static ViTGen.Tests.Weights.SafeTensorsWriter;

namespace ViTGen.Tests.Weights;

/// <summary>
/// <see cref="CheckpointArchitecture"/>, the inference behind <c>vitgen inspect</c>: every parity fixture's inferred
/// attribute equals the one in tests/fixtures/parity/fixtures.json once the arguments weights cannot record (heads,
/// activation, eps) are taken from the fixture, in timm names and in every dialect that can express the fixture.
/// </summary>
public sealed class InspectTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private sealed record FixtureConfig(string Attribute, int Heads, VitActivation Activation, float NormEps);

    private static readonly Lazy<Dictionary<string, FixtureConfig>> Configs = new(() =>
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture.Directory, "fixtures.json")));
        var result = new Dictionary<string, FixtureConfig>(StringComparer.Ordinal);
        foreach (JsonElement f in json.RootElement.EnumerateArray())
        {
            JsonElement c = f.GetProperty("config");
            result.Add(f.GetProperty("name").GetString()!, new FixtureConfig(
                f.GetProperty("attribute").GetString()!,
                c.GetProperty("heads").GetInt32(),
                Enum.Parse<VitActivation>(c.GetProperty("activation").GetString()!),
                (float)c.GetProperty("normEps").GetDouble()));
        }
        return result;
    });

    public static TheoryData<string> FixtureNames() => new(Fixture.Names);

    /// <summary>The inferred attribute with what weights cannot record taken from the fixture.</summary>
    private static string Normalized(CheckpointArchitecture inferred, FixtureConfig config)
        => (inferred with { Heads = config.Heads, Activation = config.Activation, NormEps = config.NormEps }).ToAttribute();

    [Fact]
    public void Every_compiled_fixture_is_in_fixtures_json()
    {
        Assert.Equal(Fixture.Names.Order(StringComparer.Ordinal), Configs.Value.Keys.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(FixtureNames))]
    public void Fixture_attribute_is_inferred_from_timm_shapes(string name)
    {
        FixtureConfig config = Configs.Value[name];
        CheckpointArchitecture inferred = CheckpointArchitecture.Infer(Fixture.Read(name).WeightsPath);
        output.WriteLine(inferred.ToAttribute());
        foreach (string note in inferred.Notes) output.WriteLine("  " + note);

        Assert.Equal(config.Attribute, Normalized(inferred, config));
        Assert.Equal(CheckpointDialect.Timm, inferred.Dialect);
        Assert.Equal(VitActivation.Gelu, inferred.Activation);
        Assert.Equal(1e-6f, inferred.NormEps);
        // Nothing missing, nothing left over: only the two notes about what weights cannot record.
        Assert.Collection(inferred.Notes,
            n => Assert.StartsWith("heads:", n, StringComparison.Ordinal),
            n => Assert.StartsWith("activation, normEps:", n, StringComparison.Ordinal));
        using var file = SafeTensorsFile.Open(Fixture.Read(name).WeightsPath);
        Assert.Equal(file.Tensors.Sum(t => t.ElementCount), inferred.ParameterCount);
    }

    [Theory]
    [MemberData(nameof(DialectParityTests.Cases), MemberType = typeof(DialectParityTests))]
    public void Fixture_attribute_is_inferred_from_each_dialect(DialectParityTests.Dialect dialect, string name)
    {
        FixtureConfig config = Configs.Value[name];
        var timm = DialectFiles.ReadAll(Fixture.Read(name).WeightsPath);
        if (dialect == DialectParityTests.Dialect.OpenAiClip) timm = DialectFiles.WithZeros(timm, "head.bias");
        string path = _folder.Write(Build(DialectParityTests.Rewrite(dialect, timm)));

        CheckpointArchitecture inferred = CheckpointArchitecture.Infer(path);
        output.WriteLine($"{inferred.DialectName}: {inferred.ToAttribute()}");
        foreach (string note in inferred.Notes) output.WriteLine("  " + note);

        Assert.Equal(DialectParityTests.Expected(dialect), inferred.Dialect);
        Assert.Equal(config.Attribute, Normalized(inferred, config));
        Assert.Equal(2, inferred.Notes.Count); // heads and activation/eps only: the file loads exactly
        switch (dialect)
        {
            case DialectParityTests.Dialect.OpenAiClip:
                // CLIP's conventions are the fixture's: only the heads differ.
                Assert.Equal(config.Attribute, (inferred with { Heads = config.Heads }).ToAttribute());
                Assert.Equal(CheckpointDialect.OpenAiClip, inferred.Dialect);
                break;
            case DialectParityTests.Dialect.HuggingFaceClassifier or DialectParityTests.Dialect.HuggingFaceModel:
                Assert.Equal(1e-12f, inferred.NormEps);
                Assert.Contains("normEps: 1e-12f", inferred.ToAttribute(), StringComparison.Ordinal);
                break;
            default:
                Assert.Equal(1e-6f, inferred.NormEps);
                break;
        }
    }

    [Fact]
    public void Heads_assume_a_head_width_of_64_and_a_224_image_is_spelled_out()
    {
        // ViT-B-like shapes at width 128: 196 patches of 16 pixels plus the class token.
        const int D = 128;
        var rng = new Random(1);
        var tensors = new List<RawTensor>
        {
            F32("cls_token", [1, 1, D], RandomFloats(rng, D)),
            F32("pos_embed", [1, 197, D], RandomFloats(rng, 197 * D)),
            F32("patch_embed.proj.weight", [D, 3, 16, 16], RandomFloats(rng, D * 3 * 256)),
            F32("patch_embed.proj.bias", [D], RandomFloats(rng, D)),
            F32("norm.weight", [D], RandomFloats(rng, D)),
            F32("norm.bias", [D], RandomFloats(rng, D)),
            F32("head.weight", [1000, D], RandomFloats(rng, 1000 * D)),
            F32("head.bias", [1000], RandomFloats(rng, 1000)),
        };
        foreach (var (name, shape) in new (string, long[])[]
        {
            ("norm1.weight", [D]), ("norm1.bias", [D]), ("attn.qkv.weight", [3 * D, D]), ("attn.qkv.bias", [3 * D]),
            ("attn.proj.weight", [D, D]), ("attn.proj.bias", [D]), ("norm2.weight", [D]), ("norm2.bias", [D]),
            ("mlp.fc1.weight", [4 * D, D]), ("mlp.fc1.bias", [4 * D]), ("mlp.fc2.weight", [D, 4 * D]), ("mlp.fc2.bias", [D]),
        })
        {
            tensors.Add(F32("blocks.0." + name, shape, RandomFloats(rng, (int)shape.Aggregate(1L, (a, b) => a * b))));
        }
        CheckpointArchitecture inferred = CheckpointArchitecture.Infer(_folder.Write(Build(tensors)));
        Assert.Equal("[VitModel(patch: 16, dim: 128, depth: 1, heads: 2, imageSize: 224, classes: 1000)]", inferred.ToAttribute());
        Assert.Contains("dim / 64", inferred.Notes[0], StringComparison.Ordinal);

        // The same file in torchvision names.
        inferred = CheckpointArchitecture.Infer(_folder.Write(Build(DialectFiles.TorchVision(tensors))));
        Assert.Equal(CheckpointDialect.TorchVision, inferred.Dialect);
        Assert.Equal("[VitModel(patch: 16, dim: 128, depth: 1, heads: 2, imageSize: 224, classes: 1000)]", inferred.ToAttribute());
    }

    [Fact]
    public void Leftover_and_inexpressible_tensors_are_noted()
    {
        var basic = DialectFiles.ReadAll(Fixture.Read("basic").WeightsPath);
        var rng = new Random(2);
        string extra = _folder.Write(Build([.. basic, F32("aux_head.weight", [3, 64], RandomFloats(rng, 192))]));
        CheckpointArchitecture inferred = CheckpointArchitecture.Infer(extra);
        Assert.Contains(inferred.Notes, n => n.Contains("'aux_head.weight'", StringComparison.Ordinal) && n.StartsWith("1 tensor would not be read", StringComparison.Ordinal));
        // ... unless ignored, as CheckpointOptions would at load time.
        inferred = CheckpointArchitecture.Infer(extra, new CheckpointOptions { IgnoredPrefixes = ["aux_"] });
        Assert.Equal(2, inferred.Notes.Count);

        // A patch bias together with a pre-norm cannot be compiled.
        var prenorm = DialectFiles.ReadAll(Fixture.Read("prenorm").WeightsPath);
        string both = _folder.Write(Build([.. prenorm, F32("patch_embed.proj.bias", [24], RandomFloats(rng, 24))]));
        inferred = CheckpointArchitecture.Infer(both);
        Assert.True(inferred.PreNorm);
        Assert.Contains(inferred.Notes, n => n.Contains("norm_pre", StringComparison.Ordinal) && n.Contains("patch-embedding bias", StringComparison.Ordinal));
        Assert.Contains(inferred.Notes, n => n.Contains("'patch_embed.proj.bias'", StringComparison.Ordinal));
    }

    [Fact]
    public void Inference_does_not_mark_tensors_as_read()
    {
        using var reader = CheckpointReader.Open(Fixture.Read("basic").WeightsPath);
        _ = CheckpointArchitecture.Infer(reader);
        Assert.Throws<VitWeightsException>(reader.EnsureAllRead);
    }

    [Fact]
    public void Files_that_are_not_ViTs_fail_with_the_reason()
    {
        var e = Assert.Throws<VitWeightsException>(() => CheckpointArchitecture.Infer(Path.Combine(Fixture.Directory, "basic.io.safetensors")));
        output.WriteLine(e.Message);
        Assert.Contains("no patch embedding", e.Message, StringComparison.Ordinal);

        // 18 position rows with one class token: 17 patches, not a square grid.
        var noHead = DialectFiles.ReadAll(Fixture.Read("no_head").WeightsPath)
            .Select(t => t.Name == "pos_embed" ? F32("pos_embed", [1, 18, 24], new float[18 * 24]) : t);
        e = Assert.Throws<VitWeightsException>(() => CheckpointArchitecture.Infer(_folder.Write(Build(noHead))));
        output.WriteLine(e.Message);
        Assert.Contains("18 rows", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<VitWeightsException>(() => CheckpointArchitecture.Infer(Path.Combine(_folder.Path, "missing.safetensors")));
        Assert.Contains("missing.safetensors", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1e-6f, "")]
    [InlineData(1e-5f, ", normEps: 1e-5f")]
    [InlineData(1e-12f, ", normEps: 1e-12f")]
    [InlineData(0.001f, ", normEps: 0.001f")]
    [InlineData(2.5e-7f, ", normEps: 2.5e-7f")]
    public void Eps_is_written_as_a_float_literal(float eps, string expected)
    {
        var a = new CheckpointArchitecture { Patch = 4, Dim = 8, Depth = 1, Heads = 1, ImageSize = 8, Channels = 3, Classes = 2, MlpDim = 32, QkvBias = true, ClassToken = true, NormEps = eps };
        Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"[VitModel(patch: 4, dim: 8, depth: 1, heads: 1, imageSize: 8, classes: 2{expected})]"), a.ToAttribute());
    }
}
