using ViTGen.CompilerServices;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// Runs a <see cref="GpuPlan"/> on the CPU: GEMMs with cuBLAS's semantics (<see cref="ReferenceBlas"/>), launches with the
/// kernels' C# twins (<see cref="KernelTwins"/>), on one float[] that plays the device arena. Slow and simple on
/// purpose: it is the proof, on machines without a GPU, that the generated plan computes the model.
/// </summary>
internal static class CpuPlanExecutor
{
    /// <summary>Runs every step of <paramref name="plan"/> on <paramref name="arena"/> (at least <see cref="GpuPlan.ArenaFloats"/> long).</summary>
    public static void Run(GpuPlan plan, Span<float> arena)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (arena.Length < plan.ArenaFloats) throw new ArgumentException($"the arena holds {arena.Length} floats; the plan needs {plan.ArenaFloats}", nameof(arena));
        foreach (GpuOp op in plan.Ops)
        {
            try
            {
                switch (op)
                {
                    case GpuGemm gemm: ReferenceBlas.Gemm(gemm, arena); break;
                    case GpuLaunch launch: KernelTwins.Launch(launch, arena); break;
                    default: throw new InvalidOperationException($"unknown plan step {op}");
                }
            }
            catch (Exception error) when (error is IndexOutOfRangeException or OverflowException or ArgumentException or InvalidOperationException)
            {
                throw new InvalidOperationException($"Plan step failed: {op}", error);
            }
        }
    }

    /// <summary>
    /// The whole GPU path of a compiled model, on the CPU: the checkpoint read into <typeparamref name="TPlan"/>'s weight
    /// layout, the input placed at the plan's input offset, the activations poisoned with NaN (a step that reads what
    /// no earlier step wrote poisons the output), the plan of <paramref name="batch"/> images run, the output read back.
    /// </summary>
    public static float[] Forward<TPlan>(string weightsPath, ReadOnlySpan<float> pixels, int batch, VitOptions? options = null)
        where TPlan : IGpuModelPlan
    {
        using var weights = CudaLoading.ReadWeights<TPlan>(weightsPath, options);
        return Forward(TPlan.Build(batch), weights, pixels);
    }

    /// <summary>Runs <paramref name="plan"/> over <paramref name="weights"/> (its weight region) and a NaN-poisoned activation region.</summary>
    public static float[] Forward(GpuPlan plan, GpuWeightImage weights, ReadOnlySpan<float> pixels)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(weights);
        GpuArenaLayout layout = plan.Layout;
        if (pixels.Length != (long)plan.Batch * layout.InputSize)
            throw new ArgumentException($"pixels has {pixels.Length} floats; a batch of {plan.Batch} needs {(long)plan.Batch * layout.InputSize}", nameof(pixels));
        if (weights.Length != layout.WeightFloats)
            throw new ArgumentException($"the weight image has {weights.Length} floats; the layout has {layout.WeightFloats}", nameof(weights));
        var arena = new float[checked((int)plan.ArenaFloats)];
        weights.Slice(0, checked((int)layout.WeightFloats)).CopyTo(arena);
        arena.AsSpan((int)layout.WeightFloats).Fill(float.NaN);
        pixels.CopyTo(arena.AsSpan(checked((int)plan.InputOffset)));
        Run(plan, arena);
        return arena.AsSpan(checked((int)plan.OutputOffset), plan.Batch * layout.OutputSize).ToArray();
    }
}
