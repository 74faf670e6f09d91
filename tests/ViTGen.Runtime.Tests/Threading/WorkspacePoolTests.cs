using ViTGen.CompilerServices;

namespace ViTGen.Tests.Threading;

/// <summary>
/// <see cref="WorkspacePool{TWorkspace}"/> on its own, deterministically: distinct sets for calls in flight, reuse
/// after return, growth to the peak, and Dispose deferring the free to the last call out.
/// </summary>
public sealed class WorkspacePoolTests
{
    private sealed class Owner;

    private sealed class Scratch : IDisposable
    {
        public int Disposals;

        public void Dispose() => Disposals++;
    }

    /// <summary>A pool whose pass records the workspace each image ran on, and which counts its releases.</summary>
    private sealed class Probe
    {
        public readonly Owner Owner = new();
        public readonly WorkspacePool<Scratch> Pool;
        public Scratch? Last;
        public int Releases;

        public Probe(int threads) => Pool = new WorkspacePool<Scratch>(Owner, threads, (_, _, _, _, workspace, _) => Last = workspace, () => Releases++);

        /// <summary>The workspace <paramref name="set"/> gives worker <paramref name="worker"/>.</summary>
        public Scratch On(WorkspaceSet<Scratch> set, int worker)
        {
            ((IImageForward)set).ForwardImage(ImageOutputs.Logits, default, default, default, worker, 1);
            return Last!;
        }
    }

    [Fact]
    public void CallsInFlightGetDistinctSetsAndReturnedSetsAreReused()
    {
        var probe = new Probe(threads: 1);
        var a = probe.Pool.Rent();
        var b = probe.Pool.Rent();
        var c = probe.Pool.Rent();
        Assert.Equal(3, new[] { a, b, c }.Distinct().Count());
        var workspaces = new[] { probe.On(a, 0), probe.On(b, 0), probe.On(c, 0) };
        Assert.Equal(3, workspaces.Distinct().Count());
        Assert.Same(workspaces[1], probe.On(b, 0));   // a slot's workspace is made once
        Assert.Equal(3, probe.Pool.InFlight);
        a.Dispose();
        b.Dispose();
        c.Dispose();
        Assert.Equal(0, probe.Pool.InFlight);

        // The peak was three: three more calls reuse those sets (the last returned first) and create none.
        var again = new[] { probe.Pool.Rent(), probe.Pool.Rent(), probe.Pool.Rent() };
        Assert.Equal(new[] { c, b, a }, again);
        Assert.Equal(3, probe.Pool.SetsCreated);
        foreach (var set in again) set.Dispose();
        Assert.Equal(0, probe.Releases);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(int.MaxValue)]   // a budget beyond the machine: worker indices stay below the shared pool's threads
    public void ASetHasOneWorkspacePerWorkerIndexTheCallCanSee(int threads)
    {
        int slots = Math.Min(threads, WorkerPool.Shared.Threads);
        var probe = new Probe(threads);
        using var set = probe.Pool.Rent();
        var seen = Enumerable.Range(0, slots).Select(worker => probe.On(set, worker)).ToList();
        Assert.Equal(slots, seen.Distinct().Count());
        Assert.Equal(slots, set.Workspaces);
        Assert.Throws<IndexOutOfRangeException>(() => probe.On(set, slots));
    }

    [Fact]
    public void DisposeWithoutCallsInFlightFreesAtOnceAndOnlyOnce()
    {
        var probe = new Probe(threads: 1);
        var first = probe.Pool.Rent();
        var second = probe.Pool.Rent();
        var scratch = new[] { probe.On(first, 0), probe.On(second, 0) };
        first.Dispose();
        second.Dispose();
        Assert.Equal(0, probe.Releases);
        probe.Pool.Dispose();
        Assert.Equal(1, probe.Releases);
        Assert.True(probe.Pool.Released);
        Assert.All(scratch, s => Assert.Equal(1, s.Disposals));
        probe.Pool.Dispose();
        Assert.Equal(1, probe.Releases);
        Assert.All(scratch, s => Assert.Equal(1, s.Disposals));
        var e = Assert.Throws<ObjectDisposedException>(() => probe.Pool.Rent());
        Assert.Equal(typeof(Owner).FullName, e.ObjectName);
    }

    [Fact]
    public void DisposeWithCallsInFlightFreesWhenTheLastReturns()
    {
        var probe = new Probe(threads: 1);
        var first = probe.Pool.Rent();
        var second = probe.Pool.Rent();
        var scratch = new[] { probe.On(first, 0), probe.On(second, 0) };

        probe.Pool.Dispose();
        Assert.Equal(0, probe.Releases);
        Assert.False(probe.Pool.Released);
        Assert.Throws<ObjectDisposedException>(() => probe.Pool.Rent());
        Assert.Same(scratch[0], probe.On(first, 0));   // calls in flight keep running on their workspaces

        first.Dispose();
        Assert.Equal(0, probe.Releases);
        Assert.All(scratch, s => Assert.Equal(0, s.Disposals));

        second.Dispose();
        Assert.Equal(1, probe.Releases);
        Assert.All(scratch, s => Assert.Equal(1, s.Disposals));
        Assert.Equal(0, probe.Pool.InFlight);
    }

    [Fact]
    public void DisposeOnAnotherThreadWhileACallRunsWaitsForNothingAndFreesAfterIt()
    {
        var owner = new Owner();
        using var inside = new ManualResetEventSlim();
        using var disposed = new ManualResetEventSlim();
        int releases = 0, releasesInside = -1;
        var pool = new WorkspacePool<Scratch>(owner, 1, (_, _, _, _, _, _) =>
        {
            inside.Set();
            Assert.True(disposed.Wait(ConcurrentForwardTests.Patience));
            releasesInside = Volatile.Read(ref releases);
        }, () => Interlocked.Increment(ref releases));
        var caller = ConcurrentForwardTests.StartCallers(1, _ =>
        {
            using var set = pool.Rent();
            ((IImageForward)set).ForwardImage(ImageOutputs.Logits, default, default, default, 0, 1);
        });
        Assert.True(inside.Wait(ConcurrentForwardTests.Patience));
        pool.Dispose();   // returns at once: the call is still inside its pass
        Assert.Equal(0, Volatile.Read(ref releases));
        disposed.Set();
        ConcurrentForwardTests.Join(caller);
        Assert.Equal(0, releasesInside);
        Assert.Equal(1, releases);
    }

    [Fact]
    public void ConstructorRejectsBadArguments()
    {
        ImagePass<Scratch> pass = (_, _, _, _, _, _) => { };
        Assert.Throws<ArgumentOutOfRangeException>(() => new WorkspacePool<Scratch>(new Owner(), 0, pass, () => { }));
        Assert.Throws<ArgumentNullException>(() => new WorkspacePool<Scratch>(null!, 1, pass, () => { }));
        Assert.Throws<ArgumentNullException>(() => new WorkspacePool<Scratch>(new Owner(), 1, null!, () => { }));
        Assert.Throws<ArgumentNullException>(() => new WorkspacePool<Scratch>(new Owner(), 1, pass, null!));
    }
}
