using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ViTGen.Cli.Tests;

/// <summary>
/// <c>vitgen classify --input-list --output [--shard I/N] [--resume]</c> (issue #17, deliverable 5): shards partition the
/// list, a killed or torn run resumes without duplicates or gaps, and bad input is a clear error. Runs use one thread,
/// so every image's result is the same bits whatever batch it lands in and runs can be compared line for line.
/// </summary>
[Collection(nameof(Console))]
public sealed partial class BatchClassifyTests : IDisposable
{
    /// <summary>Copies of each bundled sample: 8 x 25 = 200 images, 13 batches of 16 with a partial one at the end.</summary>
    private const int Copies = 25;

    private readonly string _directory = Directory.CreateTempSubdirectory("vitgen-batch-tests").FullName;
    private readonly string _list;
    private readonly string[] _paths;

    public BatchClassifyTests()
    {
        var samples = Directory.GetFiles(Path.Combine(RepositoryRoot(), "samples", "fashion-mnist", "samples"), "*.png").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(8, samples.Length);
        Directory.CreateDirectory(Path.Combine(_directory, "images"));
        var paths = new List<string>();
        for (int copy = 0; copy < Copies; copy++)
        {
            foreach (var sample in samples)
            {
                string path = $"images/{copy:D2}-{Path.GetFileName(sample)}";
                File.Copy(sample, Path.Combine(_directory, path));
                paths.Add(path);
            }
        }
        _paths = [.. paths];
        _list = WriteList("list.txt", _paths);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    internal static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "ViTGen.sln"))) return directory.FullName;
        }
        throw new InvalidOperationException("ViTGen.sln not found above " + AppContext.BaseDirectory);
    }

    private string WriteList(string name, IEnumerable<string> lines)
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    private string Output(string name) => Path.Combine(_directory, name);

    private static CliRunner.Result Classify(params string[] args) => CliRunner.Run(["classify", "--threads", "1", .. args]);

    /// <summary>The full, unsharded run every other run is compared with.</summary>
    private string[] Reference()
    {
        string output = Output("reference.jsonl");
        var result = Classify("--input-list", _list, "--output", output);
        Assert.Equal(0, result.ExitCode);
        return File.ReadAllLines(output);
    }

    private static string PathOf(string line) => JsonDocument.Parse(line).RootElement.GetProperty("path").GetString()!;

    /// <summary>The shard of a path by the documented rule, computed here independently of the CLI's code.</summary>
    private static int DocumentedShard(string path, int count) =>
        (int)(BinaryPrimitives.ReadUInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes(path))) % (ulong)count);

    [Fact]
    public void OutputLinesAreExactlyTheLinesOfClassifyJson()
    {
        var absolute = _paths.Select(p => Path.Combine(_directory, p)).ToArray();
        string list = WriteList("absolute.txt", absolute);
        string output = Output("absolute.jsonl");

        var batch = Classify("--input-list", list, "--output", output);
        var json = Classify(["--json", .. absolute]);

        Assert.Equal(0, batch.ExitCode);
        Assert.Equal(0, json.ExitCode);
        Assert.Equal(json.OutLines, File.ReadAllLines(output));
        Assert.Equal("", batch.Out);
        Assert.Equal(absolute.Length, File.ReadAllLines(output).Length);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    public void TheShardsTogetherAreOneUnshardedRun(int count)
    {
        var reference = Reference();
        Assert.Equal(_paths, reference.Select(PathOf));
        var union = new List<string>();
        for (int index = 0; index < count; index++)
        {
            string output = Output($"shard-{index}.jsonl");
            var result = Classify("--input-list", _list, "--output", output, "--shard", $"{index}/{count}");
            Assert.Equal(0, result.ExitCode);
            var lines = File.ReadAllLines(output);
            Assert.NotEmpty(lines);
            // Each shard holds exactly the paths the documented rule gives it, in list order.
            Assert.Equal(_paths.Where(p => DocumentedShard(p, count) == index), lines.Select(PathOf));
            union.AddRange(lines);
        }
        // Same lines, each once: the union is the unsharded run.
        Assert.Equal(reference.Order(StringComparer.Ordinal), union.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AShardDoesNotDependOnTheListsOrderOrOtherLines()
    {
        Assert.Equal(0, Classify("--input-list", _list, "--output", Output("before.jsonl"), "--shard", "1/3").ExitCode);

        // The same list shuffled, with other images added and some lines repeated: shard 1/3 keeps its paths.
        var extra = Enumerable.Range(0, 40).Select(i => $"images/extra-{i:D2}.png").ToArray();
        foreach (var path in extra) File.Copy(Path.Combine(_directory, _paths[0]), Path.Combine(_directory, path));
        var shuffled = _paths.Concat(extra).Concat(_paths.Take(30)).OrderBy(p => SHA256.HashData(Encoding.UTF8.GetBytes("x" + p))[0]).ToArray();
        string list = WriteList("shuffled.txt", shuffled);
        var result = Classify("--input-list", list, "--output", Output("after.jsonl"), "--shard", "1/3");
        Assert.Equal(0, result.ExitCode);

        var before = File.ReadAllLines(Output("before.jsonl"));
        var after = File.ReadAllLines(Output("after.jsonl"));
        Assert.Equal(after.Length, after.Distinct().Count());
        Assert.Equal(before.Order(StringComparer.Ordinal), after.Where(l => !PathOf(l).Contains("extra")).Order(StringComparer.Ordinal));
        Assert.Equal(extra.Where(p => DocumentedShard(p, 3) == 1), after.Select(PathOf).Where(p => p.Contains("extra")).Order(StringComparer.Ordinal));
        Assert.Contains("repeated", result.Error);
    }

    /// <summary>Where a killed run can have stopped writing: offsets into the reference output.</summary>
    public static TheoryData<string> Cuts => ["0", "line 1 + 0", "line 40 - 1", "line 40 + 1", "line 40 + 100", "line 199 + 5", "end - 1", "end", "crash"];

    [Theory]
    [MemberData(nameof(Cuts))]
    public void AResumedRunCutsATornLineAndFillsTheGapExactly(string cut)
    {
        var reference = File.ReadAllBytes(WriteReference());
        var lineEnds = reference.Select((b, i) => (b, i)).Where(x => x.b == '\n').Select(x => x.i + 1).ToArray();
        int offset = cut switch
        {
            "0" => 0,
            "end" => reference.Length,
            "end - 1" => reference.Length - 1, // the last record without its newline: not done
            "crash" => 0,
            _ => ParseCut(cut, lineEnds),
        };
        string output = Output("resumed.jsonl");
        File.WriteAllBytes(output, reference[..offset]);
        bool torn = offset > 0 && reference[offset - 1] != '\n';
        if (cut == "crash")
        {
            // What a machine crash can leave after the last synced record: a block of zeros, longer than the one
            // record left to write (so writing over it would not hide it).
            File.WriteAllBytes(output, [.. reference[..lineEnds[^2]], .. new byte[4096]]);
            torn = true;
        }

        var result = Classify("--input-list", _list, "--output", output, "--resume");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(torn, result.Error.Contains("torn"));
        // Records before the cut are kept, the torn one is redone, the rest appended in list order: the whole file is
        // byte for byte the uninterrupted run (no duplicate, no gap).
        Assert.Equal(reference, File.ReadAllBytes(output));
    }

    private string WriteReference()
    {
        Reference();
        return Output("reference.jsonl");
    }

    private static int ParseCut(string cut, int[] lineEnds)
    {
        // "line K + B": B bytes into the record after the first K; "line K - 1": the K-th record without its newline.
        var parts = cut.Split(' ');
        int k = int.Parse(parts[1]);
        int b = int.Parse(parts[3]);
        return parts[2] == "+" ? lineEnds[k - 1] + b : lineEnds[k - 1] - b;
    }

    [Fact]
    public void AResumedRunSkipsWhatIsDoneWithoutReadingIt()
    {
        string output = Output("partial.jsonl");
        var reference = Reference();
        File.WriteAllLines(output, reference.Take(100));
        // Images already done are not opened again: delete them and the resumed run still completes cleanly.
        foreach (var line in reference.Take(100)) File.Delete(Path.Combine(_directory, PathOf(line)));

        var result = Classify("--input-list", _list, "--output", output, "--resume");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(reference, File.ReadAllLines(output));
        Assert.Contains("100 already done, 100 classified, 0 unreadable", result.Error);
    }

    [Fact]
    public void AKilledProcessResumesWithoutDuplicatesOrGaps()
    {
        // A named pipe in the list blocks the child when it opens it (in its third batch of 16), after it has written
        // and synced the first two batches: the kill lands mid-run every time, with no timing involved.
        var reference = File.ReadAllBytes(WriteReference());
        long twoBatches = reference.Select((b, i) => (b, i)).Where(x => x.b == '\n').Skip(31).First().i + 1;
        string fifo = _paths[40];
        File.Delete(Path.Combine(_directory, fifo));
        Assert.Equal(0, MakeFifo(Path.Combine(_directory, fifo), Convert.ToUInt32("600", 8)));
        string output = Output("killed.jsonl");
        string vitgen = Path.Combine(AppContext.BaseDirectory, "vitgen.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            ArgumentList = { vitgen, "classify", "--threads", "1", "--input-list", _list, "--output", output },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using (var child = Process.Start(start)!)
        {
            try
            {
                // The child holds the file locked, so only its size is watched (stat takes no lock). Not a timed
                // assertion: a generous bound so that a broken child fails the test instead of hanging it.
                var deadline = DateTime.UtcNow.AddMinutes(2);
                while (Size(output) < twoBatches && !child.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(20);
                if (child.HasExited) Assert.Fail("the child exited before it was killed: " + child.StandardError.ReadToEnd());
                Assert.Equal(twoBatches, Size(output));
            }
            finally
            {
                child.Kill(entireProcessTree: true);
                child.WaitForExit();
            }
        }
        Assert.Equal(reference[..(int)twoBatches], File.ReadAllBytes(output));

        // The pipe becomes the image it stood for; the run resumes where the kill stopped it.
        File.Delete(Path.Combine(_directory, fifo));
        File.Copy(Path.Combine(_directory, _paths[32]), Path.Combine(_directory, fifo));
        File.Delete(Output("reference.jsonl"));
        reference = File.ReadAllBytes(WriteReference());
        var result = Classify("--input-list", _list, "--output", output, "--resume");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("32 already done, 168 classified", result.Error);
        Assert.Equal(reference, File.ReadAllBytes(output));
    }

    private static long Size(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int MakeFifo(string path, uint mode);

    [Theory]
    [InlineData("")]
    [InlineData("1")]
    [InlineData("a/b")]
    [InlineData("1/2/3")]
    [InlineData("-1/4")]
    [InlineData("+1/4")]
    [InlineData(" 1/4")]
    [InlineData("1/ 4")]
    [InlineData("1.0/4")]
    [InlineData("4/4")]
    [InlineData("5/4")]
    [InlineData("0/0")]
    [InlineData("99999999999/4")]
    [InlineData("$(JOB_COMPLETION_INDEX)/4")]
    public void BadShardSpecsAreUsageErrors(string shard)
    {
        string output = Output("bad.jsonl");
        var result = Classify("--input-list", _list, "--output", output, "--shard", shard);
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("error: --shard", result.Error);
        Assert.False(File.Exists(output));
        if (shard.StartsWith('$')) Assert.Contains("JOB_COMPLETION_INDEX only in Jobs with completionMode: Indexed", result.Error);
    }

    [Fact]
    public void UsageErrorsNameTheMissingOption()
    {
        string output = Output("out.jsonl");
        Assert.Contains("--shard needs --input-list", Expect(2, Classify("--output", output, "--shard", "0/2")));
        Assert.Contains("--shard needs --input-list", Expect(2, Classify("--input-list", _list, "--shard", "0/2")));
        Assert.Contains("--resume needs --output", Expect(2, Classify("--input-list", _list, "--resume")));
        Assert.Contains("not both", Expect(2, Classify("--input-list", _list, "--output", output, Path.Combine(_directory, _paths[0]))));
        Assert.False(File.Exists(output));
    }

    private static string Expect(int code, CliRunner.Result result)
    {
        Assert.Equal(code, result.ExitCode);
        return result.Error;
    }

    [Fact]
    public void AnExistingOutputIsRefusedWithoutResume()
    {
        string output = Output("existing.jsonl");
        File.WriteAllText(output, "precious\n");
        var error = Expect(2, Classify("--input-list", _list, "--output", output));
        Assert.Contains("exists; pass --resume", error);
        Assert.Equal("precious\n", File.ReadAllText(output));
    }

    [Fact]
    public void AnOutputHeldByAnotherRunIsRefused()
    {
        string output = Output("held.jsonl");
        File.WriteAllText(output, "");
        // What a second pod of the same shard would meet: the first one holding the file.
        using (ViTGen.Cli.Batch.ResultsFile.Open(output, resume: true))
        {
            var error = Expect(1, Classify("--input-list", _list, "--output", output, "--resume"));
            Assert.Contains("another vitgen", error);
        }
        Assert.Equal("", File.ReadAllText(output));
    }

    [Fact]
    public void ResultsThatCannotBeAKilledRunsAreRefused()
    {
        var reference = Reference();
        string output = Output("corrupt.jsonl");
        void Check(string[] lines, string expected)
        {
            File.WriteAllText(output, string.Join("\n", lines) + "\n");
            var before = File.ReadAllBytes(output);
            var error = Expect(2, Classify("--input-list", _list, "--output", output, "--resume"));
            Assert.Contains(expected, error);
            Assert.Equal(before, File.ReadAllBytes(output)); // refused before anything was cut or appended
        }
        // A bad line with records after it (not a torn last line).
        Check([reference[0], "{\"path\": \"images/x.png\"", reference[1]], "corrupt.jsonl:2: not a vitgen result record");
        // Two bad lines at the end.
        Check([reference[0], "garbage", "garbage"], "corrupt.jsonl:2-3");
        // A JSON line that is no record (no label/top and no error).
        Check([reference[0], "{\"path\": \"images/x.png\"}", reference[1]], "corrupt.jsonl:2:");
        // The same path twice.
        Check([reference[0], reference[1], reference[0]], "a second record for images/00-0000-ankle-boot.png (the first is on line 1)");
        // A path of another shard: the wrong --output for this shard.
        int otherShard = DocumentedShard(PathOf(reference[0]), 2) ^ 1;
        File.WriteAllText(output, reference[0] + "\n");
        var error = Expect(2, Classify("--input-list", _list, "--output", output, "--resume", "--shard", $"{otherShard}/2"));
        Assert.Contains($"corrupt.jsonl:1: {PathOf(reference[0])} is not in shard {otherShard}/2 of {_list}", error);
    }

    [Fact]
    public void UnreadableImagesGetErrorRecordsAndTheRunCompletes()
    {
        File.WriteAllBytes(Path.Combine(_directory, "broken.png"), [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        File.WriteAllText(Path.Combine(_directory, "text.png"), "not an image");
        Directory.CreateDirectory(Path.Combine(_directory, "a-directory.png"));
        string[] bad = ["broken.png", "missing.png", "text.png", "a-directory.png", "images/../images/missing-too.png"];
        string list = WriteList("mixed.txt", [_paths[0], .. bad, _paths[1]]);
        string output = Output("mixed.jsonl");

        var result = Classify("--input-list", list, "--output", output);

        // The shard is complete (every image has a record): exit 0, so a batch scheduler does not retry it.
        Assert.Equal(0, result.ExitCode);
        var records = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal([_paths[0], .. bad, _paths[1]], records.Select(r => r.GetProperty("path").GetString()));
        foreach (var record in records)
        {
            bool isBad = bad.Contains(record.GetProperty("path").GetString());
            Assert.Equal(isBad, record.TryGetProperty("error", out var error));
            if (isBad)
            {
                Assert.Equal(["path", "error"], record.EnumerateObject().Select(p => p.Name));
                Assert.False(string.IsNullOrWhiteSpace(error.GetString()));
                Assert.Contains($"{record.GetProperty("path").GetString()}: error: ", result.Error);
            }
            else Assert.Equal(CommandTests.LabelOfSampleName(Path.GetFileName(record.GetProperty("path").GetString()!)[3..]), record.GetProperty("label").GetString());
        }
        Assert.Contains("2 classified, 5 unreadable", result.Error);

        // Error records are done: a resumed run does not retry them (nor duplicate them).
        var again = Classify("--input-list", list, "--output", output, "--resume");
        Assert.Equal(0, again.ExitCode);
        Assert.Equal(7, File.ReadAllLines(output).Length);

        // Printed instead of written: classify's usual exit code 1 for "some files failed".
        var printed = Classify("--json", "--input-list", list);
        Assert.Equal(1, printed.ExitCode);
        Assert.Equal(File.ReadAllLines(output), printed.OutLines);
    }

    [Theory]
    [InlineData("")]
    [InlineData("# nothing yet\n\n   \n")]
    public void AnEmptyListIsAnEmptyCompleteRun(string text)
    {
        File.WriteAllText(Path.Combine(_directory, "empty.txt"), text);
        string output = Output("empty.jsonl");
        var result = Classify("--input-list", Path.Combine(_directory, "empty.txt"), "--output", output, "--shard", "2/3");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("lists no images", result.Error);
        Assert.Equal(0, new FileInfo(output).Length);
        // Not the bundled samples (what classify with no images runs).
        var printed = Classify("--json", "--input-list", Path.Combine(_directory, "empty.txt"));
        Assert.Equal(0, printed.ExitCode);
        Assert.Equal("", printed.Out);
    }

    [Fact]
    public void ListsHaveCommentsBlankLinesCrlfAndABom()
    {
        string list = Path.Combine(_directory, "windows.txt");
        File.Copy(Path.Combine(_directory, _paths[0]), Path.Combine(_directory, "with space.png"));
        string text = "# images to classify\r\n\r\n" + _paths[0] + "\r\n  # indented comment\r\n\t\r\nwith space.png\r\n" + _paths[1];
        File.WriteAllBytes(list, [.. Encoding.UTF8.GetPreamble(), .. Encoding.UTF8.GetBytes(text)]);
        string output = Output("windows.jsonl");

        var result = Classify("--input-list", list, "--output", output);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal([_paths[0], "with space.png", _paths[1]], File.ReadAllLines(output).Select(PathOf));
        Assert.DoesNotContain("error", string.Join("\n", File.ReadAllLines(output)));
    }

    [Fact]
    public void ListsThatCannotBeReadAreUsageErrors()
    {
        string output = Output("never.jsonl");
        string Fails(string list)
        {
            var error = Expect(2, Classify("--input-list", list, "--output", output));
            Assert.StartsWith($"error: cannot read --input-list {list}: ", error);
            Assert.False(File.Exists(output));
            return error;
        }
        Fails(Path.Combine(_directory, "no-such-list.txt"));
        Fails(_directory);
        string binary = Path.Combine(_directory, "binary.txt");
        File.WriteAllBytes(binary, [.. "images/a.png\n"u8, 0x89, (byte)'P', 0, 0, (byte)'\n']);
        Assert.Contains("binary.txt:2: NUL byte", Fails(binary));
        string latin1 = Path.Combine(_directory, "latin1.txt");
        File.WriteAllBytes(latin1, [.. "a.png\nb.png\ncaf"u8, 0xE9, .. ".png\n"u8]);
        Assert.Contains("latin1.txt:3: not valid UTF-8", Fails(latin1));
        string longLine = Path.Combine(_directory, "long.txt");
        File.WriteAllText(longLine, "a.png\n" + new string('x', 10_000_000));
        Assert.Contains("long.txt:2: line longer than 4096 bytes", Fails(longLine));
    }
}
