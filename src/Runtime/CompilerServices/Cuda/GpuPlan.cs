using System.Collections.Immutable;
using System.Globalization;

namespace ViTGen.CompilerServices;

// The GPU plan as data. The generator prints, per model, straight-line code that builds a GpuPlan: every cuBLAS
// call with its column-major m, n, k, leading dimensions, strides and transposes, and every kernel launch with
// its grid and arguments, all as constants (only the batch size is a variable). Two executors run the same plan:
// CudaExecutor on a device, CpuPlanExecutor (tests) on a float[] with cuBLAS's semantics and C# twins of the kernels,
// which is how the plan's indices are tested on machines without a GPU.
//
// Addresses are float offsets into one arena: the weights first (offsets below WeightFloats, fixed), then the
// activations of the batch (each buffer holds batch images back to back, so its offset scales with the batch).

/// <summary>A kernel argument: an arena offset (a pointer), a null pointer, an int or a float. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "Named after the C parameter types of kernels.cu.")]
public readonly record struct GpuArg
{
    private GpuArg(GpuParameterKind kind, long value, float floatValue)
    {
        Kind = kind;
        Value = value;
        FloatValue = floatValue;
    }

    /// <summary>What the argument is (<see cref="GpuParameterKind.OptionalPointer"/> means null).</summary>
    public GpuParameterKind Kind { get; }

    /// <summary>The arena offset in floats (pointers) or the value (ints).</summary>
    public long Value { get; }

    /// <summary>The value of a float argument.</summary>
    public float FloatValue { get; }

    /// <summary>Whether this is a null pointer.</summary>
    public bool IsNull => Kind == GpuParameterKind.OptionalPointer;

    /// <summary>A pointer to the float at <paramref name="offset"/> in the arena.</summary>
    public static GpuArg Pointer(long offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        return new(GpuParameterKind.Pointer, offset, 0f);
    }

    /// <summary>A null pointer, for parameters the kernel treats as absent (a layer without a bias).</summary>
    public static GpuArg Null { get; } = new(GpuParameterKind.OptionalPointer, 0, 0f);

    /// <summary>An <c>int</c>.</summary>
    public static GpuArg Int(int value) => new(GpuParameterKind.Int, value, 0f);

    /// <summary>A <c>float</c>.</summary>
    public static GpuArg Float(float value) => new(GpuParameterKind.Float, 0, value);

    /// <summary>The argument as C would print it: <c>&amp;arena[offset]</c>, <c>NULL</c> or the number.</summary>
    public override string ToString() => Kind switch
    {
        GpuParameterKind.Pointer => string.Create(CultureInfo.InvariantCulture, $"&arena[{Value}]"),
        GpuParameterKind.OptionalPointer => "NULL",
        GpuParameterKind.Int => Value.ToString(CultureInfo.InvariantCulture),
        _ => FloatValue.ToString("R", CultureInfo.InvariantCulture) + "f",
    };
}

/// <summary>One step of a GPU plan. Used by generated code.</summary>
/// <param name="Label">What the step computes, in timm's names (<c>blocks.3.mlp.fc1</c>): errors name it.</param>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract record GpuOp(string Label);

/// <summary>
/// A cuBLAS single-precision GEMM with cuBLAS's own (column-major) meaning: for each of <paramref name="Batch"/>
/// problems <c>p</c>, <c>C_p = Alpha · op(A_p) · op(B_p) + Beta · C_p</c>, where <c>op(X)</c> is X or its transpose,
/// op(A) is <c>M x K</c>, op(B) is <c>K x N</c>, C is <c>M x N</c>, element (i, j) of a matrix with leading dimension
/// ld at offset <c>X + p · strideX + i + j · ld</c>. Batch 1 is <c>cublasSgemm_v2</c>; more is
/// <c>cublasSgemmStridedBatched</c>. With <c>Beta = 0</c>, C is not read. Used by generated code.
/// </summary>
/// <param name="Label">What the step computes.</param>
/// <param name="TransA">op(A) = Aᵀ (<c>CUBLAS_OP_T</c>).</param>
/// <param name="TransB">op(B) = Bᵀ.</param>
/// <param name="M">Rows of op(A) and C.</param>
/// <param name="N">Columns of op(B) and C.</param>
/// <param name="K">Columns of op(A), rows of op(B).</param>
/// <param name="Alpha">Scale of the product.</param>
/// <param name="A">Arena offset of A.</param>
/// <param name="Lda">Leading dimension of A.</param>
/// <param name="StrideA">Floats between consecutive A matrices (0: one A for every problem).</param>
/// <param name="B">Arena offset of B.</param>
/// <param name="Ldb">Leading dimension of B.</param>
/// <param name="StrideB">Floats between consecutive B matrices.</param>
/// <param name="Beta">Scale of the existing C.</param>
/// <param name="C">Arena offset of C.</param>
/// <param name="Ldc">Leading dimension of C.</param>
/// <param name="StrideC">Floats between consecutive C matrices.</param>
/// <param name="Batch">Number of problems.</param>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed record GpuGemm(
    string Label, bool TransA, bool TransB, int M, int N, int K, float Alpha,
    long A, int Lda, long StrideA, long B, int Ldb, long StrideB, float Beta, long C, int Ldc, long StrideC, int Batch) : GpuOp(Label)
{
    /// <summary>The call as cuBLAS would be written, for logs and failure messages.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Label}: gemm({(TransA ? 'T' : 'N')}, {(TransB ? 'T' : 'N')}, m={M}, n={N}, k={K}, alpha={Alpha:R}, A=&arena[{A}], lda={Lda}, strideA={StrideA}, " +
        $"B=&arena[{B}], ldb={Ldb}, strideB={StrideB}, beta={Beta:R}, C=&arena[{C}], ldc={Ldc}, strideC={StrideC}, batch={Batch})");
}

/// <summary>A kernel launch: a 2-D grid of 1-D blocks, no dynamic shared memory. Used by generated code.</summary>
/// <param name="Label">What the step computes.</param>
/// <param name="Kernel">The kernel.</param>
/// <param name="GridX">Blocks along x.</param>
/// <param name="GridY">Blocks along y.</param>
/// <param name="BlockX">Threads per block.</param>
/// <param name="Args">The arguments, in the kernel's parameter order.</param>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed record GpuLaunch(string Label, GpuKernel Kernel, int GridX, int GridY, int BlockX, ImmutableArray<GpuArg> Args) : GpuOp(Label)
{
    /// <summary>The launch as CUDA C would be written.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Label}: {GpuKernels.EntryName(Kernel)}<<<({GridX}, {GridY}), {BlockX}>>>({string.Join(", ", Args)})");
}

/// <summary>
/// The arena of one model: the weights' size and where each image's input and output sit in the activations.
/// Activation offsets are per image: buffer X of a batch of B starts at <c>WeightFloats + B · X</c>. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class GpuArenaLayout
{
    /// <summary>Describes a model's arena.</summary>
    /// <param name="model">The model's name, for messages.</param>
    /// <param name="weightFloats">Floats of the weight region (a multiple of 64).</param>
    /// <param name="activationFloatsPerImage">Floats of activations per image (a multiple of 64).</param>
    /// <param name="input">Per-image offset of the input buffer.</param>
    /// <param name="inputSize">Floats of one image's input.</param>
    /// <param name="output">Per-image offset of the output buffer.</param>
    /// <param name="outputSize">Floats of one image's output.</param>
    public GpuArenaLayout(string model, long weightFloats, long activationFloatsPerImage, long input, int inputSize, long output, int outputSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegative(weightFloats);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(activationFloatsPerImage);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outputSize);
        if (input < 0 || input + inputSize > activationFloatsPerImage) throw new ArgumentOutOfRangeException(nameof(input));
        if (output < 0 || output + outputSize > activationFloatsPerImage) throw new ArgumentOutOfRangeException(nameof(output));
        Model = model;
        WeightFloats = weightFloats;
        ActivationFloatsPerImage = activationFloatsPerImage;
        Input = input;
        InputSize = inputSize;
        Output = output;
        OutputSize = outputSize;
    }

    /// <summary>The model's name.</summary>
    public string Model { get; }
    /// <summary>Floats of the weight region.</summary>
    public long WeightFloats { get; }
    /// <summary>Floats of activations per image.</summary>
    public long ActivationFloatsPerImage { get; }
    /// <summary>Per-image offset of the input buffer within the activations.</summary>
    public long Input { get; }
    /// <summary>Floats of one image's input.</summary>
    public int InputSize { get; }
    /// <summary>Per-image offset of the output buffer within the activations.</summary>
    public long Output { get; }
    /// <summary>Floats of one image's output.</summary>
    public int OutputSize { get; }

    /// <summary>The arena offset of activation buffer <paramref name="perImageOffset"/> for a batch of <paramref name="batch"/>.</summary>
    public long Activation(int batch, long perImageOffset) => checked(WeightFloats + batch * perImageOffset);

    /// <summary>The arena's size for a batch of <paramref name="batch"/>.</summary>
    public long ArenaFloats(int batch) => checked(WeightFloats + batch * ActivationFloatsPerImage);
}

/// <summary>The forward pass of one batch size as a list of cuBLAS calls and kernel launches. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class GpuPlan
{
    internal GpuPlan(GpuArenaLayout layout, int batch, ImmutableArray<GpuOp> ops)
    {
        Layout = layout;
        Batch = batch;
        Ops = ops;
    }

    /// <summary>The arena layout.</summary>
    public GpuArenaLayout Layout { get; }
    /// <summary>Images per run.</summary>
    public int Batch { get; }
    /// <summary>The steps, in order.</summary>
    public ImmutableArray<GpuOp> Ops { get; }
    /// <summary>The arena's size in floats.</summary>
    public long ArenaFloats => Layout.ArenaFloats(Batch);
    /// <summary>Arena offset of the batch's input (<c>Batch · InputSize</c> floats).</summary>
    public long InputOffset => Layout.Activation(Batch, Layout.Input);
    /// <summary>Arena offset of the batch's output (<c>Batch · OutputSize</c> floats).</summary>
    public long OutputOffset => Layout.Activation(Batch, Layout.Output);

    /// <summary>The plan as pseudo-C, one step a line.</summary>
    public override string ToString() => string.Join('\n', Ops);
}
