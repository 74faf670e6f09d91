using System.Linq;
using ViTGen.Generator.Helpers;
using ViTGen.Generator.Lowering;
using ViTGen.Generator.Model;
using static ViTGen.Generator.Emitting.SourceText;

namespace ViTGen.Generator.Emitting.Cpu;

// The weights: one field per manifest parameter (a block's in the nested Block class), read in manifest order.
internal static partial class CpuModelEmitter
{
    private static string FieldType(WeightParameter p) => p.Kind switch
    {
        WeightKind.Buffer => $"{Kernels}.NativeBuffer",
        WeightKind.LayerNorm => $"{Kernels}.LayerNormWeights",
        _ => $"{Kernels}.PackedLinear",
    };

    /// <summary>The model's field of a parameter outside the blocks: <c>_patchEmbedding</c>.</summary>
    private static string Field(WeightParameter p) => "_" + char.ToLowerInvariant(p.Key[0]) + p.Key.Substring(1);

    private static void WriteFields(IndentedWriter w, ModelDescription model)
    {
        var s = model.Spec;
        if (model.Weights.Backbone.Count > 0)
        {
            w.Line($"// The {HybridLowering.Describe(s)}: convolutions weight-standardized and packed for the GEMM, GroupNorm affines.");
            foreach (var p in model.Weights.Backbone) w.Line($"private readonly {FieldType(p)} {Field(p)}; // {p.Name}");
        }
        foreach (var p in model.Weights.Embedding) w.Line($"private readonly {FieldType(p)} {Field(p)};");
        w.Line("private readonly Block[] _blocks;");
        foreach (var p in model.Weights.Final)
        {
            string comment = p.Kind == WeightKind.LayerNorm ? $" // {p.Name}, {(s.Pooling == Pooling.Avg ? "after" : "before")} pooling" : "";
            w.Line($"private readonly {FieldType(p)} {Field(p)};{comment}");
        }
        w.Line($"private readonly {Kernels}.WorkspacePool<Workspace> _workspaces; // one set per call in flight")
         .Line("private readonly int _threads;")
         .Line();
    }

    private static void WriteLoad(IndentedWriter w, ModelDescription model)
    {
        string name = TypeScaffold.Escape(model.Spec.Type.Name);
        w.Line("/// <summary>")
         .Line("/// Loads safetensors weights (timm, Hugging Face, torchvision or OpenAI CLIP names) and checks every tensor against")
         .Line("/// this model's shapes; a position embedding of another grid is resampled (<see cref=\"global::ViTGen.VitOptions.ResamplePositionEmbedding\"/>).")
         .Line("/// Failures throw <see cref=\"global::ViTGen.VitWeightsException\"/> naming the tensor.")
         .Line("/// </summary>");
        using (w.Block($"public static {name} Load(string path, global::ViTGen.VitOptions? options = null)"))
        {
            w.Line($"int threads = {Kernels}.BatchRunner.Threads(options);")
             .Line($"using var checkpoint = {Kernels}.WeightLoading.OpenCheckpoint(path, options);")
             .Line($"var model = new {name}(checkpoint, threads);");
            using (w.Block("try"))
            {
                w.Line("checkpoint.EnsureAllRead();")
                 .Line("return model;");
            }
            using (w.Block("catch"))
            {
                w.Line("model.Dispose();")
                 .Line("throw;");
            }
        }
        w.Line();

        using (w.Block($"private {name}({Kernels}.CheckpointReader checkpoint, int threads)"))
        {
            w.Line("_threads = threads;")
             .Line("_workspaces = new(this, threads, RunImage, FreeWeights);");
            using (w.Block("try"))
            {
                foreach (var p in model.Weights.Backbone) w.Line($"{Field(p)} = {Read(p, inBlock: false)};");
                foreach (var p in model.Weights.Embedding)
                    w.Line($"{Field(p)} = {(p.Name == TimmNames.PositionEmbedding ? ReadPositionEmbedding(model.Spec) : Read(p, inBlock: false))};");
                w.Line("_blocks = new Block[Depth];")
                 .Line($"for (int i = 0; i < Depth; i++) _blocks[i] = new Block(checkpoint, {Kernels}.WeightLoading.BlockPrefix(i));");
                foreach (var p in model.Weights.Final) w.Line($"{Field(p)} = {Read(p, inBlock: false)};");
            }
            using (w.Block("catch"))
            {
                w.Line("Dispose();")
                 .Line("throw;");
            }
        }
        w.Line();
    }

    /// <summary>The loader call of one parameter; in a block, names follow the constructor's <c>prefix</c> (<c>blocks.N</c>).</summary>
    private static string Read(WeightParameter p, bool inBlock)
    {
        string Name(string timmName) => inBlock ? $"prefix + \".{timmName}\"" : $"\"{timmName}\"";
        string name = Name(p.Name);
        string shape = string.Join(", ", p.ShapeSymbols);
        // OpenAI CLIP's projection (the head) has no bias; every other dialect's head does.
        string bias = p.BiasAbsentInOpenAiClip ? "checkpoint.Dialect != global::ViTGen.CheckpointDialect.OpenAiClip" : Bool(p.HasBias);
        string layerScale = p.LayerScale is null ? "" : $", layerScale: {Name(p.LayerScale)}";
        return p.Kind switch
        {
            WeightKind.Buffer => $"{Kernels}.WeightLoading.ReadBuffer(checkpoint, {name}, {shape})",
            WeightKind.LayerNorm => $"{Kernels}.WeightLoading.ReadLayerNorm(checkpoint, {name}, {shape})",
            WeightKind.PatchEmbedding => $"{Kernels}.WeightLoading.ReadPatchEmbedding(checkpoint, {name}, Dim, Channels, PatchSize, hasBias: {bias})",
            WeightKind.Convolution => $"{Kernels}.Convolution.ReadWeights(checkpoint, {name}, {shape.Substring(0, shape.LastIndexOf(','))}, hasBias: {bias}, "
                + $"standardizationEps: {(p.StandardizationEps > 0 ? "StandardizationEps" : "0")})",
            _ => $"{Kernels}.WeightLoading.ReadLinear(checkpoint, {name}, {shape}, hasBias: {bias}{layerScale})",
        };
    }

    /// <summary>
    /// The position embedding's loader: the class, distillation and register rows it covers (none with noEmbedClass)
    /// and the patch grid, to which a checkpoint's embedding of another grid is resampled.
    /// </summary>
    private static string ReadPositionEmbedding(VitModelSpec s)
        => $"{Kernels}.WeightLoading.ReadPositionEmbedding(checkpoint, \"{TimmNames.PositionEmbedding}\", prefixRows: {Int(s.PositionRows - s.NumPatches)}, gridHeight: {Int(s.Grid)}, gridWidth: {Int(s.Grid)}, Dim)";

    private static void WriteDispose(IndentedWriter w, ModelDescription model)
    {
        w.Line("/// <summary>")
         .Line("/// Frees the packed weights and workspaces: at once, or, while calls are running on other threads, when the last")
         .Line("/// of them returns (their results are complete). Calls that start afterwards throw")
         .Line("/// <see cref=\"global::System.ObjectDisposedException\"/>. Does not block.")
         .Line("/// </summary>")
         .Line("public void Dispose() => _workspaces.Dispose();")
         .Line();

        w.Line("/// <summary>What Dispose frees once no call is running (the workspace pool calls it); fields a failed load left null are skipped.</summary>");
        using (w.Block("private void FreeWeights()"))
        {
            foreach (var p in model.Weights.Backbone) w.Line($"{Field(p)}?.Dispose();");
            foreach (var p in model.Weights.Embedding) w.Line($"{Field(p)}?.Dispose();");
            w.Line("if (_blocks is not null) foreach (var block in _blocks) block?.Dispose();");
            foreach (var p in model.Weights.Final) w.Line($"{Field(p)}?.Dispose();");
        }
        w.Line();
    }

    private static void WriteBlockWeights(IndentedWriter w, ModelDescription model)
    {
        var block = model.Weights.Block;
        string folded = model.Spec.LayerScale ? " (LayerScale folded into proj and fc2)" : "";
        w.Line($"/// <summary>One transformer block's weights in kernel layout{folded}.</summary>");
        using (w.Block("private sealed class Block : global::System.IDisposable"))
        {
            foreach (var group in block.GroupBy(FieldType))
                w.Line($"public readonly {group.Key} {string.Join(", ", group.Select(p => p.Key))};");
            w.Line();
            using (w.Block($"public Block({Kernels}.CheckpointReader checkpoint, string prefix)"))
            {
                using (w.Block("try"))
                {
                    foreach (var p in block) w.Line($"{p.Key} = {Read(p, inBlock: true)};");
                }
                using (w.Block("catch"))
                {
                    w.Line("Dispose();")
                     .Line("throw;");
                }
            }
            w.Line();
            using (w.Block("public void Dispose()"))
            {
                foreach (var p in block) w.Line($"{p.Key}?.Dispose();");
            }
        }
        w.Line();
    }
}
