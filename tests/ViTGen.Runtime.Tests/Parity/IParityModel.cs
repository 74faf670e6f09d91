namespace ViTGen.Tests.Parity;

/// <summary>The generated members every compiled model has, as an interface the tests can call.</summary>
public interface IParityModel : IDisposable
{
    void Forward(ReadOnlySpan<float> pixels, Span<float> output, int batch = 1);
}
