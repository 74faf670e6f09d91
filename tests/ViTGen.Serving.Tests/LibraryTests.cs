using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using ViTGen.Cli.Commands;

namespace ViTGen.Serving.Tests;

/// <summary>The Fashion-MNIST architecture compiled here, as a user declares a model to serve.</summary>
[VitModel(patch: 4, dim: 64, depth: 4, heads: 4, imageSize: 28, channels: 1, classes: 10, mlpDim: 128)]
public sealed partial class UserFashionVit : IVitModel<UserFashionVit>;

/// <summary>ViTGen.Serving as a user's program calls it: <c>AddVitModel&lt;TModel&gt;(weightsPath)</c> and <c>MapVitEndpoints&lt;TModel&gt;</c>.</summary>
public sealed class LibraryTests
{
    [Fact]
    public async Task A_user_model_served_in_a_few_lines_answers_what_vitgen_serve_answers()
    {
        var (config, weights, _) = ModelCommand.Resolve(null)!;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddVitModel<UserFashionVit>(weights, options =>
        {
            options.Preprocessing = config.Preprocessing;
            options.Labels = config.Labels;
        });
        var app = builder.Build();
        app.MapVitEndpoints<UserFashionVit>();
        await using var user = await RunningServer.StartAsync(app);
        await using var cli = await RunningServer.BundledAsync();
        foreach (var (_, data) in BundledModel.Samples())
        {
            foreach (var route in new[] { "/v1/classify?top=10", "/v1/embed" })
            {
                using var mine = await user.Client.PostAsync(route, RunningServer.Body(data));
                using var theirs = await cli.Client.PostAsync(route, RunningServer.Body(data));
                Assert.Equal(HttpStatusCode.OK, mine.StatusCode);
                Assert.Equal(await theirs.Content.ReadAsStringAsync(), await mine.Content.ReadAsStringAsync());
            }
        }
    }

    [Fact]
    public void Bad_options_are_refused_at_registration_naming_the_option()
    {
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        Assert.Contains("MaxBatch", Assert.ThrowsAny<ArgumentException>(() => services.AddVitModel<UserFashionVit>("w.safetensors", o => { o.Preprocessing = GatedModel.Preprocessing; o.MaxBatch = 0; })).Message, StringComparison.Ordinal);
        Assert.Contains("MaxBatch", Assert.ThrowsAny<ArgumentException>(() => services.AddVitModel<UserFashionVit>("w.safetensors", o => { o.Preprocessing = GatedModel.Preprocessing; o.MaxBatch = 10_000_000; })).Message, StringComparison.Ordinal);
        Assert.Contains("MaxBodyBytes", Assert.ThrowsAny<ArgumentException>(() => services.AddVitModel<UserFashionVit>("w.safetensors", o => { o.Preprocessing = GatedModel.Preprocessing; o.MaxBodyBytes = 1L << 40; })).Message, StringComparison.Ordinal);
        Assert.Contains("MaxQueue", Assert.ThrowsAny<ArgumentException>(() => services.AddVitModel<UserFashionVit>("w.safetensors", o => { o.Preprocessing = GatedModel.Preprocessing; o.MaxQueue = 0; })).Message, StringComparison.Ordinal);
        Assert.Contains("MaxDelay", Assert.ThrowsAny<ArgumentException>(() => services.AddVitModel<UserFashionVit>("w.safetensors", o => { o.Preprocessing = GatedModel.Preprocessing; o.MaxDelay = TimeSpan.FromMilliseconds(-1); })).Message, StringComparison.Ordinal);
        // A 1-channel model has no default transform; an 8x8 one makes the wrong number of floats for 28x28.
        Assert.Contains("Preprocessing", Assert.Throws<ArgumentException>(() => services.AddVitModel<UserFashionVit>("w.safetensors")).Message, StringComparison.Ordinal);
        Assert.Contains("784", Assert.Throws<ArgumentException>(() => services.AddVitModel<UserFashionVit>("w.safetensors", o => o.Preprocessing = GatedModel.Preprocessing)).Message, StringComparison.Ordinal);
    }
}
