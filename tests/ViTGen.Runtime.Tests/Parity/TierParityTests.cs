using ViTGen.CompilerServices;
using ViTGen.Tests.Kernels;
using Xunit.Abstractions;

namespace ViTGen.Tests.Parity;

/// <summary>
/// Every fixture against the same PyTorch references on each SIMD tier (AVX-512, AVX2+FMA, and the 128-bit tier of
/// ARM64 and baseline x86), forced in-process. A tier the machine lacks is reported as skipped.
/// The model is loaded inside the forced scope, so its weights are packed under that tier too.
/// </summary>
[Collection(nameof(KernelSwitches))]
public sealed class TierParityTests(ITestOutputHelper output)
{
    [Theory]
    [TierFixtures(512)]
    [TierFixtures(256)]
    [TierFixtures(128)]
    public void MatchesPyTorchOnEveryTier(string name, int bits)
    {
        using var tier = Simd.Force(Tiers.Of(bits));
        var fixture = Fixture.Read(name);
        using var model = fixture.Load(new VitOptions { Threads = 2 });
        var result = fixture.PoisonedOutput();
        model.Forward(fixture.Input, result, fixture.Batch);
        Numerics.AssertClose(result, fixture.Expected, ParityTests.Bound, out double error);
        output.WriteLine($"{name} ({Tiers.Of(bits)}): relative L2 {error:E2}");
    }

    [Theory]
    [TierData(512, 1, 2)]
    [TierData(256, 1, 2)]
    [TierData(128, 1, 2)]
    public void SteadyStateForwardAllocatesNothingOnEveryTier(int bits, int threads)
    {
        using var tier = Simd.Force(Tiers.Of(bits));
        var fixture = Fixture.Read("basic");
        using var model = fixture.Load(new VitOptions { Threads = threads });
        var result = fixture.PoisonedOutput();
        Assert.Equal(0, Allocations.InSteadyState(() => model.Forward(fixture.Input, result, fixture.Batch)));
    }
}
