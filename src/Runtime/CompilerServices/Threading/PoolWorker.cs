namespace ViTGen.CompilerServices;

/// <summary>
/// One pool thread and the word through which callers hand it work. The word packs an offer sequence number
/// (bits 8 and up) with a <see cref="WorkerState"/> (bits 0-7), so a caller withdrawing its offer cannot
/// withdraw a later caller's offer by mistake (ABA).
/// </summary>
internal sealed class PoolWorker
{
    private PaddedLong _state;

    public PoolWorker(int id) => Id = id;

    /// <summary>1..Threads-1: the worker's fixed identity (not the index parts see; that is per job).</summary>
    public int Id { get; }

    /// <summary>The monitor a parked worker waits on.</summary>
    public readonly object Gate = new();

    /// <summary>The packed state word; transitions are CASes on it.</summary>
    public ref long State => ref _state.Value;

    // Written by the caller that reserved this worker, before it publishes the offer; read by the worker after it
    // accepts (the accepting CAS orders the reads after the caller's writes).
    public JobContext? Context;
    public int Generation;
    public int Index;

    /// <summary>Offers this worker has accepted (diagnostics for tests; written only by the worker).</summary>
    public int Accepted;

    public static WorkerState Kind(long state) => (WorkerState)(state & 0xFF);

    public static long With(long state, WorkerState kind) => (state & ~0xFFL) | (long)kind;

    /// <summary>A fresh reservation: the next offer number, in state <see cref="WorkerState.Reserved"/>.</summary>
    public static long Reserve(long state) => ((state & ~0xFFL) + 0x100) | (long)WorkerState.Reserved;

    // The state word on a cache line of its own: an idle worker polls it, so a neighbour's writes must not
    // invalidate it.
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    private struct PaddedLong
    {
        [FieldOffset(64)] public long Value;
    }
}

/// <summary>Where a <see cref="PoolWorker"/> stands. Only the transitions in the pool's comments happen.</summary>
internal enum WorkerState
{
    /// <summary>Idle and asleep on its monitor (or about to be): an offer must pulse it.</summary>
    Parked = 0,
    /// <summary>Idle and polling its state word, until its spin budget runs out.</summary>
    Spinning = 1,
    /// <summary>Claimed by a caller that is writing the job in; becomes Offered.</summary>
    Reserved = 2,
    /// <summary>Handed a job it has not picked up yet; the caller may still withdraw it (back to Parked or Spinning).</summary>
    Offered = 3,
    /// <summary>Working on a job it accepted; only the worker leaves this state.</summary>
    Running = 4,
    /// <summary>The pool was disposed; the thread exits.</summary>
    Stopped = 5,
}
