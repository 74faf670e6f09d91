namespace ViTGen.CompilerServices;

/// <summary>What a generated model's <see cref="IImageForward"/> pass writes per image. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public enum ImageOutputs
{
    /// <summary><c>Forward</c>: the logits, or the pooled features of a model without a head.</summary>
    Logits,

    /// <summary><c>ForwardAttention</c>: Forward's output, and every block's attention probabilities.</summary>
    Attention,

    /// <summary><c>ForwardFeatures</c>: every token after the final norm.</summary>
    Features,

    /// <summary><c>ForwardPooled</c>: the pooled, normalized features the head reads (timm's pre-logits).</summary>
    Pooled,
}

/// <summary>
/// The per-image pass of one call of a generated model (the <see cref="WorkspaceSet{TWorkspace}"/> the call rented),
/// behind Forward and its explain variants. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IImageForward
{
    /// <summary>
    /// Runs one image on the workspace of <paramref name="worker"/>, splitting kernels over <paramref name="threads"/>,
    /// writing <paramref name="outputs"/> into <paramref name="output"/>, and for <see cref="ImageOutputs.Attention"/>
    /// the attention maps into <paramref name="attention"/> (empty otherwise).
    /// </summary>
    void ForwardImage(ImageOutputs outputs, ReadOnlySpan<float> image, Span<float> output, Span<float> attention, int worker, int threads);
}

/// <summary>
/// Validates a batched Forward and schedules it: with several images and several threads, each thread runs
/// whole images (no fork/join per GEMM); with one image, the threads share each kernel. Either way at most
/// <c>threads</c> threads (the caller and <c>threads - 1</c> pool workers) take part, and the worker index an
/// image sees is below <c>threads</c>, so a call touches at most that many workspaces of its set.
/// Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class BatchRunner
{
    /// <summary>The options' thread count, validated.</summary>
    public static int Threads(VitOptions? options) => VitOptions.ResolveThreads(options);

    /// <summary>Throws <see cref="ArgumentException"/> unless the spans hold exactly <paramref name="batch"/> images.</summary>
    public static void Validate(int pixels, int output, int batch, int inputSize, int outputSize)
        => Validate(pixels, output, batch, inputSize, outputSize, nameof(output));

    /// <summary>
    /// Throws <see cref="ArgumentException"/> unless the spans hold exactly <paramref name="batch"/> images; the
    /// output span is named <paramref name="outputName"/> in the exception.
    /// </summary>
    public static void Validate(int pixels, int output, int batch, int inputSize, int outputSize, string outputName)
    {
        if (batch < 1)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be at least 1.");
        if ((long)batch * inputSize != pixels)
            throw new ArgumentException($"pixels has {pixels} floats; a batch of {batch} needs {(long)batch * inputSize} ({inputSize} per image, normalized NCHW).", nameof(pixels));
        ValidateOutput(output, batch, outputSize, outputName);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming <paramref name="name"/> unless the span holds <c>batch * size</c> floats.</summary>
    public static void ValidateOutput(int length, int batch, int size, string name)
    {
        if ((long)batch * size != length)
            throw new ArgumentException($"{name} has {length} floats; a batch of {batch} needs {(long)batch * size} ({size} per image).", name);
    }

    /// <summary>
    /// Runs <paramref name="batch"/> images through <paramref name="model"/>'s <paramref name="outputs"/> pass;
    /// <paramref name="attention"/> holds <c>batch * attentionSize</c> floats, or is empty when <paramref name="attentionSize"/> is 0.
    /// </summary>
    public static void Run(IImageForward model, ImageOutputs outputs, ReadOnlySpan<float> pixels, Span<float> output, Span<float> attention,
        int batch, int inputSize, int outputSize, int attentionSize, int threads)
    {
        Validate(pixels.Length, output.Length, batch, inputSize, outputSize);
        ValidateOutput(attention.Length, batch, attentionSize, nameof(attention));
        if (batch == 1 || threads == 1)
        {
            for (int i = 0; i < batch; i++)
                model.ForwardImage(outputs, pixels.Slice(i * inputSize, inputSize), output.Slice(i * outputSize, outputSize),
                    attention.Slice((int)((long)i * attentionSize), attentionSize), 0, threads);
            return;
        }
        var handle = GCHandle.Alloc(model);
        try
        {
            fixed (float* input = pixels)
            fixed (float* result = output)
            fixed (float* maps = attention)
            {
                var job = new ImageJob
                {
                    Model = GCHandle.ToIntPtr(handle), Outputs = outputs, Input = input, Output = result, Attention = maps,
                    InputSize = inputSize, OutputSize = outputSize, AttentionSize = attentionSize,
                };
                WorkerPool.Shared.Run(batch, threads, ref job);
            }
        }
        finally
        {
            handle.Free();
        }
    }

    private struct ImageJob : IParallelJob
    {
        public nint Model;
        public ImageOutputs Outputs;
        public float* Input, Output, Attention;
        public int InputSize, OutputSize, AttentionSize;

        public readonly void Execute(int part, int worker)
        {
            var model = (IImageForward)GCHandle.FromIntPtr(Model).Target!;
            model.ForwardImage(Outputs, new ReadOnlySpan<float>(Input + (long)part * InputSize, InputSize),
                new Span<float>(Output + (long)part * OutputSize, OutputSize),
                new Span<float>(AttentionSize == 0 ? null : Attention + (long)part * AttentionSize, AttentionSize), worker, 1);
        }
    }
}
