namespace ViTGen.CompilerServices;

/// <summary>
/// Runs a <see cref="GpuPlan"/> on a device: GEMMs through cuBLAS, launches through cuLaunchKernel, all on one
/// stream, nothing synchronized until the caller copies the output back. The arena is two allocations: arena
/// offsets below <see cref="GpuArenaLayout.WeightFloats"/> resolve into the weights, the rest into the activations
/// (so the activations can grow with the batch while the weights stay put).
/// </summary>
internal sealed unsafe class CudaExecutor(CudaDevice device)
{
    /// <summary>Enqueues every step of <paramref name="plan"/> over the given weight and activation allocations.</summary>
    public void Run(GpuPlan plan, ulong weights, ulong activations)
    {
        var arena = new Arena(plan.Layout.WeightFloats, weights, activations);
        foreach (GpuOp op in plan.Ops)
        {
            switch (op)
            {
                case GpuGemm gemm:
                    Gemm(gemm, (nint)arena.Resolve(gemm.A), (nint)arena.Resolve(gemm.B), (nint)arena.Resolve(gemm.C));
                    break;
                case GpuLaunch launch:
                    Launch(launch, arena);
                    break;
                default:
                    throw new InvalidOperationException($"Unknown plan step {op}.");
            }
        }
    }

    private void Gemm(GpuGemm g, nint a, nint b, nint c)
    {
        float alpha = g.Alpha, beta = g.Beta;
        int transA = g.TransA ? CublasApi.OpT : CublasApi.OpN, transB = g.TransB ? CublasApi.OpT : CublasApi.OpN;
        var blas = device.Blas;
        if (g.Batch == 1)
        {
            CublasApi.Check(blas.Sgemm(device.BlasHandle, transA, transB, g.M, g.N, g.K, &alpha, a, g.Lda, b, g.Ldb, &beta, c, g.Ldc),
                "cublasSgemm_v2", g.Label);
        }
        else
        {
            CublasApi.Check(blas.SgemmStridedBatched(device.BlasHandle, transA, transB, g.M, g.N, g.K,
                &alpha, a, g.Lda, g.StrideA, b, g.Ldb, g.StrideB, &beta, c, g.Ldc, g.StrideC, g.Batch), "cublasSgemmStridedBatched", g.Label);
        }
    }

    /// <summary>The two allocations behind the arena's offsets.</summary>
    private readonly struct Arena(long weightFloats, ulong weights, ulong activations)
    {
        public ulong Resolve(long offset) => offset < weightFloats
            ? weights + (ulong)offset * sizeof(float)
            : activations + (ulong)(offset - weightFloats) * sizeof(float);
    }

    private void Launch(GpuLaunch launch, Arena arena)
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
        var driver = device.Driver;
        int result = driver.LaunchKernel(device.Function(launch.Kernel), (uint)launch.GridX, (uint)launch.GridY, 1, (uint)launch.BlockX, 1, 1,
            0, device.Stream, parameters, null);
        // The message is formatted only on failure: a forward pass makes hundreds of launches and allocates nothing.
        if (result != CudaDriverApi.Success) driver.Check(result, $"cuLaunchKernel({GpuKernels.EntryName(launch.Kernel)})", launch.Label);
    }
}
