namespace ViTGen.Tests.Explain;

/// <summary><see cref="VitAttention"/>'s argument checks and small cases worked by hand.</summary>
public sealed class VitAttentionTests
{
    [Fact]
    public void RolloutOfUniformAttentionIsUniformAfterTheIdentityMix()
    {
        // One block, one head, 2 tokens, uniform 0.5: (A + I) / 2 = [[0.75, 0.25], [0.25, 0.75]].
        var result = new float[4];
        VitAttention.Rollout(new float[] { 0.5f, 0.5f, 0.5f, 0.5f }, 1, 1, 2, result);
        Assert.Equal(new[] { 0.75f, 0.25f, 0.25f, 0.75f }, result);
        // Two identical blocks: the square of that matrix.
        VitAttention.Rollout(new float[] { 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f }, 2, 1, 2, result);
        Assert.Equal(new[] { 0.625f, 0.375f, 0.375f, 0.625f }, result);
    }

    [Fact]
    public void MeanDistanceOfAttentionToTheNeighbourIsOnePatch()
    {
        // No prefix, a 1x2 grid is impossible (square), so 2x2: every query attends fully to its right/left neighbour.
        int tokens = 4;
        var attention = new float[tokens * tokens];
        int[] neighbour = { 1, 0, 3, 2 };
        for (int q = 0; q < tokens; q++) attention[q * tokens + neighbour[q]] = 1;
        var result = new float[1];
        VitAttention.MeanDistance(attention, 1, 1, 1, tokens, 0, 2, 16, result);
        Assert.Equal(16f, result[0]);
        // Diagonal neighbours: 16·√2; attention to a prefix token counts as distance 0.
        attention = new float[5 * 5];
        int[] diagonal = { 3, 2, 1, 0 };
        for (int q = 0; q < 4; q++)
        {
            attention[(1 + q) * 5 + 1 + diagonal[q]] = 0.5f;
            attention[(1 + q) * 5] = 0.5f;
        }
        VitAttention.MeanDistance(attention, 1, 1, 1, 5, 1, 2, 16, result);
        Assert.Equal(8 * Math.Sqrt(2), result[0], 5);
    }

    [Fact]
    public void TokensThatDoNotMatchTheGridAreAnArgumentError()
    {
        var error = Assert.Throws<ArgumentException>(() => VitAttention.MeanDistance(new float[17 * 17], 1, 1, 1, 17, 0, 4, 16, new float[1]));
        Assert.Equal("tokens", error.ParamName);
    }

    [Fact]
    public void WrongLengthsAndCountsThrowTypedExceptions()
    {
        Assert.Equal("attention", Assert.Throws<ArgumentException>(() => VitAttention.Rollout(new float[7], 1, 1, 2, new float[4])).ParamName);
        Assert.Equal("result", Assert.Throws<ArgumentException>(() => VitAttention.Rollout(new float[4], 1, 1, 2, new float[3])).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => VitAttention.Rollout(new float[4], 0, 1, 2, new float[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitAttention.Rollout(new float[4], 1, 0, 2, new float[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitAttention.Rollout(new float[4], 1, 1, 0, new float[4]));

        var maps = new float[2 * 5 * 5];
        Assert.Equal("attention", Assert.Throws<ArgumentException>(() => VitAttention.MeanDistance(maps, 1, 1, 1, 5, 1, 2, 16, new float[1])).ParamName);
        Assert.Equal("result", Assert.Throws<ArgumentException>(() => VitAttention.MeanDistance(maps, 2, 1, 1, 5, 1, 2, 16, new float[2])).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => VitAttention.MeanDistance(maps, 0, 1, 1, 5, 1, 2, 16, new float[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitAttention.MeanDistance(maps, 2, 1, 1, 5, -1, 2, 16, new float[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitAttention.MeanDistance(maps, 2, 1, 1, 5, 1, 0, 16, new float[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitAttention.MeanDistance(maps, 2, 1, 1, 5, 1, 2, 0, new float[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitAttention.MeanDistance(maps, 2, 1, 1, 5, 1, 2, float.NaN, new float[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => VitAttention.MeanDistance(maps, 2, 1, 1, 5, 1, 2, float.PositiveInfinity, new float[1]));
    }
}
