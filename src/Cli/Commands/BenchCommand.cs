using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text.Json;
using ViTGen.Cli.Models;

namespace ViTGen.Cli.Commands;

/// <summary>
/// <c>vitgen bench</c>: latency of one compiled model on random weights, with the names and shapes that
/// ../shared/peers/export_onnx.py gives ONNX Runtime, so both can be timed in one run.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var names = string.Join(", ", ModelCatalog.Benchmarks.Select(m => m.Name));
        var model = new Option<string>("--model") { Description = $"One of: {names}.", DefaultValueFactory = _ => "b16" };
        var threads = new Option<int>("--threads") { Description = "Threads per forward pass.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var batch = new Option<int>("--batch") { Description = "Images per forward pass.", DefaultValueFactory = _ => 1 };
        var iterations = new Option<int>("--iterations") { Description = "Timed forward passes.", DefaultValueFactory = _ => 20 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed forward passes first.", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print one JSON line." };
        var command = new Command("bench", "Time a compiled ViT (random weights, batch of random images).") { model, threads, batch, iterations, warmup, json };
        command.SetAction(r => Run(r.GetValue(model)!, r.GetValue(threads), r.GetValue(batch), r.GetValue(iterations), r.GetValue(warmup), r.GetValue(json)));
        return command;
    }

    private static int Run(string name, int threads, int batch, int iterations, int warmup, bool json)
    {
        var entry = ModelCatalog.Benchmarks.FirstOrDefault(m => m.Name == name);
        if (entry is null || threads < 1 || batch < 1 || iterations < 1 || warmup < 0)
        {
            Console.Error.WriteLine(entry is null
                ? $"error: unknown model '{name}'; choose one of {string.Join(", ", ModelCatalog.Benchmarks.Select(m => m.Name))}"
                : "error: --threads, --batch and --iterations must be at least 1");
            return 2;
        }
        string weights = entry.WriteRandomCheckpoint(Path.GetTempPath());
        ICompiledModel model;
        try
        {
            model = entry.Load(weights, new VitOptions { Threads = threads });
        }
        finally
        {
            File.Delete(weights);
        }
        using (model)
        {
            var random = new Random(1);
            var pixels = Enumerable.Range(0, batch * entry.Architecture.InputSize).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            var output = new float[batch * entry.Architecture.OutputSize];
            for (int i = 0; i < warmup; i++) model.Forward(pixels, output, batch);
            var times = new double[iterations];
            for (int i = 0; i < iterations; i++)
            {
                long start = Stopwatch.GetTimestamp();
                model.Forward(pixels, output, batch);
                times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            Array.Sort(times);
            double median = iterations % 2 == 1 ? times[iterations / 2] : (times[iterations / 2 - 1] + times[iterations / 2]) / 2;
            Report(entry, threads, batch, median, times[0], json);
        }
        return 0;
    }

    private static void Report(ModelEntry entry, int threads, int batch, double median, double min, bool json)
    {
        double imagesPerSecond = batch * 1000.0 / median;
        double gflops = 2 * entry.MultiplyAdds * batch / (median / 1000.0) / 1e9;
        double peakRss = PeakResidentMegabytes();
        if (!json)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{entry.Name} {entry.Attribute}\n  threads {threads}, batch {batch}: median {median:F2} ms, min {min:F2} ms, {imagesPerSecond:F1} images/s, {gflops:F1} GFLOP/s, peak RSS {peakRss:F0} MB, kernels {KernelTier()}"));
            return;
        }
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteString("model", entry.Name);
            writer.WriteNumber("threads", threads);
            writer.WriteNumber("batch", batch);
            writer.WriteNumber("median_ms", Math.Round(median, 3));
            writer.WriteNumber("min_ms", Math.Round(min, 3));
            writer.WriteNumber("images_per_s", Math.Round(imagesPerSecond, 2));
            writer.WriteNumber("gflops", Math.Round(gflops, 1));
            writer.WriteNumber("peak_rss_mb", Math.Round(peakRss, 1));
            writer.WriteString("kernels", KernelTier());
            writer.WriteEndObject();
        }
        Console.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    /// <summary>
    /// The vector width the kernels run at, decided by the same test as the runtime's SIMD tier (which is internal).
    /// Under NativeAOT these properties are constants fixed by the binary's IlcInstructionSet, not read from the CPU:
    /// this shows whether a build can reach the AVX-512 kernels at all.
    /// </summary>
    private static string KernelTier() =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? "Vector512"
        : Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported ? "Vector256"
        : "Vector128";

    /// <summary>VmHWM from /proc (Linux); elsewhere the process's current peak working set.</summary>
    private static double PeakResidentMegabytes()
    {
        const string Status = "/proc/self/status";
        if (File.Exists(Status))
        {
            foreach (var line in File.ReadLines(Status))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
            }
        }
        return Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
    }
}
