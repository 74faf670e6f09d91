using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace ViTGen;

/// <summary>
/// Parses and validates a safetensors header with the rules of the reference reader
/// (huggingface/safetensors <c>tensor.rs</c>), reporting every problem as a <see cref="VitWeightsException"/>.
/// </summary>
internal static class SafeTensorsHeader
{
    /// <summary>The largest header the reference reader accepts (its <c>MAX_HEADER_SIZE</c>).</summary>
    public const long MaxHeaderLength = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>The parsed header: tensors in ordinal name order and the string metadata.</summary>
    public sealed record Parsed(SafeTensorInfo[] Tensors, Dictionary<string, string> Metadata);

    private readonly record struct Entry(string Name, SafeTensorDType DType, long[] Shape, long Begin, long End);

    public static VitWeightsException Error(string path, string message, Exception? inner = null)
    {
        string text = $"Invalid safetensors file '{path}': {message}";
        return inner is null ? new VitWeightsException(text) : new VitWeightsException(text, inner);
    }

    /// <summary>Checks that a file of <paramref name="fileLength"/> bytes can hold the 8-byte header length that starts a safetensors file.</summary>
    public static void CheckFileLength(string path, long fileLength)
    {
        if (fileLength < 8)
        {
            throw Error(path, Inv($"the file is {fileLength} bytes long, too short for the 8-byte header length that starts a safetensors file"));
        }
    }

    /// <summary>Checks the header length read from file bytes 0..8 against the limit and the file's length; returns it.</summary>
    public static int CheckHeaderLength(string path, ulong headerLength, long fileLength)
    {
        if (headerLength > MaxHeaderLength)
        {
            throw Error(path, Inv($"the header length (file bytes 0..8) is {headerLength}, more than the {MaxHeaderLength} bytes safetensors allows"));
        }
        if (headerLength + 8 > (ulong)fileLength)
        {
            throw Error(path, Inv($"the header length is {headerLength}, so the header would end at file offset {headerLength + 8}, past the end of the {fileLength}-byte file"));
        }
        return (int)headerLength;
    }

    /// <summary>Parses the header bytes (the N bytes after the length prefix) of a file of <paramref name="fileLength"/> bytes.</summary>
    public static Parsed Parse(string path, byte[] header, long fileLength)
    {
        long bufferStart = 8L + header.Length;
        if (!Utf8.IsValid(header))
        {
            int at = FirstInvalidUtf8(header);
            throw Error(path, Inv($"the header is not valid UTF-8: invalid sequence starting with byte 0x{header[at]:X2} at file offset {8L + at} (header is file bytes 8..{bufferStart})"));
        }
        if (header.Length >= 3 && header[0] == 0xEF && header[1] == 0xBB && header[2] == 0xBF)
        {
            throw Error(path, "the header is not valid JSON: it starts with a UTF-8 byte order mark (file offset 8)");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 128 });
        }
        catch (JsonException e)
        {
            throw Error(path, Inv($"the header (file bytes 8..{bufferStart}) is not valid JSON: {e.Message}"), e);
        }

        var entries = new List<Entry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        Dictionary<string, string>? metadata = null;
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Error(path, $"the header must be a JSON object mapping tensor names to entries, but it is a JSON {Kind(root.ValueKind)}");
            }
            try
            {
                foreach (JsonProperty property in root.EnumerateObject())
                {
                    string name = property.Name;
                    if (name == MetadataKey)
                    {
                        if (metadata is not null)
                        {
                            throw Error(path, "the header has two '__metadata__' entries");
                        }
                        metadata = ParseMetadata(path, property.Value);
                        continue;
                    }
                    if (!names.Add(name))
                    {
                        throw Error(path, $"tensor '{name}' is declared twice in the header");
                    }
                    entries.Add(ParseEntry(path, name, property.Value));
                }
            }
            catch (InvalidOperationException e)
            {
                throw Error(path, $"the header contains a JSON string that is not valid Unicode (a lone surrogate escape): {e.Message}", e);
            }
        }

        SafeTensorInfo[] tensors = Validate(path, entries, bufferStart, fileLength);
        return new Parsed(tensors, metadata ?? new Dictionary<string, string>(StringComparer.Ordinal));
    }

    private static SafeTensorInfo[] Validate(string path, List<Entry> entries, long bufferStart, long fileLength)
    {
        // The reference sorts by (begin, end) and requires the tensors to tile the buffer from 0.
        Entry[] sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToArray();
        var infos = new SafeTensorInfo[sorted.Length];
        long start = 0;
        string? previous = null;
        for (int i = 0; i < sorted.Length; i++)
        {
            Entry e = sorted[i];
            if (e.End < e.Begin)
            {
                throw Error(path, Inv($"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] end before they begin"));
            }
            if (e.Begin != start)
            {
                if (previous is null)
                {
                    throw Error(path, Inv($"tensor '{e.Name}' is the first tensor in the data buffer but starts at buffer offset {e.Begin} (file offset {bufferStart + e.Begin}); the data must start at offset 0"));
                }
                if (e.Begin > start)
                {
                    throw Error(path, Inv($"tensor '{e.Name}' starts at buffer offset {e.Begin} but the previous tensor '{previous}' ends at {start}: a gap of {e.Begin - start} bytes"));
                }
                throw Error(path, Inv($"tensor '{e.Name}' starts at buffer offset {e.Begin}, inside the previous tensor '{previous}' which ends at {start}: the tensors overlap by {start - e.Begin} bytes"));
            }
            start = e.End;
            previous = e.Name;

            ulong count = 1;
            foreach (long d in e.Shape)
            {
                ulong product = count * (ulong)d;
                if (d != 0 && product / (ulong)d != count)
                {
                    throw Error(path, $"tensor '{e.Name}': the element count of shape {ShapeText.Format(e.Shape)} overflows a 64-bit integer");
                }
                count = product;
            }
            int bits = SafeTensorDTypes.BitSize(e.DType);
            string dtypeName = SafeTensorDTypes.ToHeaderString(e.DType);
            ulong totalBits = count * (ulong)bits;
            if (count != 0 && totalBits / count != (ulong)bits)
            {
                throw Error(path, Inv($"tensor '{e.Name}': shape {ShapeText.Format(e.Shape)} of dtype {dtypeName} has {count} elements, whose size overflows a 64-bit integer"));
            }
            if (totalBits % 8 != 0)
            {
                throw Error(path, Inv($"tensor '{e.Name}': shape {ShapeText.Format(e.Shape)} of sub-byte dtype {dtypeName} has {count} elements of {bits} bits, which do not fill a whole number of bytes"));
            }
            ulong bytes = totalBits / 8;
            long span = e.End - e.Begin;
            if ((ulong)span != bytes)
            {
                string unit = bits % 8 == 0 ? Inv($"{bits / 8} bytes") : Inv($"{bits} bits");
                throw Error(path, Inv($"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] span {span} bytes but shape {ShapeText.Format(e.Shape)} of dtype {dtypeName} needs {bytes} bytes ({count} elements x {unit})"));
            }
            if (count > long.MaxValue)
            {
                throw Error(path, Inv($"tensor '{e.Name}': shape {ShapeText.Format(e.Shape)} has {count} elements, more than this reader supports"));
            }
            infos[i] = new SafeTensorInfo(e.Name, e.DType, e.Shape, (long)count, e.Begin, e.End, bufferStart + e.Begin);
        }

        // The buffer must end exactly at the end of the file (MetadataIncompleteBuffer otherwise).
        ulong expectedLength = (ulong)bufferStart + (ulong)start;
        ulong actualLength = (ulong)fileLength;
        if (expectedLength != actualLength)
        {
            string last = previous is null ? "the header declares no tensor data, so the file should end at the header" : $"the last tensor '{previous}' ends at buffer offset {start} (file offset {expectedLength})";
            if (expectedLength > actualLength)
            {
                throw Error(path, Inv($"the file is truncated: {last} but the file is only {fileLength} bytes long ({expectedLength - actualLength} bytes missing)"));
            }
            throw Error(path, Inv($"the file has {actualLength - expectedLength} trailing bytes: {last} but the file is {fileLength} bytes long"));
        }

        Array.Sort(infos, (a, b) => string.CompareOrdinal(a.Name, b.Name));
        return infos;
    }

    private static Entry ParseEntry(string path, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Error(path, $"tensor '{name}': its header entry must be an object with dtype, shape and data_offsets, but it is a JSON {Kind(value.ValueKind)}");
        }
        JsonElement? dtype = null, shape = null, offsets = null;
        foreach (JsonProperty field in value.EnumerateObject())
        {
            switch (field.Name)
            {
                case "dtype": dtype = Once(path, name, field, dtype); break;
                case "shape": shape = Once(path, name, field, shape); break;
                case "data_offsets": offsets = Once(path, name, field, offsets); break;
                default: break; // unknown fields are ignored, as serde does
            }
        }
        if (dtype is null) throw Error(path, $"tensor '{name}': its header entry has no 'dtype'");
        if (shape is null) throw Error(path, $"tensor '{name}': its header entry has no 'shape'");
        if (offsets is null) throw Error(path, $"tensor '{name}': its header entry has no 'data_offsets'");

        JsonElement dtypeValue = dtype.Value;
        if (dtypeValue.ValueKind != JsonValueKind.String)
        {
            throw Error(path, $"tensor '{name}': 'dtype' must be a string, but it is a JSON {Kind(dtypeValue.ValueKind)}");
        }
        string dtypeText = dtypeValue.GetString()!;
        if (!SafeTensorDTypes.TryParse(dtypeText, out SafeTensorDType parsedDType))
        {
            throw Error(path, $"tensor '{name}': unknown dtype '{dtypeText}'");
        }

        JsonElement shapeValue = shape.Value;
        if (shapeValue.ValueKind != JsonValueKind.Array)
        {
            throw Error(path, $"tensor '{name}': 'shape' must be an array of non-negative integers, but it is a JSON {Kind(shapeValue.ValueKind)}");
        }
        var dims = new long[shapeValue.GetArrayLength()];
        int index = 0;
        foreach (JsonElement d in shapeValue.EnumerateArray())
        {
            dims[index] = NonNegative(path, name, Inv($"dimension {index} of 'shape'"), d);
            index++;
        }

        JsonElement offsetsValue = offsets.Value;
        if (offsetsValue.ValueKind != JsonValueKind.Array || offsetsValue.GetArrayLength() != 2)
        {
            string what = offsetsValue.ValueKind == JsonValueKind.Array
                ? Inv($"an array of {offsetsValue.GetArrayLength()} elements")
                : "a JSON " + Kind(offsetsValue.ValueKind);
            throw Error(path, $"tensor '{name}': 'data_offsets' must be two non-negative integers [begin, end], but it is {what}");
        }
        long begin = NonNegative(path, name, "data_offsets[0]", offsetsValue[0]);
        long end = NonNegative(path, name, "data_offsets[1]", offsetsValue[1]);
        return new Entry(name, parsedDType, dims, begin, end);
    }

    private static JsonElement Once(string path, string name, JsonProperty field, JsonElement? existing)
    {
        if (existing is not null)
        {
            throw Error(path, $"tensor '{name}': its header entry has two '{field.Name}' fields");
        }
        return field.Value;
    }

    private static long NonNegative(string path, string name, string what, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Number)
        {
            throw Error(path, $"tensor '{name}': {what} must be a non-negative integer, but it is a JSON {Kind(value.ValueKind)}");
        }
        if (value.TryGetUInt64(out ulong u))
        {
            if (u > long.MaxValue)
            {
                throw Error(path, Inv($"tensor '{name}': {what} is {u}, too big (the limit is {long.MaxValue})"));
            }
            return (long)u;
        }
        string raw = value.GetRawText();
        if (value.TryGetInt64(out long negative) && negative < 0)
        {
            throw Error(path, $"tensor '{name}': {what} is negative ({raw})");
        }
        if (value.TryGetDouble(out double d) && double.IsFinite(d) && d == Math.Floor(d) && !raw.Contains('.', StringComparison.Ordinal) && !raw.Contains('e', StringComparison.OrdinalIgnoreCase))
        {
            // An integer literal outside the 64-bit range.
            throw Error(path, $"tensor '{name}': {what} is {(raw.StartsWith('-') ? "negative" : "too big")} ({raw})");
        }
        throw Error(path, $"tensor '{name}': {what} is not an integer ({raw})");
    }

    private static Dictionary<string, string> ParseMetadata(string path, JsonElement value)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (value.ValueKind == JsonValueKind.Null)
        {
            return result;
        }
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Error(path, $"'__metadata__' must be an object mapping strings to strings, but it is a JSON {Kind(value.ValueKind)}");
        }
        foreach (JsonProperty p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
            {
                throw Error(path, $"'__metadata__' entry '{p.Name}' must be a string, but it is a JSON {Kind(p.Value.ValueKind)}");
            }
            if (!result.TryAdd(p.Name, p.Value.GetString()!))
            {
                result[p.Name] = p.Value.GetString()!; // serde's HashMap keeps the last value
            }
        }
        return result;
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int i = 0;
        while (i < bytes.Length)
        {
            if (Rune.DecodeFromUtf8(bytes[i..], out _, out int consumed) != System.Buffers.OperationStatus.Done)
            {
                return i;
            }
            i += consumed;
        }
        return 0;
    }

    private static string Kind(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "value",
    };

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
