namespace ViTGen;

/// <summary>
/// Which pages of a mapped safetensors file can be dropped once tensors have been copied out: the tensors in file
/// order, each one's rank in it, and which have been released. Not thread-safe: <see cref="SafeTensorsFile"/> calls it
/// under its lock.
/// </summary>
internal sealed class PageReleaseRuns
{
    private readonly long _length;
    private readonly SafeTensorInfo[] _byOffset;
    private readonly Dictionary<string, int> _rank;
    private readonly bool[] _released;
    private readonly int _firstNonEmpty, _lastNonEmpty;

    /// <summary>Tracks <paramref name="tensors"/> of a file of <paramref name="length"/> bytes, none released yet.</summary>
    public PageReleaseRuns(SafeTensorInfo[] tensors, long length)
    {
        _length = length;
        _byOffset = tensors.OrderBy(t => t.FileOffset).ThenBy(t => t.ByteLength).ToArray();
        _rank = new Dictionary<string, int>(_byOffset.Length, StringComparer.Ordinal);
        for (int i = 0; i < _byOffset.Length; i++) _rank.Add(_byOffset[i].Name, i);
        _released = new bool[_byOffset.Length];
        _firstNonEmpty = Array.FindIndex(_byOffset, t => t.ByteLength > 0);
        _lastNonEmpty = Array.FindLastIndex(_byOffset, t => t.ByteLength > 0);
    }

    /// <summary>
    /// Marks <paramref name="info"/> released and returns the file offsets <c>[begin, end)</c> of the pages that this
    /// makes free to drop, or false when there are none (already released, empty, or every page is shared with a
    /// tensor still pending).
    /// </summary>
    public bool Release(SafeTensorInfo info, out long begin, out long end)
    {
        begin = end = 0;
        int rank = _rank[info.Name];
        if (_released[rank]) return false;
        _released[rank] = true;
        if (info.ByteLength == 0) return false; // no bytes: counted as released from the start (see IsReleased)

        // The run of released (or empty) tensors around this one: no page inside it holds a byte a pending read needs.
        // Before the first tensor lies the header (copied out by Open); the mapping ends with the last page.
        long page = Environment.SystemPageSize;
        int first = rank, last = rank;
        while (first > 0 && IsReleased(first - 1)) first--;
        while (last < _byOffset.Length - 1 && IsReleased(last + 1)) last++;
        long runBegin = first == 0 ? 0 : _byOffset[first].FileOffset;
        long runEnd = last == _byOffset.Length - 1 ? AlignUp(_length, page) : _byOffset[last].FileOffset + _byOffset[last].ByteLength;

        // New candidates are the pages that overlap this tensor (the first tensor also owns the header's pages, the
        // last one the end of the last page): any other page of the run was released with the last of its tensors.
        long low = rank == _firstNonEmpty ? 0 : info.FileOffset;
        long high = rank == _lastNonEmpty ? AlignUp(_length, page) : info.FileOffset + info.ByteLength;
        begin = Math.Max(AlignUp(runBegin, page), AlignDown(low, page));
        end = Math.Min(AlignDown(runEnd, page), AlignUp(high, page));
        return end > begin;
    }

    private bool IsReleased(int rank) => _released[rank] || _byOffset[rank].ByteLength == 0;

    private static long AlignDown(long value, long page) => value / page * page;

    private static long AlignUp(long value, long page) => (value + page - 1) / page * page;
}

/// <summary><c>madvise(MADV_DONTNEED)</c> on Linux, through a blittable P/Invoke (no marshalling, AOT-safe).</summary>
internal static unsafe class PageRelease
{
    // Linux's value on every architecture .NET runs on (x64, arm64, arm, riscv64, loongarch64, s390x, ppc64le).
    private const int MadvDontNeed = 4;

    private static volatile bool s_enabled = true;

    /// <summary>False once libc turned out not to be loadable; the release is then skipped for the process's lifetime.</summary>
    public static bool Enabled => s_enabled;

    /// <summary>Drops the pages of <c>[address, address + length)</c> from the resident set; page-aligned address.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public static void DontNeed(byte* address, nuint length)
    {
        try
        {
            // A failure (EINVAL, EAGAIN) only means the pages stay resident: nothing to report.
            _ = Madvise(address, length, MadvDontNeed);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_enabled = false;
        }
    }

    [DllImport("libc", EntryPoint = "madvise", ExactSpelling = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Madvise(byte* address, nuint length, int advice);
}
