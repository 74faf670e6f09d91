using System.Collections.Concurrent;
using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Threading;

/// <summary>
/// One generated model instance called from several threads at once: every call gets exactly what the same call
/// gets alone (bit for bit, outputs poisoned first), and Dispose racing calls in flight never frees memory under
/// them. Every wait is bounded and fails loudly; nothing asserts on timing.
/// </summary>
public sealed class ConcurrentForwardTests
{
    internal static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Theory]
    [InlineData(1, 4)]
    [InlineData(2, 4)]
    [InlineData(2, 8)]
    public void ConcurrentCallsMatchTheSameCallsRunAlone(int threads, int callers)
    {
        const int Iterations = 60;
        var menu = new ConcurrentCalls();
        using var model = FixtureBasic.Load(menu.Parity.WeightsPath, new VitOptions { Threads = threads });
        menu.ComputeReferences(model);
        // The references themselves against PyTorch's float64 forward: the fixture's two images, batch 2.
        var forwardBoth = menu.Calls.Single(c => c.ToString() == "Forward(batch 2, first image 0)");
        Numerics.AssertClose(forwardBoth.Reference, menu.Parity.Expected, 5e-6, out _);

        int active = 0, peak = 0, calls = 0;
        var mismatches = new ConcurrentQueue<string>();
        RunCallers(callers, caller =>
        {
            var buffers = new ConcurrentCalls.Buffers();
            var random = new Random(1000 * threads + caller);
            for (int i = 0; i < Iterations; i++)
            {
                var call = menu.Calls[random.Next(menu.Calls.Length)];
                int now = Interlocked.Increment(ref active);
                InterlockedMax(ref peak, now);
                call.Run(model, buffers);
                Interlocked.Decrement(ref active);
                Interlocked.Increment(ref calls);
                if (!call.Matches(buffers)) mismatches.Enqueue($"caller {caller}, call {i}: {call}");
            }
        });

        Assert.Equal(callers * Iterations, calls);
        Assert.True(mismatches.IsEmpty, $"{mismatches.Count} of {calls} calls differ from the same call run alone, e.g. {string.Join("; ", mismatches.Take(5))}");
        Assert.True(peak > 1, "no two calls overlapped: the test proved nothing");
    }

    [Fact]
    public void DisposeRacingCallsNeverFreesMemoryUnderThem()
    {
        // Each round: callers loop over mixed calls until the model refuses them; Dispose lands at a varying moment.
        // A call either completes with the right bits or throws ObjectDisposedException naming the model on entry;
        // a call whose weights or workspaces were freed under it would read freed memory (wrong bits), hit a freed
        // NativeBuffer (an ObjectDisposedException naming NativeBuffer) or crash the test host.
        const int Rounds = 40, Callers = 3;
        var menu = new ConcurrentCalls();
        using (var reference = FixtureBasic.Load(menu.Parity.WeightsPath, new VitOptions { Threads = 2 }))
            menu.ComputeReferences(reference);
        int completed = 0, refused = 0;
        var failures = new ConcurrentQueue<string>();
        for (int round = 0; round < Rounds; round++)
        {
            var model = FixtureBasic.Load(menu.Parity.WeightsPath, new VitOptions { Threads = 2 });
            using var start = new Barrier(Callers + 1);
            var callers = StartCallers(Callers, caller =>
            {
                var buffers = new ConcurrentCalls.Buffers();
                var random = new Random(round * Callers + caller);
                start.SignalAndWait();
                while (true)
                {
                    var call = menu.Calls[random.Next(menu.Calls.Length)];
                    try
                    {
                        call.Run(model, buffers);
                    }
                    catch (ObjectDisposedException e) when (e.ObjectName == typeof(FixtureBasic).FullName)
                    {
                        Interlocked.Increment(ref refused);
                        return;
                    }
                    catch (Exception e)
                    {
                        failures.Enqueue($"{call}: {e.GetType().Name}: {e.Message}");
                        return;
                    }
                    if (!call.Matches(buffers))
                    {
                        failures.Enqueue($"{call}: wrong bits");
                        return;
                    }
                    Interlocked.Increment(ref completed);
                }
            });
            start.SignalAndWait();
            for (int spin = 0; spin < round % 8 * 400; spin++) Thread.SpinWait(20);
            model.Dispose();
            Join(callers);
            Assert.True(failures.IsEmpty, string.Join("; ", failures.Take(5)));
        }
        Assert.Equal(Rounds * Callers, refused);
        Assert.True(completed > 0, "no call completed before Dispose: the race was never run");
    }

    [Fact]
    public void EveryForwardThrowsObjectDisposedExceptionNamingTheModelAfterDispose()
    {
        var menu = new ConcurrentCalls();
        var model = FixtureBasic.Load(menu.Parity.WeightsPath);
        model.Dispose();
        model.Dispose();
        var buffers = new ConcurrentCalls.Buffers();
        foreach (var call in menu.Calls.Where(c => c.ToString().EndsWith("first image 0)", StringComparison.Ordinal)))
        {
            var e = Assert.Throws<ObjectDisposedException>(() => call.Run(model, buffers));
            Assert.Equal(typeof(FixtureBasic).FullName, e.ObjectName);
        }
    }

    internal static void RunCallers(int count, Action<int> body) => Join(StartCallers(count, body));

    /// <summary>Starts <paramref name="count"/> threads running <paramref name="body"/>; an exception fails <see cref="Join"/>.</summary>
    internal static List<(Thread Thread, Func<Exception?> Error)> StartCallers(int count, Action<int> body)
    {
        var started = new List<(Thread, Func<Exception?>)>();
        for (int caller = 0; caller < count; caller++)
        {
            int index = caller;
            Exception? error = null;
            var thread = new Thread(() =>
            {
                try
                {
                    body(index);
                }
                catch (Exception e)
                {
                    error = e;
                }
            }) { IsBackground = true, Name = $"caller {index}" };
            thread.Start();
            started.Add((thread, () => error));
        }
        return started;
    }

    internal static void Join(List<(Thread Thread, Func<Exception?> Error)> callers)
    {
        foreach (var (thread, error) in callers)
        {
            Assert.True(thread.Join(Patience), $"{thread.Name} did not finish within {Patience}");
            if (error() is { } e) throw new Xunit.Sdk.XunitException($"{thread.Name} threw: {e}");
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }
}
