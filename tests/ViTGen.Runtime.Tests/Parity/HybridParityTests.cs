using ViTGen.CompilerServices;
using ViTGen.Tests.Kernels;
using Xunit.Abstractions;

namespace ViTGen.Tests.Parity;

/// <summary>The hybrid fixtures: weights, input and the float64 reference (checked against timm itself by the script).</summary>
internal static class HybridFixtures
{
    public static readonly string[] Names = HybridModels.Load.Keys.Order(StringComparer.Ordinal).ToArray();

    public static readonly IReadOnlyDictionary<string, VitArchitecture> Architectures = new Dictionary<string, VitArchitecture>(StringComparer.Ordinal)
    {
        ["hybrid_stem"] = HybridStem.Architecture,
        ["hybrid_stem_w64"] = HybridStemW64.Architecture,
        ["hybrid_r1"] = HybridR1.Architecture,
        ["hybrid_r21"] = HybridR21.Architecture,
        ["hybrid_r111"] = HybridR111.Architecture,
    };

    public static string Directory => Path.Combine(AppContext.BaseDirectory, "fixtures", "hybrid");

    public static Fixture Read(string name) => Fixture.Read(name, Directory);

    public static IParityModel Load(Fixture fixture, VitOptions? options = null) => HybridModels.Load[fixture.Name](fixture.WeightsPath, options);

    public static TheoryData<string> AllNames()
    {
        var data = new TheoryData<string>();
        foreach (var name in Names) data.Add(name);
        return data;
    }

    public static TheoryData<string, int> NamesAndThreads()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in Names)
            foreach (int threads in new[] { 1, 2 }) data.Add(name, threads);
        return data;
    }
}

/// <summary>
/// Hybrid ViTs (a ResNetV2 trunk before the patch embedding) against the float64 PyTorch reference of
/// make_hybrid_fixtures.py, within the suite's bound (<see cref="ParityTests.Bound"/>).
/// </summary>
public sealed class HybridParityTests(ITestOutputHelper output)
{
    [Theory]
    [MemberData(nameof(HybridFixtures.NamesAndThreads), MemberType = typeof(HybridFixtures))]
    public void MatchesPyTorch(string name, int threads)
    {
        var fixture = HybridFixtures.Read(name);
        using var model = HybridFixtures.Load(fixture, new VitOptions { Threads = threads });
        var result = fixture.PoisonedOutput();
        model.Forward(fixture.Input, result, fixture.Batch);
        Numerics.AssertClose(result, fixture.Expected, ParityTests.Bound, out double error);
        output.WriteLine($"{name}, {threads} thread(s): relative L2 {error:E2}");
    }

    [Fact]
    public void BatchedImagesMatchSingleImagesBitForBit()
    {
        var fixture = HybridFixtures.Read("hybrid_r21");
        using var model = HybridFixtures.Load(fixture, new VitOptions { Threads = 2 });
        var batched = fixture.PoisonedOutput();
        model.Forward(fixture.Input, batched, fixture.Batch);
        int inputSize = fixture.Input.Length / fixture.Batch;
        for (int i = 0; i < fixture.Batch; i++)
        {
            var single = Enumerable.Repeat(float.NaN, fixture.OutputSize).ToArray();
            model.Forward(fixture.Input.AsSpan(i * inputSize, inputSize), single);
            Assert.Equal(single, batched.AsSpan(i * fixture.OutputSize, fixture.OutputSize).ToArray());
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 2)]
    public void SteadyStateForwardAllocatesNothing(int threads, int batch)
    {
        var fixture = HybridFixtures.Read("hybrid_r21");
        using var model = HybridFixtures.Load(fixture, new VitOptions { Threads = threads });
        int inputSize = fixture.Input.Length / fixture.Batch;
        var input = fixture.Input.AsSpan(0, batch * inputSize).ToArray();
        var result = new float[batch * fixture.OutputSize];
        Assert.Equal(0, Allocations.InSteadyState(() => model.Forward(input, result, batch)));
    }

    [Theory]
    [MemberData(nameof(HybridFixtures.AllNames), MemberType = typeof(HybridFixtures))]
    public void ArchitectureListsExactlyTheCheckpointsTensors(string name)
    {
        var architecture = HybridFixtures.Architectures[name];
        using var file = SafeTensorsFile.Open(Path.Combine(HybridFixtures.Directory, name + ".safetensors"));
        var stored = file.Tensors.ToDictionary(t => t.Name, t => t.Shape.Select(d => (int)d).ToArray());
        var listed = architecture.TimmTensors();
        Assert.Equal(stored.Keys.Order(StringComparer.Ordinal), listed.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (var (tensor, shape) in listed) Assert.Equal(stored[tensor], shape);
        Assert.Contains("hybridLayers:", architecture.ToAttribute(), StringComparison.Ordinal);
    }

    /// <summary>
    /// What <see cref="CheckpointArchitecture"/> infers from each fixture's weights is the attribute the fixture was
    /// made with (the compiled model's), once the two things weights cannot say are set: the heads, and which of the
    /// image sizes that give the same grid the fixture used (the inferred range must contain it).
    /// </summary>
    [Theory]
    [MemberData(nameof(HybridFixtures.AllNames), MemberType = typeof(HybridFixtures))]
    public void InferredArchitectureIsTheFixturesAttribute(string name)
    {
        var compiled = HybridFixtures.Architectures[name];
        var inferred = CheckpointArchitecture.Infer(Path.Combine(HybridFixtures.Directory, name + ".safetensors"));
        Assert.InRange(compiled.ImageSize, inferred.SmallestImageSize, inferred.ImageSize);
        Assert.Equal(compiled.ToAttribute(), inferred.ToAttribute().Replace("heads: 1,", $"heads: {compiled.Heads},", StringComparison.Ordinal)
            .Replace($"imageSize: {inferred.ImageSize},", $"imageSize: {compiled.ImageSize},", StringComparison.Ordinal));
        Assert.Equal(compiled.NumPatches, inferred.NumPatches);
        Assert.Equal(compiled.Tokens, inferred.Tokens);
    }

    [Fact]
    public void AnotherHybridsWeightsAreAWeightsErrorNamingTheTensor()
    {
        var other = Path.Combine(HybridFixtures.Directory, "hybrid_r1.safetensors");
        var error = Assert.Throws<VitWeightsException>(() => HybridStemW64.Load(other));
        Assert.Contains("patch_embed.backbone", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongSpanLengthsAreArgumentErrorsBeforeAnythingIsWritten()
    {
        var fixture = HybridFixtures.Read("hybrid_stem");
        using var model = HybridFixtures.Load(fixture);
        var output = fixture.PoisonedOutput();
        Assert.ThrowsAny<ArgumentException>(() => model.Forward(fixture.Input.AsSpan(1), output, fixture.Batch));
        Assert.ThrowsAny<ArgumentException>(() => model.Forward(fixture.Input, output.AsSpan(1), fixture.Batch));
        Assert.ThrowsAny<ArgumentException>(() => model.Forward(fixture.Input, output, fixture.Batch + 1));
        Assert.All(output, v => Assert.True(float.IsNaN(v)));
    }

    [Fact]
    public void LoadCudaThrowsNotSupportedBeforeTouchingTheFileOrDevice()
    {
        // A path that does not exist: a NotSupportedException (not a file or CUDA error) shows nothing was opened.
        var error = Assert.Throws<NotSupportedException>(() => HybridR21.LoadCuda(Path.Combine(HybridFixtures.Directory, "no-such-file.safetensors")));
        Assert.Contains("hybrid ResNetV2 stems", error.Message, StringComparison.Ordinal);
    }
}

/// <summary>The hybrid fixtures on every SIMD tier, forced in-process (weights packed under the forced tier).</summary>
[Collection(nameof(KernelSwitches))]
public sealed class HybridTierParityTests(ITestOutputHelper output)
{
    [Theory]
    [TierData(512, 0, 1, 2, 3)]
    [TierData(256, 0, 1, 2, 3)]
    [TierData(128, 0, 1, 2, 3)]
    public void MatchesPyTorchOnEveryTier(int bits, int index)
    {
        using var tier = Simd.Force(Tiers.Of(bits));
        var fixture = HybridFixtures.Read(HybridFixtures.Names[index]);
        using var model = HybridFixtures.Load(fixture, new VitOptions { Threads = 2 });
        var result = fixture.PoisonedOutput();
        model.Forward(fixture.Input, result, fixture.Batch);
        Numerics.AssertClose(result, fixture.Expected, ParityTests.Bound, out double error);
        output.WriteLine($"{fixture.Name} ({Tiers.Of(bits)}): relative L2 {error:E2}");
    }
}
