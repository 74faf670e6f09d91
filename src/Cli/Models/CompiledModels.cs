namespace ViTGen.Cli.Models;

// The architectures this binary is compiled for. Each is specialized at build time; a checkpoint of any other
// shape needs its own [VitModel] line compiled into the caller's program (the CLI prints it).

/// <summary>The Fashion-MNIST ViT trained by samples/fashion-mnist/train.py and embedded in the binary.</summary>
[VitModel(patch: 4, dim: 64, depth: 4, heads: 4, imageSize: 28, channels: 1, classes: 10, mlpDim: 128)]
internal sealed partial class FashionMnistVit : ICompiledModel;

/// <summary>A tiny 32x32 ViT: the small-model benchmark of ../shared/peers/export_onnx.py.</summary>
[VitModel(patch: 4, dim: 128, depth: 6, heads: 4, imageSize: 32, classes: 10, mlpDim: 256)]
internal sealed partial class Tiny32Vit : ICompiledModel;

/// <summary>timm vit_tiny_patch16_224.</summary>
[VitModel(patch: 16, dim: 192, depth: 12, heads: 3)]
internal sealed partial class VitTi16 : ICompiledModel;

/// <summary>timm vit_small_patch16_224.</summary>
[VitModel(patch: 16, dim: 384, depth: 12, heads: 6)]
internal sealed partial class VitS16 : ICompiledModel;

/// <summary>timm vit_base_patch16_224.</summary>
[VitModel(patch: 16, dim: 768, depth: 12, heads: 12)]
internal sealed partial class VitB16 : ICompiledModel;

/// <summary>timm vit_base_patch32_224.</summary>
[VitModel(patch: 32, dim: 768, depth: 12, heads: 12)]
internal sealed partial class VitB32 : ICompiledModel;

/// <summary>timm vit_large_patch16_224.</summary>
[VitModel(patch: 16, dim: 1024, depth: 24, heads: 16)]
internal sealed partial class VitL16 : ICompiledModel;

/// <summary>timm vit_base_r50_s16_224: ViT-B on the feature map of a ResNet-50 trunk (stages 3, 4, 9), 14x14 tokens.</summary>
[VitModel(patch: 1, dim: 768, depth: 12, heads: 12, hybridLayers: new[] { 3, 4, 9 })]
internal sealed partial class VitB16R50 : ICompiledModel;

/// <summary>What the commands need of a compiled model (members every generated class has).</summary>
internal interface ICompiledModel : IDisposable
{
    void Forward(ReadOnlySpan<float> pixels, Span<float> output, int batch = 1);

    void ForwardAttention(ReadOnlySpan<float> pixels, Span<float> output, Span<float> attention, int batch = 1);

    void ForwardPooled(ReadOnlySpan<float> pixels, Span<float> pooled, int batch = 1);
}

/// <summary>One compiled architecture: its generated metadata (shapes, attribute, tensors) and its loader.</summary>
internal sealed record ModelEntry(string Name, VitArchitecture Architecture, Func<string, VitOptions, ICompiledModel> Load)
{
    /// <summary>The attribute that compiles it, as the generator's metadata spells it.</summary>
    public string Attribute => Architecture.ToAttribute();

    /// <summary>Writes a checkpoint of random weights (<see cref="RandomCheckpoint"/>) into <paramref name="directory"/>; returns its path.</summary>
    public string WriteRandomCheckpoint(string directory)
    {
        string path = Path.Combine(directory, $"vitgen-bench-{Name}-{Environment.ProcessId}.safetensors");
        RandomCheckpoint.Write(Architecture, path);
        return path;
    }

    /// <summary>Multiply-adds of one image: a hybrid's trunk, patch embedding, per block qkv/scores/context/proj/MLP, head.</summary>
    public double MultiplyAdds
    {
        get
        {
            var a = Architecture;
            double t = a.Tokens, d = a.Dim, n = a.NumPatches;
            double block = t * d * 3 * d + 2 * t * t * d + t * d * d + 2 * t * d * a.MlpDim;
            var (trunk, channels) = a.HybridLayers is null ? (0.0, a.Channels) : Trunk(a);
            return trunk + n * channels * a.Patch * a.Patch * d + a.Depth * block + d * a.Classes;
        }
    }

    /// <summary>A hybrid trunk's convolution multiply-adds and output channels ('same' padding: stride s maps n to ceil(n / s)).</summary>
    private static (double MultiplyAdds, int Channels) Trunk(VitArchitecture a)
    {
        static int Down(int n, int stride) => (n + stride - 1) / stride;
        int width = a.HybridWidth, size = Down(a.ImageSize, 2);
        double total = (double)size * size * width * a.Channels * 49;   // 7x7 stride-2 stem conv
        size = Down(size, 2);                                           // max pool
        int inputs = width;
        for (int stage = 0; stage < a.HybridLayers!.Count; stage++)
        {
            int mid = width << stage, outputs = 4 * mid;
            for (int block = 0; block < a.HybridLayers[stage]; block++)
            {
                int output = block == 0 && stage > 0 ? Down(size, 2) : size;
                if (block == 0) total += (double)output * output * inputs * outputs;                  // downsample
                total += (double)size * size * inputs * mid + (double)output * output * (9.0 * mid * mid + mid * outputs);
                inputs = outputs;
                size = output;
            }
        }
        return (total, inputs);
    }
}

internal static class ModelCatalog
{
    public static readonly ModelEntry FashionMnist = new("fashion-mnist", FashionMnistVit.Architecture, (p, o) => FashionMnistVit.Load(p, o));

    /// <summary>The benchmark models, with the names and shapes of ../shared/peers/export_onnx.py.</summary>
    public static readonly IReadOnlyList<ModelEntry> Benchmarks =
    [
        new("tiny32", Tiny32Vit.Architecture, (p, o) => Tiny32Vit.Load(p, o)),
        new("ti16", VitTi16.Architecture, (p, o) => VitTi16.Load(p, o)),
        new("s16", VitS16.Architecture, (p, o) => VitS16.Load(p, o)),
        new("b16", VitB16.Architecture, (p, o) => VitB16.Load(p, o)),
        new("b32", VitB32.Architecture, (p, o) => VitB32.Load(p, o)),
        new("l16", VitL16.Architecture, (p, o) => VitL16.Load(p, o)),
        new("r50b16", VitB16R50.Architecture, (p, o) => VitB16R50.Load(p, o)),
    ];

    public static IEnumerable<ModelEntry> All => Benchmarks.Prepend(FashionMnist);

    public static ModelEntry? Find(string name) => All.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));
}
