using System;
using System.Collections.Generic;
using System.Linq;
using ViTGen.Generator.Helpers;
using ViTGen.Generator.Lowering;
using static ViTGen.Generator.Emitting.SourceText;

namespace ViTGen.Generator.Emitting.Cpu;

// The shapes: one struct per kernel shape, so the runtime's generic kernels compile with constant bounds.
internal static partial class CpuModelEmitter
{
    /// <summary>
    /// Reduction depth of one cache block, in equal blocks of at most 768. Why so deep: the 12x32 kernel reads
    /// 176 bytes per 24 FMAs, which L2 sustains, while every block boundary costs a load and store of the C tile;
    /// measured on ViT-B/16, blocks of 256 spent ~9% of the time in the tile epilogue. Why not deeper: fc2 of
    /// B/16 (K = 3072) ran 2.5% (1 thread) and 5% (2 threads) faster in blocks of 768 than of 1024, while proj and
    /// fc1 (K = 768) lost 8-10% when split into two blocks of 384. Re-measured on Zen 5 (B/16 blocks, one thread,
    /// paired): 768 took 219-225 ms against 231 (256), 235 (192) and 247 (384); on L/16, 1024 and 768 were within noise.
    /// </summary>
    internal static int ChooseKBlock(int k)
    {
        const int MaxBlock = 768;
        int blocks = (k + MaxBlock - 1) / MaxBlock;
        return (k + blocks - 1) / blocks;
    }

    /// <summary>Below about a million multiply-adds a fork/join costs more than it saves.</summary>
    internal static bool IsParallel(long multiplyAdds) => multiplyAdds >= 1L << 20;

    /// <summary>
    /// The shape struct of a Linear: <c>{Key}Gemm</c> of the first layer with its (rows, out, in); later layers of the
    /// same shape (DeiT's second head) share it.
    /// </summary>
    private static string GemmShapeName(ModelDescription model, Linear op)
        => GemmShapes(model).First(l => SameShape(l, op)).Weight.Key + "Gemm";

    private static bool SameShape(Linear a, Linear b)
        => a.Rows.Value == b.Rows.Value && a.Weight.OutFeatures == b.Weight.OutFeatures && a.Weight.InFeatures == b.Weight.InFeatures;

    private static IEnumerable<Linear> GemmShapes(ModelDescription model)
    {
        var seen = new List<Linear>();
        foreach (var op in model.Stages.SelectMany(stage => stage.Operations).OfType<Linear>())
        {
            if (seen.Any(l => SameShape(l, op))) continue;
            seen.Add(op);
            yield return op;
        }
    }

    private static void WriteShapes(IndentedWriter w, ModelDescription model)
    {
        var s = model.Spec;
        string name = TypeScaffold.Escape(s.Type.Name);
        if (!s.Hybrid)
        {
            using (w.Block($"private readonly struct PatchGrid : {Kernels}.IPatchGrid"))
            {
                w.Line($"public static int Channels => {name}.Channels;")
                 .Line($"public static int ImageSize => {name}.ImageSize;")
                 .Line($"public static int PatchSize => {name}.PatchSize;");
            }
            w.Line();
        }
        using (w.Block($"private readonly struct Width : {Kernels}.IDimension"))
        {
            w.Line("public static int Value => Dim;");
        }
        w.Line();
        using (w.Block($"private readonly struct AttentionShape : {Kernels}.IAttentionShape"))
        {
            w.Line($"public static int Tokens => {name}.Tokens;")
             .Line($"public static int Heads => {name}.Heads;")
             .Line($"public static int HeadDim => {name}.HeadDim;")
             .Line($"public static float Scale => {Float((float)(1.0 / Math.Sqrt(s.HeadDim)))}; // HeadDim ^ -0.5");
        }
        w.Line();
        foreach (var op in GemmShapes(model)) WriteGemmShape(w, op);
    }

    private static void WriteGemmShape(IndentedWriter w, Linear op)
    {
        var weight = op.Weight;
        string n = weight.ShapeSymbols[0];
        string k = weight.Kind switch
        {
            WeightKind.PatchEmbedding => "PatchFeatures",
            WeightKind.Convolution => Int(weight.InFeatures),
            _ => weight.ShapeSymbols[1],
        };
        string m = op.Rows.Symbol;
        w.Line($"/// <summary>{op.Label}: [{Int(op.Rows.Value)} x {Int(weight.InFeatures)}] x [{Int(weight.InFeatures)} x {Int(weight.OutFeatures)}].</summary>");
        using (w.Block($"private readonly struct {weight.Key}Gemm : {Kernels}.IGemmShape"))
        {
            w.Line($"public static int M => {m};")
             .Line($"public static int N => {n};")
             .Line($"public static int K => {k};")
             .Line($"public static int KBlock => {Int(ChooseKBlock(weight.InFeatures))};")
             .Line($"public static bool Parallel => {Bool(IsParallel(op.MultiplyAdds))};");
        }
        w.Line();
    }
}
