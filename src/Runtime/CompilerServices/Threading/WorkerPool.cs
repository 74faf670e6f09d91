using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace ViTGen.CompilerServices;

/// <summary>One unit of parallel work: <see cref="Execute"/> runs once for every part index.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IParallelJob
{
    /// <summary>
    /// Runs part <paramref name="part"/> on worker <paramref name="worker"/>: 0 is the caller, and the threads
    /// of one job see distinct indices below its <c>maxThreads</c> (so below <see cref="WorkerPool.Threads"/>).
    /// </summary>
    void Execute(int part, int worker);
}

/// <summary>
/// A persistent fork/join pool sized to the machine. At ViT sizes a GEMM takes 0.1-5 ms, so the cost of
/// waking threads matters: the caller runs parts itself, and a worker that just finished a job spins briefly
/// before parking. Jobs are unmanaged structs on the caller's stack, so a fork/join allocates nothing.
/// Used by generated code.
/// </summary>
/// <remarks>
/// <para><b>Thread budget.</b> <see cref="Run{TJob}"/> hands a job to at most <c>maxThreads - 1</c> workers,
/// chosen one by one: spinning workers first, then parked ones, lowest first, so a model that asks for
/// <c>k</c> threads keeps reusing the same <c>k - 1</c> workers and the others stay parked (never woken, no
/// spinning). Workers a job does not need are not woken. Measured (2-core box, s16 at 2 threads, median ms):
/// the old pool took 929 with DOTNET_PROCESSOR_COUNT=16 vs 132 with 2; this one 97-113 vs 103-111.</para>
/// <para><b>Concurrent callers.</b> Jobs from different threads run at the same time on disjoint sets of
/// workers: each caller reserves idle workers for its job, and one that finds none idle runs its parts alone.
/// So two models on two threads each get their budget while the pool has idle workers, and never more than the
/// pool's threads plus the callers run at once. Chosen over running the second caller inline because inline
/// silently drops a model to one thread. Measured on the loaded 2-core box (two s16 models at 2 threads, two
/// threads vs one after the other, images/s): 21.5 vs 15.9 and 12.5 vs 10.3; tiny32 was within the noise
/// (944 vs 1076, 422 vs 348): with 2 cores, 4 busy threads gain little, so on small machines give concurrent
/// models smaller budgets.</para>
/// <para><b>Nesting.</b> A part that calls <see cref="Run{TJob}"/> again (on any pool) runs the inner job inline,
/// on its own thread, with worker index 0.</para>
/// <para><b>Exceptions.</b> A part that throws does not end the job early: parts not started yet are skipped,
/// parts already running finish, and only then is the first exception rethrown on the caller with its original
/// stack. No worker touches the job after <see cref="Run{TJob}"/> returns or throws, and the pool stays usable.</para>
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed unsafe class WorkerPool : IDisposable
{
    /// <summary>
    /// How long a worker that finished a job polls for the next one before it parks. Between the parallel
    /// sections of one forward pass the caller runs LayerNorm or residual adds alone for tens of microseconds,
    /// and parking there costs a futex wake per section. On the 2-core dev box (loaded, so medians are noisy;
    /// min ms of 300 forwards), tiny32 at 2 threads: no spin 1.01-1.27 ms, 200 us 0.76-1.30, 2 ms 0.77-1.11,
    /// 50 ms 0.79-0.89; b16 at 2 threads did not separate from the noise. 1 ms covers the in-forward gaps with
    /// a wide margin while bounding the idle spin after the last job to 1 ms, not the old ~30-60 ms.
    /// </summary>
    internal static readonly TimeSpan DefaultSpin = TimeSpan.FromMilliseconds(1);

    [ThreadStatic] private static JobContext? t_context;
    [ThreadStatic] private static bool t_inJob;   // running a part (or a worker thread): nested jobs run inline

    private readonly PoolWorker[] _workers;
    private readonly long _spinTicks;
    private int _disposed;

    /// <summary>The process-wide pool with one worker per processor (the caller counts as one).</summary>
    public static WorkerPool Shared { get; } = new(Environment.ProcessorCount);

    /// <summary>Creates a pool with <paramref name="threads"/> participants including the caller.</summary>
    public WorkerPool(int threads) : this(threads, DefaultSpin) { }

    /// <summary>Creates a pool whose idle workers poll for <paramref name="spin"/> before parking.</summary>
    internal WorkerPool(int threads, TimeSpan spin)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        _spinTicks = spin == Timeout.InfiniteTimeSpan ? long.MaxValue : (long)(spin.TotalSeconds * Stopwatch.Frequency);
        _workers = new PoolWorker[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            // Workers start parked (state word 0): a pool that only ever runs small budgets wakes only those.
            var worker = _workers[i] = new PoolWorker(i + 1);
            new Thread(WorkerLoop) { IsBackground = true, Name = $"ViTGen worker {i + 1}" }.Start(worker);
        }
    }

    /// <summary>Participants including the calling thread.</summary>
    public int Threads { get; }

    /// <summary>
    /// Runs <paramref name="job"/> for parts <c>0..parts-1</c> on the caller and at most
    /// <paramref name="maxThreads"/>- 1 workers, and returns when every part is done. If parts throw, the
    /// first exception is rethrown once no part is running any more.
    /// </summary>
    public void Run<TJob>(int parts, int maxThreads, ref TJob job) where TJob : unmanaged, IParallelJob
    {
        if (parts <= 0) return;
        int participants = Math.Min(Math.Min(parts, maxThreads), Threads);
        if (participants <= 1 || t_inJob)
        {
            for (int p = 0; p < parts; p++) job.Execute(p, 0);
            return;
        }
        var context = t_context ??= new JobContext();
        if (context.Recruited.Length < _workers.Length)
        {
            context.Recruited = new PoolWorker[_workers.Length];
            context.Offers = new long[_workers.Length];
            context.Prior = new WorkerState[_workers.Length];
        }
        ExceptionDispatchInfo? error;
        fixed (TJob* pointer = &job)
        {
            // Publish the job before the ticket: a worker whose claim on the new ticket succeeds sees the body.
            int generation = unchecked(context.Generation + 1);
            context.Generation = generation;
            context.Body = &Invoke<TJob>;
            context.Job = pointer;
            context.Parts = parts;
            context.Faulted = 0;
            context.Error = null;
            Volatile.Write(ref context.Remaining, parts);
            // Part 0 is the caller's before any worker can claim: the caller always takes part, so what it
            // sets up per thread (workspace 0, scratch) is in place after the first job, whoever is fastest.
            Volatile.Write(ref context.Ticket, ((long)generation << 32) | 1);
            int recruited = Recruit(context, generation, participants - 1);
            t_inJob = true;
            RunPart(context, 0, 0);
            Interlocked.Decrement(ref context.Remaining);
            RunParts(context, generation, 0, null);
            t_inJob = false;
            // Nothing left to claim: offers not picked up yet would only wake a thread for nothing.
            Withdraw(context, recruited);
            var spinner = new SpinWait();
            while (Volatile.Read(ref context.Remaining) > 0) spinner.SpinOnce(sleep1Threshold: -1);
            error = context.Error;
            context.Error = null;
            context.Job = null;
        }
        error?.Throw();
    }

    /// <summary>Stops the workers once they are idle; later jobs run on their callers alone. Not for <see cref="Shared"/>.</summary>
    public void Dispose()
    {
        if (ReferenceEquals(this, Shared)) throw new InvalidOperationException("WorkerPool.Shared cannot be disposed.");
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        foreach (var worker in _workers)
        {
            var spinner = new SpinWait();
            while (true)
            {
                long state = Volatile.Read(ref worker.State);
                if (PoolWorker.Kind(state) is WorkerState.Parked or WorkerState.Spinning
                    && Interlocked.CompareExchange(ref worker.State, PoolWorker.With(state, WorkerState.Stopped), state) == state)
                {
                    lock (worker.Gate) Monitor.Pulse(worker.Gate);
                    break;
                }
                spinner.SpinOnce(sleep1Threshold: -1);   // a job still holds it
            }
        }
    }

    /// <summary>Offers accepted by each worker so far, by worker id - 1 (for tests).</summary>
    internal int[] AcceptedOffers() => _workers.Select(w => Volatile.Read(ref w.Accepted)).ToArray();

    /// <summary>Workers that are not parked now (for tests).</summary>
    internal int AwakeWorkers() => _workers.Count(w => PoolWorker.Kind(Volatile.Read(ref w.State)) != WorkerState.Parked);

    private static void Invoke<TJob>(void* job, int part, int worker) where TJob : unmanaged, IParallelJob
        => ((TJob*)job)->Execute(part, worker);

    // Reserves up to `wanted` idle workers (spinning ones first: they pick the job up within a microsecond),
    // lowest ids first, and hands each the job with the next dense index.
    private int Recruit(JobContext context, int generation, int wanted)
    {
        int count = 0;
        for (int pass = 0; pass < 2 && count < wanted; pass++)
        {
            var kind = pass == 0 ? WorkerState.Spinning : WorkerState.Parked;
            foreach (var worker in _workers)
            {
                long state = Volatile.Read(ref worker.State);
                if (PoolWorker.Kind(state) != kind) continue;
                long reserved = PoolWorker.Reserve(state);
                if (Interlocked.CompareExchange(ref worker.State, reserved, state) != state) continue;
                worker.Context = context;
                worker.Generation = generation;
                worker.Index = count + 1;
                long offer = PoolWorker.With(reserved, WorkerState.Offered);
                context.Recruited[count] = worker;
                context.Offers[count] = offer;
                context.Prior[count] = kind;
                count++;
                Volatile.Write(ref worker.State, offer);
                if (kind == WorkerState.Parked)
                {
                    // The worker checks its state under this lock before it waits, so the pulse cannot be lost.
                    lock (worker.Gate) Monitor.Pulse(worker.Gate);
                }
                if (count == wanted) break;
            }
        }
        return count;
    }

    // Takes back offers still unaccepted, returning those workers to the idle state they were in. The CAS
    // compares the exact offer word, so an offer made since by another caller is left alone.
    private static void Withdraw(JobContext context, int recruited)
    {
        for (int i = 0; i < recruited; i++)
        {
            var worker = context.Recruited[i];
            long offer = context.Offers[i];
            if (Volatile.Read(ref worker.State) == offer)
                Interlocked.CompareExchange(ref worker.State, PoolWorker.With(offer, context.Prior[i]), offer);
            context.Recruited[i] = null!;
        }
    }

    // Claims and runs parts of `generation` until none are left. A worker returns itself to the idle pool
    // before it counts its last part, so when the caller sees the job finished, every worker that ran a part
    // can already take the caller's next job (the same workers again, not fresh ones). Returns whether `self`
    // was released here.
    private static bool RunParts(JobContext context, int generation, int index, PoolWorker? self)
    {
        while (true)
        {
            long ticket = Volatile.Read(ref context.Ticket);
            int part = (int)ticket;
            if ((int)(ticket >> 32) != generation || part >= Volatile.Read(ref context.Parts)) return false;
            if (Interlocked.CompareExchange(ref context.Ticket, ticket + 1, ticket) != ticket) continue;
            RunPart(context, part, index);
            // Every part claimed (this job's generation cannot change before this part is counted): nothing
            // left for this thread, so a worker goes idle first and only then counts its part.
            bool drained = (int)Volatile.Read(ref context.Ticket) >= context.Parts;
            if (drained && self is not null)
                Volatile.Write(ref self.State, PoolWorker.With(Volatile.Read(ref self.State), WorkerState.Spinning));
            Interlocked.Decrement(ref context.Remaining);
            if (drained) return self is not null;
        }
    }

    // Runs a claimed part (the job is live until the part is counted, so the body and pointer are its own),
    // or skips it once another part has thrown.
    private static void RunPart(JobContext context, int part, int index)
    {
        if (Volatile.Read(ref context.Faulted) != 0) return;
        try
        {
            context.Body(context.Job, part, index);
        }
        catch (Exception exception)
        {
            context.Fail(exception);
        }
    }

    private void WorkerLoop(object? state)
    {
        var self = (PoolWorker)state!;
        t_inJob = true;
        while (WaitForOffer(self))
        {
            self.Accepted++;
            if (!RunParts(self.Context!, self.Generation, self.Index, self))
                Volatile.Write(ref self.State, PoolWorker.With(Volatile.Read(ref self.State), WorkerState.Spinning));
        }
    }

    // Waits until a caller's offer is accepted (true) or the pool stops (false): polls the state word for the
    // spin budget, then parks on the worker's monitor.
    private bool WaitForOffer(PoolWorker self)
    {
        long deadline = _spinTicks == long.MaxValue ? long.MaxValue : Stopwatch.GetTimestamp() + _spinTicks;
        while (true)
        {
            long state = Volatile.Read(ref self.State);
            switch (PoolWorker.Kind(state))
            {
                case WorkerState.Offered:
                    if (Interlocked.CompareExchange(ref self.State, PoolWorker.With(state, WorkerState.Running), state) == state)
                        return true;
                    break;
                case WorkerState.Spinning:
                    if (Stopwatch.GetTimestamp() < deadline) Thread.SpinWait(8);
                    else Interlocked.CompareExchange(ref self.State, PoolWorker.With(state, WorkerState.Parked), state);
                    break;
                case WorkerState.Parked:
                    lock (self.Gate)
                    {
                        while (PoolWorker.Kind(Volatile.Read(ref self.State)) is WorkerState.Parked or WorkerState.Reserved)
                            Monitor.Wait(self.Gate);
                    }
                    break;
                case WorkerState.Stopped:
                    return false;
                default:
                    Thread.SpinWait(1);   // Reserved: the offer is being written
                    break;
            }
        }
    }
}
