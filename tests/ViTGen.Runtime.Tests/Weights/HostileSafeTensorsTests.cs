using Xunit;
using Xunit.Abstractions;
using static ViTGen.Tests.Weights.SafeTensorsWriter;

namespace ViTGen.Tests.Weights;

/// <summary>
/// The hostile corpus: every malformed file is rejected with a <see cref="VitWeightsException"/> whose message
/// names the file, the tensor where there is one, and the numbers involved.
/// </summary>
public sealed class HostileSafeTensorsTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>One hostile case: the file, what the message must contain, and (for files that open) the failing call.</summary>
    private sealed record Case(byte[] Bytes, string[] Expected, Action<SafeTensorsFile>? Act = null);

    private const string A = "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}";
    private const string B = "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]}";

    private static string Entry(string name, string dtype, string shape, string offsets)
        => $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":{offsets}}}";

    private static Case Header(string json, int bufferLength, params string[] expected)
        => new(FromHeader(json, new byte[bufferLength]), expected);

    private static byte[] HeaderBytes(byte[] header, int bufferLength) => Raw((ulong)header.Length, header, new byte[bufferLength]);

    private static readonly Dictionary<string, Func<Case>> Cases = new()
    {
        ["empty file"] = () => new([], ["0 bytes long"]),
        ["seven bytes"] = () => new([8, 0, 0, 0, 0, 0, 0], ["7 bytes long"]),
        ["header length above 100,000,000"] = () => new(Raw(100_000_001, "{}"u8.ToArray(), []), ["100000001", "100000000"]),
        ["header length u64 max"] = () => new(Raw(ulong.MaxValue, "{}"u8.ToArray(), []), ["18446744073709551615"]),
        ["header length past the end"] = () => new(Raw(1000, "{}"u8.ToArray(), []), ["1000", "1008", "10-byte file"]),
        ["header length one short"] = () => new(Raw(1, "{}"u8.ToArray(), []), ["not valid JSON"]),
        ["header length zero"] = () => new(Raw(0, [], []), ["not valid JSON"]),
        ["invalid UTF-8"] = () => new(HeaderBytes([.. "{\"a"u8, 0xFF, .. "\":1}"u8], 0), ["UTF-8", "0xFF", "file offset 11"]),
        ["overlong UTF-8"] = () => new(HeaderBytes([.. "{\""u8, 0xC0, 0x80, .. "\":1}"u8], 0), ["UTF-8", "0xC0", "file offset 10"]),
        ["UTF-8 byte order mark"] = () => new(HeaderBytes([0xEF, 0xBB, 0xBF, .. "{}"u8], 0), ["byte order mark"]),
        ["invalid JSON"] = () => Header("{\"a\": ", 0, "not valid JSON"),
        ["trailing comma"] = () => Header("{" + A + "," + B + ",}", 32, "not valid JSON"),
        ["JSON comment"] = () => Header("{/* c */" + A + "," + B + "}", 32, "not valid JSON"),
        ["two JSON values"] = () => Header("{" + A + "," + B + "} {}", 32, "not valid JSON"),
        ["JSON array"] = () => Header("[]", 0, "JSON object", "array"),
        ["JSON number"] = () => Header("42", 0, "JSON object", "number"),
        ["entry not an object"] = () => Header("{\"a\":[0,24]}", 0, "'a'", "array"),
        ["entry is a string"] = () => Header("{\"a\":\"F32\"}", 0, "'a'", "string"),
        ["missing dtype"] = () => Header("{\"a\":{\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, "'a'", "no 'dtype'"),
        ["missing shape"] = () => Header("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,24]}}", 24, "'a'", "no 'shape'"),
        ["missing data_offsets"] = () => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3]}}", 24, "'a'", "no 'data_offsets'"),
        ["unknown dtype"] = () => Header("{" + Entry("a", "F31", "[2,3]", "[0,24]") + "}", 24, "'a'", "unknown dtype 'F31'"),
        ["lower-case dtype"] = () => Header("{" + Entry("a", "f32", "[2,3]", "[0,24]") + "}", 24, "'a'", "unknown dtype 'f32'"),
        ["dtype not a string"] = () => Header("{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'a'", "'dtype'", "number"),
        ["negative dimension"] = () => Header("{" + Entry("a", "F32", "[-2,3]", "[0,24]") + "}", 24, "'a'", "dimension 0", "negative (-2)"),
        ["fractional dimension"] = () => Header("{" + Entry("a", "F32", "[2,2.5]", "[0,20]") + "}", 20, "'a'", "dimension 1", "not an integer (2.5)"),
        ["exponent dimension"] = () => Header("{" + Entry("a", "F32", "[2e0,3]", "[0,24]") + "}", 24, "'a'", "not an integer (2e0)"),
        ["string dimension"] = () => Header("{" + Entry("a", "F32", "[\"2\",3]", "[0,24]") + "}", 24, "'a'", "dimension 0", "string"),
        ["shape not an array"] = () => Header("{" + Entry("a", "F32", "6", "[0,24]") + "}", 24, "'a'", "'shape'", "number"),
        ["dimension above i64"] = () => Header("{" + Entry("a", "F32", "[9223372036854775808]", "[0,24]") + "}", 24, "'a'", "9223372036854775808", "too big"),
        ["dimension above u64"] = () => Header("{" + Entry("a", "F32", "[100000000000000000000]", "[0,24]") + "}", 24, "'a'", "100000000000000000000", "too big"),
        ["shape overflow 2^40 x 2^40"] = () => Header("{" + Entry("a", "F32", "[1099511627776,1099511627776]", "[0,24]") + "}", 24, "'a'", "[1099511627776, 1099511627776]", "overflows"),
        ["byte size overflow"] = () => Header("{" + Entry("a", "F64", "[1152921504606846976,2]", "[0,24]") + "}", 24, "'a'", "overflows"),
        ["three data_offsets"] = () => Header("{" + Entry("a", "F32", "[2,3]", "[0,24,24]") + "}", 24, "'a'", "data_offsets", "3 elements"),
        ["data_offsets an object"] = () => Header("{" + Entry("a", "F32", "[2,3]", "{\"begin\":0}") + "}", 24, "'a'", "data_offsets", "object"),
        ["negative offset"] = () => Header("{" + Entry("a", "F32", "[2,3]", "[-1,23]") + "}", 24, "'a'", "data_offsets[0]", "negative (-1)"),
        ["fractional offset"] = () => Header("{" + Entry("a", "F32", "[2,3]", "[0,24.0]") + "}", 24, "'a'", "data_offsets[1]", "not an integer"),
        ["offset above i64"] = () => Header("{" + Entry("a", "F32", "[2,3]", "[0,9223372036854775808]") + "}", 24, "'a'", "too big"),
        ["reversed offsets"] = () => Header("{" + Entry("a", "F32", "[2,3]", "[24,0]") + "," + Entry("b", "F16", "[4]", "[0,8]") + "}", 32, "'a'", "[24, 0]", "end before they begin"),
        ["offsets not from zero"] = () => Header("{" + Entry("a", "F32", "[2,3]", "[4,28]") + "," + Entry("b", "F16", "[4]", "[28,36]") + "}", 36, "'a'", "buffer offset 4", "must start at offset 0"),
        ["gap between tensors"] = () => Header("{" + A + "," + Entry("b", "F16", "[4]", "[28,36]") + "}", 36, "'b'", "'a'", "ends at 24", "gap of 4 bytes"),
        ["overlapping tensors"] = () => Header("{" + A + "," + Entry("b", "F16", "[4]", "[20,28]") + "}", 28, "'b'", "'a'", "overlap by 4 bytes"),
        ["two tensors on one range"] = () => Header("{" + A + "," + Entry("c", "F32", "[6]", "[0,24]") + "}", 24, "overlap by 24 bytes"),
        ["offsets past the end"] = () => Header("{" + A + "," + B + "}", 28, "'b'", "truncated", "4 bytes missing"),
        ["size mismatch"] = () => Header("{" + Entry("a", "F32", "[2,3]", "[0,20]") + "," + Entry("b", "F16", "[4]", "[20,28]") + "}", 28, "'a'", "span 20 bytes", "needs 24 bytes", "6 elements x 4 bytes"),
        ["sub-byte misaligned"] = () => Header("{" + Entry("a", "F4", "[3]", "[0,1]") + "}", 1, "'a'", "F4", "whole number of bytes"),
        ["trailing bytes"] = () => Header("{" + A + "," + B + "}", 36, "4 trailing bytes", "'b'", "file offset"),
        ["trailing bytes, no tensors"] = () => Header("{}", 3, "3 trailing bytes", "no tensor data"),
        ["metadata a number"] = () => Header("{\"__metadata__\":5," + A + "," + B + "}", 32, "__metadata__", "number"),
        ["metadata value a number"] = () => Header("{\"__metadata__\":{\"epoch\":3}," + A + "," + B + "}", 32, "__metadata__", "'epoch'", "number"),
        ["metadata twice"] = () => Header("{\"__metadata__\":{},\"__metadata__\":{}," + A + "," + B + "}", 32, "__metadata__", "two"),
        ["duplicate tensor"] = () => Header("{" + A + "," + A + "," + B + "}", 32, "'a'", "declared twice"),
        ["duplicate field"] = () => Header("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,24]}," + B + "}", 32, "'a'", "two 'dtype' fields"),
        ["lone surrogate in a name"] = () => Header("{\"a\\ud800\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, "Unicode"),
        ["deep nesting"] = () => Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24],\"x\":" + new string('[', 300) + new string(']', 300) + "}}", 24, "not valid JSON"),
        ["I64 read as float32"] = () => new(Build([I64("n", [2], [1, 2])]), ["'n'", "I64", "float32"], f => f.ReadFloat32("n", new float[2])),
        ["I32 read as float64"] = () => new(Build([new RawTensor("n", "I32", [2], new byte[8])]), ["'n'", "I32", "float64"], f => f.ReadFloat64("n", new double[2])),
        ["U8 read as float32"] = () => new(Build([U8("n", [2], [1, 2])]), ["'n'", "U8", "float32"], f => f.ReadFloat32("n", new float[2])),
        ["F8_E4M3 read as float32"] = () => new(Build([new RawTensor("n", "F8_E4M3", [2], new byte[2])]), ["'n'", "F8_E4M3", "float32"], f => f.ReadFloat32("n", new float[2])),
        ["F32 read as U8"] = () => new(Build([F32("n", [2], [1, 2])]), ["'n'", "F32", "U8"], f => f.ReadBytes("n")),
        ["F32 read as I64"] = () => new(Build([F32("n", [2], [1, 2])]), ["'n'", "F32", "I64"], f => f.ReadInt64("n")),
        ["destination too short"] = () => new(Build([F32("n", [2, 3], new float[6])]), ["'n'", "6 elements", "[2, 3]", "holds 5"], f => f.ReadFloat32("n", new float[5])),
        ["destination too long"] = () => new(Build([F16Bits("n", [2, 3], new ushort[6])]), ["'n'", "6 elements", "holds 7"], f => f.ReadFloat64("n", new double[7])),
        ["missing tensor"] = () => new(Build([F32("n", [2], [1, 2])]), ["'nope'", "no tensor"], f => f.ReadFloat32("nope", new float[2])),
    };

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (string name in Cases.Keys) data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Hostile_file_is_rejected_with_a_precise_message(string caseName)
    {
        Case c = Cases[caseName]();
        string path = _folder.Write(c.Bytes);
        VitWeightsException e;
        if (c.Act is null)
        {
            e = Assert.Throws<VitWeightsException>(() => SafeTensorsFile.Open(path).Dispose());
        }
        else
        {
            using var file = SafeTensorsFile.Open(path);
            e = Assert.Throws<VitWeightsException>(() => c.Act(file));
        }
        output.WriteLine($"{caseName}: {e.Message}");
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        foreach (string expected in c.Expected)
        {
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Truncation_at_every_offset_is_rejected()
    {
        byte[] valid = Build(
            [F32("a", [2, 3], [1, 2, 3, 4, 5, 6]), F16Bits("b", [4], [1, 2, 3, 4]), U8("c", [3], [1, 2, 3])],
            new Dictionary<string, string> { ["format"] = "pt" });
        using (SafeTensorsFile.Open(_folder.Write(valid)))
        {
        }
        string path = Path.Combine(_folder.Path, "truncated.safetensors");
        var messages = new HashSet<string>();
        for (int length = 0; length < valid.Length; length++)
        {
            File.WriteAllBytes(path, valid.AsSpan(0, length).ToArray());
            var e = Assert.Throws<VitWeightsException>(() => SafeTensorsFile.Open(path).Dispose());
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            messages.Add(e.Message.Replace(path, "<file>", StringComparison.Ordinal));
        }
        foreach (string m in messages.Take(8)) output.WriteLine(m);
        // Inside the buffer the message says how many bytes are missing.
        File.WriteAllBytes(path, valid.AsSpan(0, valid.Length - 5).ToArray());
        var last = Assert.Throws<VitWeightsException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.Contains("5 bytes missing", last.Message, StringComparison.Ordinal);
        Assert.Contains("'c'", last.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unopenable_paths_throw_VitWeightsException()
    {
        string missing = Path.Combine(_folder.Path, "does-not-exist.safetensors");
        var e = Assert.Throws<VitWeightsException>(() => SafeTensorsFile.Open(missing));
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VitWeightsException>(() => SafeTensorsFile.Open(_folder.Path));
        Assert.Contains(_folder.Path, e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => SafeTensorsFile.Open(null!));
        output.WriteLine(e.Message);
    }

    [Fact]
    public void Header_of_exactly_the_maximum_length_is_parsed()
    {
        // 100,000,000 bytes of header are allowed: a valid JSON object padded with spaces.
        var header = new byte[100_000_000];
        header.AsSpan().Fill((byte)' ');
        "{}"u8.CopyTo(header);
        using var file = SafeTensorsFile.Open(_folder.Write(Raw((ulong)header.Length, header, [])));
        Assert.Empty(file.Tensors);
    }
}
