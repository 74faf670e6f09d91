using System.Reflection;
using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Weights;

/// <summary>
/// The weight manifest (src/Runtime/Weights/WeightManifest.cs), the one list of tensors both generated loaders and
/// the checkpoint inference use, against files PyTorch wrote: every parity fixture holds exactly the tensors its
/// compiled model's <c>Architecture.TimmTensors()</c> lists, with the same shapes.
/// </summary>
public class ManifestTests
{
    public static TheoryData<string> Fixtures() => new(Fixture.Names);

    /// <summary>The compiled model of a fixture: <c>wide_patch</c> is <c>FixtureWidePatch</c> (ParityModels.cs).</summary>
    private static VitArchitecture ArchitectureOf(string fixture)
    {
        string typeName = "Fixture" + string.Concat(fixture.Split('_').Select(part => char.ToUpperInvariant(part[0]) + part[1..]));
        var type = typeof(IParityModel).Assembly.GetType("ViTGen.Tests.Parity." + typeName)
            ?? throw new InvalidOperationException($"No compiled model {typeName} for fixture '{fixture}'.");
        return (VitArchitecture)type.GetProperty("Architecture", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
    }

    private static string Describe(string name, IEnumerable<long> shape) => $"{name} [{string.Join(", ", shape)}]";

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Lists_exactly_the_tensors_of_the_PyTorch_fixture(string fixture)
    {
        using var file = SafeTensorsFile.Open(Fixture.Read(fixture).WeightsPath);
        var stored = file.Tensors.Select(t => Describe(t.Name, t.Shape)).Order(StringComparer.Ordinal).ToList();
        var listed = ArchitectureOf(fixture).TimmTensors().Select(t => Describe(t.Name, t.Shape.Select(d => (long)d))).ToList();

        Assert.Equal(listed.Count, listed.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(stored, listed.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Lists_tensors_in_load_order_with_blocks_in_index_order()
    {
        var names = FixtureLayerscale.Architecture.TimmTensors().Select(t => t.Name).ToList();
        Assert.Equal("patch_embed.proj.weight", names[0]);
        Assert.Equal(["blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
            "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias", "blocks.0.ls1.gamma"], names.SkipWhile(n => !n.StartsWith("blocks.", StringComparison.Ordinal)).Take(7));
        Assert.True(names.IndexOf("blocks.1.norm1.weight") > names.IndexOf("blocks.0.ls2.gamma"));
        Assert.Equal(["norm.weight", "norm.bias", "head.weight", "head.bias"], names.TakeLast(4));
    }

    [Fact]
    public void Generated_architecture_matches_the_attribute()
    {
        var a = FixtureComboClip.Architecture;
        Assert.Equal("[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 5, activation: VitActivation.QuickGelu, normEps: 1e-5f, preNorm: true)]",
            a.ToAttribute());
        Assert.Equal(FixtureComboClip.Tokens, a.Tokens);
        Assert.Equal(FixtureComboClip.InputSize, a.InputSize);
        Assert.Equal(FixtureComboClip.OutputSize, a.OutputSize);
    }
}
