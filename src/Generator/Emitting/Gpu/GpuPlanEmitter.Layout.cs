using System.Collections.Generic;
using System.Linq;
using ViTGen.Generator.Helpers;
using ViTGen.Generator.Lowering;
using ViTGen.Generator.Model;
using static ViTGen.Generator.Emitting.SourceText;

namespace ViTGen.Generator.Emitting.Gpu;

// The device arena: where every manifest parameter and every activation buffer lives, as float offsets.
internal static partial class GpuPlanEmitter
{
    /// <summary>Regions start on 64-float (256-byte) boundaries: what cuBLAS's fastest kernels want of a matrix.</summary>
    internal const int Alignment = 64;

    /// <summary>The arena region of the prefix tokens: the embedding kernel reads them as one [PrefixTokens, Dim] matrix.</summary>
    private const string PrefixRegion = "PrefixTokens";

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

        private static long Align(long floats) => (floats + Alignment - 1) / Alignment * Alignment;
    }

    /// <summary>
    /// The arena of one model. Weights: the embedding's regions, then <c>Depth</c> copies of the block regions
    /// <see cref="BlockStride"/> apart, then the final norm's and heads'. Activations: one region per buffer, sized for
    /// one image; a batch of B holds B images back to back, so buffer X of the batch starts at <c>WeightFloats + B · X</c>.
    /// </summary>
    internal sealed class GpuArena
    {
        /// <summary>Scratch the GPU's kernels need beside a description buffer: the patch projections before the embedding
        /// kernel places them; q, k, v planes, scores and per-head context of attention; a projection before bias + residual.</summary>
        private static readonly Dictionary<string, string[]> Scratch = new()
        {
            ["Patches"] = new[] { "PatchTokens" },
            ["Qkv"] = new[] { "Planes", "Scores", "HeadContext" },
            ["Context"] = new[] { "Projected" },
        };

        public RegionList Weights { get; } = new();
        public RegionList Block { get; } = new();
        public RegionList Activations { get; } = new();
        public long BlockStride => Block.End;
        public long WeightFloats => Weights.End;

        /// <summary>Description buffers that are the model's output (what <see cref="CopyToOutput"/> reads): the GPU writes them in place there.</summary>
        public HashSet<string> OutputAliases { get; } = new();

        public static GpuArena For(ModelDescription model)
        {
            var s = model.Spec;
            var a = new GpuArena();
            var prefix = model.Embed.Operations.OfType<AssembleTokens>().Single().Prefix;
            foreach (var p in model.Weights.Embedding)
            {
                if (!prefix.Contains(p)) AddRegions(a.Weights, p);
                else if (p == prefix[0]) a.Weights.Add(PrefixRegion, (long)s.PrefixTokens * s.Dim, $"[{s.PrefixTokens}, {s.Dim}]: {string.Join(", ", prefix.Select(t => t.Shape[1] == 1 ? t.Name : $"{t.Name} ({t.Shape[1]})"))}");
            }
            foreach (var p in model.Weights.Block) AddRegions(a.Block, p);
            a.Weights.Add("BlockWeights", s.Depth * a.BlockStride, $"{TimmNames.Block(0)} .. {TimmNames.Block(s.Depth - 1)}, {Int(a.BlockStride)} floats each");
            foreach (var p in model.Weights.Final) AddRegions(a.Weights, p);

            foreach (var op in model.Head.Operations.OfType<CopyToOutput>()) a.OutputAliases.Add(op.Input);
            a.Activations.Add("Input", (long)s.Channels * s.ImageSize * s.ImageSize, $"[{s.Channels}, {s.ImageSize}, {s.ImageSize}] normalized pixels");
            foreach (var buffer in model.Buffers)
            {
                if (a.OutputAliases.Contains(buffer.Name))
                {
                    // The output region holds one image's OutputSize floats: only a buffer of that size can live there.
                    if (buffer.Floats != s.OutputSize)
                        throw new System.InvalidOperationException($"{buffer.Name} ({buffer.Floats} floats) cannot be the output ({s.OutputSize} floats).");
                }
                else
                {
                    a.Activations.Add(buffer.Name, buffer.Floats, $"[{buffer.Rows.Value}, {buffer.Width.Value}] {buffer.Comment}");
                }
                if (!Scratch.TryGetValue(buffer.Name, out var scratch)) continue;
                foreach (var name in scratch) a.Activations.Add(name, ScratchFloats(s, name), ScratchComment(s, name));
            }
            a.Activations.Add("Output", s.OutputSize, s.Classes > 0 ? $"[{s.Classes}] logits" : $"[{s.Dim}] pooled features");
            return a;
        }

        private static long ScratchFloats(VitModelSpec s, string name) => name switch
        {
            "PatchTokens" => (long)s.NumPatches * s.Dim,
            "Planes" => 3L * s.Tokens * s.Dim,
            "Scores" => (long)s.Heads * s.Tokens * s.Tokens,
            _ => (long)s.Tokens * s.Dim,
        };

        private static string ScratchComment(VitModelSpec s, string name) => name switch
        {
            "PatchTokens" => $"[{s.NumPatches}, {s.Dim}] patch projections, before bias",
            "Planes" => $"3 planes (q, k, v) of [heads {s.Heads}, {s.Tokens}, {s.HeadDim}] per image; plane p at Planes + p * batch * {Int((long)s.Tokens * s.Dim)}",
            "Scores" => $"[{s.Heads}, {s.Tokens}, {s.Tokens}] attention scores, then probabilities",
            "HeadContext" => $"[{s.Heads}, {s.Tokens}, {s.HeadDim}] attention output per head",
            _ => $"[{s.Tokens}, {s.Dim}] proj or fc2 output, before bias and residual",
        };

        /// <summary>A parameter's regions: <c>{Key}</c> for a buffer, <c>{Key}Weight</c> and <c>{Key}Bias</c> otherwise.</summary>
        private static void AddRegions(RegionList regions, WeightParameter p)
        {
            var tensors = p.Tensors("", openAiClip: false).ToList();
            string Describe(int i) => $"{tensors[i].Key} [{string.Join(", ", tensors[i].Value)}]";
            if (p.Kind == WeightKind.Buffer)
            {
                regions.Add(p.Key, Product(p.Shape), Describe(0));
                return;
            }
            string folded = p.LayerScale is null ? "" : $" ({p.LayerScale} folded in)";
            string linear = p.Kind == WeightKind.PatchEmbedding ? $", a Linear [{p.OutFeatures}, {p.InFeatures}]" : "";
            regions.Add(p.Key + "Weight", Product(p.Shape), Describe(0) + linear + folded);
            if (p.Kind == WeightKind.LayerNorm || p.HasBias)
                regions.Add(p.Key + "Bias", p.OutFeatures, Describe(1) + folded + (p.BiasAbsentInOpenAiClip ? " (zero for OpenAI CLIP, whose projection has none)" : ""));
        }

        private static long Product(int[] shape) => shape.Aggregate(1L, (product, d) => product * d);
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

    /// <summary>The manifest read into the arena: each parameter's tensors at its regions, a block's in a loop over the blocks.</summary>
    private static void WriteReadWeights(IndentedWriter w, ModelDescription model, GpuArena a)
    {
        var prefix = model.Embed.Operations.OfType<AssembleTokens>().Single().Prefix;
        w.Line("/// <inheritdoc/>");
        using (w.Block($"public static void ReadWeights({Kernels}.CheckpointReader checkpoint, {Kernels}.GpuWeightImage weights)"))
        {
            long prefixRow = 0;
            foreach (var p in model.Weights.Embedding)
            {
                string? at = null;
                if (prefix.Contains(p))
                {
                    at = $"{PrefixRegion} + {Int(prefixRow * model.Spec.Dim)}";
                    prefixRow += p.Shape[1];
                }
                if (p.Name == TimmNames.PositionEmbedding) ReadPositionEmbedding(w, p, model.Spec);
                else ReadWeight(w, p, inBlock: false, at);
            }
            using (w.Block($"for (int i = 0; i < {Int(model.Spec.Depth)}; i++)"))
            {
                w.Line($"string name = {Kernels}.WeightLoading.BlockPrefix(i);")
                 .Line("long block = BlockWeights + i * BlockStride;");
                foreach (var p in model.Weights.Block) ReadWeight(w, p, inBlock: true, null);
            }
            foreach (var p in model.Weights.Final) ReadWeight(w, p, inBlock: false, null);
        }
        w.Line();
    }

    /// <summary>The position embedding, resampled at load when the checkpoint's grid differs (as on the CPU).</summary>
    private static void ReadPositionEmbedding(IndentedWriter w, WeightParameter p, VitModelSpec s)
        => w.Line($"weights.ReadPositionEmbedding(checkpoint, \"{p.Name}\", {p.Key}, prefixRows: {Int(s.PositionRows - s.NumPatches)}, gridHeight: {Int(s.Grid)}, gridWidth: {Int(s.Grid)}, dim: {Int(s.Dim)});");

    private static void ReadWeight(IndentedWriter w, WeightParameter p, bool inBlock, string? at)
    {
        string Name(string timmName) => inBlock ? $"name + \".{timmName}\"" : $"\"{timmName}\"";
        string Region(string suffix) => (inBlock ? "block + " : "") + p.Key + suffix;
        string shape = string.Join(", ", p.Shape.Select(d => Int(d)));
        switch (p.Kind)
        {
            case WeightKind.Buffer:
                w.Line($"weights.Read(checkpoint, {Name(p.Name)}, {at ?? Region("")}, {shape});");
                break;
            case WeightKind.LayerNorm:
                w.Line($"weights.ReadLayerNorm(checkpoint, {Name(p.Name)}, {shape}, {Region("Weight")}, {Region("Bias")});");
                break;
            case WeightKind.PatchEmbedding:
                // The convolution as it is stored: its [out, channels, patch, patch] rows are the Linear's [out, features].
                w.Line($"weights.Read(checkpoint, {Name(p.Name + TimmNames.Weight)}, {Region("Weight")}, {shape});");
                if (p.HasBias) w.Line($"weights.Read(checkpoint, {Name(p.Name + TimmNames.Bias)}, {Region("Bias")}, {Int(p.OutFeatures)});");
                break;
            default:
                string layerScale = p.LayerScale is null ? "" : $", layerScale: {Name(p.LayerScale)}";
                string bias = !p.HasBias ? $"{Kernels}.GpuWeightImage.NoBias"
                    : p.BiasAbsentInOpenAiClip ? $"checkpoint.Dialect != global::ViTGen.CheckpointDialect.OpenAiClip ? {Region("Bias")} : {Kernels}.GpuWeightImage.NoBias"
                    : Region("Bias");
                w.Line($"weights.ReadLinear(checkpoint, {Name(p.Name)}, {shape}, {Region("Weight")}, {bias}{layerScale});");
                break;
        }
    }
}
