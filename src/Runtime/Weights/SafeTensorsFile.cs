using System.Buffers.Binary;
using System.Collections.ObjectModel;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.IO.MemoryMappedFiles;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace ViTGen;

/// <summary>
/// A safetensors file (huggingface/safetensors format), memory-mapped read-only and validated on open
/// with the rules of the reference reader: the header length, UTF-8, JSON, dtypes, shapes, offsets that tile
/// the data buffer from 0 without gaps or overlaps, sizes that match shape x dtype, and a buffer that ends
/// exactly at the end of the file. Every problem is reported as a <see cref="VitWeightsException"/> that names
/// the file, the tensor and the numbers involved.
/// </summary>
/// <remarks>
/// Reads may run concurrently from several threads. Spans returned by <see cref="GetBytes(SafeTensorInfo)"/>
/// point into the mapping and must not be used after <see cref="Dispose"/>.
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
    // Page release bookkeeping: the tensors in file order, each one's rank in it, and which have been released.
    private readonly SafeTensorInfo[] _byOffset;
    private readonly Dictionary<string, int> _rank;
    private readonly bool[] _released;
    private readonly int _firstNonEmpty, _lastNonEmpty;
    private readonly Lock _releaseLock = new();
    private bool _disposed;

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
        _byOffset = parsed.Tensors.OrderBy(t => t.FileOffset).ThenBy(t => t.ByteLength).ToArray();
        _rank = new Dictionary<string, int>(_byOffset.Length, StringComparer.Ordinal);
        for (int i = 0; i < _byOffset.Length; i++) _rank.Add(_byOffset[i].Name, i);
        _released = new bool[_byOffset.Length];
        _firstNonEmpty = Array.FindIndex(_byOffset, t => t.ByteLength > 0);
        _lastNonEmpty = Array.FindLastIndex(_byOffset, t => t.ByteLength > 0);
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
            if (length < 8)
            {
                throw SafeTensorsHeader.Error(path, string.Create(CultureInfo.InvariantCulture,
                    $"the file is {length} bytes long, too short for the 8-byte header length that starts a safetensors file"));
            }

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

            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(pointer, 8));
            if (headerLength > SafeTensorsHeader.MaxHeaderLength)
            {
                throw SafeTensorsHeader.Error(path, string.Create(CultureInfo.InvariantCulture,
                    $"the header length (file bytes 0..8) is {headerLength}, more than the {SafeTensorsHeader.MaxHeaderLength} bytes safetensors allows"));
            }
            if (headerLength + 8 > (ulong)length)
            {
                throw SafeTensorsHeader.Error(path, string.Create(CultureInfo.InvariantCulture,
                    $"the header length is {headerLength}, so the header would end at file offset {headerLength + 8}, past the end of the {length}-byte file"));
            }

            byte[] header = new ReadOnlySpan<byte>(pointer + 8, (int)headerLength).ToArray();
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
        CheckDestination(info, destination.Length, "float32", SafeTensorDType.F32, SafeTensorDType.F16, SafeTensorDType.BF16, SafeTensorDType.F64);
        byte* source = DataPointer(info);
        int total = destination.Length;
        for (int done = 0; done < total; done += ChunkElements)
        {
            int n = Math.Min(ChunkElements, total - done);
            Span<float> dst = destination.Slice(done, n);
            switch (info.DType)
            {
                case SafeTensorDType.F32:
                    Float32FromF32(new ReadOnlySpan<byte>(source + (long)done * 4, n * 4), dst);
                    break;
                case SafeTensorDType.F16:
                    Float32FromF16(new ReadOnlySpan<byte>(source + (long)done * 2, n * 2), dst);
                    break;
                case SafeTensorDType.BF16:
                    Float32FromBF16(new ReadOnlySpan<byte>(source + (long)done * 2, n * 2), dst);
                    break;
                default:
                    Float32FromF64(new ReadOnlySpan<byte>(source + (long)done * 8, n * 8), dst);
                    break;
            }
        }
    }

    /// <summary>Reads a floating-point tensor (F64, F32, F16 or BF16) as float64, exactly.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="destination">Receives the elements in C order; its length must equal the element count.</param>
    /// <exception cref="VitWeightsException">The tensor is missing, is not F64/F32/F16/BF16, or the length differs.</exception>
    public void ReadFloat64(string name, Span<double> destination)
    {
        SafeTensorInfo info = GetTensor(name);
        CheckDestination(info, destination.Length, "float64", SafeTensorDType.F64, SafeTensorDType.F32, SafeTensorDType.F16, SafeTensorDType.BF16);
        byte* source = DataPointer(info);
        int size = SafeTensorDTypes.BitSize(info.DType) / 8;
        int total = destination.Length;
        for (int done = 0; done < total; done += ChunkElements)
        {
            int n = Math.Min(ChunkElements, total - done);
            var src = new ReadOnlySpan<byte>(source + (long)done * size, n * size);
            Span<double> dst = destination.Slice(done, n);
            switch (info.DType)
            {
                case SafeTensorDType.F64:
                    for (int i = 0; i < n; i++) dst[i] = BinaryPrimitives.ReadDoubleLittleEndian(src.Slice(i * 8, 8));
                    break;
                case SafeTensorDType.F32:
                    for (int i = 0; i < n; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src.Slice(i * 4, 4));
                    break;
                case SafeTensorDType.F16:
                    for (int i = 0; i < n; i++) dst[i] = (double)BinaryPrimitives.ReadHalfLittleEndian(src.Slice(i * 2, 2));
                    break;
                default:
                    for (int i = 0; i < n; i++) dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(i * 2, 2)) << 16);
                    break;
            }
        }
    }

    /// <summary>Reads a U8 tensor.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>A copy of its elements.</returns>
    /// <exception cref="VitWeightsException">The tensor is missing or is not U8.</exception>
    public byte[] ReadBytes(string name)
    {
        SafeTensorInfo info = GetTensor(name);
        CheckArray(info, "U8", SafeTensorDType.U8);
        return GetBytes(info).ToArray();
    }

    /// <summary>Reads an I64 tensor.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>A copy of its elements.</returns>
    /// <exception cref="VitWeightsException">The tensor is missing or is not I64.</exception>
    public long[] ReadInt64(string name)
    {
        SafeTensorInfo info = GetTensor(name);
        CheckArray(info, "I64", SafeTensorDType.I64);
        ReadOnlySpan<byte> bytes = GetBytes(info);
        var result = new long[info.ElementCount];
        for (int i = 0; i < result.Length; i++) result[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes.Slice(i * 8, 8));
        return result;
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
        lock (_releaseLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int rank = _rank[info.Name];
            if (_released[rank]) return;
            _released[rank] = true;
            if (info.ByteLength == 0) return; // no bytes: counted as released from the start (see IsReleased)

            // The run of released (or empty) tensors around this one: no page inside it holds a byte a pending read needs.
            // Before the first tensor lies the header (copied out by Open); the mapping ends with the last page.
            long page = Environment.SystemPageSize;
            int first = rank, last = rank;
            while (first > 0 && IsReleased(first - 1)) first--;
            while (last < _byOffset.Length - 1 && IsReleased(last + 1)) last++;
            long runBegin = first == 0 ? 0 : _byOffset[first].FileOffset;
            long runEnd = last == _byOffset.Length - 1 ? AlignUp(Length, page) : _byOffset[last].FileOffset + _byOffset[last].ByteLength;

            // New candidates are the pages that overlap this tensor (the first tensor also owns the header's pages, the
            // last one the end of the last page): any other page of the run was released with the last of its tensors.
            long low = rank == _firstNonEmpty ? 0 : info.FileOffset;
            long high = rank == _lastNonEmpty ? AlignUp(Length, page) : info.FileOffset + info.ByteLength;
            long begin = Math.Max(AlignUp(runBegin, page), AlignDown(low, page));
            long end = Math.Min(AlignDown(runEnd, page), AlignUp(high, page));
            if (end > begin)
            {
                ReleaseObserver?.Invoke(begin, end);
                PageRelease.DontNeed(_base + begin, (nuint)(end - begin));
            }
        }
    }

    /// <summary>Tests: called with the file offsets <c>[begin, end)</c> of every range <see cref="ReleasePages"/> releases.</summary>
    internal Action<long, long>? ReleaseObserver { get; set; }

    private bool IsReleased(int rank) => _released[rank] || _byOffset[rank].ByteLength == 0;

    private static long AlignDown(long value, long page) => value / page * page;

    private static long AlignUp(long value, long page) => (value + page - 1) / page * page;

    /// <summary>Unmaps the file. Spans obtained from <see cref="GetBytes(SafeTensorInfo)"/> become invalid.</summary>
    public void Dispose()
    {
        lock (_releaseLock)
        {
            if (_disposed) return;
            _disposed = true;
        }
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

    private void CheckArray(SafeTensorInfo info, string wanted, SafeTensorDType dtype)
    {
        if (info.DType != dtype)
        {
            throw new VitWeightsException($"tensor '{info.Name}' in '{Path}' has dtype {SafeTensorDTypes.ToHeaderString(info.DType)}, but {wanted} was requested");
        }
        if (info.ByteLength > int.MaxValue / 8)
        {
            throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                $"tensor '{info.Name}' in '{Path}' has {info.ElementCount} elements, too many to read into an array"));
        }
    }

    private void CheckDestination(SafeTensorInfo info, int length, string target, params SafeTensorDType[] accepted)
    {
        if (Array.IndexOf(accepted, info.DType) < 0)
        {
            string list = string.Join(", ", accepted.Select(SafeTensorDTypes.ToHeaderString));
            throw new VitWeightsException($"tensor '{info.Name}' in '{Path}' has dtype {SafeTensorDTypes.ToHeaderString(info.DType)}, which cannot be read as {target} (supported: {list})");
        }
        if (info.ElementCount != length)
        {
            throw new VitWeightsException(string.Create(CultureInfo.InvariantCulture,
                $"tensor '{info.Name}' in '{Path}' has {info.ElementCount} elements (shape {ShapeText.Format(info.Shape)}) but the destination holds {length}"));
        }
    }

    private static void Float32FromF32(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
            return;
        }
        for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source.Slice(i * 4, 4));
    }

    private static void Float32FromF16(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (BitConverter.IsLittleEndian)
        {
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
            return;
        }
        for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source.Slice(i * 2, 2));
    }

    private static void Float32FromBF16(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int i = 0;
        if (BitConverter.IsLittleEndian)
        {
            ReadOnlySpan<ushort> halves = MemoryMarshal.Cast<byte, ushort>(source);
            Span<uint> words = MemoryMarshal.Cast<float, uint>(destination);
            if (Vector.IsHardwareAccelerated)
            {
                int step = Vector<ushort>.Count;
                for (; i + step <= halves.Length; i += step)
                {
                    Vector.Widen(new Vector<ushort>(halves.Slice(i, step)), out Vector<uint> low, out Vector<uint> high);
                    Vector.ShiftLeft(low, 16).CopyTo(words.Slice(i, step / 2));
                    Vector.ShiftLeft(high, 16).CopyTo(words.Slice(i + step / 2, step / 2));
                }
            }
            for (; i < halves.Length; i++) words[i] = (uint)halves[i] << 16;
            return;
        }
        for (; i < destination.Length; i++)
        {
            destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source.Slice(i * 2, 2)) << 16);
        }
    }

    private static void Float32FromF64(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (BitConverter.IsLittleEndian)
        {
            ReadOnlySpan<double> doubles = MemoryMarshal.Cast<byte, double>(source);
            for (int i = 0; i < destination.Length; i++) destination[i] = (float)doubles[i];
            return;
        }
        for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(source.Slice(i * 8, 8));
    }

    private static bool IsIoProblem(Exception e) =>
        e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException
            or System.Security.SecurityException;
}

/// <summary><c>madvise(MADV_DONTNEED)</c> on Linux, through a blittable P/Invoke (no marshalling, AOT-safe).</summary>
internal static unsafe class PageRelease
{
    // Linux's value on every architecture .NET runs on (x64, arm64, arm, riscv64, loongarch64, s390x, ppc64le).
    private const int MadvDontNeed = 4;

    private static volatile bool s_enabled = true;

    /// <summary>False once libc turned out not to be loadable; the release is then skipped for the process's lifetime.</summary>
    public static bool Enabled => s_enabled;

    /// <summary>Drops the pages of <c>[address, address + length)</c> from the resident set; page-aligned address.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public static void DontNeed(byte* address, nuint length)
    {
        try
        {
            // A failure (EINVAL, EAGAIN) only means the pages stay resident: nothing to report.
            _ = Madvise(address, length, MadvDontNeed);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_enabled = false;
        }
    }

    [DllImport("libc", EntryPoint = "madvise", ExactSpelling = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Madvise(byte* address, nuint length, int advice);
}
