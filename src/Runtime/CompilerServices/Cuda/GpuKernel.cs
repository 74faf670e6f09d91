using System.Collections.Immutable;

namespace ViTGen.CompilerServices;

/// <summary>The kernels of <c>Cuda/kernels.cu</c>, by what they do. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public enum GpuKernel
{
    /// <summary><c>vit_patch_unfold</c>: images to patch rows (im2col of the stride-p convolution).</summary>
    PatchUnfold,
    /// <summary><c>vit_embed_tokens</c>: prefix tokens, patch projections plus bias, position embedding.</summary>
    EmbedTokens,
    /// <summary><c>vit_layer_norm</c>: one row per block, rows grouped by <c>gridDim.y</c>.</summary>
    LayerNorm,
    /// <summary><c>vit_softmax_rows</c>: one row per block, in place.</summary>
    SoftmaxRows,
    /// <summary><c>vit_mean_tokens</c>: mean of a run of token rows per image.</summary>
    MeanTokens,
    /// <summary><c>vit_split_qkv</c>: qkv rows plus bias to <c>[3][batch, heads, tokens, headDim]</c>.</summary>
    SplitQkv,
    /// <summary><c>vit_merge_heads</c>: <c>[batch, heads, tokens, headDim]</c> back to token rows.</summary>
    MergeHeads,
    /// <summary><c>vit_bias_residual</c>: <c>x += y + bias</c>.</summary>
    BiasResidual,
    /// <summary><c>vit_bias_add</c>: <c>x += bias</c>.</summary>
    BiasAdd,
    /// <summary><c>vit_bias_gelu</c>: <c>x = gelu(x + bias)</c> with erf.</summary>
    BiasGelu,
    /// <summary><c>vit_bias_gelu_tanh</c>: <c>x = gelu_tanh(x + bias)</c>.</summary>
    BiasGeluTanh,
    /// <summary><c>vit_bias_quick_gelu</c>: <c>x = quick_gelu(x + bias)</c>.</summary>
    BiasQuickGelu,
    /// <summary><c>vit_bias_relu</c>: <c>x = relu(x + bias)</c>.</summary>
    BiasRelu,
    /// <summary><c>vit_distilled_average</c>: the mean of DeiT's two heads, biases added.</summary>
    DistilledAverage,
}

/// <summary>What a kernel parameter is: the PTX parameter type and, for pointers, whether null is allowed.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "Named after the C parameter types of kernels.cu.")]
public enum GpuParameterKind
{
    /// <summary>A <c>float*</c> into the arena (PTX <c>.u64</c>).</summary>
    Pointer,
    /// <summary>A <c>float*</c> that may be null (PTX <c>.u64</c>).</summary>
    OptionalPointer,
    /// <summary>An <c>int</c> (PTX <c>.u32</c>).</summary>
    Int,
    /// <summary>A <c>float</c> (PTX <c>.f32</c>).</summary>
    Float,
}

/// <summary>One kernel parameter: its name in kernels.cu and its kind.</summary>
/// <param name="Name">The parameter's name in the CUDA source.</param>
/// <param name="Kind">Its type.</param>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly record struct GpuParameter(string Name, GpuParameterKind Kind);

/// <summary>
/// The entry name and parameter list of every kernel in kernels.cu: what plans are checked against when they are
/// built, what the CUDA executor packs launch arguments by, and what a test compares with the PTX's
/// <c>.entry</c> declarations. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class GpuKernels
{
    private static readonly ImmutableArray<GpuParameter>[] Signatures = BuildSignatures();

    /// <summary>Every kernel.</summary>
    public static ImmutableArray<GpuKernel> All { get; } = [.. Enum.GetValues<GpuKernel>()];

    /// <summary>The kernel's unmangled entry name in the PTX.</summary>
    public static string EntryName(GpuKernel kernel) => kernel switch
    {
        GpuKernel.PatchUnfold => "vit_patch_unfold",
        GpuKernel.EmbedTokens => "vit_embed_tokens",
        GpuKernel.LayerNorm => "vit_layer_norm",
        GpuKernel.SoftmaxRows => "vit_softmax_rows",
        GpuKernel.MeanTokens => "vit_mean_tokens",
        GpuKernel.SplitQkv => "vit_split_qkv",
        GpuKernel.MergeHeads => "vit_merge_heads",
        GpuKernel.BiasResidual => "vit_bias_residual",
        GpuKernel.BiasAdd => "vit_bias_add",
        GpuKernel.BiasGelu => "vit_bias_gelu",
        GpuKernel.BiasGeluTanh => "vit_bias_gelu_tanh",
        GpuKernel.BiasQuickGelu => "vit_bias_quick_gelu",
        GpuKernel.BiasRelu => "vit_bias_relu",
        GpuKernel.DistilledAverage => "vit_distilled_average",
        _ => throw new ArgumentOutOfRangeException(nameof(kernel), kernel, null),
    };

    /// <summary>The kernel's parameters, in order.</summary>
    public static ImmutableArray<GpuParameter> Parameters(GpuKernel kernel)
        => (uint)kernel < (uint)Signatures.Length ? Signatures[(int)kernel] : throw new ArgumentOutOfRangeException(nameof(kernel), kernel, null);

    private static ImmutableArray<GpuParameter>[] BuildSignatures()
    {
        const GpuParameterKind P = GpuParameterKind.Pointer, O = GpuParameterKind.OptionalPointer, I = GpuParameterKind.Int, F = GpuParameterKind.Float;
        static ImmutableArray<GpuParameter> S(params (string Name, GpuParameterKind Kind)[] parameters)
            => [.. parameters.Select(p => new GpuParameter(p.Name, p.Kind))];
        ImmutableArray<GpuParameter> biasActivation = S(("x", P), ("bias", P), ("cols", I), ("total", I));

        var signatures = new ImmutableArray<GpuParameter>[Enum.GetValues<GpuKernel>().Length];
        signatures[(int)GpuKernel.PatchUnfold] = S(("image", P), ("patches", P), ("channels", I), ("image_size", I), ("patch", I), ("total", I));
        signatures[(int)GpuKernel.EmbedTokens] = S(("patch_tokens", P), ("patch_bias", O), ("prefix", O), ("pos", P), ("x", P),
            ("tokens", I), ("prefix_tokens", I), ("dim", I), ("pos_first_row", I), ("total", I));
        signatures[(int)GpuKernel.LayerNorm] = S(("x", P), ("y", P), ("gamma", P), ("beta", P), ("dim", I),
            ("x_group_stride", I), ("y_group_stride", I), ("eps", F));
        signatures[(int)GpuKernel.SoftmaxRows] = S(("scores", P), ("cols", I));
        signatures[(int)GpuKernel.MeanTokens] = S(("x", P), ("pooled", P), ("tokens", I), ("first_token", I), ("count", I), ("dim", I));
        signatures[(int)GpuKernel.SplitQkv] = S(("qkv", P), ("bias", O), ("planes", P), ("tokens", I), ("heads", I), ("head_dim", I), ("total", I));
        signatures[(int)GpuKernel.MergeHeads] = S(("head_context", P), ("context", P), ("tokens", I), ("heads", I), ("head_dim", I), ("total", I));
        signatures[(int)GpuKernel.BiasResidual] = S(("x", P), ("y", P), ("bias", P), ("cols", I), ("total", I));
        signatures[(int)GpuKernel.BiasAdd] = biasActivation;
        signatures[(int)GpuKernel.BiasGelu] = biasActivation;
        signatures[(int)GpuKernel.BiasGeluTanh] = biasActivation;
        signatures[(int)GpuKernel.BiasQuickGelu] = biasActivation;
        signatures[(int)GpuKernel.BiasRelu] = biasActivation;
        signatures[(int)GpuKernel.DistilledAverage] = S(("logits", P), ("bias", P), ("dist_bias", P), ("out", P), ("classes", I), ("total", I));
        return signatures;
    }
}
