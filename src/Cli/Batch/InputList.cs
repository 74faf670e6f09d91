using System.Text;

namespace ViTGen.Cli.Batch;

/// <summary>
/// An input list (<c>--input-list FILE</c>): UTF-8 text, one image path per line. Blank lines and lines whose first
/// non-blank character is <c>#</c> are skipped; every other line is a path, taken as written (no trimming; a trailing
/// CR of a CRLF file is dropped). Relative paths are relative to the list's directory, so a list and its images can be
/// mounted anywhere; results name each image as the line writes it. A path listed more than once is read once.
/// </summary>
internal sealed class InputList
{
    /// <summary>Linux's PATH_MAX: a longer line cannot be a path (and is not read into memory whole).</summary>
    public const int MaxLineBytes = 4096;

    /// <summary>The paths of the requested shard, in list order, without repeats.</summary>
    public required IReadOnlyList<string> Paths { get; init; }

    /// <summary>The directory relative paths are resolved against.</summary>
    public required string Directory { get; init; }

    /// <summary>How many path lines the whole list has (all shards, repeats included).</summary>
    public int Lines { get; init; }

    /// <summary>How many path lines of this shard repeat an earlier one.</summary>
    public int Repeats { get; init; }

    /// <summary>The file to open for a path of the list.</summary>
    public string Resolve(string path) => Path.Combine(Directory, path);

    /// <summary>
    /// Reads <paramref name="file"/>, keeping the paths of <paramref name="shard"/>. Throws
    /// <see cref="InvalidDataException"/> naming the line for text that cannot be a list (invalid UTF-8, a NUL byte,
    /// a line longer than <see cref="MaxLineBytes"/>), and IOException when it cannot be read.
    /// </summary>
    public static InputList Read(string file, Shard shard)
    {
        var utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        var paths = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int lines = 0, repeats = 0;
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        var reader = new LineReader(stream, MaxLineBytes);
        long number = 0;
        while (reader.Next(out var bytes, out bool tooLong))
        {
            number++;
            if (tooLong) throw new InvalidDataException($"{file}:{number}: line longer than {MaxLineBytes} bytes (not a path; is this an image list?)");
            if (number == 1 && bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
            if (bytes.EndsWith("\r"u8)) bytes = bytes[..^1];
            if (bytes.Contains((byte)0)) throw new InvalidDataException($"{file}:{number}: NUL byte (not a text file?)");
            string line;
            try
            {
                line = utf8.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw new InvalidDataException($"{file}:{number}: not valid UTF-8");
            }
            var content = line.AsSpan().TrimStart();
            if (content.IsEmpty || content[0] == '#') continue;
            lines++;
            if (!shard.Contains(line)) continue;
            if (seen.Add(line)) paths.Add(line);
            else repeats++;
        }
        return new InputList
        {
            Paths = paths,
            Directory = Path.GetDirectoryName(Path.GetFullPath(file))!,
            Lines = lines,
            Repeats = repeats,
        };
    }
}
