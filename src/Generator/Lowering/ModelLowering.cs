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
            s.ClassToken, s.Distilled, s.QkvBias, s.LayerScale, s.PreNorm, s.Pooling == Pooling.Avg);
        var tokens = new Extent(s.Tokens, "Tokens");
        var dim = new Extent(s.Dim, "Dim");

        var buffers = new List<BufferInfo>
        {
            new(Patches, new(s.NumPatches, "NumPatches"), new(s.PatchFeatures, "PatchFeatures"), "unfolded patches"),
            new(X, tokens, dim, "the residual stream"),
            new(Normed, tokens, dim, "LayerNorm output"),
            new(Qkv, tokens, new(3 * s.Dim, "3 * Dim"), "q, k and v of every token"),
            new(Context, tokens, dim, "attention output, heads side by side"),
            new(Hidden, tokens, new(s.MlpDim, "MlpDim"), "MLP hidden"),
            new(Pooled, Extent.Literal(PooledRows(s)), dim, "pooled, normalized features"),
        };
        if (s.Classes > 0)
            buffers.Add(new(Logits, Extent.Literal(PooledRows(s)), new(s.Classes, "NumClasses"), s.Distilled ? "both heads' logits" : "logits"));

        return new ModelDescription(s, weights, buffers, Embed(s, weights), Block(s, weights), Head(s, weights));
    }

    /// <summary>Rows the head reads per image: the class token's, and the distillation token's for DeiT.</summary>
    private static int PooledRows(VitModelSpec s) => s.Distilled ? 2 : 1;

    private static Stage Embed(VitModelSpec s, WeightManifest weights)
    {
        var patchEmbedding = weights.Embedding[0];
        var prefix = weights.Embedding.Where(p => p.Kind == WeightKind.Buffer && p.Key != "PositionEmbedding").ToList();
        var position = weights.Embedding.Single(p => p.Key == "PositionEmbedding");
        var prefixTokens = new Extent(s.PrefixTokens, "PrefixTokens");
        var operations = new List<Operation>
        {
            new UnfoldPatches(Patches),
            new Linear(patchEmbedding.Name, patchEmbedding, Patches, Zero, X, prefixTokens, new(s.NumPatches, "NumPatches"), Epilogue.Store),
            new AssembleTokens(X, prefix, position, s.NoEmbedClass ? prefixTokens : Zero),
        };
        if (s.PreNorm)
        {
            var preNorm = weights.Embedding.Single(p => p.Key == "PreNorm");
            operations.Add(new LayerNorm(preNorm.Name, preNorm, X, X, new(s.Tokens, "Tokens")));
        }
        string order = s.NoEmbedClass
            ? "patch tokens + position embedding, with the prefix tokens in front (no_embed_class)"
            : "[prefix tokens, patch tokens] + position embedding";
        return new Stage($"Tokens of one image: {order}{(s.PreNorm ? ", then norm_pre" : "")}.", operations);
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

    private static Stage Head(VitModelSpec s, WeightManifest weights)
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
        if (s.Classes == 0)
        {
            operations.Add(new CopyToOutput(Pooled));
            return new Stage(summary + "; no head.", operations);
        }
        var head = weights.Final.Single(p => p.Key == "Head");
        operations.Add(new Linear(head.Name, head, Pooled, Zero, Logits, Zero, one, Epilogue.Store));
        if (!s.Distilled)
        {
            operations.Add(new CopyToOutput(Logits));
            return new Stage(summary + ", then the head.", operations);
        }
        var distillationHead = weights.Final.Single(p => p.Key == "DistillationHead");
        operations.Add(new Linear(distillationHead.Name, distillationHead, Pooled, one, Logits, one, one, Epilogue.Store));
        operations.Add(new AverageRowsToOutput("head.average", Logits));
        return new Stage(summary + ", then the mean of the two heads (DeiT inference).", operations);
    }
}
