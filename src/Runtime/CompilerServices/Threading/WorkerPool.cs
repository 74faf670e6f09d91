namespace ViTGen.CompilerServices;

/// <summary>One unit of parallel work: <see cref="Execute"/> runs once for every part index.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IParallelJob
{
    /// <summary>Runs part <paramref name="part"/> on worker <paramref name="worker"/> (0 is the caller).</summary>
    void Execute(int part, int worker);
}

/// <summary>
/// A persistent fork/join pool sized to the machine. At ViT sizes a GEMM takes 0.1-5 ms, so the cost of
/// waking threads matters: workers spin briefly on a generation counter before parking, and the caller runs
/// parts itself. Jobs are unmanaged structs on the caller's stack, so a fork/join allocates nothing.
/// Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed unsafe class WorkerPool
{
    // Long enough to bridge the LayerNorm/softmax gaps between the GEMMs of one forward pass (~30-60 ms of
    // spinning, like OpenMP's block time): parking and waking there cost B/16 at 2 threads ~10% (measured).
    private const int SpinIterations = 200_000;

    /// <summary>The process-wide pool with one worker per processor (the caller counts as one).</summary>
    public static WorkerPool Shared { get; } = new(Environment.ProcessorCount);

    private readonly object _sleepLock = new();
    private int _sleepers;
    private int _busy;             // 1 while a job owns the workers; other callers run inline
    private long _generation;      // bumped once per job; workers wake on a change
    private delegate*<void*, int, int, void> _body;
    private void* _job;
    private int _parts;
    private long _ticket;          // (generation << 32) | next part: a claim is a CAS on both at once
    private int _remaining;

    /// <summary>Creates a pool with <paramref name="threads"/> participants including the caller.</summary>
    public WorkerPool(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        for (int i = 1; i < threads; i++)
        {
            var thread = new Thread(WorkerLoop) { IsBackground = true, Name = $"ViTGen worker {i}" };
            thread.Start(i);
        }
    }

    /// <summary>Participants including the calling thread.</summary>
    public int Threads { get; }

    /// <summary>
    /// Runs <paramref name="job"/> for parts <c>0..parts-1</c> on at most <paramref name="maxThreads"/> threads
    /// and returns when all are done. Re-entrant and concurrent calls run inline on the caller.
    /// </summary>
    public void Run<TJob>(int parts, int maxThreads, ref TJob job) where TJob : unmanaged, IParallelJob
    {
        if (parts <= 0) return;
        if (parts == 1 || maxThreads <= 1 || Threads == 1 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int p = 0; p < parts; p++) job.Execute(p, 0);
            return;
        }
        try
        {
            fixed (TJob* jobPointer = &job)
            {
                // Publish the job before the generation bump: a worker that sees the new generation (or a
                // reset part counter) also sees the body and the state.
                long generation = _generation + 1;
                _body = &Invoke<TJob>;
                _job = jobPointer;
                _parts = parts;
                Volatile.Write(ref _remaining, parts);
                Volatile.Write(ref _ticket, generation << 32);
                Interlocked.Exchange(ref _generation, generation);
                if (Volatile.Read(ref _sleepers) > 0)
                {
                    lock (_sleepLock) Monitor.PulseAll(_sleepLock);
                }
                RunParts(generation, 0);
                var spinner = new SpinWait();
                while (Volatile.Read(ref _remaining) > 0) spinner.SpinOnce(sleep1Threshold: -1);
            }
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private static void Invoke<TJob>(void* job, int part, int worker) where TJob : unmanaged, IParallelJob
        => ((TJob*)job)->Execute(part, worker);

    // A worker that wakes late may see a newer job than the one that woke it; the ticket's generation makes
    // sure it only ever claims parts of the job it read, and that no part is claimed twice.
    private void RunParts(long generation, int worker)
    {
        while (true)
        {
            long ticket = Volatile.Read(ref _ticket);
            int part = (int)ticket;
            if ((ticket >> 32) != generation || part >= Volatile.Read(ref _parts)) return;
            if (Interlocked.CompareExchange(ref _ticket, ticket + 1, ticket) != ticket) continue;
            _body(_job, part, worker);
            Interlocked.Decrement(ref _remaining);
        }
    }

    private void WorkerLoop(object? state)
    {
        int worker = (int)state!;
        long seen = 0;
        while (true)
        {
            seen = WaitForJob(seen);
            RunParts(seen, worker);
        }
    }

    private long WaitForJob(long seen)
    {
        for (int i = 0; i < SpinIterations; i++)
        {
            long current = Volatile.Read(ref _generation);
            if (current != seen) return current;
            Thread.SpinWait(8);
        }
        lock (_sleepLock)
        {
            // Interlocked, not ++: the increment must be visible before we read the generation, or a job
            // published in between would skip the pulse and leave this worker parked.
            Interlocked.Increment(ref _sleepers);
            long current;
            while ((current = Volatile.Read(ref _generation)) == seen) Monitor.Wait(_sleepLock);
            Interlocked.Decrement(ref _sleepers);
            return current;
        }
    }
}
