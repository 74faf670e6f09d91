using Microsoft.Extensions.Hosting;

namespace ViTGen;

/// <summary>
/// One served model: its options, its metrics, and (once <see cref="Load"/> has run at host start) its batcher.
/// Registered as a keyed singleton (key: the model type), so the container disposes it after the server has drained.
/// </summary>
internal sealed class VitModelServer(VitArchitecture architecture, VitServingOptions options, Func<VitOptions, IVitModel> load) : IAsyncDisposable
{
    private Batcher? _batcher;

    public VitArchitecture Architecture { get; } = architecture;

    public VitServingOptions Options { get; } = options;

    public VitPreprocessing Preprocessing { get; } = options.PreprocessingFor(architecture);

    public ServingMetrics Metrics { get; } = new();

    /// <summary>The batcher, or null until the model is loaded.</summary>
    public Batcher? Batcher => Volatile.Read(ref _batcher);

    /// <summary>Loads the weights and starts the batcher (once).</summary>
    public void Load()
    {
        if (Batcher is not null) return;
        var model = load(new VitOptions { Threads = Options.Threads });
        Volatile.Write(ref _batcher, new Batcher(model, Architecture, Options, Metrics));
    }

    public async ValueTask DisposeAsync()
    {
        if (Batcher is { } batcher) await batcher.DisposeAsync().ConfigureAwait(false);
        Metrics.Dispose();
    }
}

/// <summary>Loads the model when the host starts; <c>GET /healthz</c> answers 503 until it has.</summary>
internal sealed class VitModelLoader(VitModelServer server) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.Run(server.Load, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
