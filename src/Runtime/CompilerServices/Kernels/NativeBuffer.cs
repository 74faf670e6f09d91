namespace ViTGen.CompilerServices;

/// <summary>
/// A 64-byte aligned block of unmanaged floats: packed weights and workspaces live here so that kernels use
/// aligned vector loads and the GC never moves or scans them. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed unsafe class NativeBuffer : IDisposable
{
    private float* _data;

    /// <summary>Allocates <paramref name="length"/> zeroed floats.</summary>
    public NativeBuffer(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        nuint bytes = (nuint)Math.Max(1, length) * sizeof(float);
        _data = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(_data, bytes);
    }

    /// <summary>The number of floats.</summary>
    public long Length { get; }

    /// <summary>The first float; valid until <see cref="Dispose"/>.</summary>
    public float* Data => _data != null ? _data : throw new ObjectDisposedException(nameof(NativeBuffer));

    /// <summary>The floats as a span (lengths up to <see cref="int.MaxValue"/>).</summary>
    public Span<float> Span => new(Data, checked((int)Length));

    /// <summary>Frees the memory.</summary>
    public void Dispose()
    {
        if (_data != null)
        {
            NativeMemory.AlignedFree(_data);
            _data = null;
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the memory if the owner forgot to.</summary>
    ~NativeBuffer() => Dispose();
}
