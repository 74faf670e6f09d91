using ViTGen.CompilerServices;

namespace ViTGen.Tests.Cuda;

/// <summary>The kernels' own exp and activations (no libdevice on the device) against .NET and the CPU epilogues.</summary>
public sealed class DeviceMathTests
{
    [Fact]
    public void ExpIsWithinTwoUlpsOfMathExp()
    {
        for (float x = -87f; x <= 88.5f; x += 0.0137f)
        {
            double expected = Math.Exp(x);
            double error = Math.Abs(DeviceMath.Exp(x) - expected) / expected;
            Assert.True(error < 2.5e-7, $"exp({x}) relative error {error:E2}");
        }
        Assert.Equal(0f, DeviceMath.Exp(-100f));
        Assert.Equal(0f, DeviceMath.Exp(float.NegativeInfinity));
        Assert.Equal(float.PositiveInfinity, DeviceMath.Exp(89f));
        Assert.Equal(1f, DeviceMath.Exp(0f));
    }

    [Fact]
    public void ActivationsMatchTheCpuEpilogues()
    {
        for (float x = -12f; x <= 12f; x += 0.01f)
        {
            AssertClose(GeluEpilogue.Activate(x), DeviceMath.Gelu(x));
            AssertClose(GeluTanhEpilogue.Activate(x), DeviceMath.GeluTanh(x));
            AssertClose(QuickGeluEpilogue.Activate(x), DeviceMath.QuickGelu(x));
            Assert.Equal(ReluEpilogue.Activate(x), DeviceMath.Relu(x));
        }
        Assert.Equal(0f, DeviceMath.GeluTanh(-50f));
        Assert.Equal(50f, DeviceMath.GeluTanh(50f));
        Assert.Equal(0f, DeviceMath.QuickGelu(-200f));
    }

    /// <summary>Within 5e-7 of the larger of 1 and |expected|: the two differ only in exp's last bit.</summary>
    private static void AssertClose(float expected, float actual)
    {
        float bound = 5e-7f * Math.Max(1f, Math.Abs(expected));
        Assert.True(Math.Abs(expected - actual) <= bound, $"{actual} differs from {expected} by {Math.Abs(expected - actual):E2}");
    }
}
