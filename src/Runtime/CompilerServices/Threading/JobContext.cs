using System.Runtime.ExceptionServices;

namespace ViTGen.CompilerServices;

/// <summary>
/// The shared state of one fork/join, reused by every job its calling thread runs (one per thread, so a
/// fork/join allocates nothing). A worker that picks up an offer late may find the context already running a
/// newer job; the generation in <see cref="Ticket"/> makes its claims fail, so it never touches that job.
/// </summary>
internal sealed unsafe class JobContext
{
    private PaddedCounters _counters;

    /// <summary>(generation &lt;&lt; 32) | next unclaimed part: a claim is one CAS on both.</summary>
    public ref long Ticket => ref _counters.Ticket;

    /// <summary>Parts not finished yet (run or skipped); the caller returns when it reaches 0.</summary>
    public ref int Remaining => ref _counters.Remaining;

    /// <summary>1 after a part threw: parts claimed later are skipped, not run.</summary>
    public int Faulted;

    /// <summary>The first exception a part threw, rethrown on the caller.</summary>
    public ExceptionDispatchInfo? Error;

    public int Generation;
    public int Parts;
    public delegate*<void*, int, int, void> Body;
    public void* Job;

    /// <summary>Workers this job offered itself to, the exact offer word each got, and the idle state each came from.</summary>
    public PoolWorker[] Recruited = [];
    public long[] Offers = [];
    public WorkerState[] Prior = [];

    /// <summary>Records <paramref name="exception"/> if it is the first, and makes the remaining parts skip.</summary>
    public void Fail(Exception exception)
    {
        var error = ExceptionDispatchInfo.Capture(exception);
        Interlocked.CompareExchange(ref Error, error, null);
        Volatile.Write(ref Faulted, 1);
    }

    // The ticket is the one word every participant CASes; keep it off the lines of the fields they only read.
    [StructLayout(LayoutKind.Explicit, Size = 192)]
    private struct PaddedCounters
    {
        [FieldOffset(64)] public long Ticket;
        [FieldOffset(128)] public int Remaining;
    }
}
