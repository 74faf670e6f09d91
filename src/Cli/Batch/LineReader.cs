namespace ViTGen.Cli.Batch;

/// <summary>
/// Splits a stream into '\n'-terminated lines without holding more than <c>maxLineBytes</c> of any line: a longer line
/// is reported as too long (and skipped), so a file without newlines cannot make a reader allocate without bound.
/// </summary>
internal sealed class LineReader(Stream stream, int maxLineBytes)
{
    private readonly byte[] _buffer = new byte[Math.Max(maxLineBytes + 1, 1 << 16)];
    private byte[] _line = new byte[256];
    private int _start, _end;

    /// <summary>Where the next line starts, in bytes from the start of the stream.</summary>
    public long Position { get; private set; }

    /// <summary>Whether the line just read ended with '\n' (false only for the last line of a file without one).</summary>
    public bool Terminated { get; private set; }

    /// <summary>
    /// The next line without its '\n' (valid until the next call), or false at the end of the stream.
    /// <paramref name="tooLong"/>: the line had more than maxLineBytes bytes; <paramref name="line"/> is then empty.
    /// </summary>
    public bool Next(out ReadOnlySpan<byte> line, out bool tooLong)
    {
        int length = 0;
        tooLong = false;
        long start = Position;
        while (true)
        {
            if (_start == _end)
            {
                _start = 0;
                _end = stream.Read(_buffer, 0, _buffer.Length);
                if (_end == 0)
                {
                    Terminated = false;
                    line = tooLong ? default : _line.AsSpan(0, length);
                    return Position > start;
                }
            }
            int newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            int take = newline < 0 ? _end - _start : newline;
            if (!tooLong && length + take > maxLineBytes) tooLong = true;
            if (!tooLong)
            {
                if (length + take > _line.Length) Array.Resize(ref _line, Math.Min(Math.Max(_line.Length * 2, length + take), maxLineBytes));
                _buffer.AsSpan(_start, take).CopyTo(_line.AsSpan(length));
                length += take;
            }
            Position += take;
            _start += take;
            if (newline >= 0)
            {
                _start++;
                Position++;
                Terminated = true;
                line = tooLong ? default : _line.AsSpan(0, length);
                return true;
            }
        }
    }
}
