namespace ViTGen;

/// <summary>The kernels of Pillow's resize, with their supports (radius in source pixels at scale 1).</summary>
internal sealed class ResampleFilter
{
    private static readonly ResampleFilter BoxFilter = new(Box, 0.5);
    private static readonly ResampleFilter BilinearFilter = new(Bilinear, 1.0);
    private static readonly ResampleFilter HammingFilter = new(Hamming, 1.0);
    private static readonly ResampleFilter BicubicFilter = new(Bicubic, 2.0);
    private static readonly ResampleFilter LanczosFilter = new(Lanczos, 3.0);

    private readonly Func<double, double> _kernel;

    private ResampleFilter(Func<double, double> kernel, double support)
    {
        _kernel = kernel;
        Support = support;
    }

    internal double Support { get; }

    internal double Evaluate(double x) => _kernel(x);

    internal static ResampleFilter For(VitInterpolation interpolation) => interpolation switch
    {
        VitInterpolation.Box => BoxFilter,
        VitInterpolation.Bilinear => BilinearFilter,
        VitInterpolation.Hamming => HammingFilter,
        VitInterpolation.Bicubic => BicubicFilter,
        VitInterpolation.Lanczos => LanczosFilter,
        _ => throw new ArgumentOutOfRangeException(nameof(interpolation), interpolation, "Not a convolution filter."),
    };

    private static double Box(double x) => x > -0.5 && x <= 0.5 ? 1.0 : 0.0;

    private static double Bilinear(double x)
    {
        x = Math.Abs(x);
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    private static double Hamming(double x)
    {
        x = Math.Abs(x);
        if (x == 0.0)
        {
            return 1.0;
        }
        if (x >= 1.0)
        {
            return 0.0;
        }
        x *= Math.PI;
        return Math.Sin(x) / x * (0.54f + 0.46f * Math.Cos(x)); // Pillow's constants are floats
    }

    private static double Bicubic(double x)
    {
        const double A = -0.5;
        x = Math.Abs(x);
        if (x < 1.0)
        {
            return ((A + 2.0) * x - (A + 3.0)) * x * x + 1;
        }
        if (x < 2.0)
        {
            return (((x - 5) * x + 8) * x - 4) * A;
        }
        return 0.0;
    }

    private static double Sinc(double x)
    {
        if (x == 0.0)
        {
            return 1.0;
        }
        x *= Math.PI;
        return Math.Sin(x) / x;
    }

    private static double Lanczos(double x) => -3.0 <= x && x < 3.0 ? Sinc(x) * Sinc(x / 3) : 0.0;
}
