using System.Collections.Concurrent;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ViTGen.Cli.Commands;

namespace ViTGen.Serving.Tests;

/// <summary>A started server on a loopback port Kestrel picked, and a client for it.</summary>
internal sealed class RunningServer : IAsyncDisposable
{
    private RunningServer(WebApplication app)
    {
        App = app;
        Client = new HttpClient { BaseAddress = new Uri(app.Urls.Single()), Timeout = TimeSpan.FromMinutes(2) };
    }

    public WebApplication App { get; }

    public HttpClient Client { get; }

    public Uri Address => Client.BaseAddress!;

    /// <summary>The served model's server object (batcher, metrics), as registered for <typeparamref name="TModel"/>.</summary>
    public VitModelServer Server<TModel>() => App.Services.GetRequiredKeyedService<VitModelServer>(typeof(TModel));

    public static async Task<RunningServer> StartAsync(WebApplication app)
    {
        await app.StartAsync();
        return new RunningServer(app);
    }

    /// <summary><c>vitgen serve</c> on the bundled Fashion-MNIST model.</summary>
    public static Task<RunningServer> BundledAsync(int maxBatch = 16, int maxDelayMs = 1, long maxBodyBytes = 32L << 20, long maxPixels = VitImageOptions.DefaultMaxPixels)
    {
        var model = ModelCommand.Resolve(null) ?? throw new InvalidOperationException("the bundled model does not resolve");
        var settings = new ServeCommand.Settings("http://127.0.0.1:0", Threads: 2, maxBatch, maxDelayMs, MaxQueue: 256, maxBodyBytes, maxPixels);
        return StartAsync(ServeCommand.Build(model, settings, Quiet));
    }

    /// <summary>ViTGen.Serving over <paramref name="model"/>, as a user's program would host it.</summary>
    public static Task<RunningServer> GatedAsync(GatedModel model, Action<VitServingOptions> configure)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        Quiet(builder);
        builder.Services.AddVitModel(GatedModel.Architecture, _ => model, options =>
        {
            options.Preprocessing = GatedModel.Preprocessing;
            options.Labels = ["a", "b", "c"];
            configure(options);
        });
        var app = builder.Build();
        app.MapVitEndpoints<GatedModel>();
        return StartAsync(app);
    }

    private static void Quiet(WebApplicationBuilder builder) => builder.Logging.ClearProviders();

    public static ByteArrayContent Body(byte[] data)
    {
        var content = new ByteArrayContent(data);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return content;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>
/// A fake model for the batcher's tests: each Forward records its batch size, signals <see cref="Entered"/>, and
/// waits for <see cref="Open"/>; outputs are a function of each image's first pixel, so every request can check it
/// got its own answer.
/// </summary>
internal sealed class GatedModel : IVitModel
{
    /// <summary>8x8 gray images, 3 classes, dim 8 (only the sizes matter here).</summary>
    public static VitArchitecture Architecture { get; } = new() { Patch = 4, Dim = 8, Depth = 1, Heads = 1, ImageSize = 8, Channels = 1, Classes = 3, MlpDim = 16 };

    /// <summary>Identity resize, pixel / 255.</summary>
    public static VitPreprocessing Preprocessing { get; } = VitPreprocessing.Timm(8, 1.0, VitInterpolation.Bicubic, [0f], [1f]);

    private readonly ManualResetEventSlim _gate;

    public GatedModel(bool open = false) => _gate = new ManualResetEventSlim(open);

    public ConcurrentQueue<int> Batches { get; } = new();

    public SemaphoreSlim Entered { get; } = new(0);

    public bool Disposed { get; private set; }

    public void Open() => _gate.Set();

    /// <summary>A PGM whose every pixel is <paramref name="value"/>: its first preprocessed float is value / 255.</summary>
    public static byte[] Image(byte value) => [.. "P5\n8 8\n255\n"u8, .. Enumerable.Repeat(value, 64)];

    /// <summary>What <see cref="ForwardPooled"/> answers for <see cref="Image"/>(<paramref name="value"/>).</summary>
    public static float[] Expected(byte value) => Enumerable.Range(0, 8).Select(k => value / 255f + k).ToArray();

    public void Forward(ReadOnlySpan<float> pixels, Span<float> output, int batch = 1)
    {
        Wait(batch);
        for (int i = 0; i < batch; i++)
        {
            for (int k = 0; k < 3; k++) output[i * 3 + k] = pixels[i * 64] * (k + 1);
        }
    }

    public void ForwardPooled(ReadOnlySpan<float> pixels, Span<float> pooled, int batch = 1)
    {
        Wait(batch);
        for (int i = 0; i < batch; i++)
        {
            for (int k = 0; k < 8; k++) pooled[i * 8 + k] = pixels[i * 64] + k;
        }
    }

    private void Wait(int batch)
    {
        Batches.Enqueue(batch);
        Entered.Release();
        if (!_gate.Wait(TimeSpan.FromMinutes(2))) throw new TimeoutException("the test never opened the gate");
    }

    public void Dispose() => Disposed = true;
}
