using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using ViTGen.Cli.Commands;

namespace ViTGen.Cli.Tests;

/// <summary>The bundled weights' private, verified extraction (issue #20, item 2).</summary>
public sealed class BundledWeightsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("vitgen-weights-tests").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static byte[] Embedded()
    {
        using var stream = BundledModel.Open("model.safetensors");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }

    [Fact]
    public void ExtractsTheEmbeddedBytesUnderTheContentHash()
    {
        string path = BundledModel.ExtractWeights(_directory);
        Assert.Equal(Path.Combine(_directory, BundledModel.WeightsFileName), path);
        Assert.Equal(Embedded(), File.ReadAllBytes(path));
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(Embedded()))[..16], BundledModel.WeightsFileName);
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));
        Assert.Equal(path, BundledModel.ExtractWeights(_directory)); // verified, reused
    }

    [Fact]
    public void APlantedFileIsReplacedNotUsed()
    {
        string path = Path.Combine(_directory, BundledModel.WeightsFileName);
        var planted = Embedded();
        planted[^1] ^= 0x55; // same length, one byte off: only the hash tells
        File.WriteAllBytes(path, planted);
        Assert.False(BundledModel.IsVerified(path));

        Assert.Equal(path, BundledModel.ExtractWeights(_directory));
        Assert.Equal(Embedded(), File.ReadAllBytes(path));
    }

    [Fact]
    public void APlantedSymlinkIsReplacedAndItsTargetUntouched()
    {
        string path = Path.Combine(_directory, BundledModel.WeightsFileName);
        // Even a link to the right bytes is not trusted: its target can change under us.
        string target = Path.Combine(_directory, "victim.safetensors");
        File.WriteAllBytes(target, Embedded());
        File.CreateSymbolicLink(path, target);
        Assert.False(BundledModel.IsVerified(path));

        Assert.Equal(path, BundledModel.ExtractWeights(_directory));
        Assert.Null(new FileInfo(path).LinkTarget);
        Assert.Equal(Embedded(), File.ReadAllBytes(path));
        Assert.Equal(Embedded(), File.ReadAllBytes(target)); // written through? no: the link was replaced
    }

    [Fact]
    public void ASymlinkToAnAttackersFileIsNotWrittenThrough()
    {
        string path = Path.Combine(_directory, BundledModel.WeightsFileName);
        string target = Path.Combine(_directory, "attacker.bin");
        File.WriteAllBytes(target, [1, 2, 3]);
        File.CreateSymbolicLink(path, target);

        BundledModel.ExtractWeights(_directory);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(target));
        Assert.Null(new FileInfo(path).LinkTarget);
    }

    [Fact]
    public void ADirectoryLinkOrOpenDirectoryIsNotPrivate()
    {
        if (OperatingSystem.IsWindows()) return;
        string real = Path.Combine(_directory, "real");
        Directory.CreateDirectory(real);
        string link = Path.Combine(_directory, "link");
        Directory.CreateSymbolicLink(link, real);
        Assert.False(BundledModel.TryMakePrivate(link));

        string open = Path.Combine(_directory, "open");
        Directory.CreateDirectory(open);
        File.SetUnixFileMode(open, (UnixFileMode)0x1FF); // 0777: ours, so tightened to 0700
        Assert.True(BundledModel.TryMakePrivate(open));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(open));
    }

    [Fact]
    public void TheDefaultDirectoryIsPrivateAndNotTheSharedTemp()
    {
        string directory = BundledModel.PrivateCacheDirectory();
        Assert.NotEqual(Path.GetFullPath(Path.GetTempPath()).TrimEnd('/'), Path.GetFullPath(directory).TrimEnd('/'));
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
    }
}

/// <summary>model.json validation (issue #20, item 4) and the exit-code contract (items 5, 6).</summary>
[Collection(nameof(Console))]
public sealed class ModelJsonAndExitCodeTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("vitgen-cli-hardening").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static JsonObject BundledJson()
    {
        using var stream = BundledModel.Open("model.json");
        return JsonNode.Parse(stream)!.AsObject();
    }

    /// <summary>The bundled model.json with <paramref name="path"/> (e.g. "timm.depth") set to <paramref name="value"/>
    /// (JSON text; null removes it), written to a model directory.</summary>
    private string ModelWith(string path, string? value)
    {
        var root = BundledJson();
        var parts = path.Split('.');
        JsonObject parent = parts.Length == 2 ? root[parts[0]]!.AsObject() : root;
        if (value is null) parent.Remove(parts[^1]);
        else parent[parts[^1]] = JsonNode.Parse(value);
        string directory = Path.Combine(_directory, "model-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "model.json"), root.ToJsonString());
        return directory;
    }

    [Theory]
    [InlineData("timm.img_size", "\"28\"")]
    [InlineData("timm.img_size", "0")]
    [InlineData("timm.img_size", null)]
    [InlineData("timm.patch_size", "5")]
    [InlineData("timm.patch_size", "4.5")]
    [InlineData("timm.in_chans", "2")]
    [InlineData("timm.in_chans", "0")]
    [InlineData("timm.num_classes", "0")]
    [InlineData("timm.embed_dim", "-64")]
    [InlineData("timm.embed_dim", null)]
    [InlineData("timm.depth", "0")]
    [InlineData("timm.num_heads", "3")]
    [InlineData("timm.mlp_ratio", "-2")]
    [InlineData("timm.mlp_ratio", "\"2\"")]
    [InlineData("timm.qkv_bias", "1")]
    [InlineData("timm.class_token", "\"yes\"")]
    [InlineData("timm.global_pool", "\"map\"")]
    [InlineData("timm.act_layer", "\"swish\"")]
    [InlineData("timm.activation", "\"silu\"")]
    [InlineData("timm.norm_eps", "0")]
    [InlineData("timm.norm_eps", "\"1e-6\"")]
    [InlineData("timm.dynamic_img_size", "true")]
    [InlineData("mean", "[0.1, 0.2, 0.3]")]
    [InlineData("mean", "[\"a\"]")]
    [InlineData("mean", "0.5")]
    [InlineData("std", "[0]")]
    [InlineData("std", "[-0.3]")]
    [InlineData("std", "[]")]
    [InlineData("crop_pct", "0")]
    [InlineData("crop_pct", "1.5")]
    [InlineData("crop_pct", "-0.875")]
    [InlineData("crop_pct", "\"0.9\"")]
    [InlineData("interpolation", "\"cubic\"")]
    [InlineData("interpolation", "\"random\"")]
    [InlineData("interpolation", "3")]
    [InlineData("labels", "[\"a\", \"b\"]")]
    [InlineData("labels", "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")]
    [InlineData("labels", "\"Ankle boot\"")]
    public void ABadFieldIsOneErrorLineNamingItWithExitCode2(string field, string? value)
    {
        string model = ModelWith(field, value);
        foreach (var command in new[] { "classify", "features", "attention" })
        {
            var result = CliRunner.Run([command, "--model", model, .. OutArgs(command)]);
            Assert.Equal(2, result.ExitCode);
            Assert.Equal("", result.Out);
            var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("error: " + Path.Combine(model, "model.json") + ": " + field + ":", line);
            Assert.DoesNotContain(" at ", line.Replace(" at timm", "", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("{")]
    [InlineData("[1, 2]")]
    [InlineData("{\"timm\": 3}")]
    [InlineData("{\"labels\": []}")]
    [InlineData("")]
    public void AMalformedModelJsonIsOneErrorLine(string text)
    {
        File.WriteAllText(Path.Combine(_directory, "model.json"), text);
        var result = CliRunner.Run("classify", "--model", _directory);
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: " + Path.Combine(_directory, "model.json") + ": ", line);
    }

    [Theory]
    [InlineData("act_layer", "\"gelu_tanh\"", "activation: VitActivation.GeluTanh")]
    [InlineData("norm_eps", "1e-5", "normEps: 1e-5f")]
    [InlineData("qkv_bias", "false", "qkvBias: false")]
    public void ArchitectureArgumentsAreHonouredNotIgnored(string key, string value, string expected)
    {
        // The bundled weights do not fit such a model: no compiled match, and the attribute to compile says why.
        var result = CliRunner.Run("classify", "--model", ModelWith("timm." + key, value));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(expected, result.Error);
    }

    [Fact]
    public void TheBundledModelJsonWithExplicitDefaultsStillMatches()
    {
        string model = ModelWith("timm.act_layer", "\"gelu\"");
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "model.json")))!.AsObject();
        root["timm"]!["norm_eps"] = 1e-6;
        root["timm"]!["drop_path_rate"] = 0.1; // training-only: ignored
        File.WriteAllText(Path.Combine(model, "model.json"), root.ToJsonString());
        File.Copy(BundledModel.ExtractWeights(), Path.Combine(model, "model.safetensors"));
        var result = CliRunner.Run("classify", "--model", model);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(8, result.OutLines.Length);
    }

    private string Sample(string name = "0000-ankle-boot.png")
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, BundledModel.Samples().Single(s => s.Name == "samples/" + name).Data);
        return path;
    }

    private string[] OutArgs(string command) => command == "attention" ? ["--out", Path.Combine(_directory, "out")] : [];

    [Theory]
    [InlineData("classify")]
    [InlineData("features")]
    [InlineData("attention")]
    public void ExitCode0WhenEveryFileIsRead(string command)
    {
        var result = CliRunner.Run([command, Sample(), Sample("0002-trouser.png"), .. OutArgs(command)]);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.Error);
        Assert.Equal(2, result.OutLines.Length);
    }

    [Theory]
    [InlineData("classify")]
    [InlineData("features")]
    [InlineData("attention")]
    public void ExitCode1WhenSomeFileFailsWithOneErrorLineEach(string command)
    {
        string missing = Path.Combine(_directory, "missing.png");
        string broken = Path.Combine(_directory, "broken.jpg");
        File.WriteAllBytes(broken, [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 1, 2]);
        var result = CliRunner.Run([command, missing, Sample(), broken, .. OutArgs(command)]);
        Assert.Equal(1, result.ExitCode);
        var errors = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, errors.Length);
        Assert.StartsWith(missing + ": error: ", errors[0]);
        Assert.StartsWith(broken + ": error: ", errors[1]);
        Assert.Single(result.OutLines); // the good one
    }

    [Fact]
    public void ExitCode1WhenEveryFileFails()
    {
        var result = CliRunner.Run("classify", Path.Combine(_directory, "missing.png"));
        Assert.Equal(1, result.ExitCode);
        Assert.Equal("", result.Out);
    }

    [Theory]
    [InlineData("classify")]
    [InlineData("features")]
    public void JsonFailuresArePathErrorObjects(string command)
    {
        string missing = Path.Combine(_directory, "missing.png");
        var result = CliRunner.Run(command, "--json", missing, Sample());
        Assert.Equal(1, result.ExitCode);
        var objects = result.OutLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        if (command == "classify")
        {
            // classify --json puts the failure on stdout as {"path":..,"error":..} in input order
            Assert.Equal(2, objects.Count);
            Assert.Equal(missing, objects[0].GetProperty("path").GetString());
            Assert.Contains("missing.png", objects[0].GetProperty("error").GetString());
            Assert.Equal(2, objects[0].EnumerateObject().Count());
        }
        else
        {
            Assert.StartsWith(missing + ": error: ", result.Error);
            Assert.Single(objects);
        }
    }

    [Theory]
    [InlineData("classify", "--threads", "0")]
    [InlineData("features", "--threads", "0")]
    [InlineData("attention", "--threads", "0")]
    [InlineData("classify", "--max-pixels", "0")]
    [InlineData("features", "--max-pixels", "-5")]
    [InlineData("attention", "--max-pixels", "0")]
    [InlineData("classify", "--max-pixels", "lots")]
    [InlineData("classify", "--top", "0")]
    [InlineData("classify", "--no-such-option", "1")]
    [InlineData("attention", "--layer", "99")]
    public void ExitCode2ForUsageErrors(string command, string option, string value)
    {
        var result = CliRunner.Run([command, option, value, Sample(), .. OutArgs(command)]);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("", result.Out);
        Assert.NotEqual("", result.Error);
    }

    [Theory]
    [InlineData("classify")]
    [InlineData("features")]
    [InlineData("attention")]
    public void ExitCode2ForModelErrors(string command)
    {
        // No such directory; a directory without model.safetensors; a model.safetensors that is not one.
        var noDirectory = CliRunner.Run([command, "--model", Path.Combine(_directory, "nope"), Sample(), .. OutArgs(command)]);
        Assert.Equal(2, noDirectory.ExitCode);
        Assert.StartsWith("error: ", noDirectory.Error);

        string model = ModelWith("crop_pct", "1.0");
        var noWeights = CliRunner.Run([command, "--model", model, Sample(), .. OutArgs(command)]);
        Assert.Equal(2, noWeights.ExitCode);
        Assert.Contains("model.safetensors", noWeights.Error);

        File.WriteAllBytes(Path.Combine(model, "model.safetensors"), [8, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}']);
        var badWeights = CliRunner.Run([command, "--model", model, Sample(), .. OutArgs(command)]);
        Assert.Equal(2, badWeights.ExitCode);
        Assert.StartsWith("error: ", badWeights.Error);
        Assert.Equal("", badWeights.Out);
    }

    [Theory]
    [InlineData("classify")]
    [InlineData("features")]
    [InlineData("attention")]
    public void MaxPixelsRefusesLargerImagesPerFile(string command)
    {
        string sample = Sample();
        var result = CliRunner.Run([command, "--max-pixels", "100", sample, .. OutArgs(command)]);
        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith(sample + ": error: ", line);
        Assert.Contains("28x28", line);
        Assert.Contains("784 pixels", line);
        Assert.Contains("limit of 100 pixels", line); // the runtime's header-time check with the --max-pixels value

        // The limit is inclusive: exactly 28 x 28 is allowed.
        Assert.Equal(0, CliRunner.Run([command, "--max-pixels", "784", sample, .. OutArgs(command)]).ExitCode);
    }

    [Fact]
    public void MaxPixelsAppliesToTheBundledSamplesToo()
    {
        var result = CliRunner.Run("classify", "--json", "--max-pixels", "783");
        Assert.Equal(1, result.ExitCode);
        Assert.All(result.OutLines, l => Assert.Contains("exceed the limit of 783 pixels", JsonDocument.Parse(l).RootElement.GetProperty("error").GetString()));
    }

    [Fact]
    public void MaxPixelsDefaultsToPilsLimit()
    {
        Assert.Equal(178_956_970, ModelCommand.DefaultMaxPixels);
        var help = CliRunner.Run("classify", "--help");
        Assert.Contains("--max-pixels", help.Out);
        Assert.Contains("178,956,970", help.Out);
    }
}

[Collection(nameof(Console))]
public sealed class UsageTests
{
    [Theory]
    [InlineData("frobnicate")]
    [InlineData("classify", "--top")]
    [InlineData("bench", "--iterations", "many")]
    public void ParseErrorsExit2WithErrorLines(params string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("", result.Out);
        Assert.StartsWith("error: ", result.Error);
    }

    [Fact]
    public void HelpExits0() => Assert.Equal(0, CliRunner.Run("--help").ExitCode);
}
