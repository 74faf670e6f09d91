namespace ViTGen.Tests.Parity;

/// <summary>Managed bytes a piece of code allocates, robust to collections other tests trigger.</summary>
internal static class Allocations
{
    /// <summary>
    /// Bytes <paramref name="action"/> allocates on this thread (<see cref="GC.GetAllocatedBytesForCurrentThread"/>),
    /// the smallest over up to 5 windows (it stops at the first window with none). The count is not exact: when
    /// this thread's allocation context is retired mid-window (a GC triggered by another test, or the runtime
    /// suspending threads for its own reasons), its unused remainder, under 8 KB, is counted as allocated. CI once
    /// failed on 7264 bytes when only windows with a GC were measured again, so every window that counts any is.
    /// A real steady-state allocation shows in every window. Blind to allocations on other threads (the pool's
    /// workers): see <see cref="OnAllThreads"/>.
    /// </summary>
    public static long OnThisThread(Action action)
    {
        long smallest = long.MaxValue;
        for (int window = 0; window < 5 && smallest > 0; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            action();
            smallest = Math.Min(smallest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return smallest;
    }

    /// <summary>
    /// Bytes that <paramref name="call"/> allocates on this thread once warm: 3 calls first (workspaces, scratch and
    /// JIT-time allocations happen there), then <see cref="OnThisThread"/> over 10 calls.
    /// </summary>
    public static long InSteadyState(Action call)
    {
        for (int i = 0; i < 3; i++) call();
        return OnThisThread(() =>
        {
            for (int i = 0; i < 10; i++) call();
        });
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
