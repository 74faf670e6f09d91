using System;
using ViTGen.Generator.Helpers;
using ViTGen.Generator.Lowering;
using ViTGen.Generator.Model;
using static ViTGen.Generator.Emitting.SourceText;

namespace ViTGen.Generator.Emitting.Cpu;

// The forward pass: the public entry point, then each stage of the description as a method of kernel calls on one
// image's workspace.
internal static partial class CpuModelEmitter
{
    private static void WriteForward(IndentedWriter w, ModelDescription model)
    {
        w.Line("/// <summary>")
         .Line("/// Runs <paramref name=\"batch\"/> images: <paramref name=\"pixels\"/> holds <c>batch * InputSize</c> normalized NCHW floats,")
         .Line($"/// <paramref name=\"output\"/> receives <c>batch * OutputSize</c> {(model.Spec.Classes > 0 ? "logits" : "pooled features")}.")
         .Line("/// Safe to call on one instance from several threads at once: every call runs on workspaces of its own (the")
         .Line("/// weights are shared, read-only) and holds no lock while it computes.")
         .Line("/// </summary>");
        using (w.Block("public void Forward(global::System.ReadOnlySpan<float> pixels, global::System.Span<float> output, int batch = 1)"))
        {
            w.Line($"{Kernels}.BatchRunner.Validate(pixels.Length, output.Length, batch, InputSize, OutputSize);");
            WriteRun(w, "Logits", "output, default", "OutputSize, 0");
        }
        w.Line();
    }

    /// <summary>
    /// ForwardAttention, ForwardFeatures and ForwardPooled, and the one per-image pass every forward runs: Forward's
    /// stages, with the attention captured or stopping earlier.
    /// </summary>
    private static void WriteExplain(IndentedWriter w, ModelDescription model)
    {
        const string Span = "global::System.Span<float>", Pixels = "global::System.ReadOnlySpan<float> pixels";
        var explain = model.Explain;
        if (explain.HasAttention)
        {
            w.Line("/// <summary>")
             .Line("/// <see cref=\"Forward\"/>, and every block's attention probabilities: <paramref name=\"attention\"/> receives")
             .Line("/// <c>batch * AttentionSize</c> floats, <c>[image][block][head][query token][key token]</c>, each row")
             .Line("/// <c>softmax(q·kᵀ·HeadDim^-0.5)</c> (timm's <c>attn.softmax(dim=-1)</c>; tokens: class, distillation, registers, patches).")
             .Line("/// <paramref name=\"output\"/> receives what Forward writes, bit for bit. Thread-safe like Forward.")
             .Line("/// </summary>");
            using (w.Block($"public void ForwardAttention({Pixels}, {Span} output, {Span} attention, int batch = 1)"))
            {
                w.Line($"{Kernels}.BatchRunner.Validate(pixels.Length, output.Length, batch, InputSize, OutputSize);")
                 .Line($"{Kernels}.BatchRunner.ValidateOutput(attention.Length, batch, AttentionSize, nameof(attention));");
                WriteRun(w, "Attention", "output, attention", "OutputSize, AttentionSize");
            }
            w.Line();
        }

        w.Line("/// <summary>")
         .Line("/// timm's <c>forward_features</c>: <paramref name=\"features\"/> receives <c>batch * FeatureSize</c> floats, every token")
         .Line(model.Spec.Pooling == Pooling.Avg
            ? "/// (<c>[image][token][Dim]</c>) after the last block (timm's <c>norm</c> is the identity here: fc_norm follows the pool)."
            : "/// (<c>[image][token][Dim]</c>) after the final <c>norm</c>.")
         .Line("/// Thread-safe like <see cref=\"Forward\"/>.")
         .Line("/// </summary>");
        using (w.Block($"public void ForwardFeatures({Pixels}, {Span} features, int batch = 1)"))
        {
            w.Line($"{Kernels}.BatchRunner.Validate(pixels.Length, features.Length, batch, InputSize, FeatureSize, nameof(features));");
            WriteRun(w, "Features", "features, default", "FeatureSize, 0");
        }
        w.Line();

        w.Line("/// <summary>")
         .Line("/// timm's <c>forward_head(forward_features(x), pre_logits=True)</c>: <paramref name=\"pooled\"/> receives <c>batch * PooledSize</c> floats,")
         .Line(model.Spec.Distilled ? "/// the mean of the normed class and distillation tokens."
            : model.Spec.Pooling == Pooling.Avg ? "/// fc_norm of the mean of the patch tokens." : "/// the normed class token.")
         .Line("/// Thread-safe like <see cref=\"Forward\"/>.")
         .Line("/// </summary>");
        using (w.Block($"public void ForwardPooled({Pixels}, {Span} pooled, int batch = 1)"))
        {
            w.Line($"{Kernels}.BatchRunner.Validate(pixels.Length, pooled.Length, batch, InputSize, PooledSize, nameof(pooled));");
            WriteRun(w, "Pooled", "pooled, default", "PooledSize, 0");
        }
        w.Line();

        w.Line("/// <summary>One image on one workspace of a call's rented set: what every forward runs per image.</summary>");
        using (w.Block($"private void RunImage({Kernels}.ImageOutputs outputs, global::System.ReadOnlySpan<float> image, {Span} output, {Span} attention, Workspace workspace, int threads)"))
        {
            w.Line("EmbedPatches(image, workspace, threads);");
            if (explain.HasAttention)
            {
                w.Line("const int BlockAttention = Heads * Tokens * Tokens;")
                 .Line("for (int i = 0; i < _blocks.Length; i++)")
                 .Line("    RunBlock(_blocks[i], workspace, attention.IsEmpty ? default : attention.Slice(i * BlockAttention, BlockAttention), threads);");
            }
            else
            {
                w.Line("foreach (var block in _blocks) RunBlock(block, workspace, default, threads);");
            }
            using (w.Block($"if (outputs == {Kernels}.ImageOutputs.Features)"))
            {
                w.Line("WriteFeatures(workspace, output, threads);")
                 .Line("return;");
            }
            w.Line("PoolTokens(workspace, threads);")
             .Line($"if (outputs == {Kernels}.ImageOutputs.Pooled) WritePooled(workspace, output, threads);")
             .Line("else Classify(workspace, output, threads);");
        }
        w.Line();
    }

    // The rented set keeps the model reachable (set -> pool -> owner) until it is returned, so an instance whose
    // caller drops it during its own call cannot be finalized, and its native weights freed, mid-GEMM.
    private static void WriteRun(IndentedWriter w, string outputs, string spans, string sizes)
        => w.Line("using var workspaces = _workspaces.Rent();")
            .Line($"{Kernels}.BatchRunner.Run(workspaces, {Kernels}.ImageOutputs.{outputs}, pixels, {spans}, batch, InputSize, {sizes}, _threads);");

    private static void WriteStages(IndentedWriter w, ModelDescription model)
    {
        WriteStage(w, model, model.Embed, "private void EmbedPatches(global::System.ReadOnlySpan<float> image, Workspace workspace, int threads)", inBlock: false);
        WriteStage(w, model, model.Block, "private static void RunBlock(Block block, Workspace workspace, global::System.Span<float> attention, int threads)", inBlock: true);
        WriteStage(w, model, model.Pool, "private void PoolTokens(Workspace workspace, int threads)", inBlock: false);
        WriteStage(w, model, model.Classify, "private void Classify(Workspace workspace, global::System.Span<float> output, int threads)", inBlock: false);
        WriteStage(w, model, model.Explain.Features, "private void WriteFeatures(Workspace workspace, global::System.Span<float> output, int threads)", inBlock: false);
        WriteStage(w, model, model.Explain.PreLogits, "private void WritePooled(Workspace workspace, global::System.Span<float> output, int threads)", inBlock: false);
    }

    private static void WriteStage(IndentedWriter w, ModelDescription model, Stage stage, string signature, bool inBlock)
    {
        w.Line($"/// <summary>{Xml(stage.Summary)}</summary>");
        using (w.Block(signature))
        {
            foreach (var operation in stage.Operations) Translate(w, model, operation, inBlock);
        }
        w.Line();
    }

    private static void Translate(IndentedWriter w, ModelDescription model, Operation operation, bool inBlock)
    {
        string Weight(WeightParameter p) => inBlock ? "block." + p.Key : Field(p);
        switch (operation)
        {
            case UnfoldPatches op:
                w.Line($"{Kernels}.PatchEmbedding.Unfold<PatchGrid>(image, workspace.{op.Output});");
                break;
            case Linear op:
                w.Line($"{Kernels}.Gemm.Linear<{GemmShapeName(model, op)}, {Kernels}.{EpilogueType(op.Epilogue, model.Spec.Activation)}>(workspace.{op.Input}, {op.InputRow.Symbol}, "
                    + $"{Weight(op.Weight)}, workspace.{op.Output}, {op.OutputRow.Symbol}, threads);");
                break;
            case AssembleTokens op:
                int row = 0;
                foreach (var token in op.Prefix)
                {
                    w.Line($"{Kernels}.TokenOps.CopyRows({Field(token)}, 0, workspace.{op.Output}, {Int(row)}, {token.ShapeSymbols[1]}, Dim);");
                    row += token.Shape[1];
                }
                w.Line($"{Kernels}.TokenOps.AddRows({Field(op.Position)}, 0, workspace.{op.Output}, {op.PositionFirstRow.Symbol}, PositionRows, Dim);");
                break;
            case LayerNorm op:
                w.Line($"{Kernels}.LayerNorm.Apply<Width>(workspace.{op.Input}, 0, {op.Rows.Symbol}, {Weight(op.Weight)}, NormEps, workspace.{op.Output}, 0, threads);");
                break;
            case Attention op:
                w.Line($"{Kernels}.Attention.Run<AttentionShape>(workspace.{op.Input}, workspace.{op.Output}, attention, threads);");
                break;
            case MeanRows op:
                w.Line($"{Kernels}.TokenOps.MeanRows(workspace.{op.Input}, {op.FirstRow.Symbol}, {op.Rows.Symbol}, Dim, workspace.{op.Output}, 0);");
                break;
            case CopyToOutput op:
                w.Line($"{Kernels}.TokenOps.CopyRow(workspace.{op.Input}, 0, {model.Buffer(op.Input).Width.Symbol}, output);");
                break;
            case CopyRowsToOutput op:
                w.Line($"{Kernels}.TokenOps.CopyRowsToOutput(workspace.{op.Input}, {op.Rows.Symbol}, {model.Buffer(op.Input).Width.Symbol}, output);");
                break;
            case ChannelsLast op:
                w.Line($"{Kernels}.Convolution.ToChannelsLast(image, Channels, ImageSize, workspace.{op.Output});");
                break;
            case UnfoldMap op:
                w.Line($"{Kernels}.Convolution.Unfold(workspace.{op.Input}, size: {Int(op.Size)}, channels: {Int(op.Channels)}, kernel: {Int(op.Kernel)}, "
                    + $"stride: {Int(op.Stride)}, workspace.{op.Output}, threads);");
                break;
            case GroupNorm op:
            {
                string method = op.End switch { GroupNormEnd.None => "Apply", GroupNormEnd.Relu => "ApplyRelu", _ => "ApplyAddRelu" };
                string residual = op.End == GroupNormEnd.AddRelu ? $"workspace.{op.Residual}, " : "";
                w.Line($"{Kernels}.GroupNorm.{method}(workspace.{op.Buffer}, pixels: {Int(op.Pixels)}, channels: {Int(op.Weight.OutFeatures)}, GroupNormGroups, "
                    + $"{Weight(op.Weight)}, GroupNormEps, {residual}threads); // {op.Label}");
                break;
            }
            case MaxPool op:
                w.Line($"{Kernels}.MaxPool.Apply(workspace.{op.Input}, size: {Int(op.Size)}, channels: {Int(op.Channels)}, workspace.{op.Output}, threads);");
                break;
            case AverageRowsToOutput op:
                w.Line($"{Kernels}.TokenOps.AverageRows(workspace.{op.Input}, 0, 1, {model.Buffer(op.Input).Width.Symbol}, output);");
                break;
            default:
                throw new NotSupportedException($"The CPU emitter has no translation of {operation.GetType().Name}.");
        }
    }

    private static string EpilogueType(Epilogue epilogue, Activation activation) => epilogue switch
    {
        Epilogue.Store => "StoreEpilogue",
        Epilogue.Residual => "ResidualEpilogue",
        _ => activation switch
        {
            Activation.GeluTanh => "GeluTanhEpilogue",
            Activation.QuickGelu => "QuickGeluEpilogue",
            Activation.Relu => "ReluEpilogue",
            _ => "GeluEpilogue",
        },
    };

    private static void WriteWorkspace(IndentedWriter w, ModelDescription model)
    {
        w.Line("/// <summary>Activations of one image in flight; a call's rented set has one per worker thread, created on first use.</summary>");
        using (w.Block("private sealed class Workspace : global::System.IDisposable"))
        {
            foreach (var buffer in model.Buffers)
            {
                string size = buffer.Rows.Value == 1 ? buffer.Width.Symbol : $"{buffer.Rows.Symbol} * {buffer.Width.Symbol}";
                w.Line($"public readonly {Kernels}.NativeBuffer {buffer.Name} = new({size}); // {buffer.Comment}");
            }
            w.Line();
            using (w.Block("public void Dispose()"))
            {
                foreach (var buffer in model.Buffers) w.Line(buffer.Name + ".Dispose();");
            }
        }
    }
}
