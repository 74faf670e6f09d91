using System.Collections.Generic;
using ViTGen.Generator.Helpers;
using ViTGen.Generator.Model;

namespace ViTGen.Generator.Emitting;

// The device arena: where every weight tensor and every activation buffer lives, as float offsets.
internal static partial class GpuPlanEmitter
{
    /// <summary>Regions start on 64-float (256-byte) boundaries: what cuBLAS's fastest kernels want of a matrix.</summary>
    internal const int Alignment = 64;

    /// <summary>One named region of the arena.</summary>
    internal sealed record Region(string Name, long Offset, long Floats, string Comment);

    /// <summary>Lays out regions one after another, each aligned.</summary>
    internal sealed class RegionList
    {
        private readonly List<Region> _regions = new();

        public IReadOnlyList<Region> Regions => _regions;

        public long End { get; private set; }

        public long Add(string name, long floats, string comment)
        {
            long offset = End;
            _regions.Add(new Region(name, offset, floats, comment));
            End = Align(offset + floats);
            return offset;
        }

        public void Skip(long floats) => End = Align(End + floats);

        private static long Align(long floats) => (floats + Alignment - 1) / Alignment * Alignment;
    }

    /// <summary>
    /// The arena of one model. Weights: the fixed regions, then <c>Depth</c> copies of the block regions
    /// <see cref="BlockStride"/> apart, then the final norm and heads. Activations: one region per buffer, sized for one
    /// image; a batch of B holds B images back to back, so buffer X of the batch starts at <c>WeightFloats + B · X</c>.
    /// </summary>
    internal sealed class GpuArena
    {
        public RegionList Weights { get; } = new();
        public RegionList Block { get; } = new();
        public RegionList Activations { get; } = new();
        public long BlockWeights { get; private set; }
        public long BlockStride => Block.End;
        public long WeightFloats => Weights.End;
        public int PooledRows { get; private set; }

        public static GpuArena For(VitModelSpec s)
        {
            var a = new GpuArena();
            long d = s.Dim;
            string patchShape = $"[{s.Dim}, {s.Channels}, {s.Patch}, {s.Patch}]";
            a.Weights.Add("PatchWeight", d * s.PatchFeatures, $"patch_embed.proj.weight {patchShape}, a Linear [{s.Dim}, {s.PatchFeatures}]");
            if (!s.PreNorm) a.Weights.Add("PatchBias", d, $"patch_embed.proj.bias [{s.Dim}]");
            if (s.PrefixTokens > 0) a.Weights.Add("PrefixTokens", s.PrefixTokens * d, $"[{s.PrefixTokens}, {s.Dim}]: {PrefixDescription(s)}");
            a.Weights.Add("PositionEmbedding", s.PositionRows * d, $"pos_embed [1, {s.PositionRows}, {s.Dim}]");
            if (s.PreNorm)
            {
                a.Weights.Add("PreNormWeight", d, $"norm_pre.weight [{s.Dim}]");
                a.Weights.Add("PreNormBias", d, $"norm_pre.bias [{s.Dim}]");
            }

            string ls1 = s.LayerScale ? " (ls1.gamma folded in)" : "", ls2 = s.LayerScale ? " (ls2.gamma folded in)" : "";
            a.Block.Add("Norm1Weight", d, $"norm1.weight [{s.Dim}]");
            a.Block.Add("Norm1Bias", d, $"norm1.bias [{s.Dim}]");
            a.Block.Add("QkvWeight", 3 * d * d, $"attn.qkv.weight [{3 * s.Dim}, {s.Dim}]");
            if (s.QkvBias) a.Block.Add("QkvBias", 3 * d, $"attn.qkv.bias [{3 * s.Dim}]");
            a.Block.Add("ProjWeight", d * d, $"attn.proj.weight [{s.Dim}, {s.Dim}]{ls1}");
            a.Block.Add("ProjBias", d, $"attn.proj.bias [{s.Dim}]{ls1}");
            a.Block.Add("Norm2Weight", d, $"norm2.weight [{s.Dim}]");
            a.Block.Add("Norm2Bias", d, $"norm2.bias [{s.Dim}]");
            a.Block.Add("Fc1Weight", (long)s.MlpDim * d, $"mlp.fc1.weight [{s.MlpDim}, {s.Dim}]");
            a.Block.Add("Fc1Bias", s.MlpDim, $"mlp.fc1.bias [{s.MlpDim}]");
            a.Block.Add("Fc2Weight", d * s.MlpDim, $"mlp.fc2.weight [{s.Dim}, {s.MlpDim}]{ls2}");
            a.Block.Add("Fc2Bias", d, $"mlp.fc2.bias [{s.Dim}]{ls2}");

            a.BlockWeights = a.Weights.Add("BlockWeights", s.Depth * a.BlockStride, $"blocks.0 .. blocks.{s.Depth - 1}, {Int(a.BlockStride)} floats each");
            string norm = s.Pooling == Pooling.Avg ? "fc_norm" : "norm";
            a.Weights.Add("FinalNormWeight", d, $"{norm}.weight [{s.Dim}]");
            a.Weights.Add("FinalNormBias", d, $"{norm}.bias [{s.Dim}]");
            if (s.Classes > 0)
            {
                a.Weights.Add("HeadWeight", (long)s.Classes * d, $"head.weight [{s.Classes}, {s.Dim}]");
                a.Weights.Add("HeadBias", s.Classes, $"head.bias [{s.Classes}] (zero for OpenAI CLIP, whose projection has none)");
            }
            if (s.Distilled)
            {
                a.Weights.Add("DistHeadWeight", (long)s.Classes * d, $"head_dist.weight [{s.Classes}, {s.Dim}]");
                a.Weights.Add("DistHeadBias", s.Classes, $"head_dist.bias [{s.Classes}]");
            }

            long t = s.Tokens;
            a.PooledRows = s.Distilled ? 2 : 1;
            a.Activations.Add("Input", (long)s.Channels * s.ImageSize * s.ImageSize, $"[{s.Channels}, {s.ImageSize}, {s.ImageSize}] normalized pixels");
            a.Activations.Add("Patches", (long)s.NumPatches * s.PatchFeatures, $"[{s.NumPatches}, {s.PatchFeatures}] unfolded patches");
            a.Activations.Add("PatchTokens", s.NumPatches * d, $"[{s.NumPatches}, {s.Dim}] patch projections, before bias");
            a.Activations.Add("X", t * d, $"[{s.Tokens}, {s.Dim}] the residual stream");
            a.Activations.Add("Normed", t * d, $"[{s.Tokens}, {s.Dim}] LayerNorm output");
            a.Activations.Add("Qkv", t * 3 * d, $"[{s.Tokens}, {3 * s.Dim}] QKV GEMM output, before bias");
            a.Activations.Add("Planes", 3 * t * d, $"3 planes (q, k, v) of [heads {s.Heads}, {s.Tokens}, {s.HeadDim}] per image; plane p at Planes + p * batch * {Int(t * d)}");
            a.Activations.Add("Scores", (long)s.Heads * t * t, $"[{s.Heads}, {s.Tokens}, {s.Tokens}] attention scores, then probabilities");
            a.Activations.Add("HeadContext", t * d, $"[{s.Heads}, {s.Tokens}, {s.HeadDim}] attention output per head");
            a.Activations.Add("Context", t * d, $"[{s.Tokens}, {s.Dim}] heads side by side");
            a.Activations.Add("Projected", t * d, $"[{s.Tokens}, {s.Dim}] proj or fc2 output, before bias and residual");
            a.Activations.Add("Hidden", t * s.MlpDim, $"[{s.Tokens}, {s.MlpDim}] MLP hidden");
            if (s.Classes > 0 || s.Pooling == Pooling.Avg) a.Activations.Add("Pooled", a.PooledRows * d, $"[{a.PooledRows}, {s.Dim}] pooled, normalized features");
            if (s.Distilled) a.Activations.Add("Logits", 2L * s.Classes, $"[2, {s.Classes}] both heads' products, before bias");
            a.Activations.Add("Output", s.OutputSize, s.Classes > 0 ? $"[{s.Classes}] logits" : $"[{s.Dim}] pooled features");
            return a;
        }

        private static string PrefixDescription(VitModelSpec s)
        {
            var parts = new List<string>();
            if (s.ClassToken) parts.Add("cls_token");
            if (s.Distilled) parts.Add("dist_token");
            if (s.Registers > 0) parts.Add($"reg_token ({s.Registers})");
            return string.Join(", ", parts);
        }
    }

    private static void WriteLayout(IndentedWriter w, VitModelSpec s, GpuArena a)
    {
        w.Line("// ---- Weights: float offsets from the arena's start, each region on a 256-byte boundary.");
        foreach (var r in a.Weights.Regions) Offset(w, r);
        w.Line($"private const long WeightFloats = {Int(a.WeightFloats)};")
         .Line()
         .Line($"// Block i's weights start at BlockWeights + i * BlockStride; offsets within a block:");
        foreach (var r in a.Block.Regions) Offset(w, r);
        w.Line($"private const long BlockStride = {Int(a.BlockStride)};")
         .Line()
         .Line("// ---- Activations: floats per image before each buffer. A batch of B keeps B images back to back in each buffer,")
         .Line("// so buffer Y of the batch starts at WeightFloats + B * Y (GpuPlanBuilder.Activation).");
        foreach (var r in a.Activations.Regions) Offset(w, r);
        w.Line($"private const long ActivationFloatsPerImage = {Int(a.Activations.End)};")
         .Line()
         .Line("// ---- Threads per block: element-wise kernels, and one row per block for LayerNorm (width Dim) and softmax (width Tokens).")
         .Line($"private const int ElementThreads = {Int(ElementThreads)};")
         .Line($"private const int LayerNormThreads = {Int(RowThreads(s.Dim))};")
         .Line($"private const int SoftmaxThreads = {Int(RowThreads(s.Tokens))};")
         .Line()
         .Line("/// <inheritdoc/>")
         .Line($"public static {Kernels}.GpuArenaLayout Layout {{ get; }} = new(\"{s.Type.Name}\", WeightFloats, ActivationFloatsPerImage,")
         .Line($"    Input, inputSize: {Int((long)s.Channels * s.ImageSize * s.ImageSize)}, Output, outputSize: {Int(s.OutputSize)});")
         .Line();
    }

    /// <summary>A warp per 32 columns, at most 8 warps: each thread then walks its columns with a stride of the block.</summary>
    internal static int RowThreads(int width) => System.Math.Min(256, System.Math.Max(32, (width + 31) / 32 * 32));

    private static void Offset(IndentedWriter w, Region r) => w.Line($"private const long {r.Name} = {Int(r.Offset)}; // {r.Comment}");

    private static void WriteReadWeights(IndentedWriter w, VitModelSpec s, GpuArena a)
    {
        w.Line("/// <inheritdoc/>");
        using (w.Block($"public static void ReadWeights({Kernels}.CheckpointReader checkpoint, {Kernels}.GpuWeightImage weights)"))
        {
            string d = Int(s.Dim);
            w.Line($"weights.Read(checkpoint, \"patch_embed.proj.weight\", PatchWeight, {d}, {Int(s.Channels)}, {Int(s.Patch)}, {Int(s.Patch)});");
            if (!s.PreNorm) w.Line($"weights.Read(checkpoint, \"patch_embed.proj.bias\", PatchBias, {d});");
            long row = 0;
            if (s.ClassToken) w.Line($"weights.Read(checkpoint, \"cls_token\", PrefixTokens + {Int(row++ * s.Dim)}, 1, 1, {d});");
            if (s.Distilled) w.Line($"weights.Read(checkpoint, \"dist_token\", PrefixTokens + {Int(row++ * s.Dim)}, 1, 1, {d});");
            if (s.Registers > 0) w.Line($"weights.Read(checkpoint, \"reg_token\", PrefixTokens + {Int(row * s.Dim)}, 1, {Int(s.Registers)}, {d});");
            w.Line($"weights.Read(checkpoint, \"pos_embed\", PositionEmbedding, 1, {Int(s.PositionRows)}, {d});");
            if (s.PreNorm) w.Line($"weights.ReadLayerNorm(checkpoint, \"norm_pre\", {d}, PreNormWeight, PreNormBias);");
            using (w.Block($"for (int i = 0; i < {Int(s.Depth)}; i++)"))
            {
                string ls1 = s.LayerScale ? ", layerScale: name + \".ls1.gamma\"" : "";
                string ls2 = s.LayerScale ? ", layerScale: name + \".ls2.gamma\"" : "";
                string qkvBias = s.QkvBias ? "block + QkvBias" : $"{Kernels}.GpuWeightImage.NoBias";
                w.Line($"string name = {Kernels}.WeightLoading.BlockPrefix(i);")
                 .Line("long block = BlockWeights + i * BlockStride;")
                 .Line($"weights.ReadLayerNorm(checkpoint, name + \".norm1\", {d}, block + Norm1Weight, block + Norm1Bias);")
                 .Line($"weights.ReadLinear(checkpoint, name + \".attn.qkv\", {Int(3 * s.Dim)}, {d}, block + QkvWeight, {qkvBias});")
                 .Line($"weights.ReadLinear(checkpoint, name + \".attn.proj\", {d}, {d}, block + ProjWeight, block + ProjBias{ls1});")
                 .Line($"weights.ReadLayerNorm(checkpoint, name + \".norm2\", {d}, block + Norm2Weight, block + Norm2Bias);")
                 .Line($"weights.ReadLinear(checkpoint, name + \".mlp.fc1\", {Int(s.MlpDim)}, {d}, block + Fc1Weight, block + Fc1Bias);")
                 .Line($"weights.ReadLinear(checkpoint, name + \".mlp.fc2\", {d}, {Int(s.MlpDim)}, block + Fc2Weight, block + Fc2Bias{ls2});");
            }
            w.Line($"weights.ReadLayerNorm(checkpoint, \"{(s.Pooling == Pooling.Avg ? "fc_norm" : "norm")}\", {d}, FinalNormWeight, FinalNormBias);");
            if (s.Classes > 0)
            {
                w.Line($"weights.ReadLinear(checkpoint, \"head\", {Int(s.Classes)}, {d}, HeadWeight,")
                 .Line($"    checkpoint.Dialect != global::ViTGen.CheckpointDialect.OpenAiClip ? HeadBias : {Kernels}.GpuWeightImage.NoBias);");
            }
            if (s.Distilled) w.Line($"weights.ReadLinear(checkpoint, \"head_dist\", {Int(s.Classes)}, {d}, DistHeadWeight, DistHeadBias);");
        }
        w.Line();
    }
}
