using System.Text.Json;
using ViTGen.Tests.Imaging;

namespace ViTGen.Cli.Tests;

/// <summary>
/// The runtime's hostile-image corpus (bombs by header, truncations, CRC errors, absurd dimensions, wrong magic, for
/// PNG, JPEG and PGM/PPM) through <c>vitgen classify</c>, mixed with a good image: each hostile file gets its own error
/// line, the good one its label, the exit code is 1, and the managed memory the run allocates stays bounded.
/// </summary>
[Collection(nameof(Console))]
public sealed class HostileCorpusTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("vitgen-hostile").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Every_hostile_file_gets_an_error_line_and_the_good_one_a_label()
    {
        var cases = HostileImages.All().ToList();
        var paths = new List<string>();
        for (int i = 0; i < cases.Count; i++)
        {
            string path = Path.Combine(_directory, $"{i:D3}.img");
            File.WriteAllBytes(path, cases[i].Data);
            paths.Add(path);
        }
        string good = Path.Combine(_directory, "good.pgm");
        File.WriteAllBytes(good, [.. "P5\n28 28\n255\n"u8, .. Enumerable.Range(0, 28 * 28).Select(i => (byte)(i % 28 > 8 && i % 28 < 20 ? 200 : 0))]);

        long before = GC.GetTotalAllocatedBytes(precise: true);
        var result = CliRunner.Run(["classify", "--json", .. paths, good]);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(1, result.ExitCode);
        var lines = result.OutLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(cases.Count + 1, lines.Count);
        for (int i = 0; i < cases.Count; i++)
        {
            var line = Assert.Single(lines, l => l.GetProperty("path").GetString() == paths[i]);
            Assert.True(line.TryGetProperty("error", out var error), $"{cases[i].Name}: no error line");
            Assert.Contains(cases[i].MessageContains, error.GetString(), StringComparison.Ordinal);
        }
        Assert.True(Assert.Single(lines, l => l.GetProperty("path").GetString() == good).TryGetProperty("label", out _));
        // Every bomb is refused from its header: the whole run (model load included) stays far below one bomb's pixels.
        output.WriteLine($"{cases.Count} hostile files + 1 good: {allocated / 1e6:F1} MB allocated by the whole run");
        Assert.True(allocated < 64L << 20, $"the run allocated {allocated / (1 << 20)} MB");
    }
}
