using ViTGen.Tests.Kernels;
using ViTGen.Tests.Parity;
using Xunit.Abstractions;

namespace ViTGen.Tests.Threading;

/// <summary>
/// Once warmed up, one model instance called from several threads at once allocates nothing on any thread: its
/// workspace pool has grown to the peak number of concurrent calls and every call reuses a returned set. Counts every
/// thread (<see cref="Allocations.OnAllThreads"/>), so it runs in the non-parallel <see cref="KernelSwitches"/>
/// collection.
/// </summary>
[Collection(nameof(KernelSwitches))]
public sealed class ConcurrentAllocationTests(ITestOutputHelper output)
{
    private const int Callers = 4;
    private const int CallsPerRound = 8;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void WarmedUpConcurrentCallersAllocateNothingOnAnyThread(int threads)
    {
        var menu = new ConcurrentCalls();
        using var model = FixtureBasic.Load(menu.Parity.WeightsPath, new VitOptions { Threads = threads });
        using var callers = new Rounds(Callers, caller =>
        {
            // Each caller's buffers and its fixed sequence of calls (every forward, every batch size) are made once.
            var buffers = new ConcurrentCalls.Buffers();
            var sequence = Enumerable.Range(0, CallsPerRound).Select(i => menu.Calls[(caller * 11 + i * 7) % menu.Calls.Length]).ToArray();
            return () =>
            {
                foreach (var call in sequence) call.Run(model, buffers);
            };
        });
        // Warm up past tiered compilation, with the pool grown to the callers' peak concurrency.
        for (int round = 0; round < 60; round++) callers.Run();
        long bytes = Allocations.OnAllThreads(callers.Run, 20, out long[] perWindow);
        output.WriteLine($"threads={threads}: {bytes} bytes over {Callers} x {CallsPerRound} concurrent calls (smallest window; windows: {string.Join(", ", perWindow)})");
        Assert.Equal(0, bytes);
    }

    /// <summary>
    /// Persistent caller threads that each run their body once per <see cref="Run"/>, all at the same time. Starting
    /// and finishing a round spins on two counters, so the harness allocates nothing itself.
    /// </summary>
    private sealed class Rounds : IDisposable
    {
        private readonly List<(Thread Thread, Func<Exception?> Error)> _threads;
        private int _round, _pending;
        private volatile bool _stop;

        public Rounds(int callers, Func<int, Action> setup)
        {
            _threads = ConcurrentForwardTests.StartCallers(callers, caller =>
            {
                var body = setup(caller);
                int seen = 0;
                while (true)
                {
                    var spinner = new SpinWait();
                    while (Volatile.Read(ref _round) == seen && !_stop) spinner.SpinOnce();
                    if (_stop) return;
                    seen++;
                    try
                    {
                        body();
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _pending);
                    }
                }
            });
        }

        public void Run()
        {
            Volatile.Write(ref _pending, _threads.Count);
            Interlocked.Increment(ref _round);
            var spinner = new SpinWait();
            long deadline = Environment.TickCount64 + (long)ConcurrentForwardTests.Patience.TotalMilliseconds;
            while (Volatile.Read(ref _pending) > 0)
            {
                spinner.SpinOnce();
                if (Environment.TickCount64 > deadline) throw new Xunit.Sdk.XunitException($"a round did not finish within {ConcurrentForwardTests.Patience}");
                for (int i = 0; i < _threads.Count; i++)
                {
                    if (!_threads[i].Thread.IsAlive) ConcurrentForwardTests.Join(_threads);   // a caller threw: report it
                }
            }
        }

        public void Dispose()
        {
            _stop = true;
            ConcurrentForwardTests.Join(_threads);
        }
    }
}
