using ViTGen.Generator.Helpers;
using ViTGen.Generator.Model;

namespace ViTGen.Generator.Emitting;

// The weight layout: which timm tensors the model reads, with which shapes, into which kernel layouts.
internal static partial class VitModelEmitter
{
    private static void WriteLoad(IndentedWriter w, VitModelSpec s)
    {
        string name = TypeScaffold.Escape(s.Type.Name);
        w.Line("/// <summary>")
         .Line("/// Loads safetensors weights (timm, Hugging Face, torchvision or OpenAI CLIP names) and checks every tensor against")
         .Line("/// this model's shapes. Failures throw <see cref=\"global::ViTGen.VitWeightsException\"/> naming the tensor.")
         .Line("/// </summary>");
        using (w.Block($"public static {name} Load(string path, global::ViTGen.VitOptions? options = null)"))
        {
            w.Line($"int threads = {Kernels}.BatchRunner.Threads(options);")
             .Line($"using var checkpoint = {Kernels}.CheckpointReader.Open(path, options?.Checkpoint);")
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
            w.Line("_threads = threads;");
            using (w.Block("try"))
            {
                w.Line($"_patchEmbedding = {Kernels}.WeightLoading.ReadPatchEmbedding(checkpoint, \"patch_embed.proj\", Dim, Channels, PatchSize, hasBias: {Bool(!s.PreNorm)});");
                if (s.ClassToken) w.Line($"_classToken = {Kernels}.WeightLoading.ReadBuffer(checkpoint, \"cls_token\", 1, 1, Dim);");
                if (s.Distilled) w.Line($"_distillationToken = {Kernels}.WeightLoading.ReadBuffer(checkpoint, \"dist_token\", 1, 1, Dim);");
                if (s.Registers > 0) w.Line($"_registerTokens = {Kernels}.WeightLoading.ReadBuffer(checkpoint, \"reg_token\", 1, {Int(s.Registers)}, Dim);");
                w.Line($"_positionEmbedding = {Kernels}.WeightLoading.ReadBuffer(checkpoint, \"pos_embed\", 1, PositionRows, Dim);");
                if (s.PreNorm) w.Line($"_preNorm = {Kernels}.WeightLoading.ReadLayerNorm(checkpoint, \"norm_pre\", Dim);");
                w.Line("_blocks = new Block[Depth];")
                 .Line($"for (int i = 0; i < Depth; i++) _blocks[i] = new Block(checkpoint, {Kernels}.WeightLoading.BlockPrefix(i));")
                 .Line($"_finalNorm = {Kernels}.WeightLoading.ReadLayerNorm(checkpoint, \"{(s.Pooling == Pooling.Avg ? "fc_norm" : "norm")}\", Dim);");
                // OpenAI CLIP's projection has no bias; every other dialect's head does.
                if (s.Classes > 0) w.Line($"_head = {Kernels}.WeightLoading.ReadLinear(checkpoint, \"head\", NumClasses, Dim, hasBias: checkpoint.Dialect != global::ViTGen.CheckpointDialect.OpenAiClip);");
                if (s.Distilled) w.Line($"_distillationHead = {Kernels}.WeightLoading.ReadLinear(checkpoint, \"head_dist\", NumClasses, Dim, hasBias: true);");
            }
            using (w.Block("catch"))
            {
                w.Line("Dispose();")
                 .Line("throw;");
            }
        }
        w.Line();
    }

    private static void WriteDispose(IndentedWriter w, VitModelSpec s)
    {
        w.Line("/// <summary>Frees the packed weights and workspaces. Forward throws afterwards.</summary>");
        using (w.Block("public void Dispose()"))
        {
            using (w.Block("lock (_gate)"))
            {
                w.Line("if (_disposed) return;")
                 .Line("_disposed = true;")
                 .Line("_patchEmbedding?.Dispose();");
                if (s.ClassToken) w.Line("_classToken?.Dispose();");
                if (s.Distilled) w.Line("_distillationToken?.Dispose();");
                if (s.Registers > 0) w.Line("_registerTokens?.Dispose();");
                w.Line("_positionEmbedding?.Dispose();");
                if (s.PreNorm) w.Line("_preNorm?.Dispose();");
                w.Line("if (_blocks is not null) foreach (var block in _blocks) block?.Dispose();")
                 .Line("_finalNorm?.Dispose();");
                if (s.Classes > 0) w.Line("_head?.Dispose();");
                if (s.Distilled) w.Line("_distillationHead?.Dispose();");
                w.Line("foreach (var workspace in _workspaces) workspace?.Dispose();");
            }
        }
        w.Line();
    }

    private static void WriteBlockWeights(IndentedWriter w, VitModelSpec s)
    {
        w.Line("/// <summary>One transformer block's weights in kernel layout (LayerScale folded into proj and fc2).</summary>");
        using (w.Block("private sealed class Block : global::System.IDisposable"))
        {
            w.Line($"public readonly {Kernels}.LayerNormWeights Norm1, Norm2;")
             .Line($"public readonly {Kernels}.PackedLinear Qkv, Proj, Fc1, Fc2;")
             .Line();
            using (w.Block($"public Block({Kernels}.CheckpointReader checkpoint, string prefix)"))
            {
                using (w.Block("try"))
                {
                    string ls1 = s.LayerScale ? ", layerScale: prefix + \".ls1.gamma\"" : "";
                    string ls2 = s.LayerScale ? ", layerScale: prefix + \".ls2.gamma\"" : "";
                    w.Line($"Norm1 = {Kernels}.WeightLoading.ReadLayerNorm(checkpoint, prefix + \".norm1\", Dim);")
                     .Line($"Qkv = {Kernels}.WeightLoading.ReadLinear(checkpoint, prefix + \".attn.qkv\", 3 * Dim, Dim, hasBias: {Bool(s.QkvBias)});")
                     .Line($"Proj = {Kernels}.WeightLoading.ReadLinear(checkpoint, prefix + \".attn.proj\", Dim, Dim, hasBias: true{ls1});")
                     .Line($"Norm2 = {Kernels}.WeightLoading.ReadLayerNorm(checkpoint, prefix + \".norm2\", Dim);")
                     .Line($"Fc1 = {Kernels}.WeightLoading.ReadLinear(checkpoint, prefix + \".mlp.fc1\", MlpDim, Dim, hasBias: true);")
                     .Line($"Fc2 = {Kernels}.WeightLoading.ReadLinear(checkpoint, prefix + \".mlp.fc2\", Dim, MlpDim, hasBias: true{ls2});");
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
                w.Line("Norm1?.Dispose();")
                 .Line("Qkv?.Dispose();")
                 .Line("Proj?.Dispose();")
                 .Line("Norm2?.Dispose();")
                 .Line("Fc1?.Dispose();")
                 .Line("Fc2?.Dispose();");
            }
        }
        w.Line();
    }

    private static string Bool(bool value) => value ? "true" : "false";
}
