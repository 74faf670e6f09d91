using ViTGen.CompilerServices;
using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Cuda;

/// <summary>The generated plans' shape: the cuBLAS calls FasterTransformer's schedule makes, with the constants worked out.</summary>
public sealed class GpuPlanTests
{
    [Fact]
    public void BlockIsOneQkvGemmTwoStridedBatchedAttentionGemmsAndThreeLinears()
    {
        GpuPlan plan = FixtureBasic.CudaPlan.Build(2);
        var gemms = plan.Ops.OfType<GpuGemm>().ToList();
        // patch embedding, 2 blocks x (qkv, scores, values, proj, fc1, fc2), head
        Assert.Equal(1 + 2 * 6 + 1, gemms.Count);
        var block = gemms.Where(g => g.Label.StartsWith("blocks.1.", StringComparison.Ordinal)).Select(g => g.Label);
        Assert.Equal(["blocks.1.attn.qkv", "blocks.1.attn.scores", "blocks.1.attn.values", "blocks.1.attn.proj", "blocks.1.mlp.fc1", "blocks.1.mlp.fc2"], block);
    }

    [Fact]
    public void LinearLayersSwapOperandsForColumnMajor()
    {
        // FixtureBasic: 65 tokens of 64, MLP 256. Row-major hidden[B·65, 256] = normed · Wᵀ is gemm(T, N, 256, B·65, 64).
        GpuGemm fc1 = FixtureBasic.CudaPlan.Build(2).Ops.OfType<GpuGemm>().First(g => g.Label == "blocks.0.mlp.fc1");
        Assert.Equal((true, false, 256, 2 * 65, 64, 64, 64, 256, 1), (fc1.TransA, fc1.TransB, fc1.M, fc1.N, fc1.K, fc1.Lda, fc1.Ldb, fc1.Ldc, fc1.Batch));
        Assert.True(fc1.A < FixtureBasic.CudaPlan.Layout.WeightFloats, "A is the weight");
        Assert.True(fc1.B >= FixtureBasic.CudaPlan.Layout.WeightFloats, "B is an activation");
    }

    [Fact]
    public void AttentionScoresAreOneStridedBatchedCallOverImagesAndHeadsWithTheScaleAsAlpha()
    {
        GpuPlan plan = FixtureBasic.CudaPlan.Build(3);
        GpuGemm scores = plan.Ops.OfType<GpuGemm>().First(g => g.Label == "blocks.0.attn.scores");
        Assert.Equal((true, false, 65, 65, 16), (scores.TransA, scores.TransB, scores.M, scores.N, scores.K));
        Assert.Equal(1f / 4f, scores.Alpha); // head dim 16
        Assert.Equal(3 * 4, scores.Batch);  // images x heads
        Assert.Equal((16, 65L * 16, 16, 65L * 16, 65, 65L * 65), (scores.Lda, scores.StrideA, scores.Ldb, scores.StrideB, scores.Ldc, scores.StrideC));
        Assert.Equal(3L * 65 * 64, scores.A - scores.B); // K's plane follows Q's
        GpuGemm values = plan.Ops.OfType<GpuGemm>().First(g => g.Label == "blocks.0.attn.values");
        Assert.Equal((false, false, 16, 65, 65, 12), (values.TransA, values.TransB, values.M, values.N, values.K, values.Batch));
        Assert.Equal(scores.C, values.B);
    }

    [Fact]
    public void EveryLaunchMatchesItsKernelsSignature()
    {
        // GpuPlanBuilder checks as it builds; this runs every fixture's plan through it, at two batch sizes.
        foreach (string name in CudaPlans.OnCpu.Keys)
        {
            var fixture = Fixture.Read(name);
            float[] single = CudaPlans.OnCpu[name](fixture.WeightsPath, fixture.Input.AsSpan(0, fixture.Input.Length / fixture.Batch).ToArray(), 1);
            Assert.Equal(fixture.OutputSize, single.Length);
        }
    }

    [Fact]
    public void KernelsWithoutABiasGetANullPointer()
    {
        // gray: qkvBias false; prenorm: no patch_embed.proj.bias.
        var split = FixtureGray.CudaPlan.Build(1).Ops.OfType<GpuLaunch>().First(l => l.Kernel == GpuKernel.SplitQkv);
        Assert.True(split.Args[1].IsNull);
        var embed = FixturePrenorm.CudaPlan.Build(1).Ops.OfType<GpuLaunch>().First(l => l.Kernel == GpuKernel.EmbedTokens);
        Assert.True(embed.Args[1].IsNull);
        Assert.False(embed.Args[2].IsNull);
        Assert.Contains(FixturePrenorm.CudaPlan.Build(1).Ops, op => op.Label == "norm_pre");
    }

    [Fact]
    public void ActivationOffsetsScaleWithTheBatch()
    {
        var layout = FixtureBasic.CudaPlan.Layout;
        GpuPlan one = FixtureBasic.CudaPlan.Build(1), five = FixtureBasic.CudaPlan.Build(5);
        Assert.Equal(layout.WeightFloats + layout.Output, one.OutputOffset);
        Assert.Equal(layout.WeightFloats + 5 * layout.Output, five.OutputOffset);
        Assert.Equal(layout.WeightFloats + 5 * layout.ActivationFloatsPerImage, five.ArenaFloats);
        Assert.Equal(0, layout.WeightFloats % 64);
    }

    [Fact]
    public void BatchTooLargeForThirtyTwoBitKernelsThrows()
        => Assert.Throws<OverflowException>(() => FixtureBasic.CudaPlan.Build(int.MaxValue / 1000));

    [Fact]
    public void PlanPrintsAsPseudoC()
    {
        string text = FixtureDistilled.CudaPlan.Build(1).ToString();
        Assert.Contains("head_dist: gemm(T, N, m=10, n=1, k=24", text, StringComparison.Ordinal);
        Assert.Contains("vit_distilled_average<<<(1, 1), 256>>>", text, StringComparison.Ordinal);
    }

    [Fact]
    public void BuilderRejectsAMatrixPastTheArena()
    {
        var builder = new GpuPlanBuilder(FixtureBasic.CudaPlan.Layout, 1);
        long end = FixtureBasic.CudaPlan.Layout.ArenaFloats(1);
        var error = Assert.Throws<InvalidOperationException>(() =>
            builder.Gemm("bad", false, false, 4, 4, 4, 1f, 0, 4, 0, 0, 4, 0, 0f, end - 8, 4, 0));
        Assert.Contains("past the arena", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => builder.Launch("bad", GpuKernel.SoftmaxRows, 1, 1, 32, GpuArg.Pointer(0)));
        Assert.Throws<InvalidOperationException>(() => builder.Launch("bad", GpuKernel.SoftmaxRows, 1, 1, 48, GpuArg.Pointer(0), GpuArg.Int(3)));
        Assert.Throws<InvalidOperationException>(() => builder.Gemm("weights", false, false, 4, 4, 4, 1f, 0, 4, 0, 0, 4, 0, 0f, 0, 4, 0));
    }
}

/// <summary>The CPU executor catches wrong plans: each mutation of one step moves the output far from PyTorch.</summary>
public sealed class GpuPlanMutationTests
{
    public static TheoryData<string> Mutations() => new()
    {
        "scores reads the next head's keys",
        "values uses the wrong leading dimension",
        "fc1 forgets the transpose",
        "merge grid one block short",
        "split skips the bias",
    };

    [Theory]
    [MemberData(nameof(Mutations))]
    public void AWrongStepIsCaught(string mutation)
    {
        var fixture = Fixture.Read("basic");
        using var weights = CudaLoading.ReadWeights<FixtureBasic.CudaPlan>(fixture.WeightsPath, null);
        GpuPlan plan = FixtureBasic.CudaPlan.Build(fixture.Batch);
        GpuOp Mutate(GpuOp op) => (mutation, op) switch
        {
            ("scores reads the next head's keys", GpuGemm { Label: "blocks.1.attn.scores" } g) => g with { A = g.A + g.StrideA },
            ("values uses the wrong leading dimension", GpuGemm { Label: "blocks.0.attn.values" } g) => g with { Ldb = g.Ldb - 1 },
            ("fc1 forgets the transpose", GpuGemm { Label: "blocks.0.mlp.fc1" } g) => g with { TransA = false, Lda = g.M },
            ("merge grid one block short", GpuLaunch { Label: "blocks.0.attn.merge" } l) => l with { GridX = l.GridX - 1 },
            ("split skips the bias", GpuLaunch { Label: "blocks.0.attn.split" } l) => l with { Args = l.Args.SetItem(1, GpuArg.Null) },
            _ => op,
        };
        var mutated = plan.Ops.Select(Mutate).ToArray();
        Assert.Equal(1, mutated.Zip(plan.Ops).Count(pair => !ReferenceEquals(pair.First, pair.Second)));

        float[] correct = CpuPlanExecutor.Forward(plan, weights, fixture.Input);
        float[] wrong;
        try
        {
            wrong = CpuPlanExecutor.Forward(Rebuild(plan, mutated), weights, fixture.Input);
        }
        catch (InvalidOperationException)
        {
            return; // caught by the executor's own checks: just as good
        }
        Numerics.AssertClose(correct, fixture.Expected, CpuPlanParityTests.TorchBound, out _);
        Assert.True(float.IsNaN(wrong.Sum()) || Numerics.RelativeL2(wrong, fixture.Expected) > 1e-3, $"'{mutation}' went unnoticed");
    }

    /// <summary>Rebuilds a plan from edited steps through the builder, so its checks run as for generated plans.</summary>
    private static GpuPlan Rebuild(GpuPlan original, IEnumerable<GpuOp> ops)
    {
        var builder = new GpuPlanBuilder(original.Layout, original.Batch);
        foreach (GpuOp op in ops)
        {
            if (op is GpuGemm g)
                builder.Gemm(g.Label, g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, g.A, g.Lda, g.StrideA, g.B, g.Ldb, g.StrideB, g.Beta, g.C, g.Ldc, g.StrideC, g.Batch);
            else if (op is GpuLaunch l)
                builder.Launch(l.Label, l.Kernel, l.GridX, l.GridY, l.BlockX, [.. l.Args]);
        }
        return builder.Build();
    }
}
