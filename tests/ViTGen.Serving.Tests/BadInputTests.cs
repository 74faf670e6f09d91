using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ViTGen.Cli.Commands;
using ViTGen.Tests.Imaging;

namespace ViTGen.Serving.Tests;

/// <summary>
/// Every refusal of the contract: a typed status and a JSON <c>{"error": ...}</c> naming the problem, never a 500, and
/// the server still answering afterwards.
/// </summary>
public sealed class BadInputTests
{
    private static async Task<string> ErrorOf(HttpResponseMessage response, HttpStatusCode status)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        string? error = JsonDocument.Parse(body).RootElement.GetProperty("error").GetString();
        Assert.False(string.IsNullOrWhiteSpace(error));
        return error!;
    }

    private static async Task AssertStillServes(RunningServer server)
    {
        var sample = BundledModel.Samples().First();
        using var response = await server.Client.PostAsync("/v1/classify", RunningServer.Body(sample.Data));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Every_hostile_image_is_a_400_naming_the_problem()
    {
        await using var server = await RunningServer.BundledAsync();
        var cases = HostileImages.All().Where(c => c.Data.Length > 0).ToList();
        Assert.Contains(cases, c => c.IsBomb);
        Assert.Contains(cases, c => c.Name.Contains("truncated", StringComparison.Ordinal));
        long before = GC.GetTotalAllocatedBytes(precise: true);
        foreach (var route in new[] { "/v1/classify", "/v1/embed" })
        {
            foreach (var hostile in cases)
            {
                using var response = await server.Client.PostAsync(route, RunningServer.Body(hostile.Data));
                string error = await ErrorOf(response, HttpStatusCode.BadRequest);
                Assert.True(error.Contains(hostile.MessageContains, StringComparison.Ordinal), $"{hostile.Name} on {route}: '{error}'");
            }
        }
        // Bombs are refused from the header: the whole run allocates far less than one bomb's pixels (16000^2 x 3 bytes).
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.True(allocated < 256L << 20, $"{allocated >> 20} MB allocated");
        await AssertStillServes(server);
    }

    [Fact]
    public async Task An_image_over_max_pixels_is_refused_from_its_header()
    {
        await using var server = await RunningServer.BundledAsync(maxPixels: 28 * 28 - 1);
        using var response = await server.Client.PostAsync("/v1/classify", RunningServer.Body(BundledModel.Samples().First().Data));
        Assert.Contains(HostileImages.LimitMessage, await ErrorOf(response, HttpStatusCode.BadRequest), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_body_is_a_400()
    {
        await using var server = await RunningServer.BundledAsync();
        foreach (var route in new[] { "/v1/classify", "/v1/embed" })
        {
            using var response = await server.Client.PostAsync(route, RunningServer.Body([]));
            Assert.Contains("empty", await ErrorOf(response, HttpStatusCode.BadRequest), StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("top=0")]
    [InlineData("top=-1")]
    [InlineData("top=x")]
    [InlineData("top=1.5")]
    [InlineData("top=")]
    [InlineData("top=99999999999")]
    [InlineData("top=1&top=2")]
    public async Task A_bad_top_is_a_400(string query)
    {
        await using var server = await RunningServer.BundledAsync();
        using var response = await server.Client.PostAsync("/v1/classify?" + query, RunningServer.Body(BundledModel.Samples().First().Data));
        Assert.Contains("top", await ErrorOf(response, HttpStatusCode.BadRequest), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Top_larger_than_the_classes_lists_every_class()
    {
        await using var server = await RunningServer.BundledAsync();
        using var response = await server.Client.PostAsync("/v1/classify?top=1000", RunningServer.Body(BundledModel.Samples().First().Data));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var top = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("top");
        Assert.Equal(10, top.GetArrayLength());
    }

    [Theory]
    [InlineData("GET", "/v1/classify", "POST")]
    [InlineData("PUT", "/v1/classify", "POST")]
    [InlineData("DELETE", "/v1/embed", "POST")]
    [InlineData("POST", "/healthz", "GET, HEAD")]
    [InlineData("POST", "/metrics", "GET, HEAD")]
    public async Task A_wrong_method_is_a_405_with_allow(string method, string route, string allow)
    {
        await using var server = await RunningServer.BundledAsync();
        using var response = await server.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), route));
        await ErrorOf(response, HttpStatusCode.MethodNotAllowed);
        Assert.Equal(allow, string.Join(", ", response.Content.Headers.Allow));
    }

    [Fact]
    public async Task A_body_over_the_limit_is_a_413_whether_its_length_is_declared_or_chunked()
    {
        var image = BundledModel.Samples().First().Data;
        await using var server = await RunningServer.BundledAsync(maxBodyBytes: image.Length - 1);
        // A connection each: the server closes one whose refused body it did not read, and a pooled client would reuse it.
        using (var client = new HttpClient { BaseAddress = server.Address })
        using (var declared = await client.PostAsync("/v1/classify", RunningServer.Body(image)))
            Assert.Contains("limit", await ErrorOf(declared, HttpStatusCode.RequestEntityTooLarge), StringComparison.Ordinal);
        var chunked = new StreamContent(new MemoryStream(image));
        chunked.Headers.ContentLength = null;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/embed") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using (var client = new HttpClient { BaseAddress = server.Address })
        using (var response = await client.SendAsync(request)) await ErrorOf(response, HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task A_declared_huge_body_is_refused_before_it_is_sent()
    {
        await using var server = await RunningServer.BundledAsync();
        // Declares 1 GB and sends 10 bytes: the answer must come from the header alone (the rest never comes).
        using var socket = new TcpClient();
        await socket.ConnectAsync(server.Address.Host, server.Address.Port);
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /v1/classify HTTP/1.1\r\nHost: {server.Address.Authority}\r\nContent-Length: 1000000000\r\n\r\n0123456789"));
        var buffer = new byte[4096];
        int read = await stream.ReadAsync(buffer);
        string answer = Encoding.ASCII.GetString(buffer, 0, read);
        Assert.StartsWith("HTTP/1.1 413 ", answer, StringComparison.Ordinal);
        await AssertStillServes(server);
    }

    [Fact]
    public async Task A_body_shorter_than_its_content_length_is_a_400_or_a_dropped_connection_never_a_500()
    {
        await using var server = await RunningServer.BundledAsync();
        var image = BundledModel.Samples().First().Data;
        using (var socket = new TcpClient())
        {
            await socket.ConnectAsync(server.Address.Host, server.Address.Port);
            var stream = socket.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /v1/classify HTTP/1.1\r\nHost: {server.Address.Authority}\r\nContent-Length: {image.Length}\r\n\r\n"));
            await stream.WriteAsync(image.AsMemory(0, image.Length / 2));
            socket.Client.Shutdown(SocketShutdown.Send); // the client gives up half way
            var buffer = new byte[4096];
            string answer;
            try
            {
                answer = Encoding.ASCII.GetString(buffer, 0, await stream.ReadAsync(buffer));
            }
            catch (IOException)
            {
                answer = ""; // Kestrel reset the connection
            }
            Assert.True(answer.Length == 0 || answer.StartsWith("HTTP/1.1 400 ", StringComparison.Ordinal), answer);
        }
        await AssertStillServes(server);
        Assert.DoesNotContain("status=\"500\"", server.Server<ServeCommand.ServedModel>().Metrics.Prometheus(), StringComparison.Ordinal);
    }
}
