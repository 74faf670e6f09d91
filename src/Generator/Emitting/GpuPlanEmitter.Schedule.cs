using System;
using ViTGen.Generator.Helpers;
using ViTGen.Generator.Model;

namespace ViTGen.Generator.Emitting;

// The schedule: every cuBLAS call and kernel launch of a batch, with the column-major arguments worked out here.
//
// The swap, once: cuBLAS is column-major, and a row-major [rows, cols] buffer is the column-major [cols, rows]
// matrix with leading dimension cols. A Linear layer Y[n, out] = X[n, in] · W[out, in]ᵀ (W row-major, PyTorch's
// layout) is therefore, column-major, Yᵀ = op(W) · Xᵀ with op = T: gemm(T, N, m = out, n = rows, k = in,
// A = W, lda = in, B = X, ldb = in, C = Y, ldc = out). Attention uses the same rule per (image, head).
internal static partial class GpuPlanEmitter
{
    private const string Plan = TypeScaffold.Support + ".GpuPlanBuilder";

    private static void WriteBuild(IndentedWriter w, VitModelSpec s, GpuArena a)
    {
        w.Line("/// <inheritdoc/>");
        using (w.Block($"public static {Kernels}.GpuPlan Build(int batch)"))
        {
            w.Line($"var plan = new {Plan}(Layout, batch);")
             .Line("EmbedPatches(plan);")
             .Line($"for (int layer = 0; layer < {Int(s.Depth)}; layer++) AddBlock(plan, layer);")
             .Line("PoolAndClassify(plan);")
             .Line("return plan.Build();");
        }
        w.Line();
        WriteEmbedPatches(w, s);
        WriteBlock(w, s);
        WritePoolAndClassify(w, s, a);
    }

    private static void WriteEmbedPatches(IndentedWriter w, VitModelSpec s)
    {
        string order = s.NoEmbedClass
            ? "prefix tokens, then patch tokens + position embedding (no_embed_class)"
            : "[prefix tokens, patch tokens] + position embedding";
        w.Line($"/// <summary>Tokens of every image: {order}{(s.PreNorm ? ", then norm_pre" : "")}.</summary>");
        using (w.Block($"private static void EmbedPatches({Plan} plan)"))
        using (w.Block("checked"))
        {
            int patchRows = s.NumPatches, features = s.PatchFeatures, dim = s.Dim;
            long unfolded = (long)patchRows * features, tokenFloats = (long)s.Tokens * dim;
            w.Line("int batch = plan.Batch;")
             .Line("long patches = plan.Activation(Patches), patchTokens = plan.Activation(PatchTokens), x = plan.Activation(X);")
             .Line($"plan.Launch(\"patch_embed.unfold\", {Kernels}.GpuKernel.PatchUnfold, GridFor(batch * {Int(unfolded)}), 1, ElementThreads,")
             .Line($"    Ptr(plan.Activation(Input)), Ptr(patches), Int({Int(s.Channels)}), Int({Int(s.ImageSize)}), Int({Int(s.Patch)}), Int(batch * {Int(unfolded)}));");
            LinearComment(w, "patch_tokens", "patches", patchRows, features, dim);
            Gemm(w, "\"patch_embed.proj\"", true, false, Int(dim), $"batch * {Int(patchRows)}", Int(features), "1f",
                "PatchWeight", features, "0", "patches", features, "0", "0f", "patchTokens", dim, "0", "1");
            string bias = s.PreNorm ? "NoPointer" : "Ptr(PatchBias)";
            string prefix = s.PrefixTokens > 0 ? "Ptr(PrefixTokens)" : "NoPointer";
            int posFirstRow = s.NoEmbedClass ? s.PrefixTokens : 0;
            w.Line($"plan.Launch(\"embed\", {Kernels}.GpuKernel.EmbedTokens, GridFor(batch * {Int(tokenFloats)}), 1, ElementThreads,")
             .Line($"    Ptr(patchTokens), {bias}, {prefix}, Ptr(PositionEmbedding), Ptr(x),")
             .Line($"    Int({Int(s.Tokens)}), Int({Int(s.PrefixTokens)}), Int({Int(dim)}), Int({Int(posFirstRow)}), Int(batch * {Int(tokenFloats)}));");
            if (s.PreNorm)
            {
                w.Line($"plan.Launch(\"norm_pre\", {Kernels}.GpuKernel.LayerNorm, batch * {Int(s.Tokens)}, 1, LayerNormThreads,")
                 .Line($"    Ptr(x), Ptr(x), Ptr(PreNormWeight), Ptr(PreNormBias), Int({Int(dim)}), Int(0), Int(0), Float({Float(s.NormEps)}));");
            }
        }
        w.Line();
    }

    private static void WriteBlock(IndentedWriter w, VitModelSpec s)
    {
        int t = s.Tokens, d = s.Dim, h = s.Heads, hd = s.HeadDim, mlp = s.MlpDim;
        long plane = (long)t * d, headMatrix = (long)t * hd, scoreMatrix = (long)t * t;
        float scale = (float)(1.0 / Math.Sqrt(hd));
        w.Line("/// <summary>Block <paramref name=\"layer\"/>: x += proj(attention(norm1(x))); x += fc2(act(fc1(norm2(x)))).</summary>");
        using (w.Block($"private static void AddBlock({Plan} plan, int layer)"))
        using (w.Block("checked"))
        {
            w.Line("int batch = plan.Batch;")
             .Line($"string name = {Kernels}.WeightLoading.BlockPrefix(layer);")
             .Line("long block = BlockWeights + layer * BlockStride;")
             .Line("long x = plan.Activation(X), normed = plan.Activation(Normed), qkv = plan.Activation(Qkv), planes = plan.Activation(Planes);")
             .Line("long scores = plan.Activation(Scores), headContext = plan.Activation(HeadContext), context = plan.Activation(Context);")
             .Line("long projected = plan.Activation(Projected), hidden = plan.Activation(Hidden);")
             .Line($"long q = planes, k = planes + batch * {Int(plane)}, v = planes + 2 * batch * {Int(plane)};")
             .Line();

            LayerNorm(w, "name + \".norm1\"", $"batch * {Int(t)}", "1", "x", "normed", "block + Norm1Weight", "block + Norm1Bias", d, 0, 0, s.NormEps);
            LinearComment(w, "qkv", "normed", t, d, 3 * d);
            Gemm(w, "name + \".attn.qkv\"", true, false, Int(3 * d), $"batch * {Int(t)}", Int(d), "1f",
                "block + QkvWeight", d, "0", "normed", d, "0", "0f", "qkv", 3 * d, "0", "1");
            string qkvBias = s.QkvBias ? "Ptr(block + QkvBias)" : "NoPointer";
            long qkvFloats = (long)t * 3 * d;
            w.Line($"plan.Launch(name + \".attn.split\", {Kernels}.GpuKernel.SplitQkv, GridFor(batch * {Int(qkvFloats)}), 1, ElementThreads,")
             .Line($"    Ptr(qkv), {qkvBias}, Ptr(planes), Int({Int(t)}), Int({Int(h)}), Int({Int(hd)}), Int(batch * {Int(qkvFloats)}));");

            w.Line($"// Per (image, head): scores[{t}, {t}] = q[{t}, {hd}] · k[{t}, {hd}]ᵀ · {hd}^-0.5, row-major;")
             .Line($"// column-major scoresᵀ = op(k) · qᵀ with op = T, batch * {h} problems {Int(headMatrix)} floats apart.");
            Gemm(w, "name + \".attn.scores\"", true, false, Int(t), Int(t), Int(hd), Float(scale),
                "k", hd, Int(headMatrix), "q", hd, Int(headMatrix), "0f", "scores", t, Int(scoreMatrix), $"batch * {Int(h)}");
            w.Line($"plan.Launch(name + \".attn.softmax\", {Kernels}.GpuKernel.SoftmaxRows, batch * {Int((long)h * t)}, 1, SoftmaxThreads, Ptr(scores), Int({Int(t)}));");
            w.Line($"// Per (image, head): context[{t}, {hd}] = p[{t}, {t}] · v[{t}, {hd}], row-major; column-major contextᵀ = vᵀ · pᵀ, op = N, N.");
            Gemm(w, "name + \".attn.values\"", false, false, Int(hd), Int(t), Int(t), "1f",
                "v", hd, Int(headMatrix), "scores", t, Int(scoreMatrix), "0f", "headContext", hd, Int(headMatrix), $"batch * {Int(h)}");
            w.Line($"plan.Launch(name + \".attn.merge\", {Kernels}.GpuKernel.MergeHeads, GridFor(batch * {Int(plane)}), 1, ElementThreads,")
             .Line($"    Ptr(headContext), Ptr(context), Int({Int(t)}), Int({Int(h)}), Int({Int(hd)}), Int(batch * {Int(plane)}));");
            LinearComment(w, "projected", "context", t, d, d);
            Gemm(w, "name + \".attn.proj\"", true, false, Int(d), $"batch * {Int(t)}", Int(d), "1f",
                "block + ProjWeight", d, "0", "context", d, "0", "0f", "projected", d, "0", "1");
            Residual(w, "name + \".attn.residual\"", "block + ProjBias", d, plane);
            w.Line();

            LayerNorm(w, "name + \".norm2\"", $"batch * {Int(t)}", "1", "x", "normed", "block + Norm2Weight", "block + Norm2Bias", d, 0, 0, s.NormEps);
            LinearComment(w, "hidden", "normed", t, d, mlp);
            Gemm(w, "name + \".mlp.fc1\"", true, false, Int(mlp), $"batch * {Int(t)}", Int(d), "1f",
                "block + Fc1Weight", d, "0", "normed", d, "0", "0f", "hidden", mlp, "0", "1");
            long hiddenFloats = (long)t * mlp;
            w.Line($"plan.Launch(name + \".mlp.act\", {Kernels}.GpuKernel.{ActivationKernel(s.Activation)}, GridFor(batch * {Int(hiddenFloats)}), 1, ElementThreads,")
             .Line($"    Ptr(hidden), Ptr(block + Fc1Bias), Int({Int(mlp)}), Int(batch * {Int(hiddenFloats)}));");
            LinearComment(w, "projected", "hidden", t, mlp, d);
            Gemm(w, "name + \".mlp.fc2\"", true, false, Int(d), $"batch * {Int(t)}", Int(mlp), "1f",
                "block + Fc2Weight", mlp, "0", "hidden", mlp, "0", "0f", "projected", d, "0", "1");
            Residual(w, "name + \".mlp.residual\"", "block + Fc2Bias", d, plane);
        }
        w.Line();
    }

    private static void WritePoolAndClassify(IndentedWriter w, VitModelSpec s, GpuArena a)
    {
        int d = s.Dim, c = s.Classes, rows = a.PooledRows;
        string summary = s.Pooling == Pooling.Avg
            ? "Mean of the patch tokens, fc_norm"
            : s.Distilled ? "norm on the class and distillation tokens" : "norm on the class token";
        summary += s.Distilled ? ", then the mean of the two heads (DeiT inference)." : c > 0 ? ", then the head." : "; no head.";
        w.Line($"/// <summary>{summary}</summary>");
        using (w.Block($"private static void PoolAndClassify({Plan} plan)"))
        using (w.Block("checked"))
        {
            w.Line("int batch = plan.Batch;")
             .Line("long x = plan.Activation(X), output = plan.Activation(Output);");
            string features = c > 0 ? "pooled" : "output";
            if (c > 0 || s.Pooling == Pooling.Avg) w.Line("long pooled = plan.Activation(Pooled);");
            if (s.Pooling == Pooling.Avg)
            {
                w.Line($"plan.Launch(\"pool\", {Kernels}.GpuKernel.MeanTokens, batch, 1, LayerNormThreads,")
                 .Line($"    Ptr(x), Ptr(pooled), Int({Int(s.Tokens)}), Int({Int(s.PrefixTokens)}), Int({Int(s.NumPatches)}), Int({Int(d)}));");
                LayerNorm(w, "\"fc_norm\"", "1", "batch", "pooled", features, "FinalNormWeight", "FinalNormBias", d, d, d, s.NormEps);
            }
            else
            {
                w.Line($"// Row {(rows == 2 ? "0 and 1" : "0")} of every image: group stride Tokens * Dim in, {rows} * Dim out.");
                LayerNorm(w, "\"norm\"", Int(rows), "batch", "x", features, "FinalNormWeight", "FinalNormBias", d, (long)s.Tokens * d, (long)rows * d, s.NormEps);
            }
            if (c > 0 && !s.Distilled)
            {
                LinearComment(w, "output", "pooled", -1, d, c);
                Gemm(w, "\"head\"", true, false, Int(c), "batch", Int(d), "1f",
                    "HeadWeight", d, "0", "pooled", d, "0", "0f", "output", c, "0", "1");
                w.Line($"plan.Launch(\"head.bias\", {Kernels}.GpuKernel.BiasAdd, GridFor(batch * {Int(c)}), 1, ElementThreads,")
                 .Line($"    Ptr(output), Ptr(HeadBias), Int({Int(c)}), Int(batch * {Int(c)}));");
            }
            else if (s.Distilled)
            {
                WriteDistilledHeads(w, d, c);
            }
        }
        w.Line();
    }

    /// <summary>DeiT: both heads as GEMMs reading every other pooled row, then one kernel averaging them with their biases.</summary>
    private static void WriteDistilledHeads(IndentedWriter w, int d, int c)
    {
        w.Line("long logits = plan.Activation(Logits);")
         .Line($"// Both heads read every other pooled row (ldb = 2 * Dim) and write every other logits row (ldc = 2 * {c}).");
        Gemm(w, "\"head\"", true, false, Int(c), "batch", Int(d), "1f",
            "HeadWeight", d, "0", "pooled", 2 * d, "0", "0f", "logits", 2 * c, "0", "1");
        Gemm(w, "\"head_dist\"", true, false, Int(c), "batch", Int(d), "1f",
            "DistHeadWeight", d, "0", $"pooled + {Int(d)}", 2 * d, "0", "0f", $"logits + {Int(c)}", 2 * c, "0", "1");
        w.Line($"plan.Launch(\"head.average\", {Kernels}.GpuKernel.DistilledAverage, GridFor(batch * {Int(c)}), 1, ElementThreads,")
         .Line($"    Ptr(logits), Ptr(HeadBias), Ptr(DistHeadBias), Ptr(output), Int({Int(c)}), Int(batch * {Int(c)}));");
    }

    /// <summary>The row-major product a Linear GEMM computes, as a comment; <paramref name="rows"/> -1 means one row per image.</summary>
    private static void LinearComment(IndentedWriter w, string output, string input, int rows, int inFeatures, int outFeatures)
    {
        string r = rows < 0 ? "B" : $"B·{rows}";
        w.Line($"// {output}[{r}, {outFeatures}] = {input}[{r}, {inFeatures}] · W[{outFeatures}, {inFeatures}]ᵀ: column-major {output}ᵀ = op(W) · {input}ᵀ, op = T.");
    }

    private static void Gemm(IndentedWriter w, string label, bool transA, bool transB, string m, string n, string k, string alpha,
        string a, long lda, string strideA, string b, long ldb, string strideB, string beta, string c, long ldc, string strideC, string batch)
    {
        w.Line($"plan.Gemm({label}, transA: {Bool(transA)}, transB: {Bool(transB)}, m: {m}, n: {n}, k: {k}, alpha: {alpha},")
         .Line($"    a: {a}, lda: {Int(lda)}, strideA: {strideA}, b: {b}, ldb: {Int(ldb)}, strideB: {strideB},")
         .Line($"    beta: {beta}, c: {c}, ldc: {Int(ldc)}, strideC: {strideC}{(batch == "1" ? "" : ", batch: " + batch)});");
    }

    private static void LayerNorm(IndentedWriter w, string label, string rows, string groups, string input, string output,
        string gamma, string beta, int dim, long inputGroupStride, long outputGroupStride, float eps)
    {
        w.Line($"plan.Launch({label}, {Kernels}.GpuKernel.LayerNorm, {rows}, {groups}, LayerNormThreads,")
         .Line($"    Ptr({input}), Ptr({output}), Ptr({gamma}), Ptr({beta}), Int({Int(dim)}), Int({Int(inputGroupStride)}), Int({Int(outputGroupStride)}), Float({Float(eps)}));");
    }

    private static void Residual(IndentedWriter w, string label, string bias, int dim, long floatsPerImage)
    {
        w.Line($"plan.Launch({label}, {Kernels}.GpuKernel.BiasResidual, GridFor(batch * {Int(floatsPerImage)}), 1, ElementThreads,")
         .Line($"    Ptr(x), Ptr(projected), Ptr({bias}), Int({Int(dim)}), Int(batch * {Int(floatsPerImage)}));");
    }

    private static string ActivationKernel(Activation activation) => activation switch
    {
        Activation.GeluTanh => "BiasGeluTanh",
        Activation.QuickGelu => "BiasQuickGelu",
        Activation.Relu => "BiasRelu",
        _ => "BiasGelu",
    };

    private static string Bool(bool value) => value ? "true" : "false";
}
