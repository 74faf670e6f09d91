using ViTGen.CompilerServices;
using Xunit.Abstractions;

namespace ViTGen.Tests.Parity;

[CollectionDefinition(nameof(KernelSwitches), DisableParallelization = true)]
public sealed class KernelSwitches;

/// <summary>
/// The 256-bit GEMM kernel (machines without AVX-512) against the same PyTorch references. It flips a
/// process-wide switch, so it runs alone.
/// </summary>
[Collection(nameof(KernelSwitches))]
public sealed class Vector256ParityTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("basic")]
    [InlineData("odd")]
    [InlineData("hd12")]
    [InlineData("combo_dinov2")]
    [InlineData("distilled")]
    public void Vector256KernelMatchesPyTorch(string name)
    {
        var fixture = Fixture.Read(name);
        using var model = fixture.Load(new VitOptions { Threads = 2 });
        var result = fixture.PoisonedOutput();
        GemmMicroKernels.ForceVector256 = true;
        try
        {
            model.Forward(fixture.Input, result, fixture.Batch);
        }
        finally
        {
            GemmMicroKernels.ForceVector256 = false;
        }
        Numerics.AssertClose(result, fixture.Expected, ParityTests.Bound, out double error);
        output.WriteLine($"{name} (Vector256): relative L2 {error:E2}");
    }
}
