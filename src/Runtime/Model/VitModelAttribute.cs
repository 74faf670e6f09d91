namespace ViTGen;

/// <summary>
/// Declares a Vision Transformer whose forward pass ViTGen's source generator specializes at build time.
/// Apply it to a <c>partial</c> class; the generator adds shape constants, <c>Load</c> and <c>Forward</c>.
/// </summary>
/// <remarks>
/// The parameters follow timm's <c>VisionTransformer</c> keyword arguments. Example (timm <c>vit_base_patch16_224</c>):
/// <code>[VitModel(patch: 16, dim: 768, depth: 12, heads: 12)] public partial class VitB16;</code>
/// </remarks>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class VitModelAttribute : Attribute
{
    /// <summary>Declares a Vision Transformer.</summary>
    /// <param name="patch">Patch size in pixels (timm <c>patch_size</c>).</param>
    /// <param name="dim">Embedding width (timm <c>embed_dim</c>).</param>
    /// <param name="depth">Number of transformer blocks (timm <c>depth</c>).</param>
    /// <param name="heads">Attention heads per block (timm <c>num_heads</c>).</param>
    /// <param name="imageSize">Square input size in pixels (timm <c>img_size</c>).</param>
    /// <param name="channels">Input channels (timm <c>in_chans</c>).</param>
    /// <param name="classes">Classifier outputs; 0 means no head, Forward writes pooled features (timm <c>num_classes</c>).</param>
    /// <param name="mlpDim">Hidden width of the MLP; 0 means <c>4 * dim</c> (timm <c>int(embed_dim * mlp_ratio)</c>).</param>
    /// <param name="qkvBias">Whether the qkv projection has a bias (timm <c>qkv_bias</c>).</param>
    /// <param name="classToken">Whether a class token is prepended (timm <c>class_token</c>).</param>
    /// <param name="pooling">How tokens are pooled before the head (timm <c>global_pool</c>).</param>
    /// <param name="activation">MLP activation (timm <c>act_layer</c>).</param>
    /// <param name="normEps">Epsilon of every LayerNorm (timm uses 1e-6, CLIP towers 1e-5).</param>
    /// <param name="layerScale">Whether blocks have LayerScale (timm <c>init_values</c> set).</param>
    /// <param name="registers">Number of register tokens (timm <c>reg_tokens</c>).</param>
    /// <param name="noEmbedClass">Whether the position embedding covers the patches only (timm <c>no_embed_class</c>).</param>
    /// <param name="preNorm">Whether a LayerNorm follows the position embedding and the patch projection has no bias (timm <c>pre_norm</c>).</param>
    /// <param name="distilled">Whether the model is a distilled DeiT with a distillation token and head.</param>
    /// <param name="hybridLayers">
    /// null: a plain ViT. Otherwise a hybrid (timm <c>vision_transformer_hybrid</c>) whose patch embedding reads the feature map
    /// of a ResNetV2 trunk with this many bottlenecks per stage: <c>new int[0]</c> the stem only (<c>vit_tiny_r_s16_p8</c>),
    /// <c>new[] { 2, 2, 2, 2 }</c> R26 (<c>vit_small_r26_s32</c>), <c>new[] { 3, 4, 9 }</c> R50 (<c>vit_base_r50_s16</c>).
    /// </param>
    /// <param name="hybridWidth">The trunk's stem width; stage <c>i</c> has bottleneck width <c>hybridWidth · 2^i</c> (timm's default 64).</param>
    public VitModelAttribute(
        int patch, int dim, int depth, int heads,
        int imageSize = 224, int channels = 3, int classes = 1000, int mlpDim = 0,
        bool qkvBias = true, bool classToken = true,
        VitPooling pooling = VitPooling.Token, VitActivation activation = VitActivation.Gelu,
        float normEps = 1e-6f, bool layerScale = false, int registers = 0,
        bool noEmbedClass = false, bool preNorm = false, bool distilled = false,
        int[]? hybridLayers = null, int hybridWidth = 64)
    {
        HybridLayers = hybridLayers is null ? null : (int[])hybridLayers.Clone();
        HybridWidth = hybridWidth;
        Patch = patch; Dim = dim; Depth = depth; Heads = heads;
        ImageSize = imageSize; Channels = channels; Classes = classes; MlpDim = mlpDim;
        QkvBias = qkvBias; ClassToken = classToken; Pooling = pooling; Activation = activation;
        NormEps = normEps; LayerScale = layerScale; Registers = registers;
        NoEmbedClass = noEmbedClass; PreNorm = preNorm; Distilled = distilled;
    }

    /// <summary>Patch size in pixels.</summary>
    public int Patch { get; }
    /// <summary>Embedding width.</summary>
    public int Dim { get; }
    /// <summary>Number of transformer blocks.</summary>
    public int Depth { get; }
    /// <summary>Attention heads per block.</summary>
    public int Heads { get; }
    /// <summary>Square input size in pixels.</summary>
    public int ImageSize { get; }
    /// <summary>Input channels.</summary>
    public int Channels { get; }
    /// <summary>Classifier outputs (0: no head).</summary>
    public int Classes { get; }
    /// <summary>MLP hidden width (0: 4 * dim).</summary>
    public int MlpDim { get; }
    /// <summary>Whether the qkv projection has a bias.</summary>
    public bool QkvBias { get; }
    /// <summary>Whether a class token is prepended.</summary>
    public bool ClassToken { get; }
    /// <summary>Token pooling before the head.</summary>
    public VitPooling Pooling { get; }
    /// <summary>MLP activation.</summary>
    public VitActivation Activation { get; }
    /// <summary>LayerNorm epsilon.</summary>
    public float NormEps { get; }
    /// <summary>Whether blocks have LayerScale.</summary>
    public bool LayerScale { get; }
    /// <summary>Number of register tokens.</summary>
    public int Registers { get; }
    /// <summary>Whether the position embedding covers the patches only.</summary>
    public bool NoEmbedClass { get; }
    /// <summary>Whether a LayerNorm follows the position embedding.</summary>
    public bool PreNorm { get; }
    /// <summary>Whether the model is a distilled DeiT.</summary>
    public bool Distilled { get; }
    /// <summary>Bottlenecks per stage of the hybrid's ResNetV2 trunk (empty: the stem only), or null for a plain ViT.</summary>
    public IReadOnlyList<int>? HybridLayers { get; }
    /// <summary>The hybrid trunk's stem width.</summary>
    public int HybridWidth { get; }
}

/// <summary>How the transformer's tokens are pooled into one vector (timm <c>global_pool</c>).</summary>
public enum VitPooling
{
    /// <summary>The class token (timm <c>'token'</c>).</summary>
    Token,
    /// <summary>The mean of the non-prefix tokens, followed by <c>fc_norm</c> (timm <c>'avg'</c>).</summary>
    Avg,
}

/// <summary>The MLP activation function.</summary>
public enum VitActivation
{
    /// <summary>Exact GELU, <c>x * Φ(x)</c> with erf (PyTorch <c>nn.GELU()</c>).</summary>
    Gelu,
    /// <summary>GELU with the tanh approximation (PyTorch <c>nn.GELU(approximate='tanh')</c>).</summary>
    GeluTanh,
    /// <summary><c>x * sigmoid(1.702 x)</c>, as in OpenAI CLIP.</summary>
    QuickGelu,
    /// <summary><c>max(x, 0)</c>.</summary>
    Relu,
}
