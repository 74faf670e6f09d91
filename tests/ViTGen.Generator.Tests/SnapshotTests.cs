using Xunit;

namespace ViTGen.Generator.Tests;

/// <summary>
/// The generated sources of representative models (the CPU model file and the CUDA plan), compared with reviewed
/// snapshots in <c>Snapshots/</c>, one file per hint name. Each also compiles cleanly, so a snapshot never records
/// code that does not build.
/// </summary>
public class SnapshotTests
{
    private static void Verify(string declaration, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        var run = GeneratorHarness.Run($$"""
            using ViTGen;

            namespace Zoo;

            {{declaration}}
            """);
        Assert.Empty(run.GeneratorDiagnostics);
        var diagnostics = run.OutputDiagnostics();
        Assert.True(diagnostics.IsEmpty, GeneratorHarness.Format(diagnostics));
        var sources = run.AllSources;
        Assert.Equal(2, sources.Count); // the model file and its CUDA plan
        // Every file is compared (and a received file written for each that differs) before the test fails.
        var failures = new List<string>();
        foreach (var (hintName, text) in sources.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            try
            {
                SnapshotVerifier.Verify(text, target: hintName[..^".cs".Length], method: method);
            }
            catch (Xunit.Sdk.XunitException e)
            {
                failures.Add(e.Message);
            }
        }
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine + Environment.NewLine, failures));
    }

    [Fact]
    public void VitB16()
        => Verify(
            "[VitModel(patch: 16, dim: 768, depth: 12, heads: 12)] public partial class VitB16;");

    [Fact]
    public void TinyGray()
        => Verify(
            "[VitModel(patch: 7, dim: 64, depth: 2, heads: 2, imageSize: 28, channels: 1, classes: 10, qkvBias: false)] public partial class TinyGray;");

    [Fact]
    public void Dinov2Like()
        => Verify(
            "[VitModel(patch: 14, dim: 384, depth: 12, heads: 6, imageSize: 518, classes: 0, layerScale: true, registers: 4, noEmbedClass: true)] public partial class Dinov2Small;");

    [Fact]
    public void DistilledDeit()
        => Verify(
            "[VitModel(patch: 16, dim: 192, depth: 12, heads: 3, distilled: true)] public partial class DeitTinyDistilled;");

    [Fact]
    public void ClipLike()
        => Verify(
            "[VitModel(patch: 32, dim: 768, depth: 12, heads: 12, classes: 512, preNorm: true, activation: VitActivation.QuickGelu, normEps: 1e-5f, pooling: VitPooling.Avg)] public partial class ClipB32;");

    [Fact]
    public void HybridR26()
        => Verify(
            "[VitModel(patch: 1, dim: 384, depth: 12, heads: 6, hybridLayers: new[] { 2, 2, 2, 2 })] public partial class VitSmallR26S32;");
}

/// <summary>The snapshot helper itself, on a scratch directory.</summary>
public sealed class SnapshotVerifierTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vitgen-snapshots-" + Guid.NewGuid().ToString("N"));
    private string SourceFile => Path.Combine(_directory, "Fake.cs");
    private string Verified => Path.Combine(_directory, "Snapshots", "Fake.Case.verified.cs");
    private string Received => Path.Combine(_directory, "Snapshots", "Fake.Case.received.cs");

    public SnapshotVerifierTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void MissingVerifiedFileWritesReceivedAndFails()
    {
        var error = Assert.ThrowsAny<Exception>(() => SnapshotVerifier.Verify("class A { }\n", sourceFile: SourceFile, method: "Case"));
        Assert.Contains("No verified snapshot", error.Message, StringComparison.Ordinal);
        Assert.Equal("class A { }\n", File.ReadAllText(Received));
        Assert.False(File.Exists(Verified));
    }

    [Fact]
    public void MismatchWritesReceivedAndNamesTheFirstDifference()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Verified)!);
        File.WriteAllText(Verified, "line 1\nline 2\nline 3\n");
        var error = Assert.ThrowsAny<Exception>(() => SnapshotVerifier.Verify("line 1\nline two\nline 3\n", sourceFile: SourceFile, method: "Case"));
        Assert.Contains("line 2:", error.Message, StringComparison.Ordinal);
        Assert.Contains("- line 2", error.Message, StringComparison.Ordinal);
        Assert.Contains("+ line two", error.Message, StringComparison.Ordinal);
        Assert.Contains("diff -u", error.Message, StringComparison.Ordinal);
        Assert.Equal("line 1\nline two\nline 3\n", File.ReadAllText(Received));
    }

    [Fact]
    public void MatchIgnoresLineEndingsAndRemovesAStaleReceivedFile()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Verified)!);
        File.WriteAllText(Verified, "line 1\r\nline 2\r\n");
        File.WriteAllText(Received, "stale");
        SnapshotVerifier.Verify("line 1\nline 2\n", sourceFile: SourceFile, method: "Case");
        Assert.False(File.Exists(Received));
    }

    [Fact]
    public void TargetNamesTheFileAfterAHashLikeVerifySourceGenerators()
    {
        var error = Assert.ThrowsAny<Exception>(() => SnapshotVerifier.Verify("class A { }\n", target: "Zoo.A.g", sourceFile: SourceFile, method: "Case"));
        Assert.Contains("Fake.Case#Zoo.A.g", error.Message, StringComparison.Ordinal);
        Assert.Equal("class A { }\n", File.ReadAllText(Path.Combine(_directory, "Snapshots", "Fake.Case#Zoo.A.g.received.cs")));
    }
}
