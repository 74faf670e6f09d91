using System.Collections.Generic;
using System.Linq;
using ViTGen.Generator.Model;

namespace ViTGen.Generator.Lowering;

/// <summary>
/// Lowers a parsed <see cref="VitModelSpec"/> to the <see cref="ModelDescription"/> both backends translate: timm's
/// <c>VisionTransformer.forward</c> at inference, written out once.
/// </summary>
internal static class ModelLowering
{
    // Buffer names, shared by the operations that write and read them.
    private const string Patches = "Patches", X = "X", Normed = "Normed", Qkv = "Qkv", Context = "Context", Hidden = "Hidden";
    private const string Pooled = "Pooled", Logits = "Logits";

    private static readonly Extent Zero = Extent.Literal(0);

    public static ModelDescription Lower(VitModelSpec s)
    {
        var weights = WeightManifest.Create(s.Channels, s.Patch, s.Dim, s.Depth, s.MlpDim, s.Classes, s.Registers, s.PositionRows,
            s.ClassToken, s.Distilled, s.QkvBias, s.LayerScale, s.PreNorm, s.Pooling == Pooling.Avg,
            s.Hybrid ? s.HybridLayers.ToArray() : null, s.HybridWidth);
        var tokens = new Extent(s.Tokens, "Tokens");
        var dim = new Extent(s.Dim, "Dim");

        var buffers = new List<BufferInfo>();
        if (!s.Hybrid) buffers.Add(new(Patches, new(s.NumPatches, "NumPatches"), new(s.PatchFeatures, "PatchFeatures"), "unfolded patches"));
        buffers.AddRange(new BufferInfo[]
        {
            new(X, tokens, dim, "the residual stream"),
            new(Normed, tokens, dim, "LayerNorm output"),
            new(Qkv, tokens, new(3 * s.Dim, "3 * Dim"), "q, k and v of every token"),
            new(Context, tokens, dim, "attention output, heads side by side"),
            new(Hidden, tokens, new(s.MlpDim, "MlpDim"), "MLP hidden"),
            new(Pooled, Extent.Literal(PooledRows(s)), dim, "pooled, normalized features"),
        });
        if (s.Classes > 0)
            buffers.Add(new(Logits, Extent.Literal(PooledRows(s)), new(s.Classes, "NumClasses"), s.Distilled ? "both heads' logits" : "logits"));

        var (pool, classify, headSummary) = Head(s, weights);
        var embed = Embed(s, weights, buffers);
        return new ModelDescription(s, weights, buffers, embed, Block(s, weights), pool, classify, headSummary, Explain(s, weights));
    }

    /// <summary>
    /// timm's <c>forward_features</c> and <c>forward_head(pre_logits=True)</c>. Features: <c>norm</c> of every token,
    /// or, for average pooling (where <c>norm</c> is the identity and fc_norm follows the pool), the last block's tokens.
    /// Pre-logits: the pooled row, or for DeiT <c>(x[:, 0] + x[:, 1]) / 2</c> of the normed tokens.
    /// </summary>
    private static ExplainOutputs Explain(VitModelSpec s, WeightManifest weights)
    {
        var tokens = new Extent(s.Tokens, "Tokens");
        var features = new List<Operation>();
        string featureSummary;
        if (s.Pooling == Pooling.Avg)
        {
            features.Add(new CopyRowsToOutput(X, tokens));
            featureSummary = "forward_features: every token after the last block (norm is the identity; fc_norm follows the pool).";
        }
        else
        {
            var finalNorm = weights.Final[0];
            features.Add(new LayerNorm(finalNorm.Name, finalNorm, X, Normed, tokens));
            features.Add(new CopyRowsToOutput(Normed, tokens));
            featureSummary = "forward_features: norm of every token.";
        }
        var preLogits = new List<Operation>();
        string preLogitsSummary;
        if (s.Distilled)
        {
            preLogits.Add(new AverageRowsToOutput("pre_logits.average", Pooled));
            preLogitsSummary = "Pre-logits: the mean of the normed class and distillation tokens.";
        }
        else
        {
            preLogits.Add(new CopyToOutput(Pooled));
            preLogitsSummary = s.Pooling == Pooling.Avg ? "Pre-logits: fc_norm of the mean of the patch tokens." : "Pre-logits: the normed class token.";
        }
        var exact = (System.Numerics.BigInteger)s.Depth * s.Heads * s.Tokens * s.Tokens;
        long attentionSize = exact > long.MaxValue ? long.MaxValue : (long)exact;
        return new ExplainOutputs(attentionSize, s.Tokens * s.Dim, s.Dim, new Stage(featureSummary, features), new Stage(preLogitsSummary, preLogits));
    }

    /// <summary>Rows the head reads per image: the class token's, and the distillation token's for DeiT.</summary>
    private static int PooledRows(VitModelSpec s) => s.Distilled ? 2 : 1;

    private static Stage Embed(VitModelSpec s, WeightManifest weights, List<BufferInfo> buffers)
    {
        var patchEmbedding = weights.Embedding[0];
        var prefix = weights.Embedding.Where(p => p.Kind == WeightKind.Buffer && p.Key != "PositionEmbedding").ToList();
        var position = weights.Embedding.Single(p => p.Key == "PositionEmbedding");
        var prefixTokens = new Extent(s.PrefixTokens, "PrefixTokens");
        var operations = s.Hybrid
            ? HybridLowering.Embed(s, weights, X, prefixTokens, buffers)
            : new List<Operation>
            {
                new UnfoldPatches(Patches),
                new Linear(patchEmbedding.Name, patchEmbedding, Patches, Zero, X, prefixTokens, new(s.NumPatches, "NumPatches"), Epilogue.Store),
            };
        operations.Add(new AssembleTokens(X, prefix, position, s.NoEmbedClass ? prefixTokens : Zero));
        if (s.PreNorm)
        {
            var preNorm = weights.Embedding.Single(p => p.Key == "PreNorm");
            operations.Add(new LayerNorm(preNorm.Name, preNorm, X, X, new(s.Tokens, "Tokens")));
        }
        string order = s.NoEmbedClass
            ? "patch tokens + position embedding, with the prefix tokens in front (no_embed_class)"
            : "[prefix tokens, patch tokens] + position embedding";
        string patches = s.Hybrid ? $"{HybridLowering.Describe(s)}, then the patch projection of its feature map; " : "";
        return new Stage($"Tokens of one image: {patches}{order}{(s.PreNorm ? ", then norm_pre" : "")}.", operations);
    }

    private static Stage Block(VitModelSpec s, WeightManifest weights)
    {
        WeightParameter Weight(string key) => weights.Block.Single(p => p.Key == key);
        var tokens = new Extent(s.Tokens, "Tokens");
        var norm1 = Weight("Norm1");
        var qkv = Weight("Qkv");
        var proj = Weight("Proj");
        var norm2 = Weight("Norm2");
        var fc1 = Weight("Fc1");
        var fc2 = Weight("Fc2");
        var operations = new List<Operation>
        {
            new LayerNorm(norm1.Name, norm1, X, Normed, tokens),
            new Linear(qkv.Name, qkv, Normed, Zero, Qkv, Zero, tokens, Epilogue.Store),
            new Attention("attn", Qkv, Context),
            new Linear(proj.Name, proj, Context, Zero, X, Zero, tokens, Epilogue.Residual),
            new LayerNorm(norm2.Name, norm2, X, Normed, tokens),
            new Linear(fc1.Name, fc1, Normed, Zero, Hidden, Zero, tokens, Epilogue.Activate),
            new Linear(fc2.Name, fc2, Hidden, Zero, X, Zero, tokens, Epilogue.Residual),
        };
        string layerScale = s.LayerScale ? " (LayerScale folded into proj and fc2)" : "";
        return new Stage($"x = x + proj(attention(norm1(x))); x = x + fc2(act(fc1(norm2(x)))){layerScale}.", operations);
    }

    /// <summary>The head, split where the pooled, normalized rows are in <c>Pooled</c>; and its summary as one stage.</summary>
    private static (Stage Pool, Stage Classify, string Summary) Head(VitModelSpec s, WeightManifest weights)
    {
        var finalNorm = weights.Final[0];
        var operations = new List<Operation>();
        var one = Extent.Literal(1);
        if (s.Pooling == Pooling.Avg)
        {
            operations.Add(new MeanRows("pool", X, new(s.PrefixTokens, "PrefixTokens"), new(s.NumPatches, "NumPatches"), Pooled));
            operations.Add(new LayerNorm(finalNorm.Name, finalNorm, Pooled, Pooled, one));
        }
        else
        {
            operations.Add(new LayerNorm(finalNorm.Name, finalNorm, X, Pooled, Extent.Literal(PooledRows(s))));
        }

        string summary = s.Pooling == Pooling.Avg
            ? "Mean of the patch tokens, fc_norm"
            : s.Distilled ? "norm on the class and distillation tokens" : "norm on the class token";
        var pool = new Stage(summary + ".", operations);
        var classify = new List<Operation>();
        if (s.Classes == 0)
        {
            classify.Add(new CopyToOutput(Pooled));
            return (pool, new Stage("No head: the pooled features are the output.", classify), summary + "; no head.");
        }
        var head = weights.Final.Single(p => p.Key == "Head");
        classify.Add(new Linear(head.Name, head, Pooled, Zero, Logits, Zero, one, Epilogue.Store));
        if (!s.Distilled)
        {
            classify.Add(new CopyToOutput(Logits));
            return (pool, new Stage("The head.", classify), summary + ", then the head.");
        }
        var distillationHead = weights.Final.Single(p => p.Key == "DistillationHead");
        classify.Add(new Linear(distillationHead.Name, distillationHead, Pooled, one, Logits, one, one, Epilogue.Store));
        classify.Add(new AverageRowsToOutput("head.average", Logits));
        return (pool, new Stage("Both heads, then their mean (DeiT inference).", classify), summary + ", then the mean of the two heads (DeiT inference).");
    }
}
