using BitMiracle.LibJpeg.Classic;

namespace ViTGen;

/// <summary>
/// JPEG decoding in managed code, with the pixels PIL gets from libjpeg-turbo. The entropy decoding, dequantization
/// and accurate integer IDCT (libjpeg's <c>jpeg_idct_islow</c>) come from BitMiracle.LibJpeg.NET, a port of IJG
/// libjpeg, asked for raw (per-component, not upsampled) samples; chroma upsampling and YCbCr to RGB conversion are
/// done here, as libjpeg-turbo does them (<see cref="JpegUpsampler"/>). Raw samples are needed because IJG libjpeg 7+
/// upsamples chroma by IDCT scaling, which differs from libjpeg-turbo's "fancy" triangle filter by up to ~30 levels.
/// </summary>
internal static unsafe class JpegDecoder
{
    private const int BlockSize = 8;

    internal static VitImage Decode(ReadOnlySpan<byte> data, string source, long maxPixels)
    {
        // The frame header's dimensions are checked first, so a bomb is reported as one even when it is also truncated.
        if (JpegMarkers.TryReadFrameSize(data, out int declaredWidth, out int declaredHeight)
            && declaredWidth > 0 && declaredHeight > 0)
        {
            VitImage.CheckDecodedSize(declaredWidth, declaredHeight, source, maxPixels);
        }
        if (!JpegMarkers.HasEndOfImage(data))
        {
            throw VitImageException.For(source, "truncated JPEG: the data ends before the end-of-image marker");
        }
        fixed (byte* bytes = data)
        {
            using var stream = new UnmanagedMemoryStream(bytes, data.Length);
            var errors = new ErrorManager(source);
            var decoder = new jpeg_decompress_struct(errors);
            try
            {
                return Decode(decoder, stream, data.Length, source, maxPixels);
            }
            catch (VitImageException)
            {
                throw;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The port reports its errors through ErrorManager; anything else is damage it did not foresee.
                throw VitImageException.For(source, $"corrupt JPEG: {e.Message}", e);
            }
            finally
            {
                decoder.jpeg_abort_decompress();
            }
        }
    }

    private static VitImage Decode(jpeg_decompress_struct decoder, Stream stream, int length, string source, long maxPixels)
    {
        decoder.jpeg_stdio_src(stream);
        decoder.jpeg_read_header(true);
        int width = decoder.Image_width, height = decoder.Image_height;
        if (width == 0 || height == 0)
        {
            throw VitImageException.For(source, "JPEG has no image (only tables)");
        }
        VitImage.CheckDecodedSize(width, height, source, maxPixels);
        J_COLOR_SPACE colorspace = decoder.Jpeg_color_space;
        if (colorspace is J_COLOR_SPACE.JCS_CMYK or J_COLOR_SPACE.JCS_YCCK)
        {
            throw VitImageException.For(source, "CMYK/YCCK JPEG images are not supported");
        }
        int components = decoder.Num_components;
        bool supported = (components == 1 && colorspace == J_COLOR_SPACE.JCS_GRAYSCALE)
            || (components == 3 && colorspace is J_COLOR_SPACE.JCS_YCbCr or J_COLOR_SPACE.JCS_RGB);
        if (!supported)
        {
            throw VitImageException.For(source, $"unsupported JPEG: {components} components in color space {colorspace}");
        }
        if (decoder.Data_precision != 8)
        {
            throw VitImageException.For(source, $"unsupported JPEG: {decoder.Data_precision}-bit samples (only 8-bit)");
        }

        jpeg_component_info[] info = decoder.Comp_info;
        int maxH = 1, maxV = 1;
        for (int c = 0; c < components; c++)
        {
            maxH = Math.Max(maxH, info[c].H_samp_factor);
            maxV = Math.Max(maxV, info[c].V_samp_factor);
        }
        var planes = new JpegUpsampler.Plane[components];
        int mcuRows = DivCeil(height, maxV * BlockSize);
        long blocks = 0;
        for (int c = 0; c < components; c++)
        {
            int h = info[c].H_samp_factor, v = info[c].V_samp_factor;
            if (maxH % h != 0 || maxV % v != 0)
            {
                throw VitImageException.For(source, $"unsupported JPEG: sampling factors {h}x{v} of {maxH}x{maxV} are not integral ratios");
            }
            int planeWidth = DivCeil(width * h, maxH), planeHeight = DivCeil(height * v, maxV);
            blocks += (long)DivCeil(planeWidth, BlockSize) * DivCeil(planeHeight, BlockSize);
            planes[c] = new JpegUpsampler.Plane(planeWidth, planeHeight, maxH / h, maxV / v,
                stride: DivCeil(planeWidth, h * BlockSize) * h * BlockSize, rows: mcuRows * v * BlockSize);
        }
        // Every block costs at least one bit of coded data (its DC difference), so a short file that declares a huge
        // image is refused here, before the decoder or the planes allocate anything of that size.
        if (blocks > (long)length * 8)
        {
            throw VitImageException.For(source,
                $"corrupt JPEG: {width}x{height} needs {blocks} coded blocks, more than {length} bytes can hold");
        }

        decoder.Raw_data_out = true; // per-component samples straight from the IDCT, upsampled below
        // libjpeg 7+ would otherwise scale the chroma IDCT up (16x16) in place of upsampling, even for raw output.
        decoder.Do_fancy_upsampling = false;
        decoder.Dct_method = J_DCT_METHOD.JDCT_ISLOW;
        decoder.Do_block_smoothing = false; // libjpeg-turbo's smoothing of early progressive scans never applies to complete files
        decoder.Out_color_space = colorspace;
        decoder.jpeg_start_decompress();

        var buffers = new byte[components][][];
        for (int c = 0; c < components; c++)
        {
            planes[c].Samples = GC.AllocateUninitializedArray<byte>(checked(planes[c].Stride * planes[c].Rows)); // fully written
            buffers[c] = new byte[info[c].V_samp_factor * BlockSize][];
            for (int r = 0; r < buffers[c].Length; r++)
            {
                buffers[c][r] = new byte[planes[c].Stride];
            }
        }
        int linesPerMcuRow = maxV * BlockSize;
        for (int mcuRow = 0; mcuRow < mcuRows; mcuRow++)
        {
            if (decoder.jpeg_read_raw_data(buffers, linesPerMcuRow) != linesPerMcuRow)
            {
                throw VitImageException.For(source, "corrupt JPEG: the decoder returned fewer rows than the image has");
            }
            for (int c = 0; c < components; c++)
            {
                int stride = planes[c].Stride, first = mcuRow * buffers[c].Length;
                for (int r = 0; r < buffers[c].Length; r++)
                {
                    buffers[c][r].AsSpan(0, stride).CopyTo(planes[c].Samples.AsSpan((first + r) * stride, stride));
                }
            }
        }
        decoder.jpeg_finish_decompress();

        byte[] pixels = components == 1
            ? JpegUpsampler.Gray(planes[0], width, height)
            : JpegUpsampler.Color(planes, width, height, ycbcr: colorspace == J_COLOR_SPACE.JCS_YCbCr);
        return new VitImage(width, height, components == 1 ? 1 : 3, pixels);
    }

    private static int DivCeil(int a, int b) => (int)(((long)a + b - 1) / b);

    /// <summary>
    /// Turns the port's errors into <see cref="VitImageException"/>s. Warnings (recoverable damage, such as
    /// extraneous bytes before a marker or a corrupt stretch of entropy data) are tolerated, as PIL tolerates them;
    /// only "Premature end of JPEG file" counts as an error: the data ran out before the image did.
    /// </summary>
    private sealed class ErrorManager(string source) : jpeg_error_mgr
    {
        /// <summary>libjpeg errors that mean "valid JPEG, not supported here" rather than damage.</summary>
        private static readonly string[] Unsupported =
            ["Unsupported JPEG data precision", "Unsupported JPEG process", "Unsupported color conversion",
             "Empty JPEG image (DNL not supported)", "Maximum supported image dimension", "Requested features are incompatible"];

        public override void error_exit()
        {
            string text = format_message();
            foreach (string prefix in Unsupported)
            {
                if (text.StartsWith(prefix, StringComparison.Ordinal))
                {
                    throw VitImageException.For(source, $"unsupported JPEG: {text}");
                }
            }
            throw VitImageException.For(source, text.Contains("JPEG", StringComparison.Ordinal) ? text : $"corrupt JPEG: {text}");
        }

        public override void emit_message(int msg_level)
        {
            if (msg_level < 0 && format_message().StartsWith("Premature end of JPEG file", StringComparison.Ordinal))
            {
                throw VitImageException.For(source, "truncated JPEG: Premature end of JPEG file");
            }
        }

        public override void output_message()
        {
        }
    }
}
