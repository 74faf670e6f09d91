using ViTGen.CompilerServices;

namespace ViTGen.Tests.Kernels;

/// <summary>The panel layout of B (<c>[panel][k][32]</c>, zero-padded, the same on every tier) from both of its sources.</summary>
[Collection(nameof(KernelSwitches))]
public sealed unsafe class GemmPackingTests
{
    // (n, k, ld): the keys of one head of a 32x32 image (65 x 32, read from the fused qkv rows) and of a 224 image
    // (197 x 64 of B/16's 2304-float rows), panels with partial 4- and 16-steps of k for the 128- and 512-bit transposes.
    private static readonly int[][] TransposedShapes = [[1, 1, 1], [32, 7, 7], [33, 64, 64], [65, 32, 384], [100, 130, 131], [64, 5, 9], [197, 64, 2304], [96, 47, 47]];

    [Theory]
    [TierData(512, 0, 1, 2, 3, 4, 5, 6, 7)]
    [TierData(256, 0, 1, 2, 3, 4, 5, 6, 7)]
    [TierData(128, 0, 1, 2, 3, 4, 5, 6, 7)]
    public void PackTransposedBPlacesEveryElementAndZeroPads(int bits, int shape)
    {
        using var tier = Simd.Force(Tiers.Of(bits));
        int n = TransposedShapes[shape][0], k = TransposedShapes[shape][1], ld = TransposedShapes[shape][2];
        var source = Numbered(n * ld);
        var packed = Pack(n, k, (s, d) => GemmPacking.PackTransposedB(s, ld, n, k, d), source);
        AssertPanels(packed, n, k, (kk, column) => source[column * ld + kk]);
    }

    [Theory]
    [InlineData(5, 1, 1)]
    [InlineData(65, 32, 384)]     // the values of one head
    [InlineData(70, 50, 50)]
    public void PackBPlacesEveryElementAndZeroPads(int k, int n, int ld)
    {
        var source = Numbered(k * ld);
        var packed = Pack(n, k, (s, d) => GemmPacking.PackB(s, ld, k, n, d), source);
        AssertPanels(packed, n, k, (kk, column) => source[kk * ld + column]);
    }

    private delegate void Packer(float* source, float* destination);

    private static float[] Numbered(int length) => Enumerable.Range(1, length).Select(i => (float)i).ToArray();

    /// <summary>Packs into a NaN-poisoned buffer, so an element the packer never writes fails the comparison.</summary>
    private static float[] Pack(int n, int k, Packer pack, float[] source)
    {
        var packed = new float[GemmPacking.PackedBLength(n, k)];
        Array.Fill(packed, float.NaN);
        fixed (float* s = source)
        fixed (float* d = packed)
            pack(s, d);
        return packed;
    }

    private static void AssertPanels(float[] packed, int n, int k, Func<int, int, float> element)
    {
        for (int panel = 0; panel < GemmPacking.Panels(n); panel++)
            for (int kk = 0; kk < k; kk++)
                for (int j = 0; j < GemmPacking.PanelWidth; j++)
                {
                    int column = panel * GemmPacking.PanelWidth + j;
                    float expected = column < n ? element(kk, column) : 0f;
                    Assert.Equal(expected, packed[(panel * k + kk) * GemmPacking.PanelWidth + j]);
                }
    }
}
