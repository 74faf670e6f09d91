using Xunit;

namespace ViTGen.Generator.Tests;

/// <summary>
/// The generated source of representative models, compared with reviewed snapshots in <c>Snapshots/</c>.
/// Each also compiles cleanly, so a snapshot never records code that does not build.
/// </summary>
public class SnapshotTests
{
    private static string Generate(string declaration)
    {
        var run = GeneratorHarness.Run($$"""
            using ViTGen;

            namespace Zoo;

            {{declaration}}
            """);
        Assert.Empty(run.GeneratorDiagnostics);
        var diagnostics = run.OutputDiagnostics();
        Assert.True(diagnostics.IsEmpty, GeneratorHarness.Format(diagnostics));
        return Assert.Single(run.Sources.Values);
    }

    [Fact]
    public void VitB16()
        => SnapshotVerifier.Verify(Generate("[VitModel(patch: 16, dim: 768, depth: 12, heads: 12)] public partial class VitB16;"));

    [Fact]
    public void TinyGray()
        => SnapshotVerifier.Verify(Generate(
            "[VitModel(patch: 7, dim: 64, depth: 2, heads: 2, imageSize: 28, channels: 1, classes: 10, qkvBias: false)] public partial class TinyGray;"));

    [Fact]
    public void Dinov2Like()
        => SnapshotVerifier.Verify(Generate(
            "[VitModel(patch: 14, dim: 384, depth: 12, heads: 6, imageSize: 518, classes: 0, layerScale: true, registers: 4, noEmbedClass: true)] public partial class Dinov2Small;"));

    [Fact]
    public void DistilledDeit()
        => SnapshotVerifier.Verify(Generate(
            "[VitModel(patch: 16, dim: 192, depth: 12, heads: 3, distilled: true)] public partial class DeitTinyDistilled;"));

    [Fact]
    public void ClipLike()
        => SnapshotVerifier.Verify(Generate(
            "[VitModel(patch: 32, dim: 768, depth: 12, heads: 12, classes: 512, preNorm: true, activation: VitActivation.QuickGelu, normEps: 1e-5f, pooling: VitPooling.Avg)] public partial class ClipB32;"));
}
