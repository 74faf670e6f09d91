namespace ViTGen.CompilerServices;

/// <summary>
/// Runs a <see cref="GpuPlan"/> on a device: GEMMs through cuBLAS, launches through cuLaunchKernel, all on the
/// device's stream, nothing synchronized (unless asked to after each step) until the caller waits for the output. The
/// arena is two allocations: arena offsets below <see cref="GpuArenaLayout.WeightFloats"/> resolve into the weights,
/// the rest into the activations (so the activations can grow with the batch while the weights stay put).
/// </summary>
internal sealed unsafe class CudaExecutor(CudaDevice device)
{
    /// <summary>
    /// Enqueues every step of <paramref name="plan"/> over the given weight and activation allocations. With
    /// <paramref name="synchronizeEachStep"/>, waits for the device after each step, so that an asynchronous fault is
    /// reported by <see cref="CudaSteps.Describe"/> of the step that caused it.
    /// </summary>
    public void Run(GpuPlan plan, ulong weights, ulong activations, bool synchronizeEachStep)
    {
        var arena = new Arena(plan.Layout.WeightFloats, weights, activations);
        var ops = plan.Ops;
        for (int index = 0; index < ops.Length; index++)
        {
            int result = ops[index] switch
            {
                GpuGemm gemm => Gemm(gemm, (nint)arena.Resolve(gemm.A), (nint)arena.Resolve(gemm.B), (nint)arena.Resolve(gemm.C)),
                GpuLaunch launch => Launch(launch, arena),
                var op => throw new InvalidOperationException($"Unknown plan step {op}."),
            };
            // Messages are formatted only on failure: a forward pass makes hundreds of calls and allocates nothing.
            if (result != 0)
            {
                if (ops[index] is GpuGemm) CublasApi.Check(result, CudaSteps.Call(ops[index]), CudaSteps.Describe(plan, index));
                device.Driver.Check(result, CudaSteps.Call(ops[index]), CudaSteps.Describe(plan, index));
            }
            if (synchronizeEachStep)
            {
                result = device.Driver.StreamSynchronize(device.Stream);
                if (result != CudaDriverApi.Success) device.Driver.Check(result, "cuStreamSynchronize (VitCudaOptions.SynchronizeEachStep)", CudaSteps.Describe(plan, index));
            }
        }
    }

    private int Gemm(GpuGemm g, nint a, nint b, nint c)
    {
        float alpha = g.Alpha, beta = g.Beta;
        int transA = g.TransA ? CublasApi.OpT : CublasApi.OpN, transB = g.TransB ? CublasApi.OpT : CublasApi.OpN;
        var blas = device.Blas;
        return g.Batch == 1
            ? blas.Sgemm(device.BlasHandle, transA, transB, g.M, g.N, g.K, &alpha, a, g.Lda, b, g.Ldb, &beta, c, g.Ldc)
            : blas.SgemmStridedBatched(device.BlasHandle, transA, transB, g.M, g.N, g.K,
                &alpha, a, g.Lda, g.StrideA, b, g.Ldb, g.StrideB, &beta, c, g.Ldc, g.StrideC, g.Batch);
    }

    /// <summary>The two allocations behind the arena's offsets.</summary>
    private readonly struct Arena(long weightFloats, ulong weights, ulong activations)
    {
        public ulong Resolve(long offset) => offset < weightFloats
            ? weights + (ulong)offset * sizeof(float)
            : activations + (ulong)(offset - weightFloats) * sizeof(float);
    }

    private int Launch(GpuLaunch launch, Arena arena)
    {
        // Each argument in an 8-byte slot; cuLaunchKernel reads as many bytes as the PTX parameter has (.u64, .u32, .f32).
        int count = launch.Args.Length;
        ulong* slots = stackalloc ulong[count];
        void** parameters = stackalloc void*[count];
        for (int i = 0; i < count; i++)
        {
            GpuArg arg = launch.Args[i];
            slots[i] = 0;
            switch (arg.Kind)
            {
                case GpuParameterKind.Pointer: slots[i] = arena.Resolve(arg.Value); break;
                case GpuParameterKind.Int: *(int*)&slots[i] = (int)arg.Value; break;
                case GpuParameterKind.Float: *(float*)&slots[i] = arg.FloatValue; break;
                default: break; // a null pointer
            }
            parameters[i] = &slots[i];
        }
        return device.Driver.LaunchKernel(device.Function(launch.Kernel), (uint)launch.GridX, (uint)launch.GridY, 1, (uint)launch.BlockX, 1, 1,
            0, device.Stream, parameters, null);
    }
}

/// <summary>How failures name the steps of a plan: by position, timm name and the call that runs the step.</summary>
internal static class CudaSteps
{
    /// <summary>The library call that runs <paramref name="op"/>.</summary>
    public static string Call(GpuOp op) => op switch
    {
        GpuGemm { Batch: 1 } => "cublasSgemm_v2",
        GpuGemm => "cublasSgemmStridedBatched",
        GpuLaunch launch => $"cuLaunchKernel({GpuKernels.EntryName(launch.Kernel)})",
        _ => op.GetType().Name,
    };

    /// <summary>Step <paramref name="index"/> of <paramref name="plan"/>: <c>step 7 of 52 (blocks.0.attn.qkv, cublasSgemm_v2) of the batch-8 plan</c>.</summary>
    public static string Describe(GpuPlan plan, int index)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, plan.Ops.Length);
        GpuOp op = plan.Ops[index];
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"step {index + 1} of {plan.Ops.Length} ({op.Label}, {Call(op)}) of the batch-{plan.Batch} plan");
    }
}
