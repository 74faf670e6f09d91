namespace ViTGen.CompilerServices;

/// <summary>
/// Element-wise passes over channel rows of a channels-last feature map, at the SIMD tier in force (512-, 256- or
/// 128-bit vectors, then a scalar tail): what the hybrid trunk's GroupNorm and max pool are made of.
/// </summary>
internal static unsafe class ConvolutionRows
{
    /// <summary><c>sum[i] += x[i]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add(float* sum, float* x, int count)
    {
        int i = 0;
        var tier = Simd.Current;
        if (tier == SimdTier.Vector512)
            for (; i <= count - 16; i += 16) (Vector512.Load(sum + i) + Vector512.Load(x + i)).Store(sum + i);
        else if (tier == SimdTier.Vector256)
            for (; i <= count - 8; i += 8) (Vector256.Load(sum + i) + Vector256.Load(x + i)).Store(sum + i);
        else
            for (; i <= count - 4; i += 4) (Vector128.Load(sum + i) + Vector128.Load(x + i)).Store(sum + i);
        for (; i < count; i++) sum[i] += x[i];
    }

    /// <summary><c>sum[i] += (x[i] - mean[i])²</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddSquaredDeviation(float* sum, float* x, float* mean, int count)
    {
        int i = 0;
        var tier = Simd.Current;
        if (tier == SimdTier.Vector512)
        {
            for (; i <= count - 16; i += 16)
            {
                var d = Vector512.Load(x + i) - Vector512.Load(mean + i);
                Vector512.FusedMultiplyAdd(d, d, Vector512.Load(sum + i)).Store(sum + i);
            }
        }
        else if (tier == SimdTier.Vector256)
        {
            for (; i <= count - 8; i += 8)
            {
                var d = Vector256.Load(x + i) - Vector256.Load(mean + i);
                Vector256.FusedMultiplyAdd(d, d, Vector256.Load(sum + i)).Store(sum + i);
            }
        }
        else
        {
            for (; i <= count - 4; i += 4)
            {
                var d = Vector128.Load(x + i) - Vector128.Load(mean + i);
                Simd.MultiplyAdd(d, d, Vector128.Load(sum + i)).Store(sum + i);
            }
        }
        for (; i < count; i++)
        {
            float d = x[i] - mean[i];
            sum[i] += d * d;
        }
    }

    /// <summary><c>y[i] = x[i] · scale[i] + shift[i]</c>, plus <c>residual[i]</c> when not null, then max(·, 0) when <paramref name="relu"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Affine(float* y, float* x, float* scale, float* shift, float* residual, bool relu, int count)
    {
        int i = 0;
        var tier = Simd.Current;
        if (tier == SimdTier.Vector512)
        {
            for (; i <= count - 16; i += 16)
            {
                var v = Vector512.FusedMultiplyAdd(Vector512.Load(x + i), Vector512.Load(scale + i), Vector512.Load(shift + i));
                if (residual != null) v += Vector512.Load(residual + i);
                if (relu) v = Vector512.Max(v, Vector512<float>.Zero);
                v.Store(y + i);
            }
        }
        else if (tier == SimdTier.Vector256)
        {
            for (; i <= count - 8; i += 8)
            {
                var v = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(scale + i), Vector256.Load(shift + i));
                if (residual != null) v += Vector256.Load(residual + i);
                if (relu) v = Vector256.Max(v, Vector256<float>.Zero);
                v.Store(y + i);
            }
        }
        else
        {
            for (; i <= count - 4; i += 4)
            {
                var v = Simd.MultiplyAdd(Vector128.Load(x + i), Vector128.Load(scale + i), Vector128.Load(shift + i));
                if (residual != null) v += Vector128.Load(residual + i);
                if (relu) v = Vector128.Max(v, Vector128<float>.Zero);
                v.Store(y + i);
            }
        }
        for (; i < count; i++)
        {
            float v = MathF.FusedMultiplyAdd(x[i], scale[i], shift[i]);
            if (residual != null) v += residual[i];
            y[i] = relu ? MathF.Max(v, 0f) : v;
        }
    }

    /// <summary><c>y[i] = max(y[i], x[i])</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Max(float* y, float* x, int count)
    {
        int i = 0;
        var tier = Simd.Current;
        if (tier == SimdTier.Vector512)
            for (; i <= count - 16; i += 16) Vector512.Max(Vector512.Load(y + i), Vector512.Load(x + i)).Store(y + i);
        else if (tier == SimdTier.Vector256)
            for (; i <= count - 8; i += 8) Vector256.Max(Vector256.Load(y + i), Vector256.Load(x + i)).Store(y + i);
        else
            for (; i <= count - 4; i += 4) Vector128.Max(Vector128.Load(y + i), Vector128.Load(x + i)).Store(y + i);
        for (; i < count; i++) y[i] = MathF.Max(y[i], x[i]);
    }
}
