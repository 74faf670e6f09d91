using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ViTGen.CompilerServices;

namespace ViTGen.Tests.Threading;

/// <summary>
/// The fork/join pool's contract: thread budgets, concurrent callers, exceptions, nesting. Every wait is bounded
/// (<see cref="Patience"/>) and fails loudly; nothing asserts on timing.
/// </summary>
public sealed class WorkerPoolTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(1, 64)]
    [InlineData(2, 64)]
    [InlineData(3, 2)]      // fewer parts than the budget
    [InlineData(5, 64)]
    [InlineData(8, 64)]
    [InlineData(16, 64)]    // more than the pool has
    public void EveryPartRunsOnceOnAtMostMaxThreads(int maxThreads, int parts)
    {
        using var pool = new WorkerPool(8);
        for (int round = 0; round < 20; round++)
        {
            var record = new Record(parts);
            RunJob(pool, parts, maxThreads, record.Execute);
            record.AssertEveryPartOnce();
            int budget = Math.Min(Math.Min(maxThreads, parts), pool.Threads);
            Assert.All(record.Indices, index => Assert.InRange(index, 0, budget - 1));
            Assert.InRange(record.Threads.Count, 1, budget);
            Assert.InRange(record.MaxConcurrent, 1, budget);
        }
    }

    [Fact]
    public void ATwoThreadJobWakesOneWorkerAndLeavesTheOthersParked()
    {
        using var pool = new WorkerPool(16);
        for (int round = 0; round < 20; round++)
        {
            // Both parts wait for each other, so each job needs exactly one worker besides the caller.
            using var both = new CountdownEvent(2);
            RunJob(pool, 2, 2, (_, _) => { both.Signal(); Wait(both.WaitHandle, "the other part of a 2-part job"); });
        }
        int[] accepted = pool.AcceptedOffers();
        Assert.Equal(20, accepted[0]);                       // the lowest worker, every time
        Assert.All(accepted.Skip(1), count => Assert.Equal(0, count));
        Assert.InRange(pool.AwakeWorkers(), 0, 1);
    }

    [Fact]
    public void IdleWorkersStopSpinningAfterTheirBudget()
    {
        using var pool = new WorkerPool(4, TimeSpan.Zero);
        using var all = new CountdownEvent(4);
        RunJob(pool, 4, 4, (_, _) => { all.Signal(); Wait(all.WaitHandle, "all four parts"); });
        WaitUntil(() => pool.AwakeWorkers() == 0, "the workers to park");
        Assert.Equal(new[] { 1, 1, 1 }, pool.AcceptedOffers());
    }

    [Fact]
    public void AThrowOnAWorkerReachesTheCallerAndThePoolStaysUsable()
    {
        using var pool = new WorkerPool(4);
        int caller = Environment.CurrentManagedThreadId;
        using var workerDone = new ManualResetEventSlim();
        // The caller's part waits until a worker has run (and failed) the other one.
        var error = Assert.Throws<InvalidOperationException>(() => RunJob(pool, 2, 2, (part, worker) =>
        {
            if (Environment.CurrentManagedThreadId == caller)
            {
                Wait(workerDone.WaitHandle, "the worker's part");
                return;
            }
            workerDone.Set();
            ThrowFromWorker(part);
        }));
        Assert.StartsWith("part ", error.Message);
        Assert.Contains(nameof(ThrowFromWorker), error.StackTrace);   // rethrown with the worker's stack
        AssertStillWorks(pool);
    }

    [Fact]
    public void AThrowOnTheCallerWaitsForTheWorkersRunningParts()
    {
        using var pool = new WorkerPool(4);
        int caller = Environment.CurrentManagedThreadId;
        using var workerStarted = new ManualResetEventSlim();
        using var callerThrew = new ManualResetEventSlim();
        bool workerFinished = false;
        var error = Assert.Throws<ArgumentException>(() => RunJob(pool, 2, 2, (part, worker) =>
        {
            if (Environment.CurrentManagedThreadId == caller)
            {
                Wait(workerStarted.WaitHandle, "the worker's part to start");
                callerThrew.Set();
                throw new ArgumentException("caller part");
            }
            workerStarted.Set();
            Wait(callerThrew.WaitHandle, "the caller's part to throw");
            Volatile.Write(ref workerFinished, true);
        }));
        Assert.Equal("caller part", error.Message);
        Assert.True(Volatile.Read(ref workerFinished), "Run threw while a worker was still running a part of its job");
        AssertStillWorks(pool);
    }

    [Fact]
    public void ManyThrowingPartsRethrowOneAndLeaveNothingRunning()
    {
        using var pool = new WorkerPool(4);
        for (int round = 0; round < 50; round++)
        {
            int running = 0, started = 0;
            var error = Assert.Throws<InvalidOperationException>(() => RunJob(pool, 64, 4, (part, worker) =>
            {
                Interlocked.Increment(ref started);
                Interlocked.Increment(ref running);
                try
                {
                    Thread.SpinWait(200);
                    if (part % 7 == 3) throw new InvalidOperationException($"part {part}");
                }
                finally
                {
                    Interlocked.Decrement(ref running);
                }
            }));
            Assert.StartsWith("part ", error.Message);
            Assert.Equal(0, Volatile.Read(ref running));
            Assert.InRange(Volatile.Read(ref started), 1, 64);
        }
        AssertStillWorks(pool);
    }

    [Fact]
    public void ConcurrentCallersGetDisjointWorkers()
    {
        // Two callers, two workers, a budget of 2 each: every job needs a worker of its own while the other
        // caller's job holds one (a pool that ran the second caller inline would never finish a job).
        using var pool = new WorkerPool(3);
        using var start = new Barrier(2);
        ConcurrentForwardTests.RunCallers(2, _ =>
        {
            start.SignalAndWait(Patience);
            for (int round = 0; round < 50; round++)
            {
                using var both = new CountdownEvent(2);
                var record = new Record(2);
                RunJob(pool, 2, 2, (part, worker) =>
                {
                    record.Execute(part, worker);
                    both.Signal();
                    Wait(both.WaitHandle, "the other part of this caller's job");
                });
                record.AssertEveryPartOnce();
                Assert.Equal(new[] { 0, 1 }, record.Indices.Order());
                Assert.Equal(2, record.Threads.Count);
            }
        });
    }

    [Fact]
    public void ConcurrentCallersWithLargerBudgetsStayWithinThem()
    {
        using var pool = new WorkerPool(6);
        // Callers 0, 1 and 2 ask for budgets 2, 3 and 4.
        ConcurrentForwardTests.RunCallers(3, caller =>
        {
            int budget = caller + 2;
            for (int round = 0; round < 200; round++)
            {
                var record = new Record(32);
                RunJob(pool, 32, budget, record.Execute);
                record.AssertEveryPartOnce();
                Assert.All(record.Indices, index => Assert.InRange(index, 0, budget - 1));
                Assert.InRange(record.Threads.Count, 1, budget);
            }
        });
    }

    [Fact]
    public void ANestedJobRunsInlineOnItsPart()
    {
        using var pool = new WorkerPool(4);
        var outer = new Record(8);
        var inner = new ConcurrentBag<(int Thread, int Worker, int Outer)>();
        RunJob(pool, 8, 4, (part, worker) =>
        {
            outer.Execute(part, worker);
            int thread = Environment.CurrentManagedThreadId;
            RunJob(pool, 4, 4, (_, innerWorker) => inner.Add((Environment.CurrentManagedThreadId, innerWorker, thread)));
        });
        outer.AssertEveryPartOnce();
        Assert.Equal(32, inner.Count);
        Assert.All(inner, run => { Assert.Equal(run.Outer, run.Thread); Assert.Equal(0, run.Worker); });
    }

    [Fact]
    public void ADisposedPoolRunsJobsOnTheCaller()
    {
        var pool = new WorkerPool(4);
        AssertStillWorks(pool);
        pool.Dispose();
        var record = new Record(16);
        RunJob(pool, 16, 4, record.Execute);
        record.AssertEveryPartOnce();
        Assert.Equal(new[] { Environment.CurrentManagedThreadId }, record.Threads.Keys);
        Assert.Throws<InvalidOperationException>(() => WorkerPool.Shared.Dispose());
    }

    [Fact]
    public void SharedPoolHonoursTheBudgetToo()
    {
        var record = new Record(64);
        RunJob(WorkerPool.Shared, 64, 2, record.Execute);
        record.AssertEveryPartOnce();
        Assert.InRange(record.Threads.Count, 1, Math.Min(2, WorkerPool.Shared.Threads));
    }

    private static void AssertStillWorks(WorkerPool pool)
    {
        var record = new Record(64);
        RunJob(pool, 64, pool.Threads, record.Execute);
        record.AssertEveryPartOnce();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowFromWorker(int part) => throw new InvalidOperationException($"part {part}");

    private static void Wait(WaitHandle handle, string what)
    {
        if (!handle.WaitOne(Patience)) throw new TimeoutException($"gave up waiting for {what} after {Patience.TotalSeconds} s");
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"gave up waiting for {what} after {Patience.TotalSeconds} s");
            Thread.Sleep(1);
        }
    }

    /// <summary>Runs <paramref name="body"/> as an unmanaged job (through a GCHandle, as BatchRunner does).</summary>
    private static void RunJob(WorkerPool pool, int parts, int maxThreads, Action<int, int> body)
    {
        var handle = GCHandle.Alloc(body);
        try
        {
            var job = new DelegateJob { Body = GCHandle.ToIntPtr(handle) };
            pool.Run(parts, maxThreads, ref job);
        }
        finally
        {
            handle.Free();
        }
    }

    private struct DelegateJob : IParallelJob
    {
        public nint Body;

        public readonly void Execute(int part, int worker) => ((Action<int, int>)GCHandle.FromIntPtr(Body).Target!)(part, worker);
    }

    /// <summary>What one job did: runs per part, the indices and threads it saw, and its peak concurrency.</summary>
    private sealed class Record(int parts)
    {
        private readonly int[] _runs = new int[parts];
        private readonly ConcurrentDictionary<int, int> _indices = new();
        private int _concurrent, _maxConcurrent;

        public ConcurrentDictionary<int, int> Threads { get; } = new();
        public IEnumerable<int> Indices => _indices.Keys;
        public int MaxConcurrent => Volatile.Read(ref _maxConcurrent);

        public void Execute(int part, int worker)
        {
            int now = Interlocked.Increment(ref _concurrent);
            int max;
            while (now > (max = Volatile.Read(ref _maxConcurrent)) && Interlocked.CompareExchange(ref _maxConcurrent, now, max) != max) { }
            Interlocked.Increment(ref _runs[part]);
            _indices[worker] = 0;
            Threads[Environment.CurrentManagedThreadId] = 0;
            Thread.SpinWait(100);
            Interlocked.Decrement(ref _concurrent);
        }

        public void AssertEveryPartOnce() => Assert.All(_runs, runs => Assert.Equal(1, runs));
    }
}
