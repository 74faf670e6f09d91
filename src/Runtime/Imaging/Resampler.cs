namespace ViTGen;

/// <summary>
/// PIL-exact resizing of 8-bit interleaved images (Pillow's <c>Resample.c</c> and, for nearest, its affine
/// scaling), restricted to a window of the result so that a center crop costs only what it keeps.
/// Separable: a horizontal pass over the source rows the window needs, then a vertical pass; each pass
/// rounds to 8 bits with 22-bit fixed-point weights, exactly like PIL, and a pass is skipped when that
/// dimension does not change.
/// </summary>
internal static class Resampler
{
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>
    /// Resizes <paramref name="source"/> (<paramref name="width"/> x <paramref name="height"/>) to
    /// <paramref name="outWidth"/> x <paramref name="outHeight"/> and returns the window of the result whose
    /// top-left pixel is (<paramref name="left"/>, <paramref name="top"/>), interleaved like the input.
    /// The window must lie inside the resized image.
    /// </summary>
    internal static byte[] ResizeWindow(ReadOnlySpan<byte> source, int width, int height, int channels,
        int outWidth, int outHeight, VitInterpolation interpolation,
        int left, int top, int windowWidth, int windowHeight)
    {
        if (left < 0 || top < 0 || windowWidth < 0 || windowHeight < 0
            || left + windowWidth > outWidth || top + windowHeight > outHeight)
        {
            throw new ArgumentOutOfRangeException(nameof(left), "The window must lie inside the resized image.");
        }
        var output = new byte[windowWidth * windowHeight * channels];
        if (windowWidth == 0 || windowHeight == 0)
        {
            return output;
        }
        if (interpolation == VitInterpolation.Nearest)
        {
            Nearest(source, width, height, channels, outWidth, outHeight, left, top, windowWidth, windowHeight, output);
            return output;
        }

        ResampleFilter filter = ResampleFilter.For(interpolation);
        bool horizontal = outWidth != width, vertical = outHeight != height;
        Weights? rows = vertical ? Weights.Compute(height, outHeight, top, windowHeight, filter) : null;
        int firstRow = rows is null ? top : rows.Start[0];
        int endRow = rows is null ? top + windowHeight : rows.Start[windowHeight - 1] + rows.Count[windowHeight - 1];

        // The image the vertical pass reads: rows firstRow..endRow-1, windowWidth pixels each.
        ReadOnlySpan<byte> middle;
        int middleStride, middleColumn;
        if (horizontal)
        {
            Weights columns = Weights.Compute(width, outWidth, left, windowWidth, filter);
            var temp = new byte[(endRow - firstRow) * windowWidth * channels];
            HorizontalPass(source, width, channels, firstRow, endRow, columns, temp);
            middle = temp;
            middleStride = windowWidth * channels;
            middleColumn = 0;
        }
        else
        {
            middle = source[(firstRow * width * channels)..];
            middleStride = width * channels;
            middleColumn = left * channels;
        }

        int rowBytes = windowWidth * channels;
        if (rows is null)
        {
            for (int y = 0; y < windowHeight; y++)
            {
                middle.Slice(y * middleStride + middleColumn, rowBytes).CopyTo(output.AsSpan(y * rowBytes));
            }
        }
        else
        {
            VerticalPass(middle, middleStride, middleColumn, firstRow, rows, rowBytes, output);
        }
        return output;
    }

    private static byte Clip8(int accumulator)
    {
        int v = accumulator >> PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    private static unsafe void HorizontalPass(ReadOnlySpan<byte> source, int width, int channels,
        int firstRow, int endRow, Weights columns, Span<byte> destination)
    {
        const int Half = 1 << (PrecisionBits - 1);
        int outColumns = columns.Start.Length, kernel = columns.KernelSize, rowBytes = width * channels;
        // Every index below stays inside these spans: Start + Count <= width by construction.
        ReadOnlySpan<byte> rows = source.Slice(firstRow * rowBytes, (endRow - firstRow) * rowBytes);
        Span<byte> output = destination[..((endRow - firstRow) * outColumns * channels)];
        fixed (byte* sourcePointer = rows)
        fixed (byte* outputPointer = output)
        fixed (int* weights = columns.Values)
        {
            byte* d = outputPointer;
            for (int y = 0; y < endRow - firstRow; y++)
            {
                byte* row = sourcePointer + (long)y * rowBytes;
                for (int x = 0; x < outColumns; x++)
                {
                    int count = columns.Count[x];
                    int* k = weights + x * kernel;
                    if (channels == 1)
                    {
                        byte* p = row + columns.Start[x];
                        int s0 = Half;
                        for (int i = 0; i < count; i++)
                        {
                            s0 += p[i] * k[i];
                        }
                        *d++ = Clip8(s0);
                    }
                    else
                    {
                        byte* p = row + columns.Start[x] * 3;
                        int s0 = Half, s1 = Half, s2 = Half;
                        for (int i = 0; i < count; i++, p += 3)
                        {
                            int w = k[i];
                            s0 += p[0] * w;
                            s1 += p[1] * w;
                            s2 += p[2] * w;
                        }
                        d[0] = Clip8(s0);
                        d[1] = Clip8(s1);
                        d[2] = Clip8(s2);
                        d += 3;
                    }
                }
            }
        }
    }

    /// <summary>Vertical pass; <paramref name="middle"/> row 0 is source row <paramref name="firstRow"/>.</summary>
    private static unsafe void VerticalPass(ReadOnlySpan<byte> middle, int stride, int column, int firstRow,
        Weights rows, int rowBytes, Span<byte> destination)
    {
        const int Half = 1 << (PrecisionBits - 1);
        var sums = new int[rowBytes];
        int kernel = rows.KernelSize;
        fixed (int* s = sums)
        {
            for (int y = 0; y < rows.Start.Length; y++)
            {
                new Span<int>(s, rowBytes).Fill(Half);
                int start = rows.Start[y] - firstRow;
                ReadOnlySpan<int> k = rows.Values.AsSpan(y * kernel, rows.Count[y]);
                for (int i = 0; i < k.Length; i++)
                {
                    int w = k[i];
                    fixed (byte* line = middle.Slice((start + i) * stride + column, rowBytes))
                    {
                        for (int b = 0; b < rowBytes; b++)
                        {
                            s[b] += line[b] * w;
                        }
                    }
                }
                Span<byte> output = destination.Slice(y * rowBytes, rowBytes);
                for (int b = 0; b < rowBytes; b++)
                {
                    output[b] = Clip8(s[b]);
                }
            }
        }
    }

    /// <summary>
    /// PIL's nearest resize: source coordinate = trunc(scale * 0.5 + i * scale), accumulated step by step
    /// in double precision as Pillow does (the accumulation's rounding decides some ties).
    /// </summary>
    private static void Nearest(ReadOnlySpan<byte> source, int width, int height, int channels, int outWidth, int outHeight,
        int left, int top, int windowWidth, int windowHeight, Span<byte> destination)
    {
        int[] xs = NearestIndices(width, outWidth, left, windowWidth);
        int[] ys = NearestIndices(height, outHeight, top, windowHeight);
        int d = 0;
        for (int y = 0; y < windowHeight; y++)
        {
            ReadOnlySpan<byte> row = source.Slice(ys[y] * width * channels, width * channels);
            for (int x = 0; x < windowWidth; x++)
            {
                row.Slice(xs[x] * channels, channels).CopyTo(destination[d..]);
                d += channels;
            }
        }
    }

    private static int[] NearestIndices(int inSize, int outSize, int first, int count)
    {
        double step = (double)(float)inSize / outSize;
        double position = step * 0.5;
        var indices = new int[count];
        for (int i = 0; i < first + count; i++)
        {
            if (i >= first)
            {
                indices[i - first] = Math.Clamp((int)position, 0, inSize - 1);
            }
            position += step;
        }
        return indices;
    }

    /// <summary>Fixed-point filter weights for a run of output positions along one axis (Pillow's precompute_coeffs).</summary>
    private sealed class Weights
    {
        private Weights(int[] start, int[] count, int[] values, int kernelSize)
        {
            Start = start;
            Count = count;
            Values = values;
            KernelSize = kernelSize;
        }

        /// <summary>First source index of each output position.</summary>
        internal int[] Start { get; }

        /// <summary>Number of source indices of each output position.</summary>
        internal int[] Count { get; }

        /// <summary><see cref="KernelSize"/> weights per output position, scaled by 2^22.</summary>
        internal int[] Values { get; }

        internal int KernelSize { get; }

        /// <summary>Weights for output positions <paramref name="first"/> .. first+count-1 of an inSize -> outSize resize.</summary>
        internal static Weights Compute(int inSize, int outSize, int first, int count, ResampleFilter filter)
        {
            // Pillow passes the box edges as float, so the size goes through float first.
            double scale = (double)(float)inSize / outSize;
            double filterScale = Math.Max(scale, 1.0);
            double support = filter.Support * filterScale;
            int kernelSize = (int)Math.Ceiling(support) * 2 + 1;
            var start = new int[count];
            var length = new int[count];
            var values = new int[count * kernelSize];
            var k = new double[kernelSize];
            double ss = 1.0 / filterScale;
            for (int j = 0; j < count; j++)
            {
                int xx = first + j;
                double center = (xx + 0.5) * scale;
                int xmin = Math.Max((int)(center - support + 0.5), 0);
                int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
                double sum = 0.0;
                for (int x = 0; x < xmax; x++)
                {
                    double w = filter.Evaluate((x + xmin - center + 0.5) * ss);
                    k[x] = w;
                    sum += w;
                }
                for (int x = 0; x < xmax; x++)
                {
                    double w = sum != 0.0 ? k[x] / sum : k[x];
                    values[j * kernelSize + x] = w < 0
                        ? (int)(-0.5 + w * (1 << PrecisionBits))
                        : (int)(0.5 + w * (1 << PrecisionBits));
                }
                start[j] = xmin;
                length[j] = Math.Max(xmax, 0);
            }
            return new Weights(start, length, values, kernelSize);
        }
    }
}
