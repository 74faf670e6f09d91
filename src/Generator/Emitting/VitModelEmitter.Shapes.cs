using System;
using ViTGen.Generator.Helpers;
using ViTGen.Generator.Model;

namespace ViTGen.Generator.Emitting;

// The shapes: one struct per kernel call site, so the runtime's generic kernels compile with constant bounds.
internal static partial class VitModelEmitter
{
    /// <summary>
    /// Reduction depth of one cache block, in equal blocks of at most 768. Why so deep: the 12x32 kernel reads
    /// 176 bytes per 24 FMAs, which L2 sustains, while every block boundary costs a load and store of the C tile;
    /// measured on ViT-B/16, blocks of 256 spent ~9% of the time in the tile epilogue. Why not deeper: fc2 of
    /// B/16 (K = 3072) ran 2.5% (1 thread) and 5% (2 threads) faster in blocks of 768 than of 1024, while proj and
    /// fc1 (K = 768) lost 8-10% when split into two blocks of 384.
    /// </summary>
    internal static int ChooseKBlock(int k)
    {
        const int MaxBlock = 768;
        int blocks = (k + MaxBlock - 1) / MaxBlock;
        return (k + blocks - 1) / blocks;
    }

    /// <summary>Below about a million multiply-adds a fork/join costs more than it saves.</summary>
    internal static bool IsParallel(long m, long n, long k) => m * n * k >= 1L << 20;

    private static void WriteShapes(IndentedWriter w, VitModelSpec s)
    {
        string name = TypeScaffold.Escape(s.Type.Name);
        using (w.Block($"private readonly struct PatchGrid : {Kernels}.IPatchGrid"))
        {
            w.Line($"public static int Channels => {name}.Channels;")
             .Line($"public static int ImageSize => {name}.ImageSize;")
             .Line($"public static int PatchSize => {name}.PatchSize;");
        }
        w.Line();
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
        GemmShape(w, "PatchEmbeddingGemm", "patch_embed.proj over unfolded patches", "NumPatches", s.NumPatches, "Dim", s.Dim, "PatchFeatures", s.PatchFeatures);
        GemmShape(w, "QkvGemm", "attn.qkv", "Tokens", s.Tokens, "3 * Dim", 3 * s.Dim, "Dim", s.Dim);
        GemmShape(w, "ProjGemm", "attn.proj", "Tokens", s.Tokens, "Dim", s.Dim, "Dim", s.Dim);
        GemmShape(w, "Fc1Gemm", "mlp.fc1", "Tokens", s.Tokens, "MlpDim", s.MlpDim, "Dim", s.Dim);
        GemmShape(w, "Fc2Gemm", "mlp.fc2", "Tokens", s.Tokens, "Dim", s.Dim, "MlpDim", s.MlpDim);
        if (s.Classes > 0) GemmShape(w, "HeadGemm", "head, one pooled row", "1", 1, "NumClasses", s.Classes, "Dim", s.Dim);
    }

    private static void GemmShape(IndentedWriter w, string type, string layer, string m, int mValue, string n, int nValue, string k, int kValue)
    {
        w.Line($"/// <summary>{layer}: [{Int(mValue)} x {Int(kValue)}] x [{Int(kValue)} x {Int(nValue)}].</summary>");
        using (w.Block($"private readonly struct {type} : {Kernels}.IGemmShape"))
        {
            w.Line($"public static int M => {m};")
             .Line($"public static int N => {n};")
             .Line($"public static int K => {k};")
             .Line($"public static int KBlock => {Int(ChooseKBlock(kValue))};")
             .Line($"public static bool Parallel => {Bool(IsParallel(mValue, nValue, kValue))};");
        }
        w.Line();
    }
}
