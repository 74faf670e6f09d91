namespace ViTGen.Tests.Parity;

/// <summary>A PyTorch parity fixture: weights path, input batch and the float64 reference output.</summary>
internal sealed record Fixture(string Name, string WeightsPath, int Batch, float[] Input, double[] Expected)
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "fixtures", "parity");

    public static IEnumerable<string> Names => ParityModels.Load.Keys.Order(StringComparer.Ordinal);

    public int OutputSize => Expected.Length / Batch;

    public static Fixture Read(string name) => Read(name, Directory);

    /// <summary>Reads <c>NAME.io.safetensors</c> (input, float64 expected output) from <paramref name="directory"/>.</summary>
    public static Fixture Read(string name, string directory)
    {
        using var io = SafeTensorsFile.Open(Path.Combine(directory, name + ".io.safetensors"));
        Assert.True(io.TryGetTensor("input", out var input));
        Assert.True(io.TryGetTensor("expected", out var expected));
        var pixels = new float[input.ElementCount];
        var reference = new double[expected.ElementCount];
        io.ReadFloat32("input", pixels);
        io.ReadFloat64("expected", reference);
        return new Fixture(name, Path.Combine(directory, name + ".safetensors"), (int)input.Shape[0], pixels, reference);
    }

    public IParityModel Load(VitOptions? options = null) => ParityModels.Load[Name](WeightsPath, options);

    /// <summary>An output buffer full of NaN, so any element Forward fails to write fails the comparison.</summary>
    public float[] PoisonedOutput() => Enumerable.Repeat(float.NaN, Expected.Length).ToArray();
}

internal static class Numerics
{
    /// <summary>‖actual − expected‖₂ / ‖expected‖₂ in double; NaN anywhere gives NaN (which fails every bound).</summary>
    public static double RelativeL2(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double error = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = actual[i] - expected[i];
            error += d * d;
            norm += expected[i] * expected[i];
        }
        return Math.Sqrt(error / norm);
    }

    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double bound, out double relativeL2)
    {
        relativeL2 = RelativeL2(actual, expected);
        foreach (float v in actual) Assert.False(float.IsNaN(v), "output contains NaN (an element was never written)");
        Assert.True(relativeL2 <= bound, $"relative L2 error {relativeL2:E3} exceeds {bound:E1}");
    }
}
