using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace ViTGen;

/// <summary>
/// The HTTP handlers. Plain <see cref="RequestDelegate"/>s writing JSON with <see cref="Utf8JsonWriter"/>: no
/// reflection, no request-delegate generator, so they work unchanged under NativeAOT. Every route takes every method
/// and answers a wrong one with 405 itself, so those are counted and get a JSON error like every other refusal.
/// </summary>
internal static class VitEndpoints
{
    private const string JsonType = "application/json";

    /// <summary>The default of <c>?top=</c>: what <c>vitgen classify</c> lists.</summary>
    private const int DefaultTop = 3;

    public static void Map(IEndpointRouteBuilder group, VitModelServer server)
    {
        Route(group, server, "/v1/classify", "POST", context => ClassifyAsync(context, server));
        Route(group, server, "/v1/embed", "POST", context => EmbedAsync(context, server));
        Route(group, server, "/healthz", "GET", context => HealthAsync(context, server));
        Route(group, server, "/metrics", "GET", context => MetricsAsync(context, server));
    }

    private static void Route(IEndpointRouteBuilder group, VitModelServer server, string pattern, string method, RequestDelegate handler)
    {
        group.Map(pattern, async context =>
        {
            long start = Stopwatch.GetTimestamp();
            try
            {
                bool allowed = context.Request.Method == method || (method == "GET" && HttpMethods.IsHead(context.Request.Method));
                if (allowed) await handler(context).ConfigureAwait(false);
                else
                {
                    context.Response.Headers.Allow = method == "GET" ? "GET, HEAD" : method;
                    await ErrorAsync(context, StatusCodes.Status405MethodNotAllowed, $"{pattern} takes {method}, not {context.Request.Method}").ConfigureAwait(false);
                }
            }
            catch (Exception) when (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
            {
                server.Metrics.Request(pattern, StatusCodes.Status500InternalServerError, Stopwatch.GetElapsedTime(start));
                throw;
            }
            server.Metrics.Request(pattern, context.Response.StatusCode, Stopwatch.GetElapsedTime(start));
        });
    }

    private static async Task ClassifyAsync(HttpContext context, VitModelServer server)
    {
        int classes = server.Architecture.OutputSize;
        if (!TryTop(context.Request.Query["top"], out int top, out string? problem))
        {
            await ErrorAsync(context, StatusCodes.Status400BadRequest, problem!).ConfigureAwait(false);
            return;
        }
        var logits = await RunAsync(context, server, JobKind.Logits).ConfigureAwait(false);
        if (logits is null) return;
        Classification.Probabilities(logits);
        var ranked = Classification.Rank(logits, Math.Min(top, classes));
        await JsonAsync(context, StatusCodes.Status200OK, writer =>
        {
            writer.WriteStartObject();
            Classification.WriteFields(writer, logits, ranked, server.Options.Labels);
            writer.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static async Task EmbedAsync(HttpContext context, VitModelServer server)
    {
        var pooled = await RunAsync(context, server, JobKind.Pooled).ConfigureAwait(false);
        if (pooled is null) return;
        await JsonAsync(context, StatusCodes.Status200OK, writer =>
        {
            writer.WriteStartArray();
            foreach (float value in pooled) writer.WriteNumberValue(value);
            writer.WriteEndArray();
        }).ConfigureAwait(false);
    }

    private static Task HealthAsync(HttpContext context, VitModelServer server)
    {
        bool loaded = server.Batcher is not null;
        if (!loaded) context.Response.Headers.RetryAfter = "1";
        return JsonAsync(context, loaded ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable,
            writer =>
            {
                writer.WriteStartObject();
                writer.WriteString("status", loaded ? "ready" : "loading");
                writer.WriteEndObject();
            });
    }

    private static async Task MetricsAsync(HttpContext context, VitModelServer server)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await context.Response.WriteAsync(server.Metrics.Prometheus(), context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// The shared path of classify and embed: read the body, decode and preprocess it on this request's thread, queue
    /// it, await its output. Null after answering with an error (or when the client went away).
    /// </summary>
    private static async Task<float[]?> RunAsync(HttpContext context, VitModelServer server, JobKind kind)
    {
        var batcher = server.Batcher;
        if (batcher is null)
        {
            context.Response.Headers.RetryAfter = "1";
            await ErrorAsync(context, StatusCodes.Status503ServiceUnavailable, "the model is still loading").ConfigureAwait(false);
            return null;
        }
        var body = await ReadBodyAsync(context, server.Options.MaxBodyBytes).ConfigureAwait(false);
        if (body is null) return null;

        var pixels = ArrayPool<float>.Shared.Rent(batcher.InputSize);
        try
        {
            try
            {
                var image = VitImage.Decode(body, "the body", new VitImageOptions { MaxPixels = server.Options.MaxPixels });
                server.Preprocessing.Apply(image, pixels.AsSpan(0, batcher.InputSize));
            }
            catch (VitImageException e)
            {
                await ErrorAsync(context, StatusCodes.Status400BadRequest, e.Message).ConfigureAwait(false);
                return null;
            }
            var job = new Job(pixels, kind);
            if (!batcher.TryEnqueue(job))
            {
                context.Response.Headers.RetryAfter = "1";
                await ErrorAsync(context, StatusCodes.Status503ServiceUnavailable,
                    $"the queue is full ({server.Options.MaxQueue} images waiting); retry later").ConfigureAwait(false);
                return null;
            }
            return await job.Task.ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(pixels);
        }
    }

    /// <summary>
    /// The whole body, or null after answering 413 (over <paramref name="limit"/>: from Content-Length before reading
    /// any of it, else as soon as the count passes the limit) or 400 (empty, or shorter than its Content-Length).
    /// </summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpContext context, long limit)
    {
        var request = context.Request;
        long? declared = request.ContentLength;
        if (declared > limit)
        {
            await ErrorAsync(context, StatusCodes.Status413PayloadTooLarge, $"the body is {declared} bytes; the limit is {limit}").ConfigureAwait(false);
            return null;
        }
        // The server-wide limit may be higher (another endpoint's need): this route's is the model's.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature) feature.MaxRequestBodySize = limit;
        try
        {
            byte[] body;
            if (declared is long length)
            {
                body = new byte[length];
                int read = await request.Body.ReadAtLeastAsync(body, body.Length, throwOnEndOfStream: false, context.RequestAborted).ConfigureAwait(false);
                if (read < length)
                {
                    await ErrorAsync(context, StatusCodes.Status400BadRequest, $"the body ended after {read} of its {length} bytes").ConfigureAwait(false);
                    return null;
                }
            }
            else
            {
                // Chunked: grow a buffer, stopping as soon as the body passes the limit.
                var buffer = new byte[(int)Math.Min(limit + 1, 64 * 1024)];
                int total = 0;
                while (true)
                {
                    if (total == buffer.Length)
                    {
                        if (total > limit) break;
                        Array.Resize(ref buffer, (int)Math.Min(Math.Min(limit + 1, Array.MaxLength), (long)buffer.Length * 2));
                    }
                    int read = await request.Body.ReadAsync(buffer.AsMemory(total), context.RequestAborted).ConfigureAwait(false);
                    if (read == 0) break;
                    total += read;
                }
                if (total > limit)
                {
                    await ErrorAsync(context, StatusCodes.Status413PayloadTooLarge, $"the body is over the limit of {limit} bytes").ConfigureAwait(false);
                    return null;
                }
                body = buffer[..total];
            }
            if (body.Length == 0)
            {
                await ErrorAsync(context, StatusCodes.Status400BadRequest, "the body is empty: send the image file's bytes").ConfigureAwait(false);
                return null;
            }
            return body;
        }
        catch (BadHttpRequestException e)
        {
            // Kestrel's own refusals: 413 past MaxRequestBodySize, 400 for a malformed or cut-off body.
            await ErrorAsync(context, e.StatusCode, e.Message).ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException && context.RequestAborted.IsCancellationRequested)
        {
            return null; // the client went away: nobody to answer
        }
    }

    /// <summary>Parses <c>?top=</c>: absent is <see cref="DefaultTop"/>; otherwise exactly one whole number of at least 1.</summary>
    private static bool TryTop(Microsoft.Extensions.Primitives.StringValues values, out int top, out string? problem)
    {
        top = DefaultTop;
        problem = null;
        if (values.Count == 0) return true;
        if (values.Count > 1) problem = "top is given more than once";
        else if (!int.TryParse(values[0], NumberStyles.None, CultureInfo.InvariantCulture, out top) || top < 1)
            problem = $"top must be a whole number of at least 1, not '{values[0]}'";
        return problem is null;
    }

    private static Task ErrorAsync(HttpContext context, int status, string message) => JsonAsync(context, status, writer =>
    {
        writer.WriteStartObject();
        writer.WriteString("error", message);
        writer.WriteEndObject();
    });

    private static async Task JsonAsync(HttpContext context, int status, Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer)) body(writer);
        context.Response.StatusCode = status;
        context.Response.ContentType = JsonType;
        context.Response.ContentLength = buffer.WrittenCount;
        if (HttpMethods.IsHead(context.Request.Method)) return;
        try
        {
            await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
    }
}
