using ViTGen.CompilerServices;
using ViTGen.Tests.Parity;
using Xunit.Abstractions;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// The generated GPU plan of every parity fixture, run by the CPU executor (cuBLAS's GEMM semantics and the kernels'
/// C# twins), against the PyTorch reference and against the model's CPU Forward. This is what tests the plan's
/// offsets, leading dimensions, strides, transposes and grids on a machine without a GPU.
/// </summary>
public sealed class CpuPlanParityTests(ITestOutputHelper output)
{
    /// <summary>Against the float64 PyTorch reference, as the CPU parity tests.</summary>
    public const double TorchBound = 1e-4;

    /// <summary>Against the CPU Forward: the same float32 model, differing only in summation order and exp/erf rounding.</summary>
    public const double CpuBound = 1e-5;

    public static TheoryData<string> Names() => CudaPlans.Names();

    [Fact]
    public void EveryParityFixtureHasAPlan()
        => Assert.Equal(Fixture.Names.Order(StringComparer.Ordinal), CudaPlans.OnCpu.Keys.Order(StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(Names))]
    public void PlanMatchesPyTorchAndCpuForward(string name)
    {
        var fixture = Fixture.Read(name);
        float[] planned = CudaPlans.OnCpu[name](fixture.WeightsPath, fixture.Input, fixture.Batch);
        Numerics.AssertClose(planned, fixture.Expected, TorchBound, out double vsTorch);

        using var model = fixture.Load(new VitOptions { Threads = 1 });
        var cpu = fixture.PoisonedOutput();
        model.Forward(fixture.Input, cpu, fixture.Batch);
        double vsCpu = Numerics.RelativeL2(planned, cpu.Select(v => (double)v).ToArray());
        output.WriteLine($"{name} batch={fixture.Batch}: relative L2 vs PyTorch {vsTorch:E2}, vs CPU Forward {vsCpu:E2}");
        Assert.True(vsCpu <= CpuBound, $"relative L2 vs the CPU Forward {vsCpu:E3} exceeds {CpuBound:E1}");
    }

    [Theory]
    [InlineData("basic")]
    [InlineData("distilled")]
    [InlineData("combo_avg_reg")]
    public void BatchOfThreeEqualsImagesOneByOne(string name)
    {
        // Plans scale every activation offset, n and batch count with the batch; a wrong scale mixes images.
        var fixture = Fixture.Read(name);
        int inputSize = fixture.Input.Length / fixture.Batch;
        var images = new float[3 * inputSize];
        for (int i = 0; i < 3; i++) fixture.Input.AsSpan(i % fixture.Batch * inputSize, inputSize).CopyTo(images.AsSpan(i * inputSize));
        images[^1] += 0.5f; // the third image differs from the first
        float[] batched = CudaPlans.OnCpu[name](fixture.WeightsPath, images, 3);
        for (int i = 0; i < 3; i++)
        {
            float[] single = CudaPlans.OnCpu[name](fixture.WeightsPath, images.AsSpan(i * inputSize, inputSize).ToArray(), 1);
            // Every output element is computed by the same operations in the same order, whatever the batch.
            Assert.Equal(single, batched.AsSpan(i * fixture.OutputSize, fixture.OutputSize).ToArray());
        }
    }
}
