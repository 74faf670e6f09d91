namespace ViTGen;

/// <summary>How a checkpoint is read into a compiled model.</summary>
public sealed class CheckpointOptions
{
    /// <summary>
    /// Tensors whose names (as stored in the file) start with one of these prefixes may be left unread:
    /// the strict check that every tensor in the file is used skips them. Default: none.
    /// </summary>
    public IReadOnlyList<string> IgnoredPrefixes { get; init; } = [];
}

/// <summary>The naming convention of a checkpoint, detected from its tensor names.</summary>
public enum CheckpointDialect
{
    /// <summary>timm (<c>pytorch-image-models</c>) names, e.g. <c>blocks.0.attn.qkv.weight</c>: the model's own names.</summary>
    Timm,
    /// <summary>
    /// Hugging Face transformers <c>ViTForImageClassification</c> (<c>vit.</c> prefix, <c>classifier</c>) or a bare
    /// <c>ViTModel</c> (no prefix, its <c>pooler.dense</c> is ignored); query, key and value are concatenated into qkv.
    /// </summary>
    HuggingFace,
    /// <summary>torchvision <c>VisionTransformer</c> (<c>conv_proj</c>, <c>encoder.layers.encoder_layer_{i}</c>, <c>heads.head</c>).</summary>
    TorchVision,
    /// <summary>
    /// The image tower of an OpenAI CLIP checkpoint (<c>visual.*</c>; the text tower is ignored). <c>visual.proj</c>
    /// becomes a bias-free head, transposed.
    /// </summary>
    OpenAiClip,
}
