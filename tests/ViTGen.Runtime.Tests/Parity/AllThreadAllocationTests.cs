using ViTGen.CompilerServices;
using ViTGen.Tests.Kernels;
using Xunit.Abstractions;

namespace ViTGen.Tests.Parity;

/// <summary>
/// Steady-state Forward allocates nothing on ANY thread: the zero-allocation tests in <see cref="ParityTests"/> and
/// <see cref="TierParityTests"/> read only the calling thread's counter, which cannot see the pool's workers.
/// These count every thread (<see cref="Allocations.OnAllThreads"/>) and run in the non-parallel
/// <see cref="KernelSwitches"/> collection, so no other test allocates during the windows.
/// </summary>
[Collection(nameof(KernelSwitches))]
public sealed class AllThreadAllocationTests(ITestOutputHelper output)
{
    private const int Calls = 20;

    /// <summary>
    /// Windows measured (the smallest wins). Background work of the runtime (tiered JIT, thread pool upkeep) allocates
    /// a few hundred bytes now and then, in a window here or there; an allocation in Forward would be in all of them.
    /// </summary>
    private const int Windows = 100;

    /// <summary>Bytes per Forward call allowed across all threads: none.</summary>
    private const long BudgetPerCall = 0;

    [Theory]
    [InlineData(2, 1)]   // one image: GEMMs and heads split over the pool's workers
    [InlineData(2, 2)]   // a batch: whole images per worker
    [InlineData(1, 2)]   // control: everything on the calling thread
    public void SteadyStateForwardAllocatesNothingOnAnyThread(int threads, int batch)
        => Measure(null, threads, batch);

    [Theory]
    [TierData(512, 1, 2)]
    [TierData(256, 1, 2)]
    [TierData(128, 1, 2)]
    public void SteadyStateForwardAllocatesNothingOnAnyThreadOnEveryTier(int bits, int batch)
    {
        using var tier = Simd.Force(Tiers.Of(bits));
        Measure(Tiers.Of(bits), 2, batch);
    }

    private void Measure(SimdTier? tier, int threads, int batch)
    {
        var fixture = Fixture.Read("basic");
        using var model = fixture.Load(new VitOptions { Threads = threads });
        int inputSize = fixture.Input.Length / fixture.Batch;
        var input = fixture.Input.AsSpan(0, batch * inputSize).ToArray();
        var result = new float[batch * fixture.OutputSize];
        // Warm up past tiered compilation's call counting (the forced tier's kernels are fresh code), pool started.
        for (int i = 0; i < 100; i++) model.Forward(input, result, batch);
        long bytes = Allocations.OnAllThreads(() =>
        {
            for (int i = 0; i < Calls; i++) model.Forward(input, result, batch);
        }, Windows, out long[] perWindow);
        output.WriteLine($"threads={threads} batch={batch} tier={tier?.ToString() ?? "hardware"}: {bytes} bytes over {Calls} calls, all threads (smallest window; windows: {string.Join(", ", perWindow)})");
        Assert.True(bytes <= BudgetPerCall * Calls, $"{bytes} bytes allocated over {Calls} Forward calls on all threads (budget {BudgetPerCall} per call)");
    }
}
