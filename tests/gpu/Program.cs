using System.Diagnostics;
using System.Globalization;
using ViTGen;
using ViTGen.GpuSmoke;
using ViTGen.Tests.Parity;

// The first run of ViTGen's generated cuBLAS plan on a GPU (issue #18). One line per check, then "N passed, M failed".
//   vitgen-gpu-smoke [--fixtures DIR] [--sanitize] [--no-throughput] [--self-test]
// Exit codes: 0 every check passed; 1 a check failed; 2 usage; 3 the GPU path could not start (no libcuda.so.1, no
// cuBLAS 12/13, no device, or the first LoadCuda failed in the driver): the message says which.
// --sanitize runs one small fixture only (for compute-sanitizer, which slows every launch by orders of magnitude).
// --self-test runs what needs no GPU (every fixture file, the batch repetition, the bounds, the random ViT-B/16
// checkpoint) through the CPU models, so a broken folder is found before it takes a GPU machine's time.
return GpuSmoke.Run(args);

namespace ViTGen.GpuSmoke
{
    /// <summary>timm's vit_base_patch16_224, for the throughput check.</summary>
    [VitModel(patch: 16, dim: 768, depth: 12, heads: 12)]
    public partial class VitB16;
}

internal static class GpuSmoke
{
    // Bounds against the float64 PyTorch reference (relative L2). FP32: CpuPlanParityTests.TorchBound, the bound the
    // plan already meets on the CPU executor (worst 1.7e-7). TF32: 10-bit mantissa inputs, ~1e-3 expected; 2e-3 bound.
    private const double Fp32Bound = 1e-4, Tf32Bound = 2e-3;

    private static int s_passed, s_failed;

    public static int Run(string[] args)
    {
        string fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures", "parity");
        bool sanitize = false, throughput = true, selfTest = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--fixtures" when i + 1 < args.Length: fixtures = args[++i]; break;
                case "--sanitize": sanitize = true; break;
                case "--no-throughput": throughput = false; break;
                case "--self-test": selfTest = true; break;
                default:
                    Console.Error.WriteLine($"usage: vitgen-gpu-smoke [--fixtures DIR] [--sanitize] [--no-throughput] [--self-test] (unknown argument '{args[i]}')");
                    return 2;
            }
        }
        if (!File.Exists(Path.Combine(fixtures, "basic.io.safetensors")))
        {
            Console.Error.WriteLine($"error: no parity fixtures in {fixtures}");
            return 2;
        }

        Console.WriteLine($"vitgen-gpu-smoke: {Environment.ProcessorCount} processors, .NET {Environment.Version}, {DateTime.UtcNow:u}");
        if (selfTest) return SelfTest(fixtures);
        var basic = Fixture.Read(fixtures, "basic");
        try
        {
            using var first = Models.LoadCuda["basic"](basic.WeightsPath, null);
            Console.WriteLine($"device: {first.DeviceName}");
            foreach (string library in BoundLibraries()) Console.WriteLine($"bound: {library}");
        }
        catch (VitCudaException error)
        {
            Console.WriteLine($"GPU path unavailable: {error.Message}");
            Console.WriteLine($"exit 3 (library: {error.Library ?? "-"}, error code: {error.ErrorCode?.ToString(CultureInfo.InvariantCulture) ?? "-"})");
            return 3;
        }

        if (sanitize)
        {
            Parity(basic, VitCudaMath.Fp32);
            return Summary();
        }
        foreach (string name in Models.LoadCuda.Keys.Order(StringComparer.Ordinal))
        {
            var fixture = Fixture.Read(fixtures, name);
            Parity(fixture, VitCudaMath.Fp32);
            Parity(fixture, VitCudaMath.Tf32);
        }
        Batches(Fixture.Read(fixtures, "odd"));
        OtherThread(basic);
        ConcurrentInstances(basic);
        DebugSwitch(Fixture.Read(fixtures, "distilled"));
        if (throughput) Throughput();
        return Summary();
    }

    private static int SelfTest(string fixtures)
    {
        foreach (string name in Models.LoadCuda.Keys.Order(StringComparer.Ordinal))
        {
            Check($"self-test {name} batch=70 on the CPU model", () =>
            {
                var fixture = Fixture.Read(fixtures, name);
                using var model = ParityModels.Load[name](fixture.WeightsPath, null);
                var (pixels, expected) = fixture.Repeat(70);
                var output = Poisoned(expected.Length);
                model.Forward(pixels, output, 70);
                return Invariant($"relative L2 {Within(output, expected, Fp32Bound, "cpu"):E2}: ok");
            });
        }
        Check("self-test random ViT-B/16 checkpoint on the CPU model", () =>
        {
            string path = Path.Combine(Path.GetTempPath(), $"vitgen-gpu-smoke-b16-{Environment.ProcessId}.safetensors");
            try
            {
                ViTGen.Cli.Models.RandomCheckpoint.Write(VitB16.Architecture, path);
                using var model = VitB16.Load(path);
                var pixels = new float[VitB16.InputSize];
                var output = Poisoned(VitB16.OutputSize);
                model.Forward(pixels, output);
                if (output.Any(float.IsNaN)) throw new CheckFailed("NaN in the output");
                return Invariant($"{new FileInfo(path).Length} bytes, {VitB16.Architecture.TimmTensors().Count} tensors, loaded and run: ok");
            }
            finally
            {
                File.Delete(path);
            }
        });
        return Summary();
    }

    private static int Summary()
    {
        Console.WriteLine($"{s_passed} passed, {s_failed} failed");
        return s_failed == 0 ? 0 : 1;
    }

    private static void Check(string what, Func<string> check)
    {
        string verdict;
        try
        {
            verdict = check();
            s_passed++;
        }
        catch (Exception error) // every check reports, whatever it throws
        {
            verdict = $"FAILED: {error.GetType().Name}: {error.Message}";
            s_failed++;
        }
        Console.WriteLine($"{what}: {verdict}");
    }

    /// <summary>Three Forwards per fixture and math mode: step by step (warm-up), captured into a graph, replayed.</summary>
    private static void Parity(Fixture fixture, VitCudaMath math)
    {
        double bound = math == VitCudaMath.Fp32 ? Fp32Bound : Tf32Bound;
        Check($"parity {fixture.Name} {math} batch={fixture.Batch}", () =>
        {
            using var model = Models.LoadCuda[fixture.Name](fixture.WeightsPath, new VitOptions { Cuda = new VitCudaOptions { Math = math } });
            var errors = new double[3];
            float[]? eager = null;
            float[] output = [];
            for (int run = 0; run < 3; run++)
            {
                output = Poisoned(fixture.Expected.Length);
                model.Forward(fixture.Input, output, fixture.Batch);
                errors[run] = Within(output, fixture.Expected, bound, $"run {run + 1}");
                eager ??= output;
            }
            string replay = output.AsSpan().SequenceEqual(eager) ? "bit-identical to" : "differs from";
            return Invariant($"relative L2 eager {errors[0]:E2}, captured {errors[1]:E2}, replayed {errors[2]:E2} (bound {bound:E0}); replay {replay} eager: ok");
        });
    }

    /// <summary>Batch sizes 1, 8, 64 and 70 (64 + 6: two chunks), each image against its PyTorch reference.</summary>
    private static void Batches(Fixture fixture)
    {
        using var model = Models.LoadCuda[fixture.Name](fixture.WeightsPath, null);
        foreach (int batch in new[] { 1, 8, 64, 70, 8 })
        {
            Check($"batch {fixture.Name} batch={batch} (max per run {model.MaxBatchPerRun})", () =>
            {
                var (pixels, expected) = fixture.Repeat(batch);
                var output = Poisoned(expected.Length);
                model.Forward(pixels, output, batch);
                model.Forward(pixels, output, batch); // the second run of a size is captured into a graph
                return Invariant($"relative L2 {Within(output, expected, Fp32Bound, "batch"):E2}: ok");
            });
        }
    }

    private static void OtherThread(Fixture fixture)
    {
        Check("forward on a thread other than the loading one", () =>
        {
            using var model = Models.LoadCuda[fixture.Name](fixture.WeightsPath, null);
            var output = Poisoned(fixture.Expected.Length);
            Exception? failure = null;
            var thread = new Thread(() =>
            {
                try
                {
                    for (int run = 0; run < 3; run++) model.Forward(fixture.Input, output, fixture.Batch);
                }
                catch (Exception error) // reported on the checking thread
                {
                    failure = error;
                }
            });
            thread.Start();
            thread.Join();
            if (failure is not null) throw new CheckFailed($"on the other thread: {failure.GetType().Name}: {failure.Message}");
            return Invariant($"relative L2 {Within(output, fixture.Expected, Fp32Bound, "other thread"):E2}: ok");
        });
    }

    /// <summary>Four instances, each on its own thread, each capturing its own graph, all at once.</summary>
    private static void ConcurrentInstances(Fixture fixture)
    {
        const int Instances = 4, Runs = 25, Batch = 8;
        Check($"{Instances} instances on {Instances} threads at once, {Runs} forwards of batch {Batch} each", () =>
        {
            var (pixels, expected) = fixture.Repeat(Batch);
            var models = new VitCudaModel[Instances];
            var errors = new double[Instances];
            var failures = new string?[Instances];
            try
            {
                for (int i = 0; i < Instances; i++) models[i] = Models.LoadCuda[fixture.Name](fixture.WeightsPath, null);
                var clock = Stopwatch.StartNew();
                var threads = Enumerable.Range(0, Instances).Select(i => new Thread(() =>
                {
                    try
                    {
                        var output = Poisoned(expected.Length);
                        double worst = 0;
                        for (int run = 0; run < Runs; run++)
                        {
                            Array.Fill(output, float.NaN);
                            models[i].Forward(pixels, output, Batch);
                            worst = Math.Max(worst, Within(output, expected, Fp32Bound, $"instance {i} run {run}"));
                        }
                        errors[i] = worst;
                    }
                    catch (Exception error) // reported on the checking thread
                    {
                        failures[i] = $"instance {i}: {error.GetType().Name}: {error.Message}";
                    }
                })).ToArray();
                foreach (var thread in threads) thread.Start();
                foreach (var thread in threads) thread.Join();
                clock.Stop();
                if (failures.FirstOrDefault(f => f is not null) is { } failure) throw new CheckFailed(failure);
                return Invariant($"worst relative L2 {errors.Max():E2}, {clock.Elapsed.TotalMilliseconds:F0} ms in all: ok");
            }
            finally
            {
                foreach (var model in models) model?.Dispose();
            }
        });
    }

    private static void DebugSwitch(Fixture fixture)
    {
        Check($"SynchronizeEachStep {fixture.Name}", () =>
        {
            using var model = Models.LoadCuda[fixture.Name](fixture.WeightsPath, new VitOptions { Cuda = new VitCudaOptions { SynchronizeEachStep = true } });
            var output = Poisoned(fixture.Expected.Length);
            model.Forward(fixture.Input, output, fixture.Batch);
            return Invariant($"relative L2 {Within(output, fixture.Expected, Fp32Bound, "debug"):E2}: ok");
        });
    }

    /// <summary>ViT-B/16 with random weights: GPU against the CPU Forward on one image, then images per second.</summary>
    private static void Throughput()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vitgen-gpu-smoke-b16-{Environment.ProcessId}.safetensors");
        try
        {
            ViTGen.Cli.Models.RandomCheckpoint.Write(VitB16.Architecture, path);
            var random = new Random(1);
            var pixels = new float[64 * VitB16.InputSize];
            for (int i = 0; i < pixels.Length; i++) pixels[i] = (float)(random.NextDouble() * 4 - 2);
            var cpu = new float[VitB16.OutputSize];
            using (var model = VitB16.Load(path)) model.Forward(pixels.AsSpan(0, VitB16.InputSize), cpu);
            double[] reference = [.. cpu.Select(v => (double)v)];

            foreach (var math in new[] { VitCudaMath.Fp32, VitCudaMath.Tf32 })
            {
                foreach (bool graphs in new[] { false, true })
                {
                    var options = new VitOptions { Cuda = new VitCudaOptions { Math = math, CudaGraphs = graphs } };
                    using var model = VitB16.LoadCuda(path, options);
                    double bound = math == VitCudaMath.Fp32 ? Fp32Bound : Tf32Bound;
                    Check($"b16 {math} graphs={graphs} vs CPU Forward (random weights, one image)", () =>
                    {
                        var output = Poisoned(VitB16.OutputSize);
                        model.Forward(pixels.AsSpan(0, VitB16.InputSize), output);
                        return Invariant($"relative L2 {Within(output, reference, bound, "b16"):E2} (bound {bound:E0}): ok");
                    });
                    foreach (int batch in new[] { 1, 8, 64 })
                    {
                        Check($"b16 throughput {math} graphs={graphs} batch={batch}", () =>
                        {
                            var output = new float[batch * VitB16.OutputSize];
                            var input = pixels.AsSpan(0, batch * VitB16.InputSize);
                            for (int warm = 0; warm < 3; warm++) model.Forward(input, output, batch);
                            int iterations = 0;
                            var clock = Stopwatch.StartNew();
                            while (clock.Elapsed.TotalSeconds < 1.0 && iterations < 1000)
                            {
                                model.Forward(input, output, batch);
                                iterations++;
                            }
                            clock.Stop();
                            double ms = clock.Elapsed.TotalMilliseconds / iterations;
                            if (output.Any(float.IsNaN)) throw new CheckFailed("NaN in the output");
                            return Invariant($"{ms:F3} ms per batch, {batch * 1000 / ms:F0} images/s over {iterations} runs");
                        });
                    }
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>The CUDA libraries this process mapped (which libcuda and which cuBLAS were bound), from /proc/self/maps.</summary>
    private static IEnumerable<string> BoundLibraries()
    {
        const string Maps = "/proc/self/maps";
        if (!File.Exists(Maps)) return ["(no /proc/self/maps on this OS)"];
        return File.ReadLines(Maps)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length >= 6 && (fields[5].Contains("/libcuda.so", StringComparison.Ordinal) || fields[5].Contains("/libcublas", StringComparison.Ordinal)))
            .Select(fields => fields[5])
            .Distinct(StringComparer.Ordinal)
            .Select(file => File.ResolveLinkTarget(file, returnFinalTarget: true)?.FullName is { } target ? $"{file} -> {target}" : file);
    }

    private static float[] Poisoned(int length) => Enumerable.Repeat(float.NaN, length).ToArray();

    /// <summary>The relative L2 error of <paramref name="actual"/>; throws when it exceeds <paramref name="bound"/> or is NaN.</summary>
    private static double Within(float[] actual, double[] expected, double bound, string what)
    {
        double error = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = actual[i] - expected[i];
            error += d * d;
            norm += expected[i] * expected[i];
        }
        double relative = Math.Sqrt(error / norm);
        if (!(relative <= bound)) throw new CheckFailed(Invariant($"{what}: relative L2 {relative:E3} exceeds {bound:E0} (NaN: an element was never written)"));
        return relative;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private sealed class CheckFailed(string message) : Exception(message);
}

/// <summary>A parity fixture: weights, input batch and the float64 PyTorch output.</summary>
internal sealed record Fixture(string Name, string WeightsPath, int Batch, float[] Input, double[] Expected)
{
    public static Fixture Read(string directory, string name)
    {
        using var io = SafeTensorsFile.Open(Path.Combine(directory, name + ".io.safetensors"));
        var input = new float[io.GetTensor("input").ElementCount];
        var expected = new double[io.GetTensor("expected").ElementCount];
        io.ReadFloat32("input", input);
        io.ReadFloat64("expected", expected);
        return new Fixture(name, Path.Combine(directory, name + ".safetensors"), (int)io.GetTensor("input").Shape[0], input, expected);
    }

    /// <summary><paramref name="batch"/> images cycling through the fixture's, with their references.</summary>
    public (float[] Pixels, double[] Expected) Repeat(int batch)
    {
        int inputSize = Input.Length / Batch, outputSize = Expected.Length / Batch;
        var pixels = new float[batch * inputSize];
        var expected = new double[batch * outputSize];
        for (int i = 0; i < batch; i++)
        {
            Input.AsSpan(i % Batch * inputSize, inputSize).CopyTo(pixels.AsSpan(i * inputSize));
            Expected.AsSpan(i % Batch * outputSize, outputSize).CopyTo(expected.AsSpan(i * outputSize));
        }
        return (pixels, expected);
    }
}

/// <summary>Every parity model's generated LoadCuda, by fixture name.</summary>
internal static class Models
{
    public static readonly IReadOnlyDictionary<string, Func<string, VitOptions?, VitCudaModel>> LoadCuda =
        new Dictionary<string, Func<string, VitOptions?, VitCudaModel>>(StringComparer.Ordinal)
        {
            ["basic"] = FixtureBasic.LoadCuda,
            ["gray"] = FixtureGray.LoadCuda,
            ["wide_patch"] = FixtureWidePatch.LoadCuda,
            ["odd"] = FixtureOdd.LoadCuda,
            ["no_head"] = FixtureNoHead.LoadCuda,
            ["avg_pool"] = FixtureAvgPool.LoadCuda,
            ["avg_no_cls"] = FixtureAvgNoCls.LoadCuda,
            ["gelu_tanh"] = FixtureGeluTanh.LoadCuda,
            ["quick_gelu"] = FixtureQuickGelu.LoadCuda,
            ["relu"] = FixtureRelu.LoadCuda,
            ["eps5"] = FixtureEps5.LoadCuda,
            ["layerscale"] = FixtureLayerscale.LoadCuda,
            ["registers"] = FixtureRegisters.LoadCuda,
            ["registers_noembed"] = FixtureRegistersNoembed.LoadCuda,
            ["prenorm"] = FixturePrenorm.LoadCuda,
            ["distilled"] = FixtureDistilled.LoadCuda,
            ["combo_dinov2"] = FixtureComboDinov2.LoadCuda,
            ["combo_avg_reg"] = FixtureComboAvgReg.LoadCuda,
            ["combo_clip"] = FixtureComboClip.LoadCuda,
            ["hd12"] = FixtureHd12.LoadCuda,
            ["patch32"] = FixturePatch32.LoadCuda,
        };
}
