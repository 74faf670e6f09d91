using System.Reflection;
using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Explain;

/// <summary>
/// A parity fixture's explainability reference (<c>NAME.explain.safetensors</c>, float64, written by
/// tests/fixtures/make_explain_fixtures.py) with the compiled model's shapes.
/// </summary>
internal sealed class ExplainFixture
{
    private ExplainFixture(Fixture parity, double[] attention, int attentionImages, double[] features, double[] pooled, double[] rollout, double[] distance,
        int depth, int heads, int tokens, int dim, int prefixTokens, int gridSize, int patchSize)
    {
        Parity = parity;
        Attention = attention;
        AttentionImages = attentionImages;
        Features = features;
        Pooled = pooled;
        Rollout = rollout;
        Distance = distance;
        Depth = depth;
        Heads = heads;
        Tokens = tokens;
        Dim = dim;
        PrefixTokens = prefixTokens;
        GridSize = gridSize;
        PatchSize = patchSize;
    }

    public Fixture Parity { get; }
    public double[] Attention { get; }

    /// <summary>Images whose attention the reference stores (large fixtures may keep only the first).</summary>
    public int AttentionImages { get; }
    public double[] Features { get; }
    public double[] Pooled { get; }
    public double[] Rollout { get; }
    public double[] Distance { get; }
    public int Depth { get; }
    public int Heads { get; }
    public int Tokens { get; }
    public int Dim { get; }
    public int PrefixTokens { get; }
    public int GridSize { get; }
    public int PatchSize { get; }

    public int Batch => Parity.Batch;
    public int InputSize => Parity.Input.Length / Batch;
    public int AttentionSize => Depth * Heads * Tokens * Tokens;
    public int FeatureSize => Tokens * Dim;

    public static ExplainFixture Read(string name)
    {
        var parity = Fixture.Read(name);
        using var file = SafeTensorsFile.Open(Path.Combine(Fixture.Directory, name + ".explain.safetensors"));
        double[] Read(string tensor, out long[] shape)
        {
            var info = file.GetTensor(tensor);
            shape = info.Shape.Select(d => (long)d).ToArray();
            var values = new double[info.ElementCount];
            file.ReadFloat64(tensor, values);
            return values;
        }
        var attention = Read("attention", out var attentionShape);
        var features = Read("features", out var featureShape);
        var pooled = Read("pooled", out _);
        var rollout = Read("rollout", out _);
        var distance = Read("distance", out _);

        // The compiled model's own constants: the reference's shapes are checked against them, not trusted.
        using var model = parity.Load();
        var type = model.GetType();
        int Constant(string constant) => (int)type.GetField(constant, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!;
        var fixture = new ExplainFixture(parity, attention, (int)attentionShape[0], features, pooled, rollout, distance,
            Constant("Depth"), Constant("Heads"), Constant("Tokens"), Constant("Dim"), Constant("PrefixTokens"),
            Constant("ImageSize") / Constant("PatchSize"), Constant("PatchSize"));
        Assert.Equal(new long[] { fixture.AttentionImages, fixture.Depth, fixture.Heads, fixture.Tokens, fixture.Tokens }, attentionShape);
        Assert.InRange(fixture.AttentionImages, 1, fixture.Batch);
        Assert.Equal(new long[] { fixture.Batch, fixture.Tokens, fixture.Dim }, featureShape);
        Assert.Equal(fixture.Batch * fixture.Dim, pooled.Length);
        Assert.Equal(fixture.Batch * fixture.Tokens * fixture.Tokens, rollout.Length);
        Assert.Equal(fixture.Depth * fixture.Heads, distance.Length);
        Assert.Equal(AttentionSizeOf(type), fixture.AttentionSize);
        return fixture;
    }

    private static int AttentionSizeOf(Type type) => (int)type.GetField("AttentionSize")!.GetValue(null)!;

    public static float[] Poisoned(int length) => Enumerable.Repeat(float.NaN, length).ToArray();
}
