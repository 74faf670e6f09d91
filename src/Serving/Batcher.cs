using System.Threading.Channels;

namespace ViTGen;

/// <summary>What a job asks of the model: the logits (<c>Forward</c>) or the pre-logits features (<c>ForwardPooled</c>).</summary>
internal enum JobKind
{
    Logits,
    Pooled,
}

/// <summary>One preprocessed image waiting for a forward pass; completes with its own output.</summary>
internal sealed class Job(float[] pixels, JobKind kind) : TaskCompletionSource<float[]>(TaskCreationOptions.RunContinuationsAsynchronously)
{
    /// <summary>At least <c>InputSize</c> floats (a pooled array may be longer): the normalized image.</summary>
    public float[] Pixels { get; } = pixels;

    public JobKind Kind { get; } = kind;
}

/// <summary>
/// Micro-batching in front of one model: request threads decode and preprocess, then <see cref="TryEnqueue"/> into a
/// bounded channel (refused at once when it is full: the caller answers 503); one loop takes up to
/// <see cref="VitServingOptions.MaxBatch"/> jobs, waiting at most <see cref="VitServingOptions.MaxDelay"/> after the
/// first for more, and runs one batched forward pass per kind. One pass at a time, so the model's own
/// <see cref="VitServingOptions.Threads"/> are the only parallelism inside it.
/// </summary>
internal sealed class Batcher : IAsyncDisposable
{
    private readonly IVitModel _model;
    private readonly Channel<Job> _queue;
    private readonly int _maxBatch;
    private readonly TimeSpan _maxDelay;
    private readonly int _inputSize;
    private readonly int _outputSize;
    private readonly int _pooledSize;
    private readonly ServingMetrics _metrics;
    private readonly float[] _pixels;
    private readonly float[] _outputs;
    private readonly Task _loop;

    public Batcher(IVitModel model, VitArchitecture architecture, VitServingOptions options, ServingMetrics metrics)
    {
        _model = model;
        _maxBatch = options.MaxBatch;
        _maxDelay = options.MaxDelay;
        _inputSize = architecture.InputSize;
        _outputSize = architecture.OutputSize;
        _pooledSize = architecture.Dim;
        _metrics = metrics;
        _queue = Channel.CreateBounded<Job>(new BoundedChannelOptions(options.MaxQueue) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _pixels = new float[_maxBatch * _inputSize]; // VitServingOptions.Validate keeps this below Array.MaxLength
        _outputs = new float[_maxBatch * Math.Max(_outputSize, _pooledSize)];
        metrics.ObserveQueueDepth(() => _queue.Reader.Count);
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Floats per image the model takes.</summary>
    public int InputSize => _inputSize;

    /// <summary>Jobs waiting (not yet taken into a batch).</summary>
    public int QueueDepth => _queue.Reader.Count;

    /// <summary>Queues <paramref name="job"/>, or returns false at once when the queue is full or the server is stopping.</summary>
    public bool TryEnqueue(Job job) => _queue.Writer.TryWrite(job);

    private async Task RunAsync()
    {
        var batch = new List<Job>(_maxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < _maxBatch && reader.TryRead(out var job)) batch.Add(job);
            if (batch.Count < _maxBatch && _maxDelay > TimeSpan.Zero) await GatherAsync(reader, batch).ConfigureAwait(false);
            Run(batch, JobKind.Logits);
            Run(batch, JobKind.Pooled);
        }
    }

    /// <summary>Adds jobs arriving within <see cref="_maxDelay"/> until the batch is full.</summary>
    private async Task GatherAsync(ChannelReader<Job> reader, List<Job> batch)
    {
        using var deadline = new CancellationTokenSource(_maxDelay);
        try
        {
            while (batch.Count < _maxBatch && await reader.WaitToReadAsync(deadline.Token).ConfigureAwait(false))
            {
                while (batch.Count < _maxBatch && reader.TryRead(out var job)) batch.Add(job);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            // The delay is over: run what there is.
        }
    }

    /// <summary>One forward pass over the jobs of <paramref name="kind"/> in <paramref name="batch"/>; each gets its slice.</summary>
    private void Run(List<Job> batch, JobKind kind)
    {
        int count = 0;
        foreach (var job in batch)
        {
            if (job.Kind == kind) job.Pixels.AsSpan(0, _inputSize).CopyTo(_pixels.AsSpan(count++ * _inputSize));
        }
        if (count == 0) return;
        int size = kind == JobKind.Logits ? _outputSize : _pooledSize;
        var pixels = _pixels.AsSpan(0, count * _inputSize);
        var outputs = _outputs.AsSpan(0, count * size);
        try
        {
            if (kind == JobKind.Logits) _model.Forward(pixels, outputs, count);
            else _model.ForwardPooled(pixels, outputs, count);
        }
        catch (Exception e)
        {
            // A failing pass fails its requests (500), never the loop: the next batch still runs.
            foreach (var job in batch)
            {
                if (job.Kind == kind) job.TrySetException(e);
            }
            return;
        }
        _metrics.Batch(count);
        int index = 0;
        foreach (var job in batch)
        {
            if (job.Kind == kind) job.TrySetResult(outputs.Slice(index++ * size, size).ToArray());
        }
    }

    /// <summary>Refuses new jobs, finishes every queued one, then frees the model.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        _model.Dispose();
    }
}
