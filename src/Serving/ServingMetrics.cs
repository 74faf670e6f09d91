using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace ViTGen;

/// <summary>
/// The server's instruments on a <see cref="Meter"/> named <see cref="MeterName"/> (so dotnet-counters or an
/// OpenTelemetry exporter can listen too), and a <see cref="MeterListener"/> of this meter alone that keeps the totals
/// <c>GET /metrics</c> prints in Prometheus' text format. A hand-written exporter rather than a package: this one file,
/// reflection-free under NativeAOT, and knows the bucket bounds of each histogram.
/// </summary>
internal sealed class ServingMetrics : IDisposable
{
    public const string MeterName = "ViTGen.Serving";

    private const string Requests = "vitgen_requests";
    private const string Duration = "vitgen_request_duration_seconds";
    private const string BatchSize = "vitgen_batch_size";
    private const string QueueDepth = "vitgen_queue_depth";

    /// <summary>The families in print order: Prometheus name, type, help, and the histogram's upper bounds.</summary>
    private static readonly (string Instrument, string Name, string Type, string Help, double[] Bounds)[] Families =
    [
        (Requests, "vitgen_requests_total", "counter", "Requests answered, by route and status code.", []),
        (Duration, Duration, "histogram", "Seconds from a request reaching its handler to its answer, by route.",
            [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
        (BatchSize, BatchSize, "histogram", "Images per batched forward pass.", [1, 2, 4, 8, 16, 32, 64, 128, 256]),
        (QueueDepth, QueueDepth, "gauge", "Images waiting for the batcher.", []),
    ];

    private readonly Meter _meter = new(MeterName);
    private readonly MeterListener _listener = new();
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;
    private readonly Histogram<int> _batchSize;
    private readonly Lock _gate = new();

    /// <summary>Per family, per label set (already in Prometheus' <c>{a="b"}</c> form): the running totals.</summary>
    private readonly Dictionary<string, SortedDictionary<string, Series>> _series = new(StringComparer.Ordinal);

    private Func<int> _queueDepth = () => 0;

    public ServingMetrics()
    {
        _requests = _meter.CreateCounter<long>(Requests, description: "Requests answered, by route and status code.");
        _duration = _meter.CreateHistogram<double>(Duration, unit: "s", description: "Request duration.");
        _batchSize = _meter.CreateHistogram<int>(BatchSize, description: "Images per batched forward pass.");
        _meter.CreateObservableGauge(QueueDepth, () => _queueDepth(), description: "Images waiting for the batcher.");
        foreach (var family in Families) _series[family.Instrument] = new(StringComparer.Ordinal);

        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, _meter)) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((i, value, tags, _) => Record(i.Name, value, tags));
        _listener.SetMeasurementEventCallback<int>((i, value, tags, _) => Record(i.Name, value, tags));
        _listener.SetMeasurementEventCallback<double>((i, value, tags, _) => Record(i.Name, value, tags));
        _listener.Start();
    }

    /// <summary>Where the queue depth gauge reads from (the batcher, once the model is loaded).</summary>
    public void ObserveQueueDepth(Func<int> depth) => _queueDepth = depth;

    public void Request(string route, int status, TimeSpan elapsed)
    {
        var routeTag = new KeyValuePair<string, object?>("route", route);
        _requests.Add(1, routeTag, new KeyValuePair<string, object?>("status", status.ToString(CultureInfo.InvariantCulture)));
        _duration.Record(elapsed.TotalSeconds, routeTag);
    }

    public void Batch(int images) => _batchSize.Record(images);

    /// <summary>Every family in Prometheus' text exposition format (version 0.0.4).</summary>
    public string Prometheus()
    {
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        lock (_gate)
        {
            foreach (var (instrument, name, type, help, bounds) in Families)
            {
                text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
                text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
                var series = _series[instrument];
                if (series.Count == 0 && type != "histogram") Sample(text, name, "", 0);
                foreach (var (labels, values) in series)
                {
                    if (type != "histogram")
                    {
                        Sample(text, name, labels, values.Value);
                        continue;
                    }
                    string separator = labels.Length == 0 ? "{" : labels[..^1] + ",";
                    for (int b = 0; b < bounds.Length; b++)
                        Sample(text, name + "_bucket", separator + "le=\"" + Number(bounds[b]) + "\"}", values.Buckets[b]);
                    Sample(text, name + "_bucket", separator + "le=\"+Inf\"}", values.Count);
                    Sample(text, name + "_sum", labels, values.Value);
                    Sample(text, name + "_count", labels, values.Count);
                }
            }
        }
        return text.ToString();
    }

    private void Record(string instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string labels = Labels(tags);
        int family = Array.FindIndex(Families, f => f.Instrument == instrument);
        if (family < 0) return;
        var (_, _, type, _, bounds) = Families[family];
        lock (_gate)
        {
            var all = _series[instrument];
            if (!all.TryGetValue(labels, out var series)) all[labels] = series = new Series(bounds.Length);
            switch (type)
            {
                case "gauge":
                    series.Value = value;
                    break;
                case "counter":
                    series.Value += value;
                    break;
                default:
                    series.Value += value;
                    series.Count++;
                    for (int b = 0; b < bounds.Length; b++)
                    {
                        if (value <= bounds[b]) series.Buckets[b]++;
                    }
                    break;
            }
        }
    }

    /// <summary>Tags as Prometheus labels, <c>{route="/v1/classify",status="200"}</c>, values escaped.</summary>
    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty) return "";
        var text = new StringBuilder("{");
        foreach (var (key, value) in tags)
        {
            if (text.Length > 1) text.Append(',');
            string escaped = Convert.ToString(value, CultureInfo.InvariantCulture)!.Replace("\\", "\\\\", StringComparison.Ordinal)
                .Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
            text.Append(key).Append("=\"").Append(escaped).Append('"');
        }
        return text.Append('}').ToString();
    }

    private static void Sample(StringBuilder text, string name, string labels, double value) =>
        text.Append(name).Append(labels).Append(' ').Append(Number(value)).Append('\n');

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        _listener.Dispose();
        _meter.Dispose();
    }

    /// <summary>A counter's or gauge's value, or a histogram's sum, count and cumulative bucket counts.</summary>
    private sealed class Series(int buckets)
    {
        public double Value;
        public long Count;
        public readonly long[] Buckets = new long[buckets];
    }
}
