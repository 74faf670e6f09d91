namespace ViTGen;

/// <summary>
/// timm's evaluation transform, independent of the image decoder: resize the shorter side to
/// <c>floor(ImageSize / CropPct)</c> with PIL's resampling, center-crop <c>ImageSize</c> x <c>ImageSize</c>
/// (torchvision <c>CenterCrop</c>, zero padding when the image is smaller), scale to [0, 1], normalize with
/// <c>(x - mean) / std</c>, and lay the result out channel-first (CHW) in float32.
/// Matches PIL + torchvision's <c>Resize</c>, <c>CenterCrop</c>, <c>ToTensor</c>, <c>Normalize</c> bit for bit
/// on the same decoded pixels. Instances are immutable and thread-safe.
/// </summary>
public sealed class VitPreprocessing
{
    private readonly float[] _mean;
    private readonly float[] _std;

    /// <summary>Creates a transform; see <see cref="Timm"/>.</summary>
    /// <param name="imageSize">Model input size in pixels (square), 1..16384.</param>
    /// <param name="cropPct">timm's crop_pct: the fraction of the resized shorter side that is kept, &gt; 0 (values above 1 pad).</param>
    /// <param name="interpolation">The resampling filter.</param>
    /// <param name="mean">Per-channel mean, in [0, 1] units; its length (1 or 3) is the model's channel count.</param>
    /// <param name="std">Per-channel standard deviation, same length as <paramref name="mean"/>, non-zero.</param>
    /// <exception cref="ArgumentException">An argument is out of range.</exception>
    public VitPreprocessing(int imageSize, double cropPct, VitInterpolation interpolation, ReadOnlySpan<float> mean, ReadOnlySpan<float> std)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(imageSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(imageSize, 16384);
        if (!(cropPct > 0) || !double.IsFinite(cropPct))
        {
            throw new ArgumentOutOfRangeException(nameof(cropPct), cropPct, "crop_pct must be a positive number.");
        }
        double resize = Math.Floor(imageSize / cropPct);
        if (resize < 1 || resize > 65536)
        {
            throw new ArgumentOutOfRangeException(nameof(cropPct), cropPct, $"Resizing to {resize} pixels is out of range.");
        }
        if (!Enum.IsDefined(interpolation))
        {
            throw new ArgumentOutOfRangeException(nameof(interpolation), interpolation, "Unknown interpolation.");
        }
        if (mean.Length is not (1 or 3) || std.Length != mean.Length)
        {
            throw new ArgumentException("mean and std need 1 or 3 values each, as many as the model has channels.", nameof(mean));
        }
        foreach (float s in std)
        {
            if (s == 0 || !float.IsFinite(s))
            {
                throw new ArgumentException("std values must be finite and non-zero.", nameof(std));
            }
        }
        foreach (float m in mean)
        {
            if (!float.IsFinite(m))
            {
                throw new ArgumentException("mean values must be finite.", nameof(mean));
            }
        }
        ImageSize = imageSize;
        CropPct = cropPct;
        Interpolation = interpolation;
        ResizeSize = (int)resize;
        _mean = mean.ToArray();
        _std = std.ToArray();
    }

    /// <summary>ImageNet mean (0.485, 0.456, 0.406): DeiT, DINOv2, most timm ImageNet models.</summary>
    public static ReadOnlySpan<float> ImageNetMean => [(float)0.485, (float)0.456, (float)0.406];

    /// <summary>ImageNet std (0.229, 0.224, 0.225).</summary>
    public static ReadOnlySpan<float> ImageNetStd => [(float)0.229, (float)0.224, (float)0.225];

    /// <summary>Inception mean (0.5, 0.5, 0.5): Google's ViT checkpoints (augreg, big_vision).</summary>
    public static ReadOnlySpan<float> InceptionMean => [0.5f, 0.5f, 0.5f];

    /// <summary>Inception std (0.5, 0.5, 0.5).</summary>
    public static ReadOnlySpan<float> InceptionStd => [0.5f, 0.5f, 0.5f];

    /// <summary>OpenAI CLIP mean (0.48145466, 0.4578275, 0.40821073).</summary>
    public static ReadOnlySpan<float> ClipMean => [(float)0.48145466, (float)0.4578275, (float)0.40821073];

    /// <summary>OpenAI CLIP std (0.26862954, 0.26130258, 0.27577711).</summary>
    public static ReadOnlySpan<float> ClipStd => [(float)0.26862954, (float)0.26130258, (float)0.27577711];

    /// <summary>timm's default ImageNet eval transform: 224, crop_pct 0.875 (resize to 256), bicubic, ImageNet mean/std.</summary>
    public static VitPreprocessing ImageNetDefault { get; } = new(224, 0.875, VitInterpolation.Bicubic, ImageNetMean, ImageNetStd);

    /// <summary><c>vit_base_patch16_224.augreg2_in21k_ft_in1k</c>: 224, crop_pct 0.9 (resize to 248), bicubic, mean = std = 0.5.</summary>
    public static VitPreprocessing Inception { get; } = new(224, 0.9, VitInterpolation.Bicubic, InceptionMean, InceptionStd);

    /// <summary>timm's CLIP image towers: 224, crop_pct 1.0 (resize to 224), bicubic, CLIP mean/std.</summary>
    public static VitPreprocessing Clip { get; } = new(224, 1.0, VitInterpolation.Bicubic, ClipMean, ClipStd);

    /// <summary>The transform of a timm pretrained config (<c>input_size</c>, <c>crop_pct</c>, <c>interpolation</c>, <c>mean</c>, <c>std</c>).</summary>
    /// <param name="imageSize">Model input size in pixels (square).</param>
    /// <param name="cropPct">crop_pct, for example 0.875, 0.9 or 1.0.</param>
    /// <param name="interpolation">The resampling filter, usually <see cref="VitInterpolation.Bicubic"/>.</param>
    /// <param name="mean">Per-channel mean (1 or 3 values).</param>
    /// <param name="std">Per-channel std (same count).</param>
    /// <returns>The transform.</returns>
    public static VitPreprocessing Timm(int imageSize, double cropPct, VitInterpolation interpolation, ReadOnlySpan<float> mean, ReadOnlySpan<float> std) =>
        new(imageSize, cropPct, interpolation, mean, std);

    /// <summary>Model input size: the output is <see cref="Channels"/> x ImageSize x ImageSize.</summary>
    public int ImageSize { get; }

    /// <summary>timm's crop_pct.</summary>
    public double CropPct { get; }

    /// <summary>The resampling filter.</summary>
    public VitInterpolation Interpolation { get; }

    /// <summary>The length the shorter image side is resized to: <c>floor(ImageSize / CropPct)</c>.</summary>
    public int ResizeSize { get; }

    /// <summary>Channels of the model input (1 or 3); images with the other count are converted first.</summary>
    public int Channels => _mean.Length;

    /// <summary>Per-channel mean.</summary>
    public ReadOnlySpan<float> Mean => _mean;

    /// <summary>Per-channel standard deviation.</summary>
    public ReadOnlySpan<float> Std => _std;

    /// <summary>Floats written by <see cref="Apply(VitImage, Span{float})"/>: <c>Channels * ImageSize * ImageSize</c>.</summary>
    public int OutputLength => Channels * ImageSize * ImageSize;

    /// <summary>Size of the image after the resize step: the shorter side becomes <see cref="ResizeSize"/>,
    /// the longer one <c>int(ResizeSize * long / short)</c> (torchvision's rule). Returns (width, height).</summary>
    /// <param name="width">Image width.</param>
    /// <param name="height">Image height.</param>
    /// <returns>The resized width and height.</returns>
    public (int Width, int Height) ResizedSize(int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        bool wide = width > height;
        int shorter = wide ? height : width, longer = wide ? width : height;
        int newLonger = (int)Math.Min((double)((long)ResizeSize * longer) / shorter, int.MaxValue);
        return wide ? (newLonger, ResizeSize) : (ResizeSize, newLonger);
    }

    /// <summary>Runs the transform and returns a new CHW array of <see cref="OutputLength"/> floats.</summary>
    /// <param name="image">The decoded image (gray or RGB).</param>
    /// <returns>The normalized model input.</returns>
    public float[] Apply(VitImage image)
    {
        var result = new float[OutputLength];
        Apply(image, result);
        return result;
    }

    /// <summary>
    /// Runs the transform, writing <see cref="OutputLength"/> floats, channel-first (CHW), to
    /// <paramref name="destination"/>. Gray images are replicated to RGB; RGB images are converted to
    /// gray with PIL's 'L' formula when the model has one channel.
    /// </summary>
    /// <param name="image">The decoded image (gray or RGB).</param>
    /// <param name="destination">Exactly <see cref="OutputLength"/> floats.</param>
    /// <exception cref="ArgumentException"><paramref name="destination"/> has the wrong length.</exception>
    public void Apply(VitImage image, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (destination.Length != OutputLength)
        {
            throw new ArgumentException($"The destination needs {OutputLength} floats, not {destination.Length}.", nameof(destination));
        }
        ReadOnlySpan<byte> pixels = image.Pixels.Span;
        int channels = image.Channels;
        byte[]? gray = null;
        if (Channels == 1 && channels == 3)
        {
            gray = PixelConversion.RgbToGray(pixels);
            pixels = gray;
            channels = 1;
        }

        (int newWidth, int newHeight) = ResizedSize(image.Width, image.Height);
        int size = ImageSize;
        (int cropLeft, int copyLeft, int copyWidth) = CropAxis(newWidth, size);
        (int cropTop, int copyTop, int copyHeight) = CropAxis(newHeight, size);
        byte[] window = Resampler.ResizeWindow(pixels, image.Width, image.Height, channels, newWidth, newHeight,
            Interpolation, cropLeft, cropTop, copyWidth, copyHeight);

        int plane = size * size;
        Span<float> table = stackalloc float[256];
        for (int c = 0; c < Channels; c++)
        {
            // torchvision: ToTensor divides by 255 in float32, Normalize subtracts and divides in float32.
            float mean = _mean[c], std = _std[c];
            for (int v = 0; v < 256; v++)
            {
                table[v] = ((float)v / 255f - mean) / std;
            }
            Span<float> output = destination.Slice(c * plane, plane);
            output.Fill(table[0]); // padding (crop larger than the resized image) is black
            int sourceChannel = channels == 1 ? 0 : c;
            for (int y = 0; y < copyHeight; y++)
            {
                Span<float> outRow = output.Slice((copyTop + y) * size + copyLeft, copyWidth);
                ReadOnlySpan<byte> inRow = window.AsSpan(y * copyWidth * channels, copyWidth * channels);
                for (int x = 0; x < copyWidth; x++)
                {
                    outRow[x] = table[inRow[x * channels + sourceChannel]];
                }
            }
        }
    }

    /// <summary>
    /// torchvision CenterCrop along one axis of length <paramref name="length"/>: returns the first resized
    /// index kept, where it lands in the output, and how many are kept.
    /// </summary>
    private static (int Source, int Destination, int Count) CropAxis(int length, int size)
    {
        if (size > length)
        {
            // Pads (size - length) // 2 before, the rest after; then the crop is the whole padded image.
            return (0, (size - length) / 2, length);
        }
        int start = (int)Math.Round((length - size) / 2.0, MidpointRounding.ToEven); // Python's round()
        return (start, 0, size);
    }
}
