using BenchmarkDotNet.Attributes;
using ViTGen.CompilerServices;

namespace ViTGen.Benchmarks;

/// <summary>
/// One Linear layer per ViT GEMM shape, on one thread: the generated path (shape struct with constant bounds)
/// against the same kernels with the shape read from mutable fields at run time — the value of specialization,
/// measured. GFLOP/s = 2·M·N·K / time.
/// </summary>
public class GemmBenchmarks
{
    public static IEnumerable<string> Shapes => ["tiny32.qkv", "ti16.fc1", "b16.qkv", "b16.fc1", "b16.fc2"];

    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "b16.qkv";

    private PackedLinear _weight = null!;
    private NativeBuffer _input = null!, _output = null!;

    [GlobalSetup]
    public void Setup()
    {
        (int m, int n, int k) = Shape switch
        {
            "tiny32.qkv" => (65, 384, 128),
            "ti16.fc1" => (197, 768, 192),
            "b16.qkv" => (197, 2304, 768),
            "b16.fc1" => (197, 3072, 768),
            _ => (197, 768, 3072),
        };
        RuntimeShape.Set(m, n, k);
        var random = new Random(0);
        _weight = new PackedLinear(Enumerable.Range(0, n * k).Select(_ => (float)random.NextDouble() - 0.5f).ToArray(), new float[n], n, k);
        _input = new NativeBuffer((long)m * k);
        _output = new NativeBuffer((long)m * n);
        _input.Span.Fill(0.25f);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _weight.Dispose();
        _input.Dispose();
        _output.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Specialized()
    {
        switch (Shape)
        {
            case "tiny32.qkv": Gemm.Linear<Tiny32Qkv, StoreEpilogue>(_input, 0, _weight, _output, 0, 1); break;
            case "ti16.fc1": Gemm.Linear<Ti16Fc1, StoreEpilogue>(_input, 0, _weight, _output, 0, 1); break;
            case "b16.qkv": Gemm.Linear<B16Qkv, StoreEpilogue>(_input, 0, _weight, _output, 0, 1); break;
            case "b16.fc1": Gemm.Linear<B16Fc1, StoreEpilogue>(_input, 0, _weight, _output, 0, 1); break;
            default: Gemm.Linear<B16Fc2, StoreEpilogue>(_input, 0, _weight, _output, 0, 1); break;
        }
    }

    [Benchmark]
    public void RuntimeShapes() => Gemm.Linear<RuntimeShape, StoreEpilogue>(_input, 0, _weight, _output, 0, 1);

    // What the generator emits (see src/Generator/Emitting/Cpu/CpuModelEmitter.Shapes.cs for how KBlock is chosen).
    private readonly struct Tiny32Qkv : IGemmShape { public static int M => 65; public static int N => 384; public static int K => 128; public static int KBlock => 128; public static bool Parallel => true; }
    private readonly struct Ti16Fc1 : IGemmShape { public static int M => 197; public static int N => 768; public static int K => 192; public static int KBlock => 192; public static bool Parallel => true; }
    private readonly struct B16Qkv : IGemmShape { public static int M => 197; public static int N => 2304; public static int K => 768; public static int KBlock => 768; public static bool Parallel => true; }
    private readonly struct B16Fc1 : IGemmShape { public static int M => 197; public static int N => 3072; public static int K => 768; public static int KBlock => 768; public static bool Parallel => true; }
    private readonly struct B16Fc2 : IGemmShape { public static int M => 197; public static int N => 768; public static int K => 3072; public static int KBlock => 768; public static bool Parallel => true; }

    /// <summary>The ablation: the same interface, but every bound is a load from a mutable static field.</summary>
    private readonly struct RuntimeShape : IGemmShape
    {
        private static int s_m, s_n, s_k, s_kBlock;

        public static void Set(int m, int n, int k)
        {
            (s_m, s_n, s_k) = (m, n, k);
            int blocks = (k + 767) / 768;
            s_kBlock = (k + blocks - 1) / blocks;
        }

        public static int M => s_m;
        public static int N => s_n;
        public static int K => s_k;
        public static int KBlock => s_kBlock;
        public static bool Parallel => true;
    }
}
