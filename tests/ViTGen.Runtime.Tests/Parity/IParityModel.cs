namespace ViTGen.Tests.Parity;

/// <summary>The generated members every compiled model has, as an interface the tests can call.</summary>
public interface IParityModel : IDisposable
{
    void Forward(ReadOnlySpan<float> pixels, Span<float> output, int batch = 1);

    void ForwardAttention(ReadOnlySpan<float> pixels, Span<float> output, Span<float> attention, int batch = 1);

    void ForwardFeatures(ReadOnlySpan<float> pixels, Span<float> features, int batch = 1);

    void ForwardPooled(ReadOnlySpan<float> pixels, Span<float> pooled, int batch = 1);
}
