using System.Runtime.CompilerServices;
using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Explain;

/// <summary>The explainability API's contract: constants, argument checks before any write, allocations, the GPU stubs.</summary>
public sealed class ExplainContractTests
{
    [Fact]
    public void ConstantsDescribeTheOutputs()
    {
        Assert.Equal(FixtureBasic.Depth * FixtureBasic.Heads * FixtureBasic.Tokens * FixtureBasic.Tokens, FixtureBasic.AttentionSize);
        Assert.Equal(2 * 4 * 65 * 65, FixtureBasic.AttentionSize);
        Assert.Equal(65 * 64, FixtureBasic.FeatureSize);
        Assert.Equal(64, FixtureBasic.PooledSize);
        Assert.Equal(FixtureDistilled.Tokens * FixtureDistilled.Dim, FixtureDistilled.FeatureSize);
        Assert.Equal(FixtureNoHead.Dim, FixtureNoHead.PooledSize);
    }

    public static TheoryData<string, string> WrongSpans() => new()
    {
        { "attention", "pixels" }, { "attention", "output" }, { "attention", "attention" }, { "attention", "batch" },
        { "features", "pixels" }, { "features", "features" }, { "features", "batch" },
        { "pooled", "pixels" }, { "pooled", "pooled" }, { "pooled", "batch" },
    };

    [Theory]
    [MemberData(nameof(WrongSpans))]
    public void WrongSpanLengthsThrowBeforeWriting(string method, string wrong)
    {
        var f = ExplainFixture.Read("basic");
        using var model = f.Parity.Load();
        int batch = wrong == "batch" ? 0 : f.Batch;
        int Short(string span) => wrong == span ? 1 : 0;
        var pixels = f.Parity.Input.AsSpan(Short("pixels"));
        var output = ExplainFixture.Poisoned(f.Parity.Expected.Length);
        var attention = ExplainFixture.Poisoned(f.Batch * f.AttentionSize);
        var features = ExplainFixture.Poisoned(f.Batch * f.FeatureSize);
        var pooled = ExplainFixture.Poisoned(f.Batch * f.Dim);
        var input = pixels.ToArray();
        var error = Assert.ThrowsAny<ArgumentException>(() =>
        {
            switch (method)
            {
                case "attention": model.ForwardAttention(input, output.AsSpan(Short("output")), attention.AsSpan(Short("attention")), batch); break;
                case "features": model.ForwardFeatures(input, features.AsSpan(Short("features")), batch); break;
                default: model.ForwardPooled(input, pooled.AsSpan(Short("pooled")), batch); break;
            }
        });
        Assert.Equal(wrong, error.ParamName);
        foreach (var span in new[] { output, attention, features, pooled }) Assert.All(span, v => Assert.True(float.IsNaN(v)));
    }

    [Fact]
    public void AttentionSpanTooLongThrows()
    {
        var f = ExplainFixture.Read("basic");
        using var model = f.Parity.Load();
        var attention = ExplainFixture.Poisoned(f.Batch * f.AttentionSize + 1);
        var output = f.Parity.PoisonedOutput();
        var error = Assert.Throws<ArgumentException>(() => model.ForwardAttention(f.Parity.Input, output, attention, f.Batch));
        Assert.Equal("attention", error.ParamName);
        Assert.All(attention, v => Assert.True(float.IsNaN(v)));
    }

    [Fact]
    public void DisposedModelThrows()
    {
        var f = ExplainFixture.Read("basic");
        var model = f.Parity.Load();
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.ForwardFeatures(f.Parity.Input, new float[f.Batch * f.FeatureSize], f.Batch));
        Assert.Throws<ObjectDisposedException>(() => model.ForwardPooled(f.Parity.Input, new float[f.Batch * f.Dim], f.Batch));
        Assert.Throws<ObjectDisposedException>(() =>
            model.ForwardAttention(f.Parity.Input, new float[f.Parity.Expected.Length], new float[f.Batch * f.AttentionSize], f.Batch));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 2)]
    public void SteadyStateAllocatesNothing(int threads, int batch)
    {
        var f = ExplainFixture.Read("basic");
        using var model = f.Parity.Load(new VitOptions { Threads = threads });
        var input = f.Parity.Input.AsSpan(0, batch * f.InputSize).ToArray();
        var output = new float[batch * f.Parity.OutputSize];
        var attention = new float[batch * f.AttentionSize];
        var features = new float[batch * f.FeatureSize];
        var pooled = new float[batch * f.Dim];
        void All()
        {
            model.ForwardAttention(input, output, attention, batch);
            model.ForwardFeatures(input, features, batch);
            model.ForwardPooled(input, pooled, batch);
        }
        Assert.Equal(0, Allocations.InSteadyState(All));
    }

    [Fact]
    public void CudaModelSaysToUseTheCpuModel()
    {
        // No GPU is needed: the members throw before touching the device.
        var model = (VitCudaModel)RuntimeHelpers.GetUninitializedObject(typeof(VitCudaModel));
        var a = Assert.Throws<NotSupportedException>(() => model.ForwardAttention(new float[1], new float[1], new float[1]));
        var b = Assert.Throws<NotSupportedException>(() => model.ForwardFeatures(new float[1], new float[1]));
        var c = Assert.Throws<NotSupportedException>(() => model.ForwardPooled(new float[1], new float[1]));
        Assert.Contains("ForwardAttention", a.Message);
        Assert.Contains("ForwardFeatures", b.Message);
        Assert.Contains("ForwardPooled", c.Message);
        Assert.All(new[] { a, b, c }, e => Assert.Contains("CPU model", e.Message));
    }
}
