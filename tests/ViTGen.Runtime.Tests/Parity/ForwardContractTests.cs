namespace ViTGen.Tests.Parity;

/// <summary>The generated API's contract: constants, argument checks, load errors, disposal.</summary>
public sealed class ForwardContractTests
{
    [Fact]
    public void ConstantsDescribeTheCompiledShapes()
    {
        Assert.Equal(32, FixtureBasic.ImageSize);
        Assert.Equal(4, FixtureBasic.PatchSize);
        Assert.Equal(16, FixtureBasic.HeadDim);
        Assert.Equal(256, FixtureBasic.MlpDim);
        Assert.Equal(64, FixtureBasic.NumPatches);
        Assert.Equal(65, FixtureBasic.Tokens);
        Assert.Equal(10, FixtureBasic.OutputSize);
        Assert.Equal(3 * 32 * 32, FixtureBasic.InputSize);
        Assert.Equal(100, FixtureGray.MlpDim);
        Assert.Equal(0, FixtureNoHead.NumClasses);
        Assert.Equal(FixtureNoHead.Dim, FixtureNoHead.OutputSize);
        Assert.Equal(1 + 1 + 0, FixtureDistilled.PrefixTokens);
        Assert.Equal(1 + 4 + 16, FixtureRegisters.Tokens);
    }

    [Theory]
    [InlineData(1, 0, "pixels")]    // one image's pixels short
    [InlineData(0, 1, "output")]    // one logit short
    [InlineData(0, 0, "batch")]     // batch 0
    public void WrongSpanLengthsThrowBeforeWriting(int pixelShortfall, int outputShortfall, string parameter)
    {
        var fixture = Fixture.Read("basic");
        using var model = fixture.Load();
        int batch = parameter == "batch" ? 0 : fixture.Batch;
        var result = fixture.PoisonedOutput();
        var error = Assert.ThrowsAny<ArgumentException>(() =>
            model.Forward(fixture.Input.AsSpan(pixelShortfall), result.AsSpan(outputShortfall), batch));
        Assert.Equal(parameter, error.ParamName);
        Assert.All(result, v => Assert.True(float.IsNaN(v)));
    }

    [Fact]
    public void MissingFileThrowsWeightsException()
    {
        var error = Assert.Throws<VitWeightsException>(() => FixtureBasic.Load(Path.Combine(Fixture.Directory, "does-not-exist.safetensors")));
        Assert.Contains("does-not-exist.safetensors", error.Message);
    }

    [Fact]
    public void WeightsOfAnotherModelNameTheTensorAndBothShapes()
    {
        var error = Assert.Throws<VitWeightsException>(() => FixtureOdd.Load(Path.Combine(Fixture.Directory, "basic.safetensors")));
        Assert.Contains("patch_embed.proj.weight", error.Message);
        Assert.Contains("[64, 3, 4, 4]", error.Message);
        Assert.Contains("[80, 3, 8, 8]", error.Message);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        // gray has no qkv bias; a model compiled with qkvBias must ask for it by name.
        var error = Assert.Throws<VitWeightsException>(() => FixtureBasic.Load(Path.Combine(Fixture.Directory, "gray.safetensors")));
        Assert.Contains("patch_embed.proj.weight", error.Message);
    }

    [Fact]
    public void ForwardAfterDisposeThrows()
    {
        var fixture = Fixture.Read("basic");
        var model = fixture.Load();
        model.Dispose();
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.Forward(fixture.Input, fixture.PoisonedOutput(), fixture.Batch));
    }
}
