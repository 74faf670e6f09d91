namespace ViTGen.Tests.Parity;

/// <summary>Managed bytes a piece of code allocates, robust to collections other tests trigger.</summary>
internal static class Allocations
{
    /// <summary>
    /// Bytes <paramref name="action"/> allocates on this thread, measured in a window with no garbage collection:
    /// when another test's allocations trigger a GC mid-window, the retired remainder of this thread's allocation
    /// context (under 8 KB) can show up in <see cref="GC.GetAllocatedBytesForCurrentThread"/>, so such a window is
    /// measured again (up to 5 times; the smallest count wins). A real allocation shows in every window.
    /// Blind to allocations on other threads (the pool's workers): see <see cref="OnAllThreads"/>.
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

    /// <summary>
    /// Bytes allocated by every thread of the process while <paramref name="action"/> runs
    /// (<see cref="GC.GetTotalAllocatedBytes(bool)"/> with <c>precise: true</c>, which counts the unused part of
    /// each thread's allocation context exactly), the smallest over <paramref name="windows"/> windows. Anything
    /// else that allocates meanwhile (the test runner, timers, tests in other collections) is counted too; taking
    /// the minimum discards windows it hit, while an allocation in the measured code shows in every window. Run it
    /// from a collection with parallelization disabled so other tests are not running at the same time.
    /// </summary>
    public static long OnAllThreads(Action action, int windows = 5) => OnAllThreads(action, windows, out _);

    /// <inheritdoc cref="OnAllThreads(Action, int)"/>
    /// <param name="perWindow">The count of every window measured (it stops at the first window with none).</param>
    public static long OnAllThreads(Action action, int windows, out long[] perWindow)
    {
        var counts = new List<long>(windows);
        for (int window = 0; window < windows; window++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            action();
            counts.Add(GC.GetTotalAllocatedBytes(precise: true) - before);
            if (counts[^1] == 0) break;
        }
        perWindow = [.. counts];
        return counts.Min();
    }
}
