using System.Collections.Immutable;

namespace ViTGen.CompilerServices;

/// <summary>
/// Collects the steps of a <see cref="GpuPlan"/> and checks each one as it is added, the way cuBLAS and the driver
/// would at run time (leading dimensions, arguments against the kernel's signature, launch limits) plus what
/// neither checks: every matrix and pointer lies inside the arena, and nothing writes to the weights. Used by
/// generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class GpuPlanBuilder
{
    private const int MaxThreadsPerBlock = 1024;
    private const int MaxGridY = 65535;

    private readonly ImmutableArray<GpuOp>.Builder _ops = ImmutableArray.CreateBuilder<GpuOp>();
    private readonly long _arenaFloats;

    /// <summary>Starts a plan for <paramref name="batch"/> images.</summary>
    public GpuPlanBuilder(GpuArenaLayout layout, int batch)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        Layout = layout;
        Batch = batch;
        _arenaFloats = layout.ArenaFloats(batch);
    }

    /// <summary>The arena layout.</summary>
    public GpuArenaLayout Layout { get; }

    /// <summary>Images per run.</summary>
    public int Batch { get; }

    /// <summary>The arena offset of activation buffer <paramref name="perImageOffset"/> for this batch.</summary>
    public long Activation(long perImageOffset) => Layout.Activation(Batch, perImageOffset);

    /// <summary>Adds a GEMM; see <see cref="GpuGemm"/> for the meaning of each argument.</summary>
#pragma warning disable CA1026 // the argument list is cuBLAS's, in cuBLAS's order
    public void Gemm(string label, bool transA, bool transB, int m, int n, int k, float alpha,
        long a, int lda, long strideA, long b, int ldb, long strideB, float beta, long c, int ldc, long strideC, int batch = 1)
#pragma warning restore CA1026
    {
        var gemm = new GpuGemm(label, transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch);
        if (m < 1 || n < 1 || k < 1 || batch < 1) Fail(gemm, "m, n, k and batch must be positive");
        // cuBLAS's own checks (CUBLAS_STATUS_INVALID_VALUE): a leading dimension covers its matrix's rows.
        if (lda < (transA ? k : m)) Fail(gemm, "lda is less than the rows of A");
        if (ldb < (transB ? n : k)) Fail(gemm, "ldb is less than the rows of B");
        if (ldc < m) Fail(gemm, "ldc is less than m");
        CheckMatrix(gemm, "A", a, transA ? k : m, transA ? m : k, lda, strideA, batch);
        CheckMatrix(gemm, "B", b, transB ? n : k, transB ? k : n, ldb, strideB, batch);
        CheckMatrix(gemm, "C", c, m, n, ldc, strideC, batch);
        if (c < Layout.WeightFloats) Fail(gemm, "C lies in the weights");
        if (batch > 1 && strideC < (long)ldc * n) Fail(gemm, "the C matrices of the batch overlap");
        _ops.Add(gemm);
    }

    /// <summary>Adds a kernel launch with its arguments in the kernel's parameter order.</summary>
    public void Launch(string label, GpuKernel kernel, int gridX, int gridY, int blockX, params GpuArg[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var launch = new GpuLaunch(label, kernel, gridX, gridY, blockX, [.. args]);
        if (gridX < 1 || gridY < 1 || gridY > MaxGridY) Fail(launch, "the grid is empty or too tall");
        if (blockX < 32 || blockX > MaxThreadsPerBlock || blockX % 32 != 0) Fail(launch, "blocks must be 32 to 1024 threads, a multiple of 32");
        if ((long)gridX * blockX > int.MaxValue) Fail(launch, "the kernels index threads with 32-bit ints");
        var parameters = GpuKernels.Parameters(kernel);
        if (parameters.Length != args.Length) Fail(launch, $"{GpuKernels.EntryName(kernel)} takes {parameters.Length} arguments, not {args.Length}");
        for (int i = 0; i < args.Length; i++)
        {
            GpuArg arg = args[i];
            GpuParameterKind expected = parameters[i].Kind;
            bool matches = expected == GpuParameterKind.OptionalPointer
                ? arg.Kind is GpuParameterKind.Pointer or GpuParameterKind.OptionalPointer
                : arg.Kind == expected;
            if (!matches) Fail(launch, $"argument '{parameters[i].Name}' must be {expected}, not {arg.Kind}");
            if (arg.Kind == GpuParameterKind.Pointer && arg.Value >= _arenaFloats) Fail(launch, $"'{parameters[i].Name}' points past the arena");
        }
        _ops.Add(launch);
    }

    /// <summary>The finished plan.</summary>
    public GpuPlan Build() => new(Layout, Batch, _ops.ToImmutable());

    private void CheckMatrix(GpuGemm gemm, string name, long offset, int rows, int cols, int ld, long stride, int batch)
    {
        if (offset < 0 || stride < 0) Fail(gemm, $"{name} has a negative offset or stride");
        long last = checked(offset + (batch - 1) * stride + (long)(cols - 1) * ld + rows - 1);
        if (last >= _arenaFloats) Fail(gemm, $"{name} ends at float {last}, past the arena of {_arenaFloats}");
        // The executor on a device resolves weights and activations into two allocations: no matrix may span both.
        if (offset < Layout.WeightFloats && last >= Layout.WeightFloats) Fail(gemm, $"{name} spans the weights and the activations");
    }

    private static void Fail(GpuOp op, string problem) => throw new InvalidOperationException($"Invalid GPU plan step: {problem}. {op}");
}
