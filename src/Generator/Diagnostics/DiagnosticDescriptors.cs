using Microsoft.CodeAnalysis;

namespace ViTGen.Generator.Diagnostics;

/// <summary>
/// Every diagnostic the generator reports. Errors stop generation for that class only; the message names the
/// attribute argument and the rule, and the location is the offending argument (or the attribute).
/// </summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "ViTGen";

    public static readonly DiagnosticDescriptor NotPartial = Error("VITG0001",
        "[VitModel] class must be partial",
        "'{0}' has [VitModel] but is not declared partial: add the 'partial' modifier so the generator can add Load and Forward",
        "The generator adds members to the class, which needs every declaration of it to be partial.");

    public static readonly DiagnosticDescriptor ContainingTypeNotPartial = Error("VITG0002",
        "Types containing a [VitModel] class must be partial",
        "'{0}' is nested in '{1}', which is not partial: make '{1}' partial too",
        "Nested classes are generated inside partial declarations of each containing type.");

    public static readonly DiagnosticDescriptor Generic = Error("VITG0003",
        "[VitModel] class cannot be generic",
        "'{0}' is generic: a [VitModel] class fixes every shape at build time and cannot have type parameters",
        "Declare a non-generic partial class per model.");

    public static readonly DiagnosticDescriptor NotPositive = Error("VITG0004",
        "Attribute argument must be positive",
        "VitModel argument '{0}' is {1}: it must be at least 1",
        "patch, dim, depth, heads, imageSize and channels must all be positive.");

    public static readonly DiagnosticDescriptor DimNotDivisibleByHeads = Error("VITG0005",
        "dim must be divisible by heads",
        "VitModel argument 'dim' ({0}) is not divisible by 'heads' ({1}): each head gets dim / heads features",
        "timm's Attention splits the embedding evenly over the heads.");

    public static readonly DiagnosticDescriptor ImageNotDivisibleByPatch = Error("VITG0006",
        "imageSize must be a multiple of patch",
        "VitModel argument 'imageSize' ({0}) is not a multiple of 'patch' ({1}): timm's PatchEmbed requires whole patches",
        "A stride-patch convolution over a partial patch is not defined by timm's default PatchEmbed.");

    public static readonly DiagnosticDescriptor Negative = Error("VITG0007",
        "Attribute argument cannot be negative",
        "VitModel argument '{0}' is {1}: it cannot be negative",
        "classes, registers and mlpDim are counts; 0 means none (classes, registers) or the default (mlpDim = 4 * dim).");

    public static readonly DiagnosticDescriptor TokenPoolingWithoutClassToken = Error("VITG0008",
        "Token pooling needs a class token",
        "VitModel argument 'classToken' is false but 'pooling' is Token: use pooling: VitPooling.Avg, or keep the class token",
        "timm asserts class_token for global_pool='token': there is no token to pool.");

    public static readonly DiagnosticDescriptor DistilledUnsupported = Error("VITG0009",
        "Invalid distilled configuration",
        "VitModel argument 'distilled' is true but {0}",
        "timm's VisionTransformerDistilled has a class token, token pooling, a head and no register tokens.");

    public static readonly DiagnosticDescriptor InvalidEpsilon = Error("VITG0010",
        "normEps must be positive and finite",
        "VitModel argument 'normEps' is {0}: it must be a positive, finite number (timm uses 1e-6, CLIP 1e-5)",
        "LayerNorm divides by sqrt(variance + eps).");

    public static readonly DiagnosticDescriptor InvalidEnum = Error("VITG0011",
        "Unknown enum value",
        "VitModel argument '{0}' has the value {1}, which is not a defined {2}",
        "Use one of the enum's named members.");

    public static readonly DiagnosticDescriptor TooLarge = Error("VITG0012",
        "Model too large",
        "The model's {0} ({1}) exceed what one buffer can hold (536870911 floats, 2 GiB): reduce '{2}'",
        "Workspaces and weights are addressed with 32-bit byte offsets.");

    public static readonly DiagnosticDescriptor UnusualHeadDim = Warning("VITG0013",
        "Unusual head dimension",
        "Head dimension dim / heads = {0} is not a multiple of 8: it works, but attention kernels waste vector lanes",
        "Standard ViTs use 64; any value is computed correctly.");

    public static readonly DiagnosticDescriptor ReservedName = Error("VITG0014",
        "[VitModel] class name collides with a generated member",
        "'{0}' is also the name of a member the generator adds to the class: rename the class",
        "Generated classes contain constants (Dim, Tokens, ...), methods (Load, Forward, ...) and nested types (Block, Workspace, ...); C# forbids a member named like its class.");

    public static readonly DiagnosticDescriptor UnsupportedClassKind = Error("VITG0015",
        "[VitModel] needs a plain class",
        "'{0}' is {1}: [VitModel] needs a non-static, non-abstract, non-file-local class (not a record)",
        "The generator adds instance members, a private constructor and a static Load factory to an ordinary partial class.");

    public static readonly DiagnosticDescriptor NameDiffersOnlyInCase = Error("VITG0016",
        "[VitModel] class names must differ in more than case",
        "'{0}' differs only in case from the [VitModel] class '{1}' beside it: generated file names are case-insensitive, rename one",
        "Each model's generated files are named after the class, and Roslyn (like Windows file systems) compares those names ignoring case.");

    public static readonly DiagnosticDescriptor AttentionTooLarge = Warning("VITG0017",
        "Attention maps too large for ForwardAttention",
        "ForwardAttention would write {0} floats per image (Depth * Heads * Tokens * Tokens), more than a span holds (2147483647): the class gets no ForwardAttention or AttentionSize",
        "One image's attention probabilities, [depth][heads][tokens][tokens], must fit one Span<float>. Forward, ForwardFeatures and ForwardPooled are generated as usual.");

    public static readonly DiagnosticDescriptor TooManyHybridStages = Error("VITG0018",
        "Too many hybrid stages",
        "VitModel argument 'hybridLayers' has {0} stages: timm's ResNetV2 hybrid trunk has at most {1}",
        "timm's ResNetV2 has four stage widths (256, 512, 1024, 2048 at width 64) and an output stride of 32: a fifth stage would be dilated, not strided.");

    public static readonly DiagnosticDescriptor HybridStageNotPositive = Error("VITG0019",
        "Hybrid stage without bottlenecks",
        "VitModel argument 'hybridLayers' gives stage {0} {1} bottleneck blocks: every stage needs at least 1 (use fewer stages, or new int[0] for the stem only)",
        "Each stage's first bottleneck carries its stride and its downsampling projection.");

    public static readonly DiagnosticDescriptor HybridWidthNotGroups = Error("VITG0020",
        "hybridWidth must be a positive multiple of 32",
        "VitModel argument 'hybridWidth' is {0}: it must be a positive multiple of {1}, the groups of every GroupNorm in the trunk",
        "Every convolution of the trunk is followed by GroupNorm(32 groups), whose channel counts (hybridWidth · 2^i and 4 · hybridWidth · 2^i) must divide into the groups.");

    public static readonly DiagnosticDescriptor FeatureMapNotDivisibleByPatch = Error("VITG0021",
        "Hybrid feature map is not a multiple of patch",
        "The hybrid trunk maps the image to {0} pixels ('same' padding rounds up): the {1}x{1} feature map is not a multiple of 'patch' ({2})",
        "timm's HybridEmbed asserts that its patch projection covers the feature map in whole patches.");

    public static readonly DiagnosticDescriptor HybridWidthWithoutLayers = Error("VITG0022",
        "hybridWidth without hybridLayers",
        "VitModel argument 'hybridWidth' is {0} but 'hybridLayers' is null: a plain ViT has no trunk (set hybridLayers, e.g. new int[0] for the stem only)",
        "hybridWidth only sizes a hybrid's ResNetV2 trunk.");

    private static DiagnosticDescriptor Error(string id, string title, string message, string description)
        => new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true, description);

    private static DiagnosticDescriptor Warning(string id, string title, string message, string description)
        => new(id, title, message, Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description);
}
