namespace ViTGen.CompilerServices;

/// <summary>
/// A Linear layer's weight packed once at load into the GEMM's panel order, with its bias zero-padded to
/// whole panels. Used by generated code.
/// </summary>
/// <remarks>The packed layout is the same on every SIMD tier (AVX-512, AVX2, 128-bit), so a weight packed under one tier runs under any.</remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed unsafe class PackedLinear : IDisposable
{
    private readonly NativeBuffer _weight;
    private readonly NativeBuffer? _bias;

    /// <summary>Packs <paramref name="weight"/> (<c>[outFeatures, inFeatures]</c>, PyTorch layout) and an optional bias.</summary>
    public PackedLinear(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outFeatures, int inFeatures)
    {
        if (weight.Length != outFeatures * inFeatures)
            throw new ArgumentException($"weight has {weight.Length} floats, expected {outFeatures}x{inFeatures}", nameof(weight));
        if (!bias.IsEmpty && bias.Length != outFeatures)
            throw new ArgumentException($"bias has {bias.Length} floats, expected {outFeatures}", nameof(bias));
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
        _weight = new NativeBuffer(GemmPacking.PackedBLength(outFeatures, inFeatures));
        fixed (float* w = weight) GemmPacking.PackTransposedB(w, inFeatures, outFeatures, inFeatures, _weight.Data);
        if (!bias.IsEmpty)
        {
            _bias = new NativeBuffer((long)GemmPacking.Panels(outFeatures) * GemmPacking.PanelWidth);
            bias.CopyTo(_bias.Span);
        }
    }

    /// <summary>Output features (GEMM N).</summary>
    public int OutFeatures { get; }
    /// <summary>Input features (GEMM K).</summary>
    public int InFeatures { get; }
    /// <summary>The packed panels.</summary>
    public float* Weight => _weight.Data;
    /// <summary>The padded bias, or null when the layer has none.</summary>
    public float* Bias => _bias is null ? null : _bias.Data;

    /// <summary>Frees the packed memory.</summary>
    public void Dispose()
    {
        _weight.Dispose();
        _bias?.Dispose();
    }
}
