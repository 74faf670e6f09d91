namespace ViTGen.CompilerServices;

/// <summary>The per-image forward pass of a generated model. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IImageForward
{
    /// <summary>Runs one image on the workspace of <paramref name="worker"/>, splitting kernels over <paramref name="threads"/>.</summary>
    void ForwardImage(ReadOnlySpan<float> image, Span<float> output, int worker, int threads);
}

/// <summary>
/// Validates a batched Forward and schedules it: with several images and several threads, each thread runs
/// whole images (no fork/join per GEMM); with one image, the threads share each kernel. Either way at most
/// <c>threads</c> threads (the caller and <c>threads - 1</c> pool workers) take part, and the worker index an
/// image sees is below <c>threads</c>, so a model touches at most that many of its per-worker workspaces.
/// Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class BatchRunner
{
    /// <summary>The options' thread count, validated.</summary>
    public static int Threads(VitOptions? options) => VitOptions.ResolveThreads(options);

    /// <summary>Throws <see cref="ArgumentException"/> unless the spans hold exactly <paramref name="batch"/> images.</summary>
    public static void Validate(int pixels, int output, int batch, int inputSize, int outputSize)
    {
        if (batch < 1)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be at least 1.");
        if ((long)batch * inputSize != pixels)
            throw new ArgumentException($"pixels has {pixels} floats; a batch of {batch} needs {(long)batch * inputSize} ({inputSize} per image, normalized NCHW).", nameof(pixels));
        if ((long)batch * outputSize != output)
            throw new ArgumentException($"output has {output} floats; a batch of {batch} needs {(long)batch * outputSize} ({outputSize} per image).", nameof(output));
    }

    /// <summary>Runs <paramref name="batch"/> images through <paramref name="model"/>.</summary>
    public static void Run(IImageForward model, ReadOnlySpan<float> pixels, Span<float> output, int batch, int inputSize, int outputSize, int threads)
    {
        Validate(pixels.Length, output.Length, batch, inputSize, outputSize);
        if (batch == 1 || threads == 1)
        {
            for (int i = 0; i < batch; i++)
                model.ForwardImage(pixels.Slice(i * inputSize, inputSize), output.Slice(i * outputSize, outputSize), 0, threads);
            return;
        }
        var handle = GCHandle.Alloc(model);
        try
        {
            fixed (float* input = pixels)
            fixed (float* result = output)
            {
                var job = new ImageJob { Model = GCHandle.ToIntPtr(handle), Input = input, Output = result, InputSize = inputSize, OutputSize = outputSize };
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
        public float* Input, Output;
        public int InputSize, OutputSize;

        public readonly void Execute(int part, int worker)
        {
            var model = (IImageForward)GCHandle.FromIntPtr(Model).Target!;
            model.ForwardImage(new ReadOnlySpan<float>(Input + (long)part * InputSize, InputSize),
                new Span<float>(Output + (long)part * OutputSize, OutputSize), worker, 1);
        }
    }
}
