using System;
using System.Collections.Generic;
using System.Linq;
using ViTGen.Generator.Helpers;
using ViTGen.Generator.Lowering;
using static ViTGen.Generator.Emitting.SourceText;

namespace ViTGen.Generator.Emitting.Gpu;

// The schedule: each stage of the description as the cuBLAS calls and kernel launches of a batch, with the
// column-major arguments worked out here.
//
// The swap, once: cuBLAS is column-major, and a row-major [rows, cols] buffer is the column-major [cols, rows]
// matrix with leading dimension cols. A Linear layer Y[n, out] = X[n, in] · W[out, in]ᵀ (W row-major, PyTorch's
// layout) is therefore, column-major, Yᵀ = op(W) · Xᵀ with op = T: gemm(T, N, m = out, n = rows, k = in,
// A = W, lda = in, B = X, ldb = in, C = Y, ldc = out). Attention uses the same rule per (image, head).
internal static partial class GpuPlanEmitter
{
    private const string Plan = TypeScaffold.Support + ".GpuPlanBuilder";

    private static void WriteBuild(IndentedWriter w, ModelDescription model, GpuArena a)
    {
        w.Line("/// <inheritdoc/>");
        using (w.Block($"public static {Kernels}.GpuPlan Build(int batch)"))
        {
            w.Line($"var plan = new {Plan}(Layout, batch);")
             .Line("EmbedPatches(plan);")
             .Line($"for (int layer = 0; layer < {Int(model.Spec.Depth)}; layer++) AddBlock(plan, layer);")
             .Line("PoolAndClassify(plan);")
             .Line("return plan.Build();");
        }
        w.Line();
        WriteStage(w, model, a, model.Embed, $"private static void EmbedPatches({Plan} plan)", inBlock: false);
        WriteStage(w, model, a, model.Block, $"private static void AddBlock({Plan} plan, int layer)", inBlock: true);
        WriteStage(w, model, a, model.Head, $"private static void PoolAndClassify({Plan} plan)", inBlock: false);
    }

    private static void WriteStage(IndentedWriter w, ModelDescription model, GpuArena a, Stage stage, string signature, bool inBlock)
    {
        // The body first, so the prologue declares exactly the activations it uses.
        var translator = new StageTranslator(model, a, stage, inBlock);
        foreach (var operation in stage.Operations) translator.Translate(operation);

        w.Line($"/// <summary>{Xml(stage.Summary)}</summary>");
        using (w.Block(signature))
        using (w.Block("checked"))
        {
            w.Line("int batch = plan.Batch;");
            if (inBlock)
            {
                w.Line($"string name = {Kernels}.WeightLoading.BlockPrefix(layer);")
                 .Line("long block = BlockWeights + layer * BlockStride;");
            }
            var locals = translator.Activations.Select(region => $"{Local(region)} = plan.Activation({region})").ToList();
            for (int i = 0; i < locals.Count; i += 4) w.Line("long " + string.Join(", ", locals.Skip(i).Take(4)) + ";");
            if (translator.Activations.Contains("Planes"))
            {
                long plane = (long)model.Spec.Tokens * model.Spec.Dim;
                w.Line($"long q = planes, k = planes + batch * {Int(plane)}, v = planes + 2 * batch * {Int(plane)};");
            }
            foreach (var line in translator.Lines) w.Line(line);
        }
        w.Line();
    }

    private static string Local(string region) => char.ToLowerInvariant(region[0]) + region.Substring(1);

    /// <summary>Translates the operations of one stage into lines of the plan, noting the activation regions they use.</summary>
    private sealed class StageTranslator
    {
        private readonly ModelDescription _model;
        private readonly GpuArena _arena;
        private readonly Stage _stage;
        private readonly bool _inBlock;

        public StageTranslator(ModelDescription model, GpuArena arena, Stage stage, bool inBlock)
        {
            _model = model;
            _arena = arena;
            _stage = stage;
            _inBlock = inBlock;
        }

        public List<string> Lines { get; } = new();

        /// <summary>Activation regions in first-use order.</summary>
        public List<string> Activations { get; } = new();

        private int D => _model.Spec.Dim;

        /// <summary>The local holding a buffer's batch offset; a buffer the model outputs is the output region itself.</summary>
        private string Buffer(string name)
        {
            string region = _arena.OutputAliases.Contains(name) ? "Output" : name;
            if (!Activations.Contains(region)) Activations.Add(region);
            return Local(region);
        }

        /// <summary>Rows of a whole batch: <c>batch * rows</c>.</summary>
        private static string BatchRows(int rows) => rows == 1 ? "batch" : $"batch * {Int(rows)}";

        private string Label(string name) => _inBlock ? $"name + \".{name}\"" : $"\"{name}\"";

        private string Weight(WeightParameter p, string suffix) => (_inBlock ? "block + " : "") + p.Key + suffix;

        private string Bias(Linear op) => op.Weight.HasBias ? $"Ptr({Weight(op.Weight, "Bias")})" : "NoPointer";

        /// <summary>The bias of a Linear whose bias kernel (bias + residual, bias + activation, the head average) needs one.</summary>
        private string RequiredBias(Linear op) => op.Weight.HasBias
            ? Bias(op)
            : throw new InvalidOperationException($"{op.Label}: the GPU's fused bias kernels need a bias.");

        /// <summary>The Linear of this stage that writes <paramref name="buffer"/>: its bias is added by the consumer's kernel.</summary>
        private IEnumerable<Linear> Producers(string buffer) => _stage.Operations.OfType<Linear>().Where(l => l.Output == buffer);

        /// <summary>Whether a kernel after the GEMM (the QKV split, the head average) adds this Linear's bias.</summary>
        private bool BiasFused(Linear op) => _stage.Operations.Any(o =>
            (o is Attention attention && attention.Input == op.Output) || (o is AverageRowsToOutput average && average.Input == op.Output));

        public void Translate(Operation operation)
        {
            switch (operation)
            {
                case UnfoldPatches op: Unfold(op); break;
                case Linear op: Project(op); break;
                case AssembleTokens op: Assemble(op); break;
                case LayerNorm op: Normalize(op); break;
                case Attention op: Attend(op); break;
                case MeanRows op: Mean(op); break;
                case AverageRowsToOutput op: Average(op); break;
                case CopyToOutput: break; // its input is the output region (GpuArena.OutputAliases)
                default: throw new NotSupportedException($"The GPU plan emitter has no translation of {operation.GetType().Name}.");
            }
        }

        private void Unfold(UnfoldPatches op)
        {
            var s = _model.Spec;
            long unfolded = (long)s.NumPatches * s.PatchFeatures;
            Lines.Add($"plan.Launch(\"unfold\", {Kernels}.GpuKernel.PatchUnfold, GridFor(batch * {Int(unfolded)}), 1, ElementThreads,");
            Lines.Add($"    Ptr({Buffer("Input")}), Ptr({Buffer(op.Output)}), Int({Int(s.Channels)}), Int({Int(s.ImageSize)}), Int({Int(s.Patch)}), Int(batch * {Int(unfolded)}));");
        }

        private void Project(Linear op)
        {
            int outFeatures = op.Weight.OutFeatures, inFeatures = op.Weight.InFeatures;
            var input = _model.Buffer(op.Input);
            var output = _model.Buffer(op.Output);
            // The patch embedding's rows go to their own scratch; the embedding kernel adds the bias and places them.
            string target = op.Weight.Kind == WeightKind.PatchEmbedding ? Buffer("PatchTokens")
                : op.Epilogue == Epilogue.Residual ? Buffer("Projected")
                : Buffer(op.Output);
            string b = Buffer(op.Input), c = target;
            string n;
            long ldb = inFeatures, ldc = outFeatures;
            if (op.Rows.Value == input.Rows.Value)
            {
                n = BatchRows(op.Rows.Value);
                string r = op.Rows.Value == 1 ? "B" : $"B·{op.Rows.Value}";
                Lines.Add($"// {c}[{r}, {outFeatures}] = {b}[{r}, {inFeatures}] · W[{outFeatures}, {inFeatures}]ᵀ: column-major {c}ᵀ = op(W) · {b}ᵀ, op = T.");
            }
            else
            {
                // One row per image (a head on pooled rows): rows of consecutive images are a buffer's rows apart.
                if (op.Rows.Value != 1) throw new InvalidOperationException($"{op.Label}: the GPU runs a Linear over all rows of its input or over one row per image, not {op.Rows.Value}.");
                n = "batch";
                ldb = (long)input.Rows.Value * inFeatures;
                ldc = (long)output.Rows.Value * outFeatures;
                Lines.Add($"// {c}[B, {outFeatures}] = {b}[B, {inFeatures}] · W[{outFeatures}, {inFeatures}]ᵀ on row {op.InputRow.Value} of each image's {input.Rows.Value}"
                    + $" (ldb = {Int(ldb)}, ldc = {Int(ldc)}): column-major {c}ᵀ = op(W) · {b}ᵀ, op = T.");
                if (op.InputRow.Value != 0) b += $" + {Int(op.InputRow.Value * inFeatures)}";
                if (op.OutputRow.Value != 0) c += $" + {Int(op.OutputRow.Value * outFeatures)}";
            }
            Gemm(Label(op.Label), true, false, Int(outFeatures), n, Int(inFeatures), "1f",
                Weight(op.Weight, "Weight"), inFeatures, "0", b, ldb, "0", "0f", c, ldc, "0", "1");

            long floats = (long)op.Rows.Value * outFeatures;
            string layer = op.Label.LastIndexOf('.') is var dot and > 0 ? op.Label.Substring(0, dot) : op.Label;
            switch (op.Epilogue)
            {
                case Epilogue.Residual:
                    Lines.Add($"plan.Launch({Label(layer + ".residual")}, {Kernels}.GpuKernel.BiasResidual, GridFor(batch * {Int(floats)}), 1, ElementThreads,");
                    Lines.Add($"    Ptr({Buffer(op.Output)}), Ptr({target}), {RequiredBias(op)}, Int({Int(outFeatures)}), Int(batch * {Int(floats)}));");
                    break;
                case Epilogue.Activate:
                    Lines.Add($"plan.Launch({Label(layer + ".act")}, {Kernels}.GpuKernel.{ActivationKernel(_model.Spec.Activation)}, GridFor(batch * {Int(floats)}), 1, ElementThreads,");
                    Lines.Add($"    Ptr({target}), {RequiredBias(op)}, Int({Int(outFeatures)}), Int(batch * {Int(floats)}));");
                    break;
                default:
                    if (op.Weight.Kind == WeightKind.PatchEmbedding || BiasFused(op) || !op.Weight.HasBias) break;
                    Lines.Add($"plan.Launch({Label(op.Label + ".bias")}, {Kernels}.GpuKernel.BiasAdd, GridFor(batch * {Int(floats)}), 1, ElementThreads,");
                    Lines.Add($"    Ptr({target}), {Bias(op)}, Int({Int(outFeatures)}), Int(batch * {Int(floats)}));");
                    break;
            }
        }

        private void Assemble(AssembleTokens op)
        {
            var s = _model.Spec;
            var patch = _stage.Operations.OfType<Linear>().Single(l => l.Weight.Kind == WeightKind.PatchEmbedding);
            long tokenFloats = (long)s.Tokens * D;
            string prefix = op.Prefix.Count > 0 ? $"Ptr({PrefixRegion})" : "NoPointer";
            Lines.Add($"plan.Launch(\"embed\", {Kernels}.GpuKernel.EmbedTokens, GridFor(batch * {Int(tokenFloats)}), 1, ElementThreads,");
            Lines.Add($"    Ptr({Buffer("PatchTokens")}), {Bias(patch)}, {prefix}, Ptr({op.Position.Key}), Ptr({Buffer(op.Output)}),");
            Lines.Add($"    Int({Int(s.Tokens)}), Int({Int(s.PrefixTokens)}), Int({Int(D)}), Int({Int(op.PositionFirstRow.Value)}), Int(batch * {Int(tokenFloats)}));");
        }

        private void Normalize(LayerNorm op)
        {
            var input = _model.Buffer(op.Input);
            string rows, groups;
            long inputStride = 0, outputStride = 0;
            if (op.Rows.Value == input.Rows.Value)
            {
                rows = BatchRows(op.Rows.Value);
                groups = "1";
            }
            else
            {
                // The first rows of every image (token pooling): one group per image, strided by whole images.
                Lines.Add(op.Rows.Value == 1
                    ? $"// Row 0 of every image: group stride {Int(input.Floats)} in, {Int(D)} out."
                    : $"// Rows 0..{op.Rows.Value - 1} of every image: group stride {Int(input.Floats)} in, {Int((long)op.Rows.Value * D)} out.");
                rows = Int(op.Rows.Value);
                groups = "batch";
                inputStride = input.Floats;
                outputStride = _model.Buffer(op.Output).Floats;
            }
            Lines.Add($"plan.Launch({Label(op.Label)}, {Kernels}.GpuKernel.LayerNorm, {rows}, {groups}, LayerNormThreads,");
            Lines.Add($"    Ptr({Buffer(op.Input)}), Ptr({Buffer(op.Output)}), Ptr({Weight(op.Weight, "Weight")}), Ptr({Weight(op.Weight, "Bias")}), "
                + $"Int({Int(D)}), Int({Int(inputStride)}), Int({Int(outputStride)}), Float({Float(_model.Spec.NormEps)}));");
        }

        private void Attend(Attention op)
        {
            var s = _model.Spec;
            int t = s.Tokens, h = s.Heads, hd = s.HeadDim;
            long plane = (long)t * D, headMatrix = (long)t * hd, scoreMatrix = (long)t * t, qkvFloats = (long)t * 3 * D;
            string bias = Producers(op.Input).Select(Bias).Single();
            string planes = Buffer("Planes"), scores = Buffer("Scores"), headContext = Buffer("HeadContext");
            Lines.Add($"plan.Launch({Label(op.Label + ".split")}, {Kernels}.GpuKernel.SplitQkv, GridFor(batch * {Int(qkvFloats)}), 1, ElementThreads,");
            Lines.Add($"    Ptr({Buffer(op.Input)}), {bias}, Ptr({planes}), Int({Int(t)}), Int({Int(h)}), Int({Int(hd)}), Int(batch * {Int(qkvFloats)}));");
            Lines.Add($"// Per (image, head): scores[{t}, {t}] = q[{t}, {hd}] · k[{t}, {hd}]ᵀ · {hd}^-0.5, row-major;");
            Lines.Add($"// column-major scoresᵀ = op(k) · qᵀ with op = T, batch * {h} problems {Int(headMatrix)} floats apart.");
            Gemm(Label(op.Label + ".scores"), true, false, Int(t), Int(t), Int(hd), Float((float)(1.0 / Math.Sqrt(hd))),
                "k", hd, Int(headMatrix), "q", hd, Int(headMatrix), "0f", scores, t, Int(scoreMatrix), $"batch * {Int(h)}");
            Lines.Add($"plan.Launch({Label(op.Label + ".softmax")}, {Kernels}.GpuKernel.SoftmaxRows, batch * {Int((long)h * t)}, 1, SoftmaxThreads, Ptr({scores}), Int({Int(t)}));");
            Lines.Add($"// Per (image, head): context[{t}, {hd}] = p[{t}, {t}] · v[{t}, {hd}], row-major; column-major contextᵀ = vᵀ · pᵀ, op = N, N.");
            Gemm(Label(op.Label + ".values"), false, false, Int(hd), Int(t), Int(t), "1f",
                "v", hd, Int(headMatrix), scores, t, Int(scoreMatrix), "0f", headContext, hd, Int(headMatrix), $"batch * {Int(h)}");
            Lines.Add($"plan.Launch({Label(op.Label + ".merge")}, {Kernels}.GpuKernel.MergeHeads, GridFor(batch * {Int(plane)}), 1, ElementThreads,");
            Lines.Add($"    Ptr({headContext}), Ptr({Buffer(op.Output)}), Int({Int(t)}), Int({Int(h)}), Int({Int(hd)}), Int(batch * {Int(plane)}));");
        }

        private void Mean(MeanRows op)
        {
            Lines.Add($"plan.Launch(\"{op.Label}\", {Kernels}.GpuKernel.MeanTokens, batch, 1, LayerNormThreads,");
            Lines.Add($"    Ptr({Buffer(op.Input)}), Ptr({Buffer(op.Output)}), Int({Int(_model.Buffer(op.Input).Rows.Value)}), Int({Int(op.FirstRow.Value)}), Int({Int(op.Rows.Value)}), Int({Int(D)}));");
        }

        private void Average(AverageRowsToOutput op)
        {
            int classes = _model.Buffer(op.Input).Width.Value;
            var biases = Producers(op.Input).Select(RequiredBias).ToList();
            Lines.Add($"plan.Launch(\"{op.Label}\", {Kernels}.GpuKernel.DistilledAverage, GridFor(batch * {Int(classes)}), 1, ElementThreads,");
            Lines.Add($"    Ptr({Buffer(op.Input)}), {biases[0]}, {biases[1]}, Ptr({Buffer("Output")}), Int({Int(classes)}), Int(batch * {Int(classes)}));");
        }

        private void Gemm(string label, bool transA, bool transB, string m, string n, string k, string alpha,
            string a, long lda, string strideA, string b, long ldb, string strideB, string beta, string c, long ldc, string strideC, string batch)
        {
            Lines.Add($"plan.Gemm({label}, transA: {Bool(transA)}, transB: {Bool(transB)}, m: {m}, n: {n}, k: {k}, alpha: {alpha},");
            Lines.Add($"    a: {a}, lda: {Int(lda)}, strideA: {strideA}, b: {b}, ldb: {Int(ldb)}, strideB: {strideB},");
            Lines.Add($"    beta: {beta}, c: {c}, ldc: {Int(ldc)}, strideC: {strideC}{(batch == "1" ? "" : ", batch: " + batch)});");
        }
    }

    private static string ActivationKernel(Model.Activation activation) => activation switch
    {
        Model.Activation.GeluTanh => "BiasGeluTanh",
        Model.Activation.QuickGelu => "BiasQuickGelu",
        Model.Activation.Relu => "BiasRelu",
        _ => "BiasGelu",
    };
}
