namespace ViTGen;

/// <summary>
/// The last two stages of libjpeg-turbo's decoder (jdsample.c, jdcolor.c), integer for integer, so that the
/// pixels match what PIL gets: "fancy" (triangle-filter) chroma upsampling for 2x1, 1x2 and 2x2 subsampling,
/// replication for other integral ratios, and fixed-point YCbCr to RGB conversion with 16 fraction bits.
/// At the image edges libjpeg repeats the first and last real sample row (jdmainct.c's context rows), and the
/// first and last columns get the edge formulas of jdsample.c.
/// </summary>
internal static class JpegUpsampler
{
    /// <summary>One component's samples as the IDCT produced them, at its own (subsampled) resolution.</summary>
    internal sealed class Plane(int width, int height, int ratioX, int ratioY, int stride, int rows)
    {
        /// <summary>Real samples per row (libjpeg's downsampled_width); the rest of the stride is padding.</summary>
        internal int Width { get; } = width;

        /// <summary>Real sample rows (downsampled_height).</summary>
        internal int Height { get; } = height;

        /// <summary>How many output columns / rows one sample covers.</summary>
        internal int RatioX { get; } = ratioX;

        internal int RatioY { get; } = ratioY;

        internal int Stride { get; } = stride;

        internal int Rows { get; } = rows;

        internal byte[] Samples { get; set; } = [];

        internal ReadOnlySpan<byte> Row(int y) => Samples.AsSpan(Math.Clamp(y, 0, Height - 1) * Stride, Stride);
    }

    internal static byte[] Gray(Plane plane, int width, int height)
    {
        byte[] pixels = GC.AllocateUninitializedArray<byte>(checked(width * height));
        for (int y = 0; y < height; y++)
        {
            plane.Row(y)[..width].CopyTo(pixels.AsSpan(y * width, width));
        }
        return pixels;
    }

    internal static byte[] Color(Plane[] planes, int width, int height, bool ycbcr)
    {
        byte[] pixels = GC.AllocateUninitializedArray<byte>(checked(width * height * 3));
        var rows = new byte[3][];
        for (int c = 0; c < 3; c++)
        {
            rows[c] = new byte[planes[c].Width * planes[c].RatioX];
        }
        for (int y = 0; y < height; y++)
        {
            for (int c = 0; c < 3; c++)
            {
                UpsampleRow(planes[c], y, rows[c]);
            }
            Span<byte> output = pixels.AsSpan(y * width * 3, width * 3);
            ReadOnlySpan<byte> r0 = rows[0].AsSpan(0, width), r1 = rows[1].AsSpan(0, width), r2 = rows[2].AsSpan(0, width);
            if (ycbcr)
            {
                for (int x = 0; x < width; x++)
                {
                    int luma = r0[x], cb = r1[x], cr = r2[x];
                    output[3 * x] = Clamp(luma + CrToR[cr]);
                    output[3 * x + 1] = Clamp(luma + ((CbToG[cb] + CrToG[cr]) >> ScaleBits));
                    output[3 * x + 2] = Clamp(luma + CbToB[cb]);
                }
            }
            else
            {
                for (int x = 0; x < width; x++)
                {
                    output[3 * x] = r0[x];
                    output[3 * x + 1] = r1[x];
                    output[3 * x + 2] = r2[x];
                }
            }
        }
        return pixels;
    }

    /// <summary>Output row <paramref name="y"/> of one component at full resolution (jdsample.c).</summary>
    private static void UpsampleRow(Plane plane, int y, Span<byte> output)
    {
        int width = plane.Width;
        if (plane.RatioX == 1 && plane.RatioY == 1)
        {
            plane.Row(y)[..width].CopyTo(output);
        }
        else if (plane.RatioX == 2 && plane.RatioY == 1 && width > 2)
        {
            H2V1Fancy(plane.Row(y), width, output);
        }
        else if (plane.RatioX == 1 && plane.RatioY == 2)
        {
            // h1v2_fancy_upsample: the nearer row weighs 3/4; the upper output row rounds with bias 1, the lower with 2.
            int row = y >> 1;
            bool upper = (y & 1) == 0;
            ReadOnlySpan<byte> near = plane.Row(row), far = plane.Row(upper ? row - 1 : row + 1);
            int bias = upper ? 1 : 2;
            for (int x = 0; x < width; x++)
            {
                output[x] = (byte)((near[x] * 3 + far[x] + bias) >> 2);
            }
        }
        else if (plane.RatioX == 2 && plane.RatioY == 2 && width > 2)
        {
            int row = y >> 1;
            ReadOnlySpan<byte> near = plane.Row(row), far = plane.Row((y & 1) == 0 ? row - 1 : row + 1);
            H2V2Fancy(near, far, width, output);
        }
        else
        {
            // int_upsample / h2v1_upsample / h2v2_upsample: each sample repeated RatioX times across, RatioY down.
            ReadOnlySpan<byte> input = plane.Row(y / plane.RatioY);
            int ratio = plane.RatioX;
            for (int x = 0; x < width; x++)
            {
                output.Slice(x * ratio, ratio).Fill(input[x]);
            }
        }
    }

    /// <summary>h2v1_fancy_upsample: each output sample is 3/4 of the nearer input and 1/4 of the further one.</summary>
    private static void H2V1Fancy(ReadOnlySpan<byte> input, int width, Span<byte> output)
    {
        output[0] = input[0];
        output[1] = (byte)((input[0] * 3 + input[1] + 2) >> 2);
        for (int x = 1; x < width - 1; x++)
        {
            int value = input[x] * 3;
            output[2 * x] = (byte)((value + input[x - 1] + 1) >> 2);
            output[2 * x + 1] = (byte)((value + input[x + 1] + 2) >> 2);
        }
        int last = width - 1;
        output[2 * last] = (byte)((input[last] * 3 + input[last - 1] + 1) >> 2);
        output[2 * last + 1] = input[last];
    }

    /// <summary>
    /// h2v2_fancy_upsample: a vertical 3:1 sum with the nearer and the further row, then the same 3:1 across,
    /// 4 fraction bits, rounding with 8 and 7 alternately.
    /// </summary>
    private static void H2V2Fancy(ReadOnlySpan<byte> near, ReadOnlySpan<byte> far, int width, Span<byte> output)
    {
        int thisSum = near[0] * 3 + far[0], nextSum = near[1] * 3 + far[1];
        output[0] = (byte)((thisSum * 4 + 8) >> 4);
        output[1] = (byte)((thisSum * 3 + nextSum + 7) >> 4);
        int lastSum = thisSum;
        thisSum = nextSum;
        for (int x = 1; x < width - 1; x++)
        {
            nextSum = near[x + 1] * 3 + far[x + 1];
            output[2 * x] = (byte)((thisSum * 3 + lastSum + 8) >> 4);
            output[2 * x + 1] = (byte)((thisSum * 3 + nextSum + 7) >> 4);
            lastSum = thisSum;
            thisSum = nextSum;
        }
        int last = width - 1;
        output[2 * last] = (byte)((thisSum * 3 + lastSum + 8) >> 4);
        output[2 * last + 1] = (byte)((thisSum * 4 + 7) >> 4);
    }

    private const int ScaleBits = 16;

    private static byte Clamp(int value) => (byte)Math.Clamp(value, 0, 255);

    private static int Fix(double x) => (int)(x * (1L << ScaleBits) + 0.5);

    // jdcolor.c build_ycc_rgb_table: R = Y + 1.402 Cr, G = Y - 0.34414 Cb - 0.71414 Cr, B = Y + 1.772 Cb.
    private static readonly int[] CrToR = Table(i => (Fix(1.40200) * i + (1 << (ScaleBits - 1))) >> ScaleBits);
    private static readonly int[] CbToB = Table(i => (Fix(1.77200) * i + (1 << (ScaleBits - 1))) >> ScaleBits);
    private static readonly int[] CrToG = Table(i => -Fix(0.71414) * i);
    private static readonly int[] CbToG = Table(i => -Fix(0.34414) * i + (1 << (ScaleBits - 1)));

    private static int[] Table(Func<int, int> entry)
    {
        var table = new int[256];
        for (int i = 0; i < 256; i++)
        {
            table[i] = entry(i - 128);
        }
        return table;
    }
}
