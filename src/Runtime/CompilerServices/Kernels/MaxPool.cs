namespace ViTGen.CompilerServices;

/// <summary>
/// The hybrid stem's 3x3 stride-2 max pool with TensorFlow 'same' padding (timm's <c>MaxPool2dSame</c>, which pads
/// with -inf: a window's maximum is over its pixels inside the map), on a channels-last map. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class MaxPool
{
    private const int Kernel = 3, Stride = 2;

    /// <summary>
    /// Pools <paramref name="input"/> (<c>[size, size, channels]</c>) into <paramref name="output"/>
    /// (<c>[ceil(size / 2), ceil(size / 2), channels]</c>), output rows split over up to <paramref name="threads"/> threads.
    /// </summary>
    public static void Apply(NativeBuffer input, int size, int channels, NativeBuffer output, int threads)
    {
        int outputSize = HybridGeometry.SameOutput(size, Stride);
        LayerNorm.CheckRows(input, 0, size * size, channels);
        LayerNorm.CheckRows(output, 0, outputSize * outputSize, channels);
        var job = new Job { Input = input.Data, Output = output.Data, Size = size, OutputSize = outputSize, Channels = channels,
            Pad = HybridGeometry.SamePadBefore(size, Kernel, Stride) };
        int parts = (long)outputSize * outputSize * channels >= Convolution.ParallelFloats ? Math.Min(threads, outputSize) : 1;
        job.Parts = parts;
        WorkerPool.Shared.Run(parts, parts, ref job);
    }

    private struct Job : IParallelJob
    {
        public float* Input, Output;
        public int Size, OutputSize, Channels, Pad, Parts;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int worker)
        {
            int begin = OutputSize * part / Parts, end = OutputSize * (part + 1) / Parts;
            for (int oy = begin; oy < end; oy++)
            {
                int y0 = Math.Max(oy * Stride - Pad, 0), y1 = Math.Min(oy * Stride - Pad + Kernel, Size);
                for (int ox = 0; ox < OutputSize; ox++)
                {
                    int x0 = Math.Max(ox * Stride - Pad, 0), x1 = Math.Min(ox * Stride - Pad + Kernel, Size);
                    float* y = Output + ((long)oy * OutputSize + ox) * Channels;
                    // Every window holds at least one pixel of the map ('same' padding never exceeds kernel - 1).
                    Buffer.MemoryCopy(Input + ((long)y0 * Size + x0) * Channels, y, Channels * sizeof(float), Channels * sizeof(float));
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = iy == y0 ? x0 + 1 : x0; ix < x1; ix++)
                            ConvolutionRows.Max(y, Input + ((long)iy * Size + ix) * Channels, Channels);
                }
            }
        }
    }
}
