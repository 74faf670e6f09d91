namespace ViTGen.Cli.Pictures;

/// <summary>
/// The pictures of <c>vitgen attention</c> and <c>vitgen inspect --positions</c>, drawn into plain RGB pixels and
/// written with <see cref="VitImage.SavePng"/>: no drawing library, so they come out the same everywhere.
/// </summary>
internal static class Picture
{
    private static readonly byte[] Ink = [40, 40, 40];
    private static readonly byte[] Grid = [225, 225, 225];

    /// <summary>Display scale for a model input of <paramref name="imageSize"/> pixels: about 256 pixels across, at least 1x.</summary>
    public static int ScaleFor(int imageSize) => Math.Max(1, (256 + imageSize / 2) / imageSize);

    /// <summary>
    /// The image as the model saw it (after resize and crop): normalized CHW floats turned back into 8-bit RGB with the
    /// model's mean and std, each pixel drawn as a <paramref name="scale"/>² block.
    /// </summary>
    public static byte[] ModelView(ReadOnlySpan<float> pixels, int channels, int size, ReadOnlySpan<float> mean, ReadOnlySpan<float> std, int scale)
    {
        int side = size * scale;
        var rgb = new byte[side * side * 3];
        for (int y = 0; y < side; y++)
        {
            for (int x = 0; x < side; x++)
            {
                for (int c = 0; c < 3; c++)
                {
                    int channel = Math.Min(c, channels - 1); // gray models: the one channel in all three
                    float value = pixels[channel * size * size + (y / scale) * size + x / scale] * std[channel] + mean[channel];
                    rgb[(y * side + x) * 3 + c] = ToByte(value * 255f);
                }
            }
        }
        return rgb;
    }

    /// <summary>
    /// Side by side: the model's view, and the same view under <paramref name="weights"/> (one per patch, row-major on a
    /// <paramref name="grid"/>² grid) scaled to 0..1, smoothly (bilinearly, between patch centres) upsampled and coloured.
    /// </summary>
    public static VitImage HeatMap(byte[] view, int side, ReadOnlySpan<float> weights, int grid)
    {
        float min = float.MaxValue, max = float.MinValue;
        foreach (float w in weights)
        {
            min = Math.Min(min, w);
            max = Math.Max(max, w);
        }
        float range = max > min ? max - min : 1f;
        int gap = Math.Max(4, side / 32);
        int width = 2 * side + gap;
        var rgb = new byte[width * side * 3];
        rgb.AsSpan().Fill(255);
        float cell = (float)side / grid;
        for (int y = 0; y < side; y++)
        {
            for (int x = 0; x < side; x++)
            {
                float t = (Bilinear(weights, grid, (x + 0.5f) / cell - 0.5f, (y + 0.5f) / cell - 0.5f) - min) / range;
                var color = Colormap(t);
                int source = (y * side + x) * 3;
                for (int c = 0; c < 3; c++)
                {
                    rgb[(y * width + x) * 3 + c] = view[source + c];
                    // 45% of the picture under 55% of the colour: the object stays recognizable under the map.
                    rgb[(y * width + side + gap + x) * 3 + c] = ToByte(0.45f * view[source + c] + 0.55f * color[c]);
                }
            }
        }
        return new VitImage(width, side, 3, rgb);
    }

    /// <summary>
    /// The ViT paper's Figure 7 (left): mean attention distance in pixels (y, from 0 to <paramref name="maxDistance"/>)
    /// against block (x, 1..depth), one dot per head coloured by head index, with grid lines every
    /// <paramref name="yStep"/> pixels and block numbers and distances written in a 3x5 pixel font.
    /// </summary>
    public static VitImage DistanceChart(ReadOnlySpan<float> distance, int depth, int heads, float maxDistance, float yStep)
    {
        const int Left = 40, Right = 16, Top = 16, Bottom = 32, PlotHeight = 240;
        int column = Math.Max(24, 320 / depth);
        int width = Left + depth * column + Right, height = Top + PlotHeight + Bottom;
        var rgb = new byte[width * height * 3];
        rgb.AsSpan().Fill(255);
        int Y(float d) => Top + PlotHeight - (int)MathF.Round(Math.Clamp(d / maxDistance, 0f, 1f) * PlotHeight);

        for (float d = 0; d <= maxDistance + 1e-3f; d += yStep)
        {
            int y = Y(d);
            Line(rgb, width, Left, y, width - Right, y, Grid);
            Text(rgb, width, ((int)MathF.Round(d)).ToString(System.Globalization.CultureInfo.InvariantCulture), Left - 6, y - 2, rightAligned: true);
        }
        Line(rgb, width, Left, Top, Left, Top + PlotHeight, Ink);
        Line(rgb, width, Left, Top + PlotHeight, width - Right, Top + PlotHeight, Ink);
        for (int block = 0; block < depth; block++)
        {
            int x = Left + block * column + column / 2;
            Line(rgb, width, x, Top + PlotHeight, x, Top + PlotHeight + 3, Ink);
            Text(rgb, width, (block + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), x + 2, Top + PlotHeight + 8, rightAligned: true);
            for (int head = 0; head < heads; head++)
            {
                var color = Colormap(heads == 1 ? 0.5f : (float)head / (heads - 1));
                int y = Y(distance[block * heads + head]);
                for (int dy = -2; dy <= 2; dy++)
                    for (int dx = -2; dx <= 2; dx++)
                        if (dx * dx + dy * dy <= 5) Set(rgb, width, x + dx, y + dy, color);
            }
        }
        return new VitImage(width, height, 3, rgb);
    }

    /// <summary>
    /// A <paramref name="grid"/>² mosaic of small maps: tile (row, column) is patch position p's similarity with every
    /// position q (<paramref name="similarity"/>[p·grid² + q]), coloured from -1 (dark) to 1 (bright), tiles 2 pixels apart.
    /// </summary>
    public static VitImage PositionSimilarity(ReadOnlySpan<float> similarity, int grid)
    {
        int cell = Math.Max(1, 24 / grid), gap = 2, tile = grid * cell, side = grid * tile + (grid + 1) * gap;
        var rgb = new byte[side * side * 3];
        rgb.AsSpan().Fill(255);
        int patches = grid * grid;
        for (int p = 0; p < patches; p++)
        {
            int tileX = gap + (p % grid) * (tile + gap), tileY = gap + (p / grid) * (tile + gap);
            for (int q = 0; q < patches; q++)
            {
                var color = Colormap((similarity[p * patches + q] + 1f) / 2f);
                for (int y = 0; y < cell; y++)
                    for (int x = 0; x < cell; x++) Set(rgb, side, tileX + (q % grid) * cell + x, tileY + (q / grid) * cell + y, color);
            }
        }
        return new VitImage(side, side, 3, rgb);
    }

    /// <summary>A perceptual dark-blue → teal → yellow ramp (viridis-like), for <paramref name="t"/> in 0..1.</summary>
    public static byte[] Colormap(float t)
    {
        ReadOnlySpan<float> stops = [
            0.267f, 0.005f, 0.329f,
            0.229f, 0.322f, 0.546f,
            0.128f, 0.567f, 0.551f,
            0.369f, 0.789f, 0.383f,
            0.993f, 0.906f, 0.144f];
        t = float.IsFinite(t) ? Math.Clamp(t, 0f, 1f) * 4f : 0f;
        int i = Math.Min(3, (int)t);
        float f = t - i;
        var color = new byte[3];
        for (int c = 0; c < 3; c++) color[c] = ToByte(255f * (stops[i * 3 + c] * (1 - f) + stops[(i + 1) * 3 + c] * f));
        return color;
    }

    private static float Bilinear(ReadOnlySpan<float> grid, int n, float gx, float gy)
    {
        gx = Math.Clamp(gx, 0, n - 1);
        gy = Math.Clamp(gy, 0, n - 1);
        int x0 = (int)gx, y0 = (int)gy, x1 = Math.Min(x0 + 1, n - 1), y1 = Math.Min(y0 + 1, n - 1);
        float fx = gx - x0, fy = gy - y0;
        float top = grid[y0 * n + x0] * (1 - fx) + grid[y0 * n + x1] * fx;
        float bottom = grid[y1 * n + x0] * (1 - fx) + grid[y1 * n + x1] * fx;
        return top * (1 - fy) + bottom * fy;
    }

    private static byte ToByte(float value) => (byte)Math.Clamp((int)MathF.Round(value), 0, 255);

    private static void Set(byte[] rgb, int width, int x, int y, ReadOnlySpan<byte> color)
    {
        int height = rgb.Length / 3 / width;
        if ((uint)x >= (uint)width || (uint)y >= (uint)height) return;
        color.CopyTo(rgb.AsSpan((y * width + x) * 3, 3));
    }

    /// <summary>Horizontal or vertical lines only: all the charts need.</summary>
    private static void Line(byte[] rgb, int width, int x0, int y0, int x1, int y1, ReadOnlySpan<byte> color)
    {
        for (int y = Math.Min(y0, y1); y <= Math.Max(y0, y1); y++)
            for (int x = Math.Min(x0, x1); x <= Math.Max(x0, x1); x++)
                Set(rgb, width, x, y, color);
    }

    // Digits 0-9 in a 3x5 pixel font, one row of three bits per entry, top row first.
    private static readonly int[] Digits =
    [
        0b111_101_101_101_111, 0b010_110_010_010_111, 0b111_001_111_100_111, 0b111_001_111_001_111, 0b101_101_111_001_001,
        0b111_100_111_001_111, 0b111_100_111_101_111, 0b111_001_010_010_010, 0b111_101_111_101_111, 0b111_101_111_001_111,
    ];

    /// <summary>Draws decimal digits at (x, y), the top-left of the first digit (or the top-right of the last one).</summary>
    private static void Text(byte[] rgb, int width, string digits, int x, int y, bool rightAligned)
    {
        if (rightAligned) x -= digits.Length * 4;
        foreach (char ch in digits)
        {
            if (ch is >= '0' and <= '9')
            {
                int glyph = Digits[ch - '0'];
                for (int row = 0; row < 5; row++)
                    for (int col = 0; col < 3; col++)
                        if ((glyph >> (14 - row * 3 - col) & 1) != 0) Set(rgb, width, x + col, y + row, Ink);
            }
            x += 4;
        }
    }
}
