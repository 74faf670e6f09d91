using BitMiracle.LibJpeg.Classic;

namespace ViTGen.Tests.Imaging;

/// <summary>Encodes test images as baseline JPEG (4:2:0 for color) with BitMiracle.LibJpeg.NET's compressor.</summary>
internal static class TestJpeg
{
    internal static byte[] Encode(VitImage image, int quality, bool progressive = false)
    {
        var compressor = new jpeg_compress_struct(new jpeg_error_mgr());
        using var stream = new MemoryStream();
        compressor.jpeg_stdio_dest(stream);
        compressor.Image_width = image.Width;
        compressor.Image_height = image.Height;
        compressor.Input_components = image.Channels;
        compressor.In_color_space = image.Channels == 3 ? J_COLOR_SPACE.JCS_RGB : J_COLOR_SPACE.JCS_GRAYSCALE;
        compressor.jpeg_set_defaults();
        compressor.jpeg_set_quality(quality, true);
        if (progressive)
        {
            compressor.jpeg_simple_progression();
        }
        compressor.jpeg_start_compress(true);
        int stride = image.Width * image.Channels;
        byte[][] row = [new byte[stride]];
        while (compressor.Next_scanline < compressor.Image_height)
        {
            image.Pixels.Span.Slice(compressor.Next_scanline * stride, stride).CopyTo(row[0]);
            compressor.jpeg_write_scanlines(row, 1);
        }
        compressor.jpeg_finish_compress();
        return stream.ToArray();
    }
}
