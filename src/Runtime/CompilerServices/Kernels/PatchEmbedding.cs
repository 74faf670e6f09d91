namespace ViTGen.CompilerServices;

/// <summary>The patch grid of an input image, fixed at build time. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IPatchGrid
{
    /// <summary>Input channels.</summary>
    static abstract int Channels { get; }
    /// <summary>Square image size in pixels.</summary>
    static abstract int ImageSize { get; }
    /// <summary>Square patch size in pixels.</summary>
    static abstract int PatchSize { get; }
}

/// <summary>
/// The patch embedding's first half: the stride-p convolution is a GEMM of unfolded patches with the conv
/// weight viewed as <c>[Dim, C·p·p]</c>. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class PatchEmbedding
{
    /// <summary>
    /// Unfolds a CHW image into <c>[patches, C·p·p]</c>: patches row by row from the top left (timm's
    /// <c>flatten(2).transpose(1, 2)</c>), features in the conv weight's order (channel, then y, then x).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Unfold<TGrid>(ReadOnlySpan<float> image, NativeBuffer patches) where TGrid : IPatchGrid
    {
        int channels = TGrid.Channels, size = TGrid.ImageSize, patch = TGrid.PatchSize, grid = size / patch;
        int features = channels * patch * patch;
        if (image.Length != channels * size * size)
            throw new ArgumentException($"image has {image.Length} floats, expected {channels}x{size}x{size}", nameof(image));
        LayerNorm.CheckRows(patches, 0, grid * grid, features);
        var destination = new Span<float>(patches.Data, grid * grid * features);
        for (int gy = 0; gy < grid; gy++)
        {
            for (int gx = 0; gx < grid; gx++)
            {
                var row = destination.Slice((gy * grid + gx) * features, features);
                for (int c = 0; c < channels; c++)
                {
                    for (int y = 0; y < patch; y++)
                    {
                        image.Slice((c * size + gy * patch + y) * size + gx * patch, patch)
                            .CopyTo(row.Slice((c * patch + y) * patch, patch));
                    }
                }
            }
        }
    }
}
