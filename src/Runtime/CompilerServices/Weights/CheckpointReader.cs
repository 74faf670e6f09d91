using System.Globalization;
using System.Text;

namespace ViTGen.CompilerServices;

/// <summary>
/// Reads a checkpoint's tensors by their timm names, whatever the checkpoint's dialect (timm, Hugging Face
/// transformers, torchvision, OpenAI CLIP), checking every shape exactly against the compiled model. Used by
/// generated code; not meant to be called directly.
/// </summary>
/// <remarks>
/// Strict like PyTorch's <c>load_state_dict</c>: a missing tensor or a wrong shape fails <see cref="Read"/>, and
/// <see cref="EnsureAllRead"/> fails when the file holds tensors that were never read. Not thread-safe.
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class CheckpointReader : IDisposable
{
    private const int MaxListed = 20;

    private readonly CheckpointNames _names;
    private readonly string[] _ignoredPrefixes;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    private CheckpointReader(SafeTensorsFile file, CheckpointOptions? options)
    {
        File = file;
        _ignoredPrefixes = options?.IgnoredPrefixes?.Where(p => p is not null).ToArray() ?? [];
        var names = file.Tensors.Select(t => t.Name).ToArray();
        _names = CheckpointNames.Detect(names, n => file.TryGetTensor(n, out _));
    }

    /// <summary>The checkpoint's path.</summary>
    public string Path => File.Path;

    /// <summary>The dialect detected from the tensor names.</summary>
    public CheckpointDialect Dialect => _names.Dialect;

    /// <summary>A readable name of the detected dialect, e.g. <c>Hugging Face ViTForImageClassification</c>.</summary>
    public string DialectName => _names.DisplayName;

    /// <summary>The underlying safetensors file.</summary>
    public SafeTensorsFile File { get; }

    /// <summary>
    /// Whether a position embedding of another grid is resampled to the model's (<see cref="VitOptions.ResamplePositionEmbedding"/>);
    /// set by <see cref="WeightLoading.OpenCheckpoint"/>.
    /// </summary>
    internal bool ResamplePositionEmbedding { get; set; } = true;

    /// <summary>Opens a safetensors checkpoint and detects its dialect.</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    /// <param name="options">Tensors to ignore; null for none.</param>
    /// <returns>The reader; dispose it to close the file.</returns>
    /// <exception cref="VitWeightsException">The file cannot be opened or is not a valid safetensors file.</exception>
    public static CheckpointReader Open(string path, CheckpointOptions? options = null)
    {
        SafeTensorsFile file = SafeTensorsFile.Open(path);
        try
        {
            return new CheckpointReader(file, options);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Whether the checkpoint has the tensor the model calls <paramref name="timmName"/> (in any layout).</summary>
    /// <param name="timmName">The tensor's timm name, e.g. <c>blocks.0.attn.qkv.weight</c>.</param>
    /// <returns>True when <see cref="Read"/> can find every stored part of it.</returns>
    public bool Contains(string timmName)
    {
        ArgumentNullException.ThrowIfNull(timmName);
        TensorSource? source = _names.Map(timmName);
        return source is not null && source.Names.All(n => File.TryGetTensor(n, out _));
    }

    /// <summary>
    /// The shape the model would see for <paramref name="timmName"/> (after the dialect's concatenation,
    /// transposition or reshape), or null when the checkpoint lacks it.
    /// </summary>
    /// <exception cref="VitWeightsException">The stored parts cannot be combined (e.g. mismatched query/key/value).</exception>
    internal long[]? TryGetShape(string timmName)
    {
        TensorSource? source = _names.Map(timmName);
        if (source is null) return null;
        var parts = new SafeTensorInfo[source.Names.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!File.TryGetTensor(source.Names[i], out SafeTensorInfo? part)) return null;
            parts[i] = part;
        }
        return MappedShape(timmName, source, parts);
    }

    /// <summary>The stored names of <paramref name="timmName"/> in this checkpoint's dialect, or null when it has none.</summary>
    internal IReadOnlyList<string>? StoredNames(string timmName) => _names.Map(timmName)?.Names;

    /// <summary>Whether <see cref="EnsureAllRead"/> skips the stored tensor without it being read.</summary>
    internal bool IsIgnored(string storedName)
        => _names.IsIgnoredAutomatically(storedName) || _ignoredPrefixes.Any(p => storedName.StartsWith(p, StringComparison.Ordinal));

    /// <summary>
    /// Reads the tensor the model calls <paramref name="timmName"/> into <paramref name="destination"/> as float32,
    /// after checking that its shape (after the dialect's concatenation, transposition or reshape) is exactly
    /// <paramref name="shape"/>.
    /// </summary>
    /// <param name="timmName">The tensor's timm name.</param>
    /// <param name="shape">The shape the compiled model expects.</param>
    /// <param name="destination">Receives the elements in C order; its length is the product of <paramref name="shape"/>.</param>
    /// <exception cref="VitWeightsException">The tensor is missing, has another shape, or is not a floating-point tensor.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/>'s length is not the product of <paramref name="shape"/>.</exception>
    public void Read(string timmName, ReadOnlySpan<int> shape, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(timmName);
        Int128 expectedCount = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"The expected shape {ShapeText.Format(shape)} of '{timmName}' has a negative dimension.", nameof(shape));
            expectedCount = Int128.Min(expectedCount * d, long.MaxValue);
        }
        if (expectedCount != destination.Length)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"The destination for '{timmName}' holds {destination.Length} floats but the shape {ShapeText.Format(shape)} has {expectedCount} elements."), nameof(destination));
        }

        TensorSource source = Resolve(timmName);
        var parts = new SafeTensorInfo[source.Names.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            parts[i] = File.GetTensor(source.Names[i]);
            if (!IsFloat(parts[i].DType))
            {
                throw new VitWeightsException(
                    $"tensor '{timmName}'{StoredAs(source)} in '{Path}' has dtype {DTypeName(parts[i].DType)}; weights must be F32, F16, BF16 or F64");
            }
        }

        long[] actual = MappedShape(timmName, source, parts);
        if (!SameShape(actual, shape))
        {
            throw new VitWeightsException(
                $"tensor '{timmName}' in '{Path}' has shape {ShapeText.Format(actual)} but the model expects {ShapeText.Format(shape)}{StoredAsSuffix(source, parts)}");
        }

        switch (source.Layout)
        {
            case SourceLayout.Concat:
                int offset = 0;
                foreach (SafeTensorInfo part in parts)
                {
                    int n = (int)part.ElementCount;
                    File.ReadFloat32(part.Name, destination.Slice(offset, n));
                    offset += n;
                }
                break;
            case SourceLayout.Transpose:
                int rows = (int)parts[0].Shape[0], cols = (int)parts[0].Shape[1];
                var stored = new float[destination.Length];
                File.ReadFloat32(parts[0].Name, stored);
                for (int r = 0; r < rows; r++)
                {
                    for (int c = 0; c < cols; c++) destination[c * rows + r] = stored[r * cols + c];
                }
                break;
            default:
                File.ReadFloat32(parts[0].Name, destination);
                break;
        }
        foreach (SafeTensorInfo part in parts)
        {
            _read.Add(part.Name);
            // The model keeps its own copy: drop the mapped pages so that loading does not hold the weights twice.
            File.ReleasePages(part);
        }
    }

    /// <summary>
    /// Throws when the checkpoint holds tensors that no <see cref="Read"/> consumed, other than those the dialect
    /// ignores (a CLIP text tower, a ViTModel pooler) and those under <see cref="CheckpointOptions.IgnoredPrefixes"/>.
    /// </summary>
    /// <exception cref="VitWeightsException">Some tensors were not read; the message lists them.</exception>
    public void EnsureAllRead()
    {
        var unread = File.Tensors
            .Where(t => !_read.Contains(t.Name) && !IsIgnored(t.Name))
            .ToList();
        if (unread.Count == 0) return;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"'{Path}' ({_names.DisplayName} checkpoint) has {unread.Count} unexpected tensor{(unread.Count == 1 ? "" : "s")} that the model does not use: ");
        for (int i = 0; i < Math.Min(unread.Count, MaxListed); i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(CultureInfo.InvariantCulture, $"'{unread[i].Name}' {ShapeText.Format(unread[i].Shape)}");
        }
        if (unread.Count > MaxListed) sb.Append(CultureInfo.InvariantCulture, $" and {unread.Count - MaxListed} more");
        sb.Append(". Check that the model's configuration matches the checkpoint, or list prefixes to skip in CheckpointOptions.IgnoredPrefixes.");
        throw new VitWeightsException(sb.ToString());
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => File.Dispose();

    private TensorSource Resolve(string timmName)
    {
        TensorSource? source = _names.Map(timmName);
        if (source is null)
        {
            throw new VitWeightsException(
                $"tensor '{timmName}' is missing from '{Path}': {_names.DisplayName} checkpoints have no counterpart for it");
        }
        string[] missing = source.Names.Where(n => !File.TryGetTensor(n, out _)).ToArray();
        if (missing.Length > 0)
        {
            string detail = _names.Dialect == CheckpointDialect.Timm
                ? ""
                : $" (in this {_names.DisplayName} checkpoint it would be stored as {string.Join(" + ", source.Names.Select(n => $"'{n}'"))}; missing: {string.Join(", ", missing.Select(n => $"'{n}'"))})";
            throw new VitWeightsException($"tensor '{timmName}' is missing from '{Path}'{detail}");
        }
        return source;
    }

    private long[] MappedShape(string timmName, TensorSource source, SafeTensorInfo[] parts)
    {
        switch (source.Layout)
        {
            case SourceLayout.Unsqueeze:
                var shape = new long[source.LeadingOnes + parts[0].Shape.Count];
                for (int i = 0; i < source.LeadingOnes; i++) shape[i] = 1;
                for (int i = 0; i < parts[0].Shape.Count; i++) shape[source.LeadingOnes + i] = parts[0].Shape[i];
                return shape;
            case SourceLayout.Transpose:
                if (parts[0].Shape.Count != 2)
                {
                    throw new VitWeightsException(
                        $"tensor '{timmName}' in '{Path}' is stored as '{parts[0].Name}' with shape {ShapeText.Format(parts[0].Shape)}, which is not a matrix and cannot be transposed");
                }
                return [parts[0].Shape[1], parts[0].Shape[0]];
            case SourceLayout.Concat:
                IReadOnlyList<long> first = parts[0].Shape;
                bool compatible = parts.All(p => p.Shape.Count >= 1 && p.Shape.Count == first.Count && p.Shape.Skip(1).SequenceEqual(first.Skip(1)));
                if (!compatible)
                {
                    throw new VitWeightsException(
                        $"tensor '{timmName}' in '{Path}' is stored as {string.Join(" + ", parts.Select(p => $"'{p.Name}' {ShapeText.Format(p.Shape)}"))}, which cannot be concatenated along dimension 0");
                }
                long[] result = first.ToArray();
                // Header dimensions are non-negative longs; empty parts may still claim huge first dimensions.
                long rows = 0;
                foreach (SafeTensorInfo part in parts)
                {
                    if (part.Shape[0] > long.MaxValue - rows)
                    {
                        throw new VitWeightsException(
                            $"tensor '{timmName}' in '{Path}' is stored as {string.Join(" + ", parts.Select(p => $"'{p.Name}' {ShapeText.Format(p.Shape)}"))}, whose concatenation along dimension 0 has more rows than a 64-bit integer can count");
                    }
                    rows += part.Shape[0];
                }
                result[0] = rows;
                return result;
            default:
                return parts[0].Shape.ToArray();
        }
    }

    private static bool SameShape(long[] actual, ReadOnlySpan<int> expected)
    {
        if (actual.Length != expected.Length) return false;
        for (int i = 0; i < actual.Length; i++)
        {
            if (actual[i] != expected[i]) return false;
        }
        return true;
    }

    private static bool IsFloat(SafeTensorDType dtype)
        => dtype is SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.F64;

    private static string DTypeName(SafeTensorDType dtype) => SafeTensorDTypes.ToHeaderString(dtype);

    private string StoredAs(TensorSource source)
        => _names.Dialect == CheckpointDialect.Timm ? "" : $" (stored as {string.Join(" + ", source.Names.Select(n => $"'{n}'"))})";

    private string StoredAsSuffix(TensorSource source, SafeTensorInfo[] parts)
    {
        if (_names.Dialect == CheckpointDialect.Timm) return "";
        string stored = string.Join(" + ", parts.Select(p => $"'{p.Name}' {ShapeText.Format(p.Shape)}"));
        string how = source.Layout switch
        {
            SourceLayout.Concat => ", concatenated along dimension 0",
            SourceLayout.Transpose => ", transposed",
            SourceLayout.Unsqueeze => ", with leading dimensions of 1 added",
            _ => "",
        };
        return $" (stored in this {_names.DisplayName} checkpoint as {stored}{how})";
    }
}
