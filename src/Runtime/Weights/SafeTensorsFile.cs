using System.Buffers.Binary;
using System.Collections.ObjectModel;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.IO.MemoryMappedFiles;

namespace ViTGen;

/// <summary>
/// A safetensors file (huggingface/safetensors format), memory-mapped read-only and validated on open
/// with the rules of the reference reader: the header length, UTF-8, JSON, dtypes, shapes, offsets that tile
/// the data buffer from 0 without gaps or overlaps, sizes that match shape x dtype, and a buffer that ends
/// exactly at the end of the file. Every problem is reported as a <see cref="VitWeightsException"/> that names
/// the file, the tensor and the numbers involved.
/// </summary>
/// <remarks>
/// Reads may run concurrently from several threads, and with <see cref="Dispose"/>: every copying read holds a
/// lease on the mapping, so a read that has started finishes before the file is unmapped, and a read that starts
/// after <see cref="Dispose"/> throws <see cref="ObjectDisposedException"/>. Spans returned by
/// <see cref="GetBytes(SafeTensorInfo)"/> point into the mapping and must not be used after <see cref="Dispose"/>.
/// <para>
/// Mapped pages count toward the process's resident memory once touched. A compiled model copies every tensor
/// into its own layout, so <see cref="CompilerServices.CheckpointReader"/> hands each tensor back after copying it
/// (see <see cref="ReleasePages"/>): loading a checkpoint then needs about one copy of the weights, not two.
/// </para>
/// </remarks>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    // Elements converted per step, so that no intermediate span exceeds int.MaxValue bytes.
    private const int ChunkElements = 1 << 24;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly Dictionary<string, SafeTensorInfo> _byName;
    // Page release bookkeeping, guarded by _lock.
    private readonly PageReleaseRuns _pages;
    // Guards _disposed, _leases and _unmapped: a read takes a lease under the lock, works on the mapping outside it,
    // and returns the lease under it; whoever ends the last lease after Dispose (or Dispose itself when no read is
    // in flight) unmaps, so the mapping is never unmapped under a running read.
    private readonly Lock _lock = new();
    private bool _disposed;
    private int _leases;
    private bool _unmapped;

    private SafeTensorsFile(string path, long length, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePointer,
        SafeTensorsHeader.Parsed parsed)
    {
        Path = path;
        Length = length;
        _map = map;
        _view = view;
        _base = basePointer;
        Tensors = Array.AsReadOnly(parsed.Tensors);
        Metadata = new ReadOnlyDictionary<string, string>(parsed.Metadata);
        _byName = new Dictionary<string, SafeTensorInfo>(parsed.Tensors.Length, StringComparer.Ordinal);
        foreach (SafeTensorInfo info in parsed.Tensors)
        {
            _byName.Add(info.Name, info);
        }
        _pages = new PageReleaseRuns(parsed.Tensors, length);
    }

    /// <summary>The path the file was opened with.</summary>
    public string Path { get; }

    /// <summary>The file's length in bytes.</summary>
    public long Length { get; }

    /// <summary>Every tensor in the file, in ordinal order of name.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>
    /// Opens, memory-maps and validates a safetensors file.
    /// </summary>
    /// <param name="path">The file to open.</param>
    /// <returns>The open file; dispose it to unmap.</returns>
    /// <exception cref="VitWeightsException">The file cannot be opened or is not a valid safetensors file.</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
        }
        catch (Exception e) when (IsIoProblem(e))
        {
            throw new VitWeightsException($"Cannot open safetensors file '{path}': {e.Message}", e);
        }

        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        bool success = false;
        try
        {
            long length;
            try
            {
                length = stream.Length;
            }
            catch (Exception e) when (IsIoProblem(e))
            {
                throw new VitWeightsException($"Cannot read safetensors file '{path}': {e.Message}", e);
            }
            SafeTensorsHeader.CheckFileLength(path, length);

            try
            {
                map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                    HandleInheritability.None, leaveOpen: false);
                view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            }
            catch (Exception e) when (IsIoProblem(e))
            {
                throw new VitWeightsException($"Cannot memory-map safetensors file '{path}': {e.Message}", e);
            }

            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            acquired = true;
            pointer += view.PointerOffset;
            if ((ulong)view.Capacity < (ulong)length)
            {
                throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                    $"Cannot memory-map safetensors file '{path}': the mapping has {view.Capacity} bytes but the file has {length}"));
            }

            int headerLength = SafeTensorsHeader.CheckHeaderLength(path, BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(pointer, 8)), length);
            byte[] header = new ReadOnlySpan<byte>(pointer + 8, headerLength).ToArray();
            SafeTensorsHeader.Parsed parsed = SafeTensorsHeader.Parse(path, header, length);
            var file = new SafeTensorsFile(path, length, map, view, pointer, parsed);
            success = true;
            return file;
        }
        finally
        {
            if (!success)
            {
                if (acquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
                view?.Dispose();
                map?.Dispose();
                stream.Dispose();
            }
        }
    }

    /// <summary>Looks a tensor up by name.</summary>
    /// <param name="name">The tensor's name (ordinal comparison).</param>
    /// <param name="info">The tensor, when found.</param>
    /// <returns>Whether the file has a tensor with that name.</returns>
    public bool TryGetTensor(string name, [MaybeNullWhen(false)] out SafeTensorInfo info)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out info);
    }

    /// <summary>Returns the tensor with the given name.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>The tensor.</returns>
    /// <exception cref="VitWeightsException">The file has no such tensor.</exception>
    public SafeTensorInfo GetTensor(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_byName.TryGetValue(name, out SafeTensorInfo? info))
        {
            throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                $"Safetensors file '{Path}' has no tensor '{name}' (it has {Tensors.Count} tensors)"));
        }
        return info;
    }

    /// <summary>
    /// The raw little-endian bytes of a tensor, straight from the mapping (no copy). The span is valid until the
    /// file is disposed.
    /// </summary>
    /// <param name="info">A tensor of this file.</param>
    /// <returns>The tensor's <see cref="SafeTensorInfo.ByteLength"/> bytes.</returns>
    /// <exception cref="VitWeightsException">The tensor is larger than a span can hold (2 GiB).</exception>
    public ReadOnlySpan<byte> GetBytes(SafeTensorInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        CheckOwned(info);
        if (info.ByteLength > int.MaxValue)
        {
            throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                $"tensor '{info.Name}' in '{Path}' has {info.ByteLength} bytes, more than a span can hold"));
        }
        return new ReadOnlySpan<byte>(DataPointer(info), (int)info.ByteLength);
    }

    /// <summary>The raw little-endian bytes of the named tensor; see <see cref="GetBytes(SafeTensorInfo)"/>.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>The tensor's bytes.</returns>
    public ReadOnlySpan<byte> GetBytes(string name) => GetBytes(GetTensor(name));

    /// <summary>
    /// Reads a floating-point tensor as float32: F32 is copied, F16 and BF16 are widened exactly, F64 is rounded
    /// to the nearest float32.
    /// </summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="destination">Receives the elements in C order; its length must equal the element count.</param>
    /// <exception cref="VitWeightsException">The tensor is missing, is not F32/F16/BF16/F64, or the length differs.</exception>
    public void ReadFloat32(string name, Span<float> destination)
    {
        SafeTensorInfo info = GetTensor(name);
        SafeTensorConversion.CheckDestination(Path, info, destination.Length, "float32", SafeTensorDType.F32, SafeTensorDType.F16, SafeTensorDType.BF16, SafeTensorDType.F64);
        Enter();
        try
        {
            byte* source = _base + info.FileOffset;
            int size = SafeTensorDTypes.BitSize(info.DType) / 8;
            int total = destination.Length;
            for (int done = 0; done < total; done += ChunkElements)
            {
                int n = Math.Min(ChunkElements, total - done);
                SafeTensorConversion.ToFloat32(info.DType, new ReadOnlySpan<byte>(source + (long)done * size, n * size), destination.Slice(done, n));
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Reads a floating-point tensor (F64, F32, F16 or BF16) as float64, exactly.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="destination">Receives the elements in C order; its length must equal the element count.</param>
    /// <exception cref="VitWeightsException">The tensor is missing, is not F64/F32/F16/BF16, or the length differs.</exception>
    public void ReadFloat64(string name, Span<double> destination)
    {
        SafeTensorInfo info = GetTensor(name);
        SafeTensorConversion.CheckDestination(Path, info, destination.Length, "float64", SafeTensorDType.F64, SafeTensorDType.F32, SafeTensorDType.F16, SafeTensorDType.BF16);
        Enter();
        try
        {
            byte* source = _base + info.FileOffset;
            int size = SafeTensorDTypes.BitSize(info.DType) / 8;
            int total = destination.Length;
            for (int done = 0; done < total; done += ChunkElements)
            {
                int n = Math.Min(ChunkElements, total - done);
                SafeTensorConversion.ToFloat64(info.DType, new ReadOnlySpan<byte>(source + (long)done * size, n * size), destination.Slice(done, n));
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Reads a U8 tensor.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>A copy of its elements.</returns>
    /// <exception cref="VitWeightsException">The tensor is missing or is not U8.</exception>
    public byte[] ReadBytes(string name)
    {
        SafeTensorInfo info = GetTensor(name);
        SafeTensorConversion.CheckArray(Path, info, "U8", SafeTensorDType.U8);
        Enter();
        try
        {
            return GetBytes(info).ToArray();
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Reads an I64 tensor.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>A copy of its elements.</returns>
    /// <exception cref="VitWeightsException">The tensor is missing or is not I64.</exception>
    public long[] ReadInt64(string name)
    {
        SafeTensorInfo info = GetTensor(name);
        SafeTensorConversion.CheckArray(Path, info, "I64", SafeTensorDType.I64);
        Enter();
        try
        {
            ReadOnlySpan<byte> bytes = GetBytes(info);
            var result = new long[info.ElementCount];
            for (int i = 0; i < result.Length; i++) result[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes.Slice(i * 8, 8));
            return result;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Tells the operating system that this process is done with the tensor's bytes for now: every mapped page that
    /// holds only bytes of tensors released so far (and of the header) is dropped from the process's resident set.
    /// The data stay valid: a later read of a released page faults it back in from the page cache or the disk, so
    /// releasing too early costs time, never correctness. Linux only (<c>madvise(MADV_DONTNEED)</c>); a no-op
    /// elsewhere. Thread-safe.
    /// </summary>
    /// <param name="info">A tensor of this file whose bytes have been copied out.</param>
    internal void ReleasePages(SafeTensorInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        CheckOwned(info);
        if (!OperatingSystem.IsLinux() || !PageRelease.Enabled) return;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_pages.Release(info, out long begin, out long end))
            {
                ReleaseObserver?.Invoke(begin, end);
                PageRelease.DontNeed(_base + begin, (nuint)(end - begin));
            }
        }
    }

    /// <summary>Tests: called with the file offsets <c>[begin, end)</c> of every range <see cref="ReleasePages"/> releases.</summary>
    internal Action<long, long>? ReleaseObserver { get; set; }

    /// <summary>
    /// Unmaps the file, at once or, when reads are in flight on other threads, as soon as the last of them ends;
    /// reads that start afterwards throw <see cref="ObjectDisposedException"/>. Spans obtained from
    /// <see cref="GetBytes(SafeTensorInfo)"/> become invalid.
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            if (_leases > 0) return;
            _unmapped = true;
        }
        Unmap();
    }

    /// <summary>Tests: the number of copying reads in flight.</summary>
    internal int Leases
    {
        get
        {
            lock (_lock) return _leases;
        }
    }

    /// <summary>Tests: whether the mapping has been released.</summary>
    internal bool IsUnmapped
    {
        get
        {
            lock (_lock) return _unmapped;
        }
    }

    // Starts a read: the mapping stays mapped until the matching Exit.
    private void Enter()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _leases++;
        }
        LeaseObserver?.Invoke();
    }

    /// <summary>Tests: called by every copying read once it holds its lease, before it touches the mapping.</summary>
    internal Action? LeaseObserver { get; set; }

    private void Exit()
    {
        lock (_lock)
        {
            _leases--;
            if (_leases > 0 || !_disposed || _unmapped) return;
            _unmapped = true;
        }
        Unmap();
    }

    private void Unmap()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    private byte* DataPointer(SafeTensorInfo info)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _base + info.FileOffset;
    }

    private void CheckOwned(SafeTensorInfo info)
    {
        if (!_byName.TryGetValue(info.Name, out SafeTensorInfo? own) || !ReferenceEquals(own, info))
        {
            throw new ArgumentException($"Tensor '{info.Name}' does not belong to safetensors file '{Path}'.", nameof(info));
        }
    }

    private static bool IsIoProblem(Exception e) =>
        e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException
            or System.Security.SecurityException;
}
