namespace ViTGen.CompilerServices;

/// <summary>
/// Per-thread packing space for A panels and attention tiles. It grows to the largest request a thread has
/// seen and is then reused, so steady-state forwards allocate nothing whichever thread runs them.
/// </summary>
internal static unsafe class ThreadScratch
{
    [ThreadStatic] private static NativeBuffer? t_buffer;

    /// <summary>At least <paramref name="floats"/> floats, 64-byte aligned, valid until the next call on this thread.</summary>
    public static float* Get(long floats)
    {
        var buffer = t_buffer;
        if (buffer is null || buffer.Length < floats)
        {
            buffer?.Dispose();
            t_buffer = buffer = new NativeBuffer(floats);
        }
        return buffer.Data;
    }

    /// <summary>Rounds a float count up to whole cache lines, for carving one scratch block into aligned pieces.</summary>
    public static long Align(long floats) => (floats + 15) & ~15L;
}
