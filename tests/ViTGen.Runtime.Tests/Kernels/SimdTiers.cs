using System.Reflection;
using System.Runtime.Intrinsics;
using ViTGen.CompilerServices;
using Xunit.Sdk;

namespace ViTGen.Tests.Kernels;

/// <summary>
/// Tests that force a SIMD tier (<see cref="Simd.Force"/> is process-wide) run in this collection: after the parallel
/// ones, one at a time, so no other test's kernels change width underneath them.
/// </summary>
[CollectionDefinition(nameof(KernelSwitches), DisableParallelization = true)]
public sealed class KernelSwitches;

/// <summary>The tiers a test runs on, by width in bits (xUnit rows carry plain ints).</summary>
internal static class Tiers
{
    public static readonly int[] All = [512, 256, 128];

    public static SimdTier Of(int bits) => (SimdTier)bits;

    /// <summary>The skip reason for a tier this machine lacks: reported as skipped, never silently passed.</summary>
    public static string? SkipReason(int bits) => Simd.MissingReason(Of(bits)) is { } reason ? "Not on this machine: " + reason : null;
}

/// <summary>A fact that runs only where the machine has <c>bits</c>-wide vectors, and is reported as skipped elsewhere.</summary>
public sealed class TierFactAttribute : FactAttribute
{
    public TierFactAttribute(int bits) => Skip = Tiers.SkipReason(bits);
}

/// <summary>
/// Rows <c>(bits)</c>, or <c>(bits, value)</c> for each value, for one tier; skipped with the reason where the machine lacks it.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class TierDataAttribute : DataAttribute
{
    private readonly int _bits;
    private readonly int[] _values;

    public TierDataAttribute(int bits, params int[] values)
    {
        _bits = bits;
        _values = values;
        Skip = Tiers.SkipReason(bits);
    }

    public override IEnumerable<object[]> GetData(MethodInfo testMethod)
        => _values.Length == 0 ? [[_bits]] : _values.Select(value => new object[] { _bits, value });
}

/// <summary>Rows <c>(fixture, bits)</c> over every parity fixture for one tier; skipped with the reason where the machine lacks it.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class TierFixturesAttribute : DataAttribute
{
    private readonly int _bits;

    public TierFixturesAttribute(int bits)
    {
        _bits = bits;
        Skip = Tiers.SkipReason(bits);
    }

    public override IEnumerable<object[]> GetData(MethodInfo testMethod)
        => Parity.Fixture.Names.Select(name => new object[] { name, _bits });
}

/// <summary>The tier switch itself.</summary>
[Collection(nameof(KernelSwitches))]
public sealed class SimdTierTests
{
    [Fact]
    public void HardwareTierIsNeverEmulated()
    {
        switch (Simd.Hardware)
        {
            case SimdTier.Vector512:
                Assert.True(Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported);
                break;
            case SimdTier.Vector256:
                Assert.True(Vector256.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Fma.IsSupported);
                Assert.False(System.Runtime.Intrinsics.X86.Avx512F.IsSupported && Vector512.IsHardwareAccelerated);
                break;
            default:
                Assert.Equal(SimdTier.Vector128, Simd.Hardware);
                Assert.False(Vector256.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported);
                break;
        }
        Assert.Equal(Simd.Hardware, Simd.Current);
    }

    [Fact]
    public void ForcingATierAboveTheHardwareThrows()
    {
        foreach (int bits in Tiers.All)
        {
            var tier = Tiers.Of(bits);
            if (Simd.IsSupported(tier)) continue;
            Assert.Throws<PlatformNotSupportedException>(() => Simd.Force(tier));
            Assert.Equal(Simd.Hardware, Simd.Current);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Simd.Force((SimdTier)64));
        Assert.Equal(Simd.Hardware, Simd.Current);
    }

    [Fact]
    public void ForcingNestsAndRestores()
    {
        using (Simd.Force(SimdTier.Vector128))
        {
            Assert.Equal(SimdTier.Vector128, Simd.Current);
            using (Simd.Force(Simd.Hardware)) Assert.Equal(Simd.Hardware, Simd.Current);
            Assert.Equal(SimdTier.Vector128, Simd.Current);
        }
        Assert.Equal(Simd.Hardware, Simd.Current);
    }
}
