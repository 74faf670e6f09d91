using System.Text.Json;

namespace ViTGen.Cli.Batch;

/// <summary>
/// A JSON-lines results file (<c>classify --output FILE</c>): one record per image, exactly the lines of
/// <c>classify --json</c>, a result (<c>path</c>, <c>index</c>, <c>label</c>, <c>probability</c>, <c>top</c>) or an
/// error record (<c>path</c>, <c>error</c>). Each record is one write(2) of the whole line, and the file is synced to
/// disk after every batch: a killed process loses only the records it had not yet written, and at worst leaves a torn
/// last line, which <see cref="Open"/> with resume cuts off. A line counts as done only with its '\n'.
/// The file is held with an exclusive lock (flock) while open, so a second vitgen on the same file (two pods of one
/// shard) is refused instead of interleaving records.
/// </summary>
internal sealed class ResultsFile : IDisposable
{
    /// <summary>Longer lines are not records (a 1000-class <c>--top 1000</c> record is about 70 KB).</summary>
    public const int MaxRecordBytes = 1 << 20;

    private readonly FileStream _stream;
    private bool _dirty;

    private ResultsFile(FileStream stream, string path, Dictionary<string, long> done, long truncated)
    {
        _stream = stream;
        Path = path;
        Done = done;
        TruncatedBytes = truncated;
    }

    public string Path { get; }

    /// <summary>Why an existing results file is not written without resume.</summary>
    public static string ExistsMessage(string path) =>
        $"{path} exists; pass --resume to continue it (records already there are kept and skipped), or remove it";

    /// <summary>The paths that already have a record (result or error), with the line it is on.</summary>
    public IReadOnlyDictionary<string, long> Done { get; }

    /// <summary>How many bytes of a torn last line were cut off when the file was opened.</summary>
    public long TruncatedBytes { get; }

    /// <summary>
    /// Opens <paramref name="path"/> for appending records: a new file, or with <paramref name="resume"/> an existing
    /// one (created when missing) whose records are read into <see cref="Done"/> and whose torn last line, if any, is
    /// cut off. Throws <see cref="ResultsFileException"/>: the file exists without resume, is locked by another
    /// process, or has a line that is not a record before its last line.
    /// </summary>
    public static ResultsFile Open(string path, bool resume)
    {
        FileStream stream;
        try
        {
            // FileShare.None takes flock(LOCK_EX) on Unix: another vitgen on this file fails here.
            stream = new FileStream(path, resume ? FileMode.OpenOrCreate : FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
        }
        catch (IOException) when (!resume && File.Exists(path))
        {
            throw new ResultsFileException(ExistsMessage(path), usage: true);
        }
        catch (IOException e) when (File.Exists(path))
        {
            // The file is there but cannot be opened exclusively: another process has it (retrying later can succeed).
            throw new ResultsFileException($"cannot open {path}: {e.Message} (another vitgen running on the same --output?)", usage: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ResultsFileException($"cannot create {path}: {e.Message}", usage: true);
        }
        try
        {
            var (done, validLength) = resume ? Scan(stream, path) : ([], 0);
            long truncated = stream.Length - validLength;
            if (truncated > 0) stream.SetLength(validLength);
            stream.Seek(validLength, SeekOrigin.Begin);
            return new ResultsFile(stream, path, done, truncated);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads the records of an existing file: the paths done and the length of the file up to the end of its last
    /// complete record. What follows that must be one torn line (no '\n' inside, except as its last byte).
    /// </summary>
    private static (Dictionary<string, long> Done, long ValidLength) Scan(FileStream stream, string path)
    {
        var done = new Dictionary<string, long>(StringComparer.Ordinal);
        var reader = new LineReader(stream, MaxRecordBytes);
        long validLength = 0, number = 0, firstBad = 0;
        while (reader.Next(out var line, out bool tooLong))
        {
            number++;
            string? recordPath = tooLong || !reader.Terminated ? null : RecordPath(line);
            if (recordPath is null)
            {
                if (firstBad == 0) firstBad = number;
                continue;
            }
            if (firstBad != 0)
            {
                throw new ResultsFileException(
                    $"{path}:{firstBad}: not a vitgen result record, and records follow it; not resuming (only a torn last line, from a killed run, is repaired)", usage: true);
            }
            if (!done.TryAdd(recordPath, number))
                throw new ResultsFileException($"{path}:{number}: a second record for {recordPath} (the first is on line {done[recordPath]}); not resuming", usage: true);
            validLength = reader.Position;
        }
        if (firstBad != 0 && number > firstBad)
            throw new ResultsFileException($"{path}:{firstBad}-{number}: the last {number - firstBad + 1} lines are not vitgen result records; not resuming (only a torn last line, from a killed run, is repaired)", usage: true);
        return (done, validLength);
    }

    /// <summary>The <c>path</c> of a result or error record line; null when the line is not one.</summary>
    private static string? RecordPath(ReadOnlySpan<byte> line)
    {
        try
        {
            var reader = new Utf8JsonReader(line);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("path", out var recordPath) || recordPath.ValueKind != JsonValueKind.String)
                return null;
            bool isError = root.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.String;
            bool isResult = root.TryGetProperty("label", out var label) && label.ValueKind == JsonValueKind.String
                && root.TryGetProperty("top", out var top) && top.ValueKind == JsonValueKind.Array;
            return isError || isResult ? recordPath.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Appends one record (a JSON object without its newline) as a single write.</summary>
    public void Append(ReadOnlySpan<byte> json)
    {
        var line = new byte[json.Length + 1];
        json.CopyTo(line);
        line[^1] = (byte)'\n';
        _stream.Write(line);
        _dirty = true;
    }

    /// <summary>Syncs what was appended to disk (fsync), so that even a crash of the machine keeps it.</summary>
    public void Sync()
    {
        if (!_dirty) return;
        _stream.Flush(flushToDisk: true);
        _dirty = false;
    }

    public void Dispose()
    {
        try
        {
            Sync();
        }
        finally
        {
            _stream.Dispose();
        }
    }
}

/// <summary>Why a results file cannot be used; <see cref="Usage"/>: retrying the same command cannot help (exit code 2).</summary>
internal sealed class ResultsFileException(string message, bool usage) : Exception(message)
{
    public bool Usage { get; } = usage;
}
