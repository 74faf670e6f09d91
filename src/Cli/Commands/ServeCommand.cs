using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ViTGen.Cli.Models;

namespace ViTGen.Cli.Commands;

/// <summary>
/// <c>vitgen serve</c>: a compiled model over HTTP (ViTGen.Serving's endpoints on Kestrel), with the model, labels and
/// preprocessing of <c>--model DIR</c> or the bundled Fashion-MNIST model, exactly as <c>classify</c> resolves them.
/// </summary>
internal static class ServeCommand
{
    /// <summary>The options of one server, validated.</summary>
    internal sealed record Settings(string? Urls, int Threads, int MaxBatch, int MaxDelayMs, int MaxQueue, long MaxBodyBytes, long MaxPixels);

    public static Command Create()
    {
        var model = ModelCommand.Model();
        var urls = new Option<string?>("--urls") { Description = "Where to listen, as ASP.NET Core reads it (';'-separated), e.g. http://127.0.0.1:8080. Default: ASPNETCORE_URLS, else http://localhost:5000." };
        var threads = ModelCommand.Threads();
        var defaults = new VitServingOptions();
        var maxBatch = new Option<int>("--max-batch") { Description = "Most images per batched forward pass (1: no batching).", DefaultValueFactory = _ => defaults.MaxBatch };
        var maxDelay = new Option<int>("--max-delay-ms") { Description = "Milliseconds to wait after a batch's first image for more.", DefaultValueFactory = _ => (int)defaults.MaxDelay.TotalMilliseconds };
        var maxQueue = new Option<int>("--max-queue") { Description = "Images that may wait; more are refused with 503 and Retry-After.", DefaultValueFactory = _ => defaults.MaxQueue };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "Largest request body (413 beyond). Default 32 MiB.", DefaultValueFactory = _ => defaults.MaxBodyBytes };
        var maxPixels = ModelCommand.MaxPixels();
        var random = new Option<string?>("--random-weights")
        {
            Description = $"Instead of --model: a benchmark model ({string.Join(", ", ModelCatalog.Benchmarks.Select(m => m.Name))}) with random weights and ImageNet preprocessing, for load tests.",
        };
        var command = new Command("serve", "Serve a compiled ViT over HTTP: POST /v1/classify[?top=K], POST /v1/embed, GET /healthz, GET /metrics.")
            { model, urls, threads, maxBatch, maxDelay, maxQueue, maxBody, maxPixels, random };
        command.SetAction(r => Run(r.GetValue(model), r.GetValue(random), new Settings(r.GetValue(urls), r.GetValue(threads), r.GetValue(maxBatch), r.GetValue(maxDelay),
            r.GetValue(maxQueue), r.GetValue(maxBody), r.GetValue(maxPixels))));
        return command;
    }

    private static int Run(string? modelDirectory, string? randomWeights, Settings settings)
    {
        if (Validate(settings) is { } problem)
        {
            Console.Error.WriteLine("error: " + problem);
            return 2;
        }
        string? temporary = null;
        ModelCommand.Resolved? resolved;
        if (randomWeights is null) resolved = ModelCommand.Resolve(modelDirectory);
        else if (modelDirectory is not null)
        {
            Console.Error.WriteLine("error: --random-weights and --model exclude each other");
            return 2;
        }
        else if (ModelCatalog.Benchmarks.FirstOrDefault(m => m.Name == randomWeights) is not { } entry)
        {
            Console.Error.WriteLine($"error: unknown --random-weights model '{randomWeights}'; choose one of {string.Join(", ", ModelCatalog.Benchmarks.Select(m => m.Name))}");
            return 2;
        }
        else
        {
            temporary = entry.WriteRandomCheckpoint(Path.GetTempPath());
            resolved = new ModelCommand.Resolved(RandomConfig(entry.Architecture), temporary, entry);
        }
        if (resolved is null) return 2;
        try
        {
            using var app = Build(resolved, settings);
            // The random checkpoint is read at start (the weights are packed into the model's own memory).
            if (temporary is not null) app.Lifetime.ApplicationStarted.Register(() => File.Delete(temporary));
            app.Run(); // returns after SIGTERM or Ctrl+C, once the requests in flight are answered
            return 0;
        }
        catch (VitWeightsException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        catch (IOException e)
        {
            // Kestrel cannot bind (address in use, no permission): a usage problem, like a bad option.
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        finally
        {
            if (temporary is not null) File.Delete(temporary);
        }
    }

    /// <summary>A config for a random-weight catalog model: its shapes, timm's ImageNet eval transform, no labels.</summary>
    private static ModelConfig RandomConfig(VitArchitecture a) => new(a.ImageSize, a.Patch, a.Channels, a.Classes, a.Dim, a.Depth, a.Heads, a.MlpDim,
        VitPreprocessing.ImageNetMean.ToArray(), VitPreprocessing.ImageNetStd.ToArray(), 0.875, VitInterpolation.Bicubic, []);

    /// <summary>Why <paramref name="settings"/> cannot be served, or null.</summary>
    internal static string? Validate(Settings settings)
    {
        if (settings.Threads < 1) return "--threads must be at least 1";
        if (settings.MaxBatch is < 1 or > 4096) return $"--max-batch must be 1 to 4096, not {settings.MaxBatch}";
        if (settings.MaxDelayMs is < 0 or > 10_000) return $"--max-delay-ms must be 0 to 10000, not {settings.MaxDelayMs}";
        if (settings.MaxQueue < 1) return $"--max-queue must be at least 1, not {settings.MaxQueue}";
        if (settings.MaxBodyBytes is < 1 or >= 2_147_483_591) return $"--max-body-bytes must be 1 to 2147483590 (one array), not {settings.MaxBodyBytes}";
        if (settings.MaxPixels < 1) return $"--max-pixels must be at least 1, not {settings.MaxPixels}";
        if (settings.Urls is { } urls && urls.Split(';', StringSplitOptions.RemoveEmptyEntries).Any(u => !IsUrl(u)))
            return $"--urls must be http(s)://HOST:PORT addresses separated by ';', not '{urls}'";
        return null;
    }

    private static bool IsUrl(string url) =>
        Uri.TryCreate(url.Replace("://*", "://localhost", StringComparison.Ordinal).Replace("://+", "://localhost", StringComparison.Ordinal), UriKind.Absolute, out var uri)
        && uri.Scheme is "http" or "https";

    /// <summary>The server for <paramref name="model"/>, not started; <paramref name="configure"/> lets tests adjust the host.</summary>
    internal static WebApplication Build(ModelCommand.Resolved model, Settings settings, Action<WebApplicationBuilder>? configure = null)
    {
        var (config, weights, entry) = model;
        var builder = WebApplication.CreateSlimBuilder();
        if (settings.Urls is not null) builder.WebHost.UseUrls(settings.Urls);
        // Startup and shutdown lines stay; a log line per request would cost more than a Fashion-MNIST forward pass.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddVitModel(entry.Architecture, options => new ServedModel(entry.Load(weights, options)), options =>
        {
            options.Threads = settings.Threads;
            options.MaxBatch = settings.MaxBatch;
            options.MaxDelay = TimeSpan.FromMilliseconds(settings.MaxDelayMs);
            options.MaxQueue = settings.MaxQueue;
            options.MaxBodyBytes = settings.MaxBodyBytes;
            options.MaxPixels = settings.MaxPixels;
            options.Preprocessing = config.Preprocessing;
            options.Labels = config.Labels;
        });
        configure?.Invoke(builder);
        var app = builder.Build();
        app.MapVitEndpoints<ServedModel>();
        return app;
    }

    /// <summary>A catalog model (chosen at run time, behind <see cref="ICompiledModel"/>) as the serving layer's model.</summary>
    internal sealed class ServedModel(ICompiledModel model) : IVitModel
    {
        public void Forward(ReadOnlySpan<float> pixels, Span<float> output, int batch = 1) => model.Forward(pixels, output, batch);

        public void ForwardPooled(ReadOnlySpan<float> pixels, Span<float> pooled, int batch = 1) => model.ForwardPooled(pixels, pooled, batch);

        public void Dispose() => model.Dispose();
    }
}
