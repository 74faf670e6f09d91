using System.Buffers.Binary;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ViTGen.Cli;
using ViTGen.Cli.Commands;
using ViTGen.Cli.Tests;
using ViTGen.Cli.Models;

namespace ViTGen.Serving.Tests;

/// <summary>
/// <c>vitgen serve</c> on the bundled Fashion-MNIST model, against <c>vitgen classify --json</c>, the model's own
/// <c>ForwardPooled</c>, and the float64 PyTorch logits of tests/fixtures/fashion/subset.safetensors.
/// </summary>
[Collection(nameof(Console))]
public sealed class BundledModelTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Classify_answers_are_classify_json_lines_without_the_path()
    {
        var cli = CliRunner.Run("classify", "--json", "--top", "4");
        Assert.Equal(0, cli.ExitCode);
        var expected = cli.OutLines.Select(l => JsonNode.Parse(l)!.AsObject()).ToDictionary(o => (string)o["path"]!);
        var samples = BundledModel.Samples().ToList();
        Assert.Equal(samples.Count, expected.Count);

        await using var server = await RunningServer.BundledAsync();
        // All at once, so the batcher puts several in one pass: the answer must not depend on the batch.
        var answers = await Task.WhenAll(samples.Select(s => server.Client.PostAsync("/v1/classify?top=4", RunningServer.Body(s.Data))));
        for (int i = 0; i < samples.Count; i++)
        {
            Assert.Equal(HttpStatusCode.OK, answers[i].StatusCode);
            Assert.Equal("application/json", answers[i].Content.Headers.ContentType?.MediaType);
            string body = await answers[i].Content.ReadAsStringAsync();
            var line = expected[samples[i].Name];
            line.Remove("path");
            Assert.Equal(line.ToJsonString(), body); // byte for byte: same floats, same order, same labels
        }
    }

    [Fact]
    public async Task Classify_matches_the_float64_reference_on_the_fashion_subset()
    {
        const int Images = 96;
        var (pixels, logits) = ReadSubset(Images);
        await using var server = await RunningServer.BundledAsync(maxBatch: 16);
        var answers = await Task.WhenAll(Enumerable.Range(0, Images).Select(async i =>
        {
            byte[] pgm = [.. "P5\n28 28\n255\n"u8, .. pixels.AsSpan(i * 784, 784)];
            using var response = await server.Client.PostAsync("/v1/classify?top=10", RunningServer.Body(pgm));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
        }));

        double error = 0, norm = 0;
        int agree = 0;
        for (int i = 0; i < Images; i++)
        {
            var reference = Softmax(logits.AsSpan(i * 10, 10));
            var served = new double[10];
            Array.Fill(served, double.NaN); // every class must be in `top`, or the error is NaN and the test fails
            foreach (var entry in answers[i].GetProperty("top").EnumerateArray())
                served[entry.GetProperty("index").GetInt32()] = entry.GetProperty("probability").GetDouble();
            for (int k = 0; k < 10; k++)
            {
                error += (served[k] - reference[k]) * (served[k] - reference[k]);
                norm += reference[k] * reference[k];
            }
            if (answers[i].GetProperty("index").GetInt32() == Array.IndexOf(reference, reference.Max())) agree++;
        }
        double relative = Math.Sqrt(error / norm);
        output.WriteLine($"{Images} subset images over HTTP: probabilities vs float64 PyTorch, relative L2 {relative:E2}; argmax agrees on {agree}");
        Assert.True(relative <= 5e-6, $"relative L2 {relative:E2}");
        Assert.Equal(Images, agree);
        Assert.True(server.Server<ServeCommand.ServedModel>().Metrics.Prometheus().Contains("vitgen_requests_total{route=\"/v1/classify\",status=\"200\"} 96\n", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Embed_is_ForwardPooled_of_the_preprocessed_image()
    {
        var (config, weights, entry) = ModelCommand.Resolve(null)!;
        using var model = entry.Load(weights, new VitOptions { Threads = 1 });
        await using var server = await RunningServer.BundledAsync();
        foreach (var (name, data) in BundledModel.Samples())
        {
            var pixels = config.Preprocessing.Apply(VitImage.Decode(data, name));
            var pooled = new float[entry.Architecture.Dim];
            Array.Fill(pooled, float.NaN);
            model.ForwardPooled(pixels, pooled);
            Assert.All(pooled, f => Assert.True(float.IsFinite(f)));

            using var response = await server.Client.PostAsync("/v1/embed", RunningServer.Body(data));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var served = JsonSerializer.Deserialize<float[]>(await response.Content.ReadAsStringAsync())!;
            Assert.Equal(pooled, served); // exact: same pass, floats round-trip through JSON
        }
    }

    [Fact]
    public async Task Healthz_and_metrics_answer_and_count_requests_by_route_and_status()
    {
        await using var server = await RunningServer.BundledAsync();
        using (var health = await server.Client.GetAsync("/healthz")) Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using (var bad = await server.Client.PostAsync("/v1/classify", RunningServer.Body("not an image"u8.ToArray()))) Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        using var metrics = await server.Client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Equal("text/plain", metrics.Content.Headers.ContentType?.MediaType);
        string text = await metrics.Content.ReadAsStringAsync();
        Assert.Contains("vitgen_requests_total{route=\"/healthz\",status=\"200\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("vitgen_requests_total{route=\"/v1/classify\",status=\"400\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("vitgen_request_duration_seconds_count{route=\"/v1/classify\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE vitgen_batch_size histogram\n", text, StringComparison.Ordinal);
        Assert.Contains("vitgen_queue_depth 0\n", text, StringComparison.Ordinal);
    }

    private static double[] Softmax(ReadOnlySpan<double> logits)
    {
        double max = double.NegativeInfinity;
        foreach (double l in logits) max = Math.Max(max, l);
        var e = new double[logits.Length];
        for (int i = 0; i < e.Length; i++) e[i] = Math.Exp(logits[i] - max);
        double sum = e.Sum();
        return e.Select(v => v / sum).ToArray();
    }

    /// <summary>The first <paramref name="count"/> raw images (U8 28x28) and float64 logits of the subset fixture.</summary>
    private static (byte[] Pixels, double[] Logits) ReadSubset(int count)
    {
        byte[] file = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fixtures", "fashion", "subset.safetensors"));
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        var header = JsonDocument.Parse(Encoding.UTF8.GetString(file, 8, headerLength)).RootElement;
        ReadOnlySpan<byte> Tensor(string name, string dtype)
        {
            var tensor = header.GetProperty(name);
            Assert.Equal(dtype, tensor.GetProperty("dtype").GetString());
            var offsets = tensor.GetProperty("data_offsets");
            int start = 8 + headerLength + offsets[0].GetInt32();
            return file.AsSpan(start, 8 + headerLength + offsets[1].GetInt32() - start);
        }
        var pixels = Tensor("images", "U8")[..(count * 784)].ToArray();
        var logitBytes = Tensor("logits", "F64");
        var logits = new double[count * 10];
        for (int i = 0; i < logits.Length; i++) logits[i] = BinaryPrimitives.ReadDoubleLittleEndian(logitBytes[(i * 8)..]);
        return (pixels, logits);
    }
}
