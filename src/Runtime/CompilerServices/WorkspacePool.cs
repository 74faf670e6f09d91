namespace ViTGen.CompilerServices;

/// <summary>
/// A generated model's per-image pass on one workspace: <paramref name="outputs"/> chooses what it writes into
/// <paramref name="output"/> (and, for <see cref="ImageOutputs.Attention"/>, into <paramref name="attention"/>);
/// kernels split over <paramref name="threads"/>. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public delegate void ImagePass<TWorkspace>(ImageOutputs outputs, ReadOnlySpan<float> image, Span<float> output, Span<float> attention,
    TWorkspace workspace, int threads);

/// <summary>
/// The scratch and the lifetime of a generated model under concurrent calls. Every call rents a
/// <see cref="WorkspaceSet{TWorkspace}"/> (one workspace per worker index it may use) that no other call holds,
/// runs on it with no lock held, and returns it; returned sets are reused, most recent first, so the pool grows to
/// the peak number of concurrent calls and a warmed-up model allocates nothing, whether one thread or several call
/// it. Weights are shared read-only. Used by generated code.
/// </summary>
/// <remarks>
/// <para><b>Dispose.</b> <see cref="Dispose"/> makes later <see cref="Rent"/> calls throw
/// <see cref="ObjectDisposedException"/> naming the model, and frees (the workspaces, then the model's weights
/// through the release callback) at once when no call is in flight, or else when the last call in flight returns
/// its set: memory is never freed under a running call, and Dispose never blocks.</para>
/// <para><b>Why a lock.</b> Rent and return each hold one lock for a few instructions: a Rent and return pair took
/// 75-150 ns on the loaded 2-core dev box, against about 1 ms for one tiny32 forward on one thread (vitgen bench
/// median), so a lock-free stack would buy nothing measurable. The counting that makes Dispose safe needs the
/// in-flight count and the disposed flag to change together, which a lock states plainly.</para>
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class WorkspacePool<TWorkspace> : IDisposable where TWorkspace : class, IDisposable, new()
{
    private readonly object _owner;
    private readonly ImagePass<TWorkspace> _pass;
    private readonly Action _release;
    private readonly int _slots;
    // Guards _idle, _inFlight, _disposed and _released.
    private readonly Lock _lock = new();
    private WorkspaceSet<TWorkspace>? _idle;   // returned sets, a stack linked through WorkspaceSet.Next
    private int _inFlight;
    private bool _disposed;
    private bool _released;
    private int _created;

    /// <summary>
    /// A pool for <paramref name="owner"/> (named by <see cref="ObjectDisposedException"/>, and kept reachable by every
    /// rented set), whose calls run <paramref name="pass"/> on up to <paramref name="threads"/> threads;
    /// <paramref name="release"/> frees the owner's weights once it is disposed and no call is in flight.
    /// </summary>
    public WorkspacePool(object owner, int threads, ImagePass<TWorkspace> pass, Action release)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(release);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _owner = owner;
        _pass = pass;
        _release = release;
        // BatchRunner hands out worker indices below min(threads, the shared pool's threads).
        _slots = Math.Min(threads, WorkerPool.Shared.Threads);
    }

    /// <summary>Sets created so far: the peak number of concurrent calls (for tests).</summary>
    internal int SetsCreated => Volatile.Read(ref _created);

    /// <summary>Calls holding a set now (for tests).</summary>
    internal int InFlight
    {
        get
        {
            lock (_lock) return _inFlight;
        }
    }

    /// <summary>Whether the workspaces and weights have been freed (for tests).</summary>
    internal bool Released
    {
        get
        {
            lock (_lock) return _released;
        }
    }

    /// <summary>
    /// A set of workspaces no other call holds, until its <see cref="WorkspaceSet{TWorkspace}.Dispose"/> returns it.
    /// Throws <see cref="ObjectDisposedException"/> once the pool is disposed.
    /// </summary>
    public WorkspaceSet<TWorkspace> Rent()
    {
        WorkspaceSet<TWorkspace>? set;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, _owner);
            _inFlight++;
            set = _idle;
            if (set is not null)
            {
                _idle = set.Next;
                set.Next = null;
            }
        }
        if (set is not null) return set;
        try
        {
            set = new WorkspaceSet<TWorkspace>(this, _slots);
        }
        catch
        {
            Leave(null);   // out of memory: this call is no longer in flight, or Dispose would never free
            throw;
        }
        Interlocked.Increment(ref _created);
        return set;
    }

    /// <summary>
    /// Refuses new calls, and frees the workspaces and calls the release callback now if no call is in flight,
    /// else when the last one returns its set. Calling it again does nothing.
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            if (_inFlight > 0) return;
            _released = true;
        }
        Release();
    }

    internal void Return(WorkspaceSet<TWorkspace> set) => Leave(set);

    // A call ends: its set (if it got one) goes back on the stack, and the last call out of a disposed pool frees.
    private void Leave(WorkspaceSet<TWorkspace>? set)
    {
        lock (_lock)
        {
            if (set is not null)
            {
                set.Next = _idle;
                _idle = set;
            }
            if (--_inFlight > 0 || !_disposed || _released) return;
            _released = true;
        }
        Release();
    }

    internal void Run(ImageOutputs outputs, ReadOnlySpan<float> image, Span<float> output, Span<float> attention, TWorkspace workspace, int threads)
        => _pass(outputs, image, output, attention, workspace, threads);

    // Disposed with no call in flight, and _released set under the lock by this thread alone: every set is idle and
    // no Rent or Return can touch the stack any more.
    private void Release()
    {
        for (var set = _idle; set is not null; set = set.Next) set.Free();
        _idle = null;
        _release();
    }
}

/// <summary>
/// The workspaces of one call in flight, one per worker index, each created the first time that index runs an
/// image on it. <see cref="Dispose"/> returns the set to its pool (it frees nothing). Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class WorkspaceSet<TWorkspace> : IImageForward, IDisposable where TWorkspace : class, IDisposable, new()
{
    private readonly WorkspacePool<TWorkspace> _pool;
    private readonly TWorkspace?[] _workspaces;

    internal WorkspaceSet(WorkspacePool<TWorkspace> pool, int slots)
    {
        _pool = pool;
        _workspaces = new TWorkspace?[slots];
    }

    /// <summary>The next idle set in the pool's stack; touched only under the pool's lock.</summary>
    internal WorkspaceSet<TWorkspace>? Next;

    /// <summary>Workspaces created in this set so far (for tests).</summary>
    internal int Workspaces => _workspaces.Count(w => w is not null);

    /// <summary>Returns the set to its pool for the next call.</summary>
    public void Dispose() => _pool.Return(this);

    // The threads of one BatchRunner.Run see distinct worker indices, so no two of them share a slot.
    void IImageForward.ForwardImage(ImageOutputs outputs, ReadOnlySpan<float> image, Span<float> output, Span<float> attention, int worker, int threads)
        => _pool.Run(outputs, image, output, attention, _workspaces[worker] ??= new TWorkspace(), threads);

    internal void Free()
    {
        for (int i = 0; i < _workspaces.Length; i++)
        {
            _workspaces[i]?.Dispose();
            _workspaces[i] = null;
        }
    }
}
