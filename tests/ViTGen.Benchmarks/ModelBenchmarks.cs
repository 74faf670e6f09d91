using BenchmarkDotNet.Attributes;
using ViTGen.Cli.Models;

namespace ViTGen.Benchmarks;

/// <summary>
/// Whole generated models, batch 1, on random timm-named weights (the models and weights of `vitgen bench`).
/// </summary>
public class ModelBenchmarks
{
    public static IEnumerable<string> Models => ["tiny32", "ti16", "s16", "b16"];

    [ParamsSource(nameof(Models))]
    public string Model { get; set; } = "tiny32";

    [Params(1, 2)]
    public int Threads { get; set; }

    private ICompiledModel _model = null!;
    private float[] _pixels = [], _output = [];

    [GlobalSetup]
    public void Setup()
    {
        var entry = ModelCatalog.Find(Model)!;
        string weights = entry.WriteRandomCheckpoint(Path.GetTempPath());
        try
        {
            _model = entry.Load(weights, new VitOptions { Threads = Threads });
        }
        finally
        {
            File.Delete(weights);
        }
        _pixels = Enumerable.Range(0, entry.Architecture.InputSize).Select(i => MathF.Sin(i * 0.01f)).ToArray();
        _output = new float[entry.Architecture.OutputSize];
    }

    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    [Benchmark]
    public void Forward() => _model.Forward(_pixels, _output);
}
