using System.Globalization;
using Microsoft.CodeAnalysis;
using Xunit;

namespace ViTGen.Generator.Tests;

/// <summary>
/// Hybrid ViTs (<c>hybridLayers</c>, <c>hybridWidth</c>): what the generator accepts and emits, and one test per
/// diagnostic (VITG0018..VITG0022) with its location and message.
/// </summary>
public class HybridTests
{
    private const string Small = "patch: 1, dim: 64, depth: 1, heads: 2, imageSize: 72, classes: 10";

    private static GeneratorRun RunModel(string arguments)
        => GeneratorHarness.Run($$"""
            using ViTGen;

            namespace Models;

            [VitModel({{arguments}})]
            public partial class Model { }
            """);

    private static void AssertSingleError(GeneratorRun run, string id, string locatedText, params string[] messageParts)
    {
        var diagnostic = Assert.Single(run.GeneratorDiagnostics);
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        var tree = run.Input.SyntaxTrees.Single(t => t.FilePath == diagnostic.Location.GetLineSpan().Path);
        Assert.Equal(locatedText, tree.GetText().ToString(diagnostic.Location.SourceSpan));
        string message = diagnostic.GetMessage(CultureInfo.InvariantCulture);
        foreach (var part in messageParts) Assert.Contains(part, message, StringComparison.Ordinal);
        Assert.Empty(run.Result.GeneratedSources);
    }

    private static string ModelFile(GeneratorRun run)
    {
        Assert.Empty(run.GeneratorDiagnostics);
        var diagnostics = run.OutputDiagnostics();
        Assert.True(diagnostics.IsEmpty, GeneratorHarness.Format(diagnostics));
        return run.Sources.Single(s => GeneratorHarness.IsModelFile(s.Key)).Value;
    }

    [Fact]
    public void NullLayersIsAPlainViTAndAnEmptyArrayIsTheStemOnly()
    {
        string plain = ModelFile(RunModel(Small + ", hybridLayers: null"));
        Assert.DoesNotContain("Convolution", plain, StringComparison.Ordinal);
        Assert.Contains("public const int NumPatches = 5184;", plain, StringComparison.Ordinal); // 72 x 72 patches of 1 pixel

        string stem = ModelFile(RunModel(Small + ", hybridLayers: new int[0]"));
        Assert.Contains("patch_embed.backbone.conv", stem, StringComparison.Ordinal);        // a stem-only trunk is the stem itself
        Assert.DoesNotContain("patch_embed.backbone.stem.", stem, StringComparison.Ordinal);
        Assert.Contains("public const int NumPatches = 324;", stem, StringComparison.Ordinal);  // 72 -> 36 -> 18
        Assert.Contains("HybridLayers = new int[] {  }", stem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("new[] { 1 }", 324)]          // stage 0 keeps 18
    [InlineData("new[] { 1, 1 }", 81)]        // 18 -> 9
    [InlineData("new[] { 1, 1, 1 }", 25)]     // 9 -> 5: 'same' padding rounds up
    [InlineData("new[] { 1, 1, 1, 1 }", 9)]   // 5 -> 3
    public void TheTokenGridFollowsTheTrunksRoundedUpSizes(string layers, int patches)
    {
        string source = ModelFile(RunModel(Small + ", hybridLayers: " + layers + ", hybridWidth: 32"));
        Assert.Contains($"public const int NumPatches = {patches};", source, StringComparison.Ordinal);
        Assert.Contains("patch_embed.backbone.stem.conv", source, StringComparison.Ordinal);
        Assert.Contains("patch_embed.backbone.stages.0.blocks.0.downsample.conv", source, StringComparison.Ordinal);
    }

    [Fact]
    public void R50CompilesWithEveryBlockWrittenOut()
    {
        string source = ModelFile(RunModel("patch: 1, dim: 768, depth: 12, heads: 12, hybridLayers: new[] { 3, 4, 9 }"));
        Assert.Contains("public const int NumPatches = 196;", source, StringComparison.Ordinal);   // vit_base_r50_s16_224: 14 x 14
        Assert.Contains("patch_embed.backbone.stages.2.blocks.8.norm3", source, StringComparison.Ordinal);
        Assert.DoesNotContain("patch_embed.backbone.stages.2.blocks.9", source, StringComparison.Ordinal);
        Assert.DoesNotContain("stages.1.blocks.1.downsample", source, StringComparison.Ordinal); // only each stage's first block projects
    }

    [Fact]
    public void Vitg0018_TooManyStages()
        => AssertSingleError(RunModel(Small + ", hybridLayers: new[] { 1, 1, 1, 1, 1 }"), "VITG0018",
            "hybridLayers: new[] { 1, 1, 1, 1, 1 }", "'hybridLayers' has 5 stages", "at most 4");

    [Theory]
    [InlineData("new[] { 2, 0 }", "stage 1 0 bottleneck")]
    [InlineData("new[] { -1 }", "stage 0 -1 bottleneck")]
    public void Vitg0019_StageWithoutBottlenecks(string layers, string message)
        => AssertSingleError(RunModel(Small + ", hybridLayers: " + layers), "VITG0019", "hybridLayers: " + layers, message);

    [Theory]
    [InlineData(48)]
    [InlineData(16)]
    [InlineData(0)]
    [InlineData(-32)]
    public void Vitg0020_WidthNotAMultipleOf32(int width)
        => AssertSingleError(RunModel(Small + $", hybridLayers: new[] {{ 1 }}, hybridWidth: {width}"), "VITG0020",
            $"hybridWidth: {width}", $"'hybridWidth' is {width}", "multiple of 32");

    [Fact]
    public void Vitg0021_FeatureMapNotAMultipleOfPatch()
        => AssertSingleError(RunModel("patch: 2, dim: 64, depth: 1, heads: 2, imageSize: 72, classes: 10, hybridLayers: new[] { 1, 1, 1 }"),
            "VITG0021", "patch: 2", "72 -> 36 -> 18 -> 18 -> 9 -> 5", "5x5 feature map", "'patch' (2)");

    [Fact]
    public void Vitg0021_ReplacesTheImageRuleForHybrids()
    {
        // 50 is not a multiple of 4 (VITG0006 for a plain ViT), but the trunk maps 50 -> 25 -> 13 -> 13 -> 7 -> 4.
        ModelFile(RunModel("patch: 4, dim: 64, depth: 1, heads: 2, imageSize: 50, classes: 10, hybridLayers: new[] { 1, 1, 1 }, hybridWidth: 32"));
    }

    [Fact]
    public void Vitg0022_WidthWithoutLayers()
        => AssertSingleError(RunModel(Small + ", hybridWidth: 32"), "VITG0022", "hybridWidth: 32", "'hybridLayers' is null");

    [Fact]
    public void Vitg0012_AnOversizedTrunkIsTooLarge()
        => AssertSingleError(RunModel(Small + ", hybridLayers: new[] { 1, 1, 1, 1 }, hybridWidth: 1048576"), "VITG0012",
            "hybridWidth: 1048576", "reduce 'hybridWidth'");

    [Fact]
    public void TheCudaPlanOfAHybridOnlyThrows()
    {
        var run = RunModel(Small + ", hybridLayers: new int[0]");
        ModelFile(run);
        string plan = run.AllSources.Single(s => s.Key.EndsWith(".CudaPlan.g.cs", StringComparison.Ordinal)).Value;
        Assert.Contains("throw new global::System.NotSupportedException(", plan, StringComparison.Ordinal);
        Assert.DoesNotContain("struct CudaPlan", plan, StringComparison.Ordinal);
    }
}
