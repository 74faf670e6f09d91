using BenchmarkDotNet.Attributes;
using Microsoft.ML.OnnxRuntime;
using ViTGen.Cli.Models;

namespace ViTGen.Benchmarks;

/// <summary>
/// ViTGen next to ONNX Runtime (CPU execution provider, MLAS) in the same process: batch 1, the same architecture at
/// the same thread count, ViTGen as the baseline of each pair. ViTGen runs the CLI catalog's model on random
/// timm-named weights (as <c>vitgen bench</c> does); ORT runs that model's export by ../shared/peers/export_onnx.py
/// (random weights too), read as <c>{model}.onnx</c> from the directory named by <see cref="OnnxDirectoryVariable"/>.
/// </summary>
/// <remarks>
/// ORT is called the way its .NET API documents for repeated inference: one <see cref="InferenceSession"/> with all
/// graph optimizations and <see cref="SessionOptions.IntraOpNumThreads"/> set to <see cref="Threads"/>, input and
/// output <see cref="OrtValue"/>s created once over pinned managed arrays, and the <c>Run</c> overload that writes
/// into the pre-allocated output. Run with, for example:
/// <c>VITGEN_ONNX_DIR=/tmp/vitgen-onnx dotnet run -c Release --project tests/ViTGen.Benchmarks -- --filter '*OnnxRuntime*' --job short</c>.
/// </remarks>
public class OnnxRuntimeBenchmarks
{
    /// <summary>The environment variable that names the directory of the ONNX exports (BenchmarkDotNet's child processes inherit it).</summary>
    public const string OnnxDirectoryVariable = "VITGEN_ONNX_DIR";

    public static IEnumerable<string> Models => ["tiny32", "s16", "b16"];

    [ParamsSource(nameof(Models))]
    public string Model { get; set; } = "tiny32";

    [Params(1, 2)]
    public int Threads { get; set; }

    private ICompiledModel _vitgen = null!;
    private InferenceSession _session = null!;
    private RunOptions _runOptions = null!;
    private OrtValue _ortInput = null!, _ortOutput = null!;
    private string[] _inputNames = [], _outputNames = [];
    private OrtValue[] _inputValues = [], _outputValues = [];
    private float[] _pixels = [], _vitgenLogits = [], _ortLogits = [];

    [GlobalSetup]
    public void Setup()
    {
        // The ONNX file is checked first: a missing export should fail in seconds, not after a B/16 load.
        string onnxPath = OnnxPath(Model);
        var entry = ModelCatalog.Find(Model)
            ?? throw new InvalidOperationException($"'{Model}' is not in the CLI's model catalog.");
        var architecture = entry.Architecture;

        string weights = entry.WriteRandomCheckpoint(Path.GetTempPath());
        try
        {
            _vitgen = entry.Load(weights, new VitOptions { Threads = Threads });
        }
        finally
        {
            File.Delete(weights);
        }

        _pixels = Enumerable.Range(0, architecture.InputSize).Select(i => MathF.Sin(i * 0.01f)).ToArray();
        _vitgenLogits = new float[architecture.OutputSize];
        _ortLogits = new float[architecture.OutputSize];

        using (var options = new SessionOptions
        {
            IntraOpNumThreads = Threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        })
        {
            _session = new InferenceSession(onnxPath, options);
        }
        _runOptions = new RunOptions();
        _inputNames = [.. _session.InputMetadata.Keys];
        _outputNames = [.. _session.OutputMetadata.Keys];
        if (_inputNames.Length != 1 || _outputNames.Length != 1)
            throw new InvalidOperationException($"{onnxPath} has {_inputNames.Length} inputs and {_outputNames.Length} outputs; export_onnx.py writes one of each.");
        _ortInput = OrtValue.CreateTensorValueFromMemory(_pixels, BatchOne(onnxPath, _session.InputMetadata[_inputNames[0]].Dimensions, architecture.InputSize));
        _ortOutput = OrtValue.CreateTensorValueFromMemory(_ortLogits, BatchOne(onnxPath, _session.OutputMetadata[_outputNames[0]].Dimensions, architecture.OutputSize));
        _inputValues = [_ortInput];
        _outputValues = [_ortOutput];

        // Both peers must produce numbers before they are timed (the weights differ, so the values are not compared).
        _vitgenLogits.AsSpan().Fill(float.NaN);
        _ortLogits.AsSpan().Fill(float.NaN);
        ViTGen();
        OnnxRuntime();
        RequireFinite("ViTGen", _vitgenLogits);
        RequireFinite("ONNX Runtime", _ortLogits);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _vitgen.Dispose();
        _ortInput.Dispose();
        _ortOutput.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void ViTGen() => _vitgen.Forward(_pixels, _vitgenLogits);

    [Benchmark]
    public void OnnxRuntime() => _session.Run(_runOptions, _inputNames, _inputValues, _outputNames, _outputValues);

    private static string OnnxPath(string model)
    {
        string? directory = Environment.GetEnvironmentVariable(OnnxDirectoryVariable);
        if (string.IsNullOrEmpty(directory))
            throw new InvalidOperationException(
                $"Set {OnnxDirectoryVariable} to the directory of the ONNX exports ({model}.onnx from `/usr/bin/python3 ../shared/peers/export_onnx.py {model} DIR/{model}.onnx`).");
        string path = Path.Combine(directory, model + ".onnx");
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"{path} is missing: export it with `/usr/bin/python3 ../shared/peers/export_onnx.py {model} {path}`.", path);
        return path;
    }

    /// <summary>The tensor shape with the dynamic batch axis set to 1, checked against ViTGen's element count.</summary>
    private static long[] BatchOne(string path, int[] dimensions, int elements)
    {
        long[] shape = dimensions.Select(d => d < 0 ? 1L : d).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (count != elements)
            throw new InvalidOperationException(
                $"{path} has a tensor of shape [{string.Join(", ", dimensions)}] ({count} floats per image) where ViTGen's model has {elements}: it is not an export of the same architecture.");
        return shape;
    }

    private static void RequireFinite(string peer, float[] values)
    {
        int bad = Array.FindIndex(values, v => !float.IsFinite(v));
        if (bad >= 0) throw new InvalidOperationException($"{peer} wrote {values[bad]} at output {bad}.");
    }
}
