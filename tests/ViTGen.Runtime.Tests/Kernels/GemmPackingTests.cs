using ViTGen.CompilerServices;

namespace ViTGen.Tests.Kernels;

/// <summary>The panel layout of B (<c>[panel][k][32]</c>, zero-padded) from both of its sources.</summary>
public sealed unsafe class GemmPackingTests
{
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(32, 7, 7)]
    [InlineData(33, 64, 64)]
    [InlineData(65, 32, 384)]     // the keys of one head of a 32x32 image, read from the fused qkv rows
    [InlineData(100, 130, 131)]
    public void PackTransposedBPlacesEveryElementAndZeroPads(int n, int k, int ld)
    {
        var source = new float[n * ld];
        for (int i = 0; i < source.Length; i++) source[i] = i + 1;
        var packed = new float[GemmPacking.PackedBLength(n, k)];
        Array.Fill(packed, float.NaN);
        fixed (float* s = source)
        fixed (float* d = packed)
            GemmPacking.PackTransposedB(s, ld, n, k, d);
        for (int panel = 0; panel < GemmPacking.Panels(n); panel++)
            for (int kk = 0; kk < k; kk++)
                for (int j = 0; j < GemmPacking.PanelWidth; j++)
                {
                    int column = panel * GemmPacking.PanelWidth + j;
                    float expected = column < n ? source[column * ld + kk] : 0f;
                    Assert.Equal(expected, packed[(panel * k + kk) * GemmPacking.PanelWidth + j]);
                }
    }

    [Theory]
    [InlineData(5, 1, 1)]
    [InlineData(65, 32, 384)]     // the values of one head
    [InlineData(70, 50, 50)]
    public void PackBPlacesEveryElementAndZeroPads(int k, int n, int ld)
    {
        var source = new float[k * ld];
        for (int i = 0; i < source.Length; i++) source[i] = i + 1;
        var packed = new float[GemmPacking.PackedBLength(n, k)];
        Array.Fill(packed, float.NaN);
        fixed (float* s = source)
        fixed (float* d = packed)
            GemmPacking.PackB(s, ld, k, n, d);
        for (int panel = 0; panel < GemmPacking.Panels(n); panel++)
            for (int kk = 0; kk < k; kk++)
                for (int j = 0; j < GemmPacking.PanelWidth; j++)
                {
                    int column = panel * GemmPacking.PanelWidth + j;
                    float expected = column < n ? source[kk * ld + column] : 0f;
                    Assert.Equal(expected, packed[(panel * k + kk) * GemmPacking.PanelWidth + j]);
                }
    }
}
