using System.Reflection;
using ViTGen.Tests.Parity;
using Xunit.Abstractions;

namespace ViTGen.Tests.Explain;

/// <summary>
/// ForwardAttention, ForwardFeatures and ForwardPooled of hybrid ViTs against the float64 references of
/// tests/fixtures/make_hybrid_fixtures.py (<c>NAME.explain.safetensors</c>: make_explain_fixtures.py's capture forward
/// on the trunk's feature map, checked against timm's model), within the suite's parity bound
/// (<see cref="ParityTests.Bound"/>). Outputs are NaN-poisoned before each call. Measured: attention 4.1e-7 (r21) and
/// 3.7e-7 (r111), pooled 1.1e-7 and 1.4e-7, features 1.1e-6 for both: the patch tokens carry the trunk's float32
/// rounding (PyTorch's own float32 forward lands at 1.14e-6 and 1.08e-6 on the same features; the class token at 2e-7).
/// </summary>
public sealed class HybridExplainTests(ITestOutputHelper output)
{
    public static TheoryData<string, int> FixturesAndThreads() => new()
    {
        { "hybrid_r21", 1 }, { "hybrid_r21", 2 }, { "hybrid_r111", 1 }, { "hybrid_r111", 2 },
    };

    /// <summary>A reference tensor, its shape checked against the one the compiled model's own constants give.</summary>
    private static double[] Reference(string name, string tensor, long[] shape)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(HybridFixtures.Directory, name + ".explain.safetensors"));
        var info = file.GetTensor(tensor);
        Assert.Equal(shape, info.Shape.ToArray());
        var values = new double[info.ElementCount];
        file.ReadFloat64(tensor, values);
        return values;
    }

    private static int Constant(IParityModel model, string name)
        => Convert.ToInt32(model.GetType().GetField(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!);

    [Theory]
    [MemberData(nameof(FixturesAndThreads))]
    public void AttentionMatchesPyTorchAndOutputMatchesForward(string name, int threads)
    {
        var fixture = HybridFixtures.Read(name);
        using var model = HybridFixtures.Load(fixture, new VitOptions { Threads = threads });
        int depth = Constant(model, "Depth"), heads = Constant(model, "Heads"), tokens = Constant(model, "Tokens");
        var expected = Reference(name, "attention", [fixture.Batch, depth, heads, tokens, tokens]);

        var forward = fixture.PoisonedOutput();
        model.Forward(fixture.Input, forward, fixture.Batch);
        var logits = fixture.PoisonedOutput();
        var attention = ExplainFixture.Poisoned(expected.Length);
        model.ForwardAttention(fixture.Input, logits, attention, fixture.Batch);

        Assert.Equal(forward, logits); // the same kernels in the same order
        Numerics.AssertClose(attention, expected, ParityTests.Bound, out double error);
        output.WriteLine($"{name}, {threads} thread(s): attention relative L2 {error:E2}");
    }

    [Theory]
    [MemberData(nameof(FixturesAndThreads))]
    public void FeaturesAndPooledMatchPyTorch(string name, int threads)
    {
        var fixture = HybridFixtures.Read(name);
        using var model = HybridFixtures.Load(fixture, new VitOptions { Threads = threads });
        int tokens = Constant(model, "Tokens"), dim = Constant(model, "Dim");
        var expectedFeatures = Reference(name, "features", [fixture.Batch, tokens, dim]);
        var expectedPooled = Reference(name, "pooled", [fixture.Batch, dim]);

        var features = ExplainFixture.Poisoned(expectedFeatures.Length);
        model.ForwardFeatures(fixture.Input, features, fixture.Batch);
        Numerics.AssertClose(features, expectedFeatures, ParityTests.Bound, out double featureError);

        var pooled = ExplainFixture.Poisoned(expectedPooled.Length);
        model.ForwardPooled(fixture.Input, pooled, fixture.Batch);
        Numerics.AssertClose(pooled, expectedPooled, ParityTests.Bound, out double pooledError);
        output.WriteLine($"{name}, {threads} thread(s): features relative L2 {featureError:E2}, pooled {pooledError:E2}");
    }

    /// <summary>
    /// The position embedding's similarity map lies on the feature map's grid (3 x 3 for r111's 33 pixels through a
    /// stride-16 trunk, 9 x 9 for r21's 72 through stride 8), checked against cosines computed here in double from
    /// the stored <c>pos_embed</c> rows after the class token.
    /// </summary>
    [Theory]
    [InlineData("hybrid_r111", 3)]
    [InlineData("hybrid_r21", 9)]
    public void PositionSimilarityLiesOnTheFeatureMapsGrid(string name, int grid)
    {
        string path = Path.Combine(HybridFixtures.Directory, name + ".safetensors");
        float[] similarity = VitPositionEmbedding.Similarity(path, out int side);
        Assert.Equal(grid, side);
        using var file = SafeTensorsFile.Open(path);
        var pos = new float[file.GetTensor("pos_embed").ElementCount];
        file.ReadFloat32("pos_embed", pos);
        int dim = pos.Length / (1 + grid * grid), patches = grid * grid;
        Assert.Equal(patches * patches, similarity.Length);
        for (int p = 0; p < patches; p++)
        {
            for (int q = 0; q < patches; q++)
            {
                double dot = 0, pp = 0, qq = 0;
                for (int i = 0; i < dim; i++)
                {
                    double a = pos[(1 + p) * dim + i], b = pos[(1 + q) * dim + i];
                    dot += a * b;
                    pp += a * a;
                    qq += b * b;
                }
                Assert.Equal(dot / Math.Sqrt(pp * qq), similarity[p * patches + q], 1e-6);
            }
        }
    }
}
