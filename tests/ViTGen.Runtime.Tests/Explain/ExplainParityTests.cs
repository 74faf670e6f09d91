using ViTGen.Tests.Parity;
using Xunit.Abstractions;

namespace ViTGen.Tests.Explain;

/// <summary>
/// ForwardAttention, ForwardFeatures, ForwardPooled and <see cref="VitAttention"/> against the float64 PyTorch
/// reference of every parity fixture (tests/fixtures/make_explain_fixtures.py, independent code). Bound: relative
/// L2 1e-5 for every quantity; float32 arithmetic lands near 1e-7. Outputs are NaN-poisoned before each call.
/// </summary>
public sealed class ExplainParityTests(ITestOutputHelper output)
{
    public const double Bound = 1e-5;

    public static TheoryData<string, int> FixturesAndThreads() => ParityTests.FixturesAndThreads();

    [Theory]
    [MemberData(nameof(FixturesAndThreads))]
    public void AttentionMatchesPyTorchAndOutputMatchesForward(string name, int threads)
    {
        var f = ExplainFixture.Read(name);
        using var model = f.Parity.Load(new VitOptions { Threads = threads });
        var forward = f.Parity.PoisonedOutput();
        model.Forward(f.Parity.Input, forward, f.Batch);
        var logits = f.Parity.PoisonedOutput();
        var attention = ExplainFixture.Poisoned(f.Batch * f.AttentionSize);
        model.ForwardAttention(f.Parity.Input, logits, attention, f.Batch);

        // The output is Forward's, bit for bit: the same kernels in the same order.
        Assert.Equal(forward, logits);
        int stored = f.AttentionImages * f.AttentionSize;
        Numerics.AssertClose(attention.AsSpan(0, stored), f.Attention, Bound, out double attentionError);
        Assert.All(attention, v => Assert.False(float.IsNaN(v)));

        var rollout = ExplainFixture.Poisoned(f.Batch * f.Tokens * f.Tokens);
        int map = f.Tokens * f.Tokens;
        for (int image = 0; image < f.Batch; image++)
            VitAttention.Rollout(attention.AsSpan(image * f.AttentionSize, f.AttentionSize), f.Depth, f.Heads, f.Tokens, rollout.AsSpan(image * map, map));
        Numerics.AssertClose(rollout, f.Rollout, Bound, out double rolloutError);

        var distance = ExplainFixture.Poisoned(f.Depth * f.Heads);
        VitAttention.MeanDistance(attention, f.Batch, f.Depth, f.Heads, f.Tokens, f.PrefixTokens, f.GridSize, f.PatchSize, distance);
        Numerics.AssertClose(distance, f.Distance, Bound, out double distanceError);
        output.WriteLine($"EXPLAIN {name} threads={threads} attention {attentionError:E2} rollout {rolloutError:E2} distance {distanceError:E2}");
    }

    [Theory]
    [MemberData(nameof(FixturesAndThreads))]
    public void FeaturesAndPooledMatchPyTorch(string name, int threads)
    {
        var f = ExplainFixture.Read(name);
        using var model = f.Parity.Load(new VitOptions { Threads = threads });
        var features = ExplainFixture.Poisoned(f.Batch * f.FeatureSize);
        model.ForwardFeatures(f.Parity.Input, features, f.Batch);
        Numerics.AssertClose(features, f.Features, Bound, out double featureError);

        var pooled = ExplainFixture.Poisoned(f.Batch * f.Dim);
        model.ForwardPooled(f.Parity.Input, pooled, f.Batch);
        Numerics.AssertClose(pooled, f.Pooled, Bound, out double pooledError);
        output.WriteLine($"EXPLAIN {name} threads={threads} features {featureError:E2} pooled {pooledError:E2}");
    }

    [Theory]
    [InlineData("basic")]
    [InlineData("distilled")]
    [InlineData("combo_avg_reg")]
    public void BatchEqualsImagesOneByOne(string name)
    {
        var f = ExplainFixture.Read(name);
        using var model = f.Parity.Load(new VitOptions { Threads = 2 });
        var attention = ExplainFixture.Poisoned(f.Batch * f.AttentionSize);
        var logits = f.Parity.PoisonedOutput();
        var features = ExplainFixture.Poisoned(f.Batch * f.FeatureSize);
        var pooled = ExplainFixture.Poisoned(f.Batch * f.Dim);
        model.ForwardAttention(f.Parity.Input, logits, attention, f.Batch);
        model.ForwardFeatures(f.Parity.Input, features, f.Batch);
        model.ForwardPooled(f.Parity.Input, pooled, f.Batch);
        for (int i = 0; i < f.Batch; i++)
        {
            var image = f.Parity.Input.AsSpan(i * f.InputSize, f.InputSize);
            var oneAttention = new float[f.AttentionSize];
            var oneLogits = new float[f.Parity.OutputSize];
            var oneFeatures = new float[f.FeatureSize];
            var onePooled = new float[f.Dim];
            model.ForwardAttention(image, oneLogits, oneAttention);
            model.ForwardFeatures(image, oneFeatures);
            model.ForwardPooled(image, onePooled);
            Assert.Equal(oneAttention, attention.AsSpan(i * f.AttentionSize, f.AttentionSize).ToArray());
            Assert.Equal(oneLogits, logits.AsSpan(i * f.Parity.OutputSize, f.Parity.OutputSize).ToArray());
            Assert.Equal(oneFeatures, features.AsSpan(i * f.FeatureSize, f.FeatureSize).ToArray());
            Assert.Equal(onePooled, pooled.AsSpan(i * f.Dim, f.Dim).ToArray());
        }
    }
}
