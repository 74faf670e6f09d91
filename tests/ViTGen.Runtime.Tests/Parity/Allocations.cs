namespace ViTGen.Tests.Parity;

/// <summary>Managed bytes a piece of code allocates on the calling thread, robust to collections other tests trigger.</summary>
internal static class Allocations
{
    /// <summary>
    /// Bytes <paramref name="action"/> allocates on this thread, measured in a window with no garbage collection:
    /// when another test's allocations trigger a GC mid-window, the retired remainder of this thread's allocation
    /// context (under 8 KB) can show up in <see cref="GC.GetAllocatedBytesForCurrentThread"/>, so such a window is
    /// measured again (up to 5 times; the smallest count wins). A real allocation shows in every window.
    /// </summary>
    public static long OnThisThread(Action action)
    {
        long smallest = long.MaxValue;
        for (int attempt = 0; attempt < 5; attempt++)
        {
            int collections = GC.CollectionCount(0);
            long before = GC.GetAllocatedBytesForCurrentThread();
            action();
            long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            if (GC.CollectionCount(0) == collections) return bytes;
            smallest = Math.Min(smallest, bytes);
        }
        return smallest;
    }
}
