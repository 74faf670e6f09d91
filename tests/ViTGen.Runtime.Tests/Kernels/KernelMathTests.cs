using System.Runtime.Intrinsics;
using ViTGen.CompilerServices;

namespace ViTGen.Tests.Kernels;

/// <summary>
/// The inlined exp, the activations' vector paths and the attention softmax against double-precision math, on every
/// SIMD tier (16-lane paths where the machine has AVX-512, 8-lane where it has AVX2+FMA, 4-lane everywhere).
/// </summary>
[Collection(nameof(KernelSwitches))]
public sealed unsafe class KernelMathTests
{
    /// <summary>exp on 16 lanes (AVX-512) or 4 lanes (every other machine), as a 16-float array.</summary>
    private static float[] Exp(int bits, float[] lanes)
    {
        var result = new float[16];
        if (bits == 512)
        {
            FastExp.Exp(Vector512.Create(lanes)).CopyTo(result);
            return result;
        }
        for (int i = 0; i < 16; i += 4) FastExp.Exp(Vector128.Create(lanes.AsSpan(i, 4))).CopyTo(result, i);
        return result;
    }

    [Theory]
    [TierData(512)]
    [TierData(128)]
    public void FastExpIsWithinTwoUlpsOfMathExp(int bits)
    {
        var inputs = new List<float>();
        for (float x = -86.99f; x <= 88.5f; x += 0.00731f) inputs.Add(x);
        for (int i = 0; i < inputs.Count; i += 16)
        {
            var lanes = new float[16];
            for (int j = 0; j < 16; j++) lanes[j] = inputs[Math.Min(i + j, inputs.Count - 1)];
            var result = Exp(bits, lanes);
            for (int j = 0; j < 16; j++)
            {
                double expected = Math.Exp(lanes[j]);
                double error = Math.Abs(result[j] - expected) / expected;
                Assert.True(error < 2.5e-7, $"exp({lanes[j]}) = {result[j]}, relative error {error:E2}");
            }
        }
    }

    [Theory]
    [TierData(512)]
    [TierData(128)]
    public void FastExpHandlesTheEdges(int bits)
    {
        var result = Exp(bits, [0f, -104f, float.NegativeInfinity, 89f, float.PositiveInfinity, float.NaN, -0f, 88.7f,
            -87.5f, 1f, -86.9f, 0f, 0f, 0f, 0f, 0f]);
        Assert.Equal(1f, result[0]);
        Assert.Equal(0f, result[1]);
        Assert.Equal(0f, result[2]);
        Assert.Equal(float.PositiveInfinity, result[3]);
        Assert.Equal(float.PositiveInfinity, result[4]);
        Assert.True(float.IsNaN(result[5]), $"exp(NaN) = {result[5]}");
        Assert.Equal(1f, result[6]);
        Assert.True(Math.Abs(result[7] / Math.Exp(88.7f) - 1) < 2.5e-7, $"exp(88.7) = {result[7]}");
        // Below e^-87 the result is flushed to zero rather than produced as a (slow) denormal.
        Assert.Equal(0f, result[8]);
        Assert.Equal(MathF.E, result[9], 6);
        Assert.True(float.IsNormal(result[10]), $"exp(-86.9) = {result[10]}");
    }

    [Theory]
    [TierData(512)]
    [TierData(256)]
    [TierData(128)]
    public void ActivationVectorPathsMatchTheScalarPaths(int bits)
    {
        AssertVectorMatchesScalar<GeluEpilogue>(bits);
        AssertVectorMatchesScalar<GeluTanhEpilogue>(bits);
        AssertVectorMatchesScalar<QuickGeluEpilogue>(bits);
        AssertVectorMatchesScalar<ReluEpilogue>(bits);
        AssertVectorMatchesScalar<StoreEpilogue>(bits);
        AssertVectorMatchesScalar<ResidualEpilogue>(bits);
    }

    /// <summary>The tier's activation on 16 lanes (one 512-bit, two 256-bit or four 128-bit vectors).</summary>
    private static float[] Activate<TEpilogue>(int bits, float[] lanes) where TEpilogue : IGemmEpilogue
    {
        var result = new float[16];
        if (bits == 512) TEpilogue.Activate(Vector512.Create(lanes)).CopyTo(result);
        else if (bits == 256)
            for (int i = 0; i < 16; i += 8) TEpilogue.Activate(Vector256.Create(lanes.AsSpan(i, 8))).CopyTo(result, i);
        else
            for (int i = 0; i < 16; i += 4) TEpilogue.Activate(Vector128.Create(lanes.AsSpan(i, 4))).CopyTo(result, i);
        return result;
    }

    private static void AssertVectorMatchesScalar<TEpilogue>(int bits) where TEpilogue : IGemmEpilogue
    {
        for (float x0 = -40f; x0 <= 40f; x0 += 16 * 0.003f)
        {
            var lanes = new float[16];
            for (int j = 0; j < 16; j++) lanes[j] = x0 + j * 0.003f;
            var result = Activate<TEpilogue>(bits, lanes);
            for (int j = 0; j < 16; j++)
            {
                float expected = TEpilogue.Activate(lanes[j]);
                float bound = 5e-7f * Math.Max(1f, Math.Abs(expected));
                Assert.True(Math.Abs(result[j] - expected) <= bound, $"{typeof(TEpilogue).Name}({lanes[j]}) on {bits} bits = {result[j]}, scalar {expected}");
            }
        }
        var nan = new float[16];
        Array.Fill(nan, float.NaN);
        Assert.True(float.IsNaN(Activate<TEpilogue>(bits, nan)[0]), $"{typeof(TEpilogue).Name}(NaN) on {bits} bits");
    }

    [Theory]
    [TierData(512, 1, 7, 16, 65, 197, 257)]
    [TierData(256, 1, 7, 16, 65, 197, 257)]
    [TierData(128, 1, 7, 16, 65, 197, 257)]
    public void SoftmaxRowsMatchesDoublePrecision(int bits, int n)
    {
        using var tier = Simd.Force(Tiers.Of(bits));
        var random = new Random(n);
        float scale = 0.125f;
        int stride = (n + 15) / 16 * 16;
        var scores = new float[n * stride];
        for (int i = 0; i < scores.Length; i++) scores[i] = i % stride < n ? (float)(random.NextDouble() * 80 - 40) : float.NaN;
        var expected = new double[n * stride];
        for (int r = 0; r < n; r++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < n; j++) max = Math.Max(max, scores[r * stride + j]);
            for (int j = 0; j < n; j++) sum += expected[r * stride + j] = Math.Exp(scale * (scores[r * stride + j] - max));
            for (int j = 0; j < n; j++) expected[r * stride + j] /= sum;
        }
        fixed (float* s = scores) Attention.SoftmaxRows(s, n, n, stride, scale);
        for (int r = 0; r < n; r++)
        {
            for (int j = 0; j < n; j++)
            {
                float actual = scores[r * stride + j];
                double want = expected[r * stride + j];
                Assert.False(float.IsNaN(actual), $"row {r} col {j} is NaN (the NaN padding leaked)");
                Assert.True(Math.Abs(actual - want) <= 1e-6 * Math.Max(want, 1e-3), $"row {r} col {j}: {actual} vs {want:G9}");
            }
        }
    }

    [Fact]
    public void SoftmaxRowsRejectsAnUnpaddedStride()
    {
        var scores = new float[65 * 65];
        var error = Assert.Throws<ArgumentException>(() =>
        {
            fixed (float* s = scores) Attention.SoftmaxRows(s, 65, 65, 65, 1f);
        });
        Assert.Contains("65", error.Message);
    }
}
