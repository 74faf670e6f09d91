using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ViTGen.Cli.Batch;

/// <summary>
/// One of <see cref="Count"/> disjoint parts of an input list (<c>--shard I/N</c>). A path belongs to shard
/// <c>int(sha256(utf8(path))[0..8], big-endian) mod N</c>: a function of the path alone, so it does not depend on the
/// list's order, on lines added or removed elsewhere in it, or on how far the other shards have got. Line index mod N
/// would balance small lists exactly, but appending or deleting one line would move every path after it to another
/// shard (a resumed shard would then redo or miss paths another shard owns), and the copies of a path listed twice
/// could land in different shards. SHA-256 because anyone can recompute the assignment with standard tools
/// (<c>sha256sum</c>) and it is the same on every platform and run (string.GetHashCode is randomized per process).
/// </summary>
internal readonly record struct Shard(int Index, int Count)
{
    public static readonly Shard All = new(0, 1);

    public override string ToString() => $"{Index}/{Count}";

    /// <summary>Whether <paramref name="path"/> (as written in the list) belongs to this shard.</summary>
    public bool Contains(string path) => Count == 1 || Of(path, Count) == Index;

    /// <summary>The shard of <paramref name="path"/> among <paramref name="count"/>.</summary>
    public static int Of(string path, int count)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(path), hash);
        return (int)(BinaryPrimitives.ReadUInt64BigEndian(hash) % (ulong)count);
    }

    /// <summary>Parses <c>I/N</c> (0 ≤ I &lt; N, decimal); null and <paramref name="error"/> when it is not one.</summary>
    public static Shard? Parse(string text, out string error)
    {
        error = "";
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !TryParseCount(text.AsSpan(0, slash), out int index) || !TryParseCount(text.AsSpan(slash + 1), out int count))
        {
            error = $"--shard must be I/N, two decimal numbers with 0 <= I < N (shard I of N), not '{text}'";
            // An unexpanded Kubernetes variable reaches us verbatim: say where it comes from.
            if (text.Contains("$(", StringComparison.Ordinal) || text.Contains('$', StringComparison.Ordinal))
                error += "; Kubernetes sets JOB_COMPLETION_INDEX only in Jobs with completionMode: Indexed";
            return null;
        }
        if (count < 1)
        {
            error = $"--shard {text}: the number of shards N must be at least 1";
            return null;
        }
        if (index >= count)
        {
            error = $"--shard {text}: the shard index I must be less than N (shards are numbered 0 to {count - 1})";
            return null;
        }
        return new Shard(index, count);
    }

    private static bool TryParseCount(ReadOnlySpan<char> text, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
