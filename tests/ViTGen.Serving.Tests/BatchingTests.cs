using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ViTGen.Serving.Tests;

/// <summary>
/// The micro-batcher through HTTP, with <see cref="GatedModel"/> holding a forward pass open so the queue's state is
/// set up exactly before anything is asserted (no timing): full-queue refusals, batches, the delay, graceful stop.
/// </summary>
public sealed class BatchingTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(1);

    private static Task<HttpResponseMessage> Embed(RunningServer server, byte value) =>
        server.Client.PostAsync("/v1/embed", RunningServer.Body(GatedModel.Image(value)));

    private static async Task AssertAnswer(Task<HttpResponseMessage> request, byte value)
    {
        using var response = await request;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var served = JsonSerializer.Deserialize<float[]>(await response.Content.ReadAsStringAsync())!;
        var expected = GatedModel.Expected(value);
        Assert.Equal(expected.Length, served.Length);
        for (int k = 0; k < expected.Length; k++) Assert.Equal(expected[k], served[k], 1e-6f);
    }

    /// <summary>Waits until the first pass has started (and is held at the gate).</summary>
    private static async Task InForward(GatedModel model) => Assert.True(await model.Entered.WaitAsync(Patience), "no forward pass started");

    /// <summary>Waits until <paramref name="depth"/> images wait in the queue.</summary>
    private static async Task Queued(RunningServer server, int depth)
    {
        var batcher = server.Server<GatedModel>().Batcher!;
        var deadline = DateTime.UtcNow + Patience;
        while (batcher.QueueDepth < depth)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{batcher.QueueDepth} of {depth} requests queued");
            await Task.Delay(5);
        }
        Assert.Equal(depth, batcher.QueueDepth);
    }

    [Fact]
    public async Task A_full_queue_is_a_503_with_retry_after_at_once_and_the_queued_requests_still_complete()
    {
        var model = new GatedModel();
        await using var server = await RunningServer.GatedAsync(model, o => { o.MaxBatch = 1; o.MaxQueue = 2; o.MaxDelay = TimeSpan.Zero; });
        var first = Embed(server, 10);
        await InForward(model);
        var queued = new[] { Embed(server, 20), Embed(server, 30) };
        await Queued(server, 2);

        foreach (var route in new[] { "/v1/embed", "/v1/classify" })
        {
            // Answered while the gate is still closed: refused at once, not queued.
            using var refused = await server.Client.PostAsync(route, RunningServer.Body(GatedModel.Image(40)));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
            Assert.Contains("queue is full", JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        }
        Assert.False(first.IsCompleted);

        model.Open();
        await AssertAnswer(first, 10);
        await AssertAnswer(queued[0], 20);
        await AssertAnswer(queued[1], 30);
        Assert.Equal([1, 1, 1], model.Batches);
        Assert.Contains("vitgen_requests_total{route=\"/v1/embed\",status=\"503\"} 1\n", server.Server<GatedModel>().Metrics.Prometheus(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_that_wait_together_run_as_one_batch_and_each_gets_its_own_answer()
    {
        var model = new GatedModel();
        await using var server = await RunningServer.GatedAsync(model, o => { o.MaxBatch = 8; o.MaxDelay = TimeSpan.Zero; });
        var first = Embed(server, 1);
        await InForward(model);
        var waiting = Enumerable.Range(2, 5).Select(v => (Value: (byte)v, Request: Embed(server, (byte)v))).ToList();
        await Queued(server, 5);

        model.Open();
        await AssertAnswer(first, 1);
        foreach (var (value, request) in waiting) await AssertAnswer(request, value);
        Assert.Equal([1, 5], model.Batches);
        string metrics = await server.Client.GetStringAsync("/metrics");
        Assert.Contains("vitgen_batch_size_count 2\n", metrics, StringComparison.Ordinal);
        Assert.Contains("vitgen_batch_size_sum 6\n", metrics, StringComparison.Ordinal);
        Assert.Contains("vitgen_batch_size_bucket{le=\"1\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("vitgen_batch_size_bucket{le=\"4\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("vitgen_batch_size_bucket{le=\"8\"} 2\n", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Max_batch_caps_a_pass_and_classify_and_embed_run_as_separate_passes()
    {
        var model = new GatedModel();
        await using var server = await RunningServer.GatedAsync(model, o => { o.MaxBatch = 3; o.MaxDelay = TimeSpan.Zero; });
        var first = Embed(server, 1);
        await InForward(model);
        var embeds = Enumerable.Range(2, 4).Select(v => Embed(server, (byte)v)).ToList();
        await Queued(server, 4);
        var classify = server.Client.PostAsync("/v1/classify?top=3", RunningServer.Body(GatedModel.Image(255)));
        await Queued(server, 5);

        model.Open();
        await AssertAnswer(first, 1);
        for (int i = 0; i < embeds.Count; i++) await AssertAnswer(embeds[i], (byte)(i + 2));
        using var answer = await classify;
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        var json = JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("c", json.GetProperty("label").GetString()); // logits 1, 2, 3: class 2 is the label list's "c"
        // 1, then the first 3 queued (all embeds), then the last embed and the classify image: one pass each kind.
        Assert.Equal([1, 3, 1, 1], model.Batches);
    }

    [Fact]
    public async Task The_delay_gathers_requests_that_arrive_after_the_first()
    {
        var model = new GatedModel(open: true);
        // A delay far longer than the test: the batch runs because it is full, not because the delay ran out.
        await using var server = await RunningServer.GatedAsync(model, o => { o.MaxBatch = 4; o.MaxDelay = TimeSpan.FromMinutes(10); });
        var requests = Enumerable.Range(1, 4).Select(v => (Value: (byte)v, Request: Embed(server, (byte)v))).ToList();
        foreach (var (value, request) in requests) await AssertAnswer(request, value);
        Assert.Equal([4], model.Batches);
    }

    [Fact]
    public async Task Stopping_finishes_the_requests_in_flight_then_frees_the_model()
    {
        var model = new GatedModel();
        var server = await RunningServer.GatedAsync(model, o => { o.MaxBatch = 1; o.MaxDelay = TimeSpan.Zero; });
        var first = Embed(server, 10);
        await InForward(model);
        var queued = new[] { Embed(server, 20), Embed(server, 30) };
        await Queued(server, 2);

        var stopping = server.App.StopAsync(); // what SIGTERM does
        Assert.False(stopping.IsCompleted);
        model.Open();
        await AssertAnswer(first, 10);
        await AssertAnswer(queued[0], 20);
        await AssertAnswer(queued[1], 30);
        await stopping;
        Assert.False(model.Disposed); // the container frees it, after the server has drained
        await server.App.DisposeAsync();
        Assert.True(model.Disposed);
        await Assert.ThrowsAsync<HttpRequestException>(() => server.Client.GetAsync("/healthz"));
        server.Client.Dispose();
    }

    [Fact]
    public async Task Healthz_is_503_until_the_model_is_loaded()
    {
        // WebApplication starts its hosted services (the loader) before Kestrel listens; a generic host whose web host
        // is configured first listens first, and then requests can arrive while the model loads.
        using var loading = new ManualResetEventSlim();
        using var host = Host.CreateDefaultBuilder()
            .ConfigureLogging(logging => logging.ClearProviders())
            .ConfigureWebHost(web => web.UseKestrel().UseUrls("http://127.0.0.1:0")
                .Configure(app => app.UseRouting().UseEndpoints(endpoints => endpoints.MapVitEndpoints<GatedModel>())))
            .ConfigureServices(services => services.AddRouting().AddVitModel(GatedModel.Architecture, _ =>
            {
                Assert.True(loading.Wait(Patience));
                return new GatedModel(open: true);
            }, o => o.Preprocessing = GatedModel.Preprocessing))
            .Build();
        var starting = host.StartAsync();
        var addresses = host.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
        var deadline = DateTime.UtcNow + Patience;
        while (!addresses.Any(a => !a.EndsWith(":0", StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, "the server never bound");
            await Task.Delay(5);
        }
        using var client = new HttpClient { BaseAddress = new Uri(addresses.Single()) };
        using (var health = await client.GetAsync("/healthz")) Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        using (var early = await client.PostAsync("/v1/embed", RunningServer.Body(GatedModel.Image(1))))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, early.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), early.Headers.RetryAfter?.Delta);
        }
        loading.Set();
        await starting;
        using (var health = await client.GetAsync("/healthz")) Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        await AssertAnswer(client.PostAsync("/v1/embed", RunningServer.Body(GatedModel.Image(7))), 7);
        await host.StopAsync();
    }
}
