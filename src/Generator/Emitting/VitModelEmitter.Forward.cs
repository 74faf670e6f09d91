using ViTGen.Generator.Helpers;
using ViTGen.Generator.Model;

namespace ViTGen.Generator.Emitting;

// The forward pass: the public entry point, then the schedule of one image, then the shapes it runs at.
internal static partial class VitModelEmitter
{
    private static void WriteForward(IndentedWriter w, VitModelSpec s)
    {
        w.Line("/// <summary>")
         .Line("/// Runs <paramref name=\"batch\"/> images: <paramref name=\"pixels\"/> holds <c>batch * InputSize</c> normalized NCHW floats,")
         .Line($"/// <paramref name=\"output\"/> receives <c>batch * OutputSize</c> {(s.Classes > 0 ? "logits" : "pooled features")}.")
         .Line("/// Calls on one instance from several threads are serialized.")
         .Line("/// </summary>");
        using (w.Block("public void Forward(global::System.ReadOnlySpan<float> pixels, global::System.Span<float> output, int batch = 1)"))
        {
            w.Line($"{Kernels}.BatchRunner.Validate(pixels.Length, output.Length, batch, InputSize, OutputSize);");
            using (w.Block("lock (_gate)"))
            {
                w.Line("global::System.ObjectDisposedException.ThrowIf(_disposed, this);")
                 .Line($"{Kernels}.BatchRunner.Run(this, pixels, output, batch, InputSize, OutputSize, _threads);");
            }
        }
        w.Line();

        using (w.Block($"void {Kernels}.IImageForward.ForwardImage(global::System.ReadOnlySpan<float> image, global::System.Span<float> output, int worker, int threads)"))
        {
            w.Line("var workspace = _workspaces[worker] ??= new Workspace();")
             .Line("EmbedPatches(image, workspace, threads);")
             .Line("foreach (var block in _blocks) RunBlock(block, workspace, threads);")
             .Line("PoolAndClassify(workspace, output, threads);");
        }
        w.Line();
    }

    private static void WriteBlockSchedule(IndentedWriter w, VitModelSpec s)
    {
        WriteEmbedPatches(w, s);

        w.Line("/// <summary>x = x + proj(attention(norm1(x))); x = x + fc2(act(fc1(norm2(x)))).</summary>");
        using (w.Block("private static void RunBlock(Block block, Workspace workspace, int threads)"))
        {
            w.Line($"{Kernels}.LayerNorm.Apply<Width>(workspace.X, 0, Tokens, block.Norm1, NormEps, workspace.Normed, 0);")
             .Line($"{Kernels}.Gemm.Linear<QkvGemm, {Kernels}.StoreEpilogue>(workspace.Normed, 0, block.Qkv, workspace.Qkv, 0, threads);")
             .Line($"{Kernels}.Attention.Run<AttentionShape>(workspace.Qkv, workspace.Context, threads);")
             .Line($"{Kernels}.Gemm.Linear<ProjGemm, {Kernels}.ResidualEpilogue>(workspace.Context, 0, block.Proj, workspace.X, 0, threads);")
             .Line($"{Kernels}.LayerNorm.Apply<Width>(workspace.X, 0, Tokens, block.Norm2, NormEps, workspace.Normed, 0);")
             .Line($"{Kernels}.Gemm.Linear<Fc1Gemm, {Kernels}.{ActivationEpilogue(s.Activation)}>(workspace.Normed, 0, block.Fc1, workspace.Hidden, 0, threads);")
             .Line($"{Kernels}.Gemm.Linear<Fc2Gemm, {Kernels}.ResidualEpilogue>(workspace.Hidden, 0, block.Fc2, workspace.X, 0, threads);");
        }
        w.Line();

        WritePoolAndClassify(w, s);
    }

    private static void WriteEmbedPatches(IndentedWriter w, VitModelSpec s)
    {
        string order = s.NoEmbedClass
            ? "patch tokens + position embedding, then the prefix tokens in front (no_embed_class)"
            : "[prefix tokens, patch tokens] + position embedding";
        w.Line($"/// <summary>Tokens of one image: {order}.</summary>");
        using (w.Block("private void EmbedPatches(global::System.ReadOnlySpan<float> image, Workspace workspace, int threads)"))
        {
            w.Line($"{Kernels}.PatchEmbedding.Unfold<PatchGrid>(image, workspace.Patches);")
             .Line($"{Kernels}.Gemm.Linear<PatchEmbeddingGemm, {Kernels}.StoreEpilogue>(workspace.Patches, 0, _patchEmbedding, workspace.X, PrefixTokens, threads);");
            int row = 0;
            if (s.ClassToken) w.Line($"{Kernels}.TokenOps.CopyRows(_classToken, 0, workspace.X, {Int(row++)}, 1, Dim);");
            if (s.Distilled) w.Line($"{Kernels}.TokenOps.CopyRows(_distillationToken, 0, workspace.X, {Int(row++)}, 1, Dim);");
            if (s.Registers > 0) w.Line($"{Kernels}.TokenOps.CopyRows(_registerTokens, 0, workspace.X, {Int(row)}, {Int(s.Registers)}, Dim);");
            string firstRow = s.NoEmbedClass ? "PrefixTokens" : "0";
            w.Line($"{Kernels}.TokenOps.AddRows(_positionEmbedding, 0, workspace.X, {firstRow}, PositionRows, Dim);");
            if (s.PreNorm) w.Line($"{Kernels}.LayerNorm.Apply<Width>(workspace.X, 0, Tokens, _preNorm, NormEps, workspace.X, 0);");
        }
        w.Line();
    }

    private static void WritePoolAndClassify(IndentedWriter w, VitModelSpec s)
    {
        string summary = s.Pooling == Pooling.Avg
            ? "Mean of the patch tokens, fc_norm"
            : s.Distilled ? "norm on the class and distillation tokens" : "norm on the class token";
        summary += s.Distilled ? ", then the mean of the two heads (DeiT inference)." : s.Classes > 0 ? ", then the head." : "; no head.";
        w.Line($"/// <summary>{summary}</summary>");
        using (w.Block("private void PoolAndClassify(Workspace workspace, global::System.Span<float> output, int threads)"))
        {
            if (s.Pooling == Pooling.Avg)
            {
                w.Line($"{Kernels}.TokenOps.MeanRows(workspace.X, PrefixTokens, NumPatches, Dim, workspace.Pooled, 0);")
                 .Line($"{Kernels}.LayerNorm.Apply<Width>(workspace.Pooled, 0, 1, _finalNorm, NormEps, workspace.Pooled, 0);");
            }
            else
            {
                w.Line($"{Kernels}.LayerNorm.Apply<Width>(workspace.X, 0, {(s.Distilled ? 2 : 1)}, _finalNorm, NormEps, workspace.Pooled, 0);");
            }
            if (s.Classes == 0)
            {
                w.Line($"{Kernels}.TokenOps.CopyRow(workspace.Pooled, 0, Dim, output);");
            }
            else if (s.Distilled)
            {
                w.Line($"{Kernels}.Gemm.Linear<HeadGemm, {Kernels}.StoreEpilogue>(workspace.Pooled, 0, _head, workspace.Logits, 0, threads);")
                 .Line($"{Kernels}.Gemm.Linear<HeadGemm, {Kernels}.StoreEpilogue>(workspace.Pooled, 1, _distillationHead, workspace.Logits, 1, threads);")
                 .Line($"{Kernels}.TokenOps.AverageRows(workspace.Logits, 0, 1, NumClasses, output);");
            }
            else
            {
                w.Line($"{Kernels}.Gemm.Linear<HeadGemm, {Kernels}.StoreEpilogue>(workspace.Pooled, 0, _head, workspace.Logits, 0, threads);")
                 .Line($"{Kernels}.TokenOps.CopyRow(workspace.Logits, 0, NumClasses, output);");
            }
        }
        w.Line();
    }

    private static string ActivationEpilogue(Activation activation) => activation switch
    {
        Activation.GeluTanh => "GeluTanhEpilogue",
        Activation.QuickGelu => "QuickGeluEpilogue",
        Activation.Relu => "ReluEpilogue",
        _ => "GeluEpilogue",
    };

    private static void WriteWorkspace(IndentedWriter w, VitModelSpec s)
    {
        string pooledRows = s.Distilled ? "2 * " : "";
        w.Line("/// <summary>Activations of one image in flight; one per worker thread, created on first use.</summary>");
        using (w.Block("private sealed class Workspace : global::System.IDisposable"))
        {
            w.Line($"public readonly {Kernels}.NativeBuffer Patches = new(NumPatches * PatchFeatures);")
             .Line($"public readonly {Kernels}.NativeBuffer X = new(Tokens * Dim);")
             .Line($"public readonly {Kernels}.NativeBuffer Normed = new(Tokens * Dim);")
             .Line($"public readonly {Kernels}.NativeBuffer Qkv = new(Tokens * 3 * Dim);")
             .Line($"public readonly {Kernels}.NativeBuffer Context = new(Tokens * Dim);")
             .Line($"public readonly {Kernels}.NativeBuffer Hidden = new(Tokens * MlpDim);")
             .Line($"public readonly {Kernels}.NativeBuffer Pooled = new({pooledRows}Dim);")
             .Line($"public readonly {Kernels}.NativeBuffer Logits = new({pooledRows}NumClasses);")
             .Line();
            using (w.Block("public void Dispose()"))
            {
                foreach (var buffer in new[] { "Patches", "X", "Normed", "Qkv", "Context", "Hidden", "Pooled", "Logits" })
                    w.Line(buffer + ".Dispose();");
            }
        }
    }
}
