using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using ViTGen.CompilerServices;
using Xunit;
using Xunit.Abstractions;
using static ViTGen.Tests.Weights.SafeTensorsWriter;

namespace ViTGen.Tests.Weights;

/// <summary>
/// Seeded random mutations of a valid file (byte flips, truncations, appended bytes, header number and token
/// edits, length-prefix edits): each mutant either loads and reads completely or fails with
/// <see cref="VitWeightsException"/>; no other exception escapes.
/// </summary>
public sealed partial class MutationFuzzTests(ITestOutputHelper output) : IDisposable
{
    private const int Iterations = 3000;

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static readonly string[] NumberReplacements =
    [
        "0", "1", "2", "3", "4", "7", "8", "24", "100", "-1", "-0", "2.5", "1e3", "1E+2", "4294967296",
        "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
        "1099511627776", "00", "\"8\"", "null", "true", "[]",
    ];

    private static readonly string[] TokenReplacements =
    [
        "\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"U8\"", "\"I64\"", "\"F4\"", "\"F6_E2M3\"", "\"BOOL\"", "\"C64\"",
        "\"F33\"", "\"\"", "\"shape\"", "\"dtype\"", "\"data_offsets\"", "\"__metadata__\"", "\"\\ud800\"", "{}", "[]",
        "[0,0]", "[1,2,3]", "null", "0", "\"x\"",
    ];

    private static readonly char[] InsertChars = ['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '-', '0', '9', 'e', '.', '\u00e9'];

    [GeneratedRegex("-?[0-9]+")]
    private static partial Regex Numbers();

    [GeneratedRegex("\"[^\"]*\"|\\[[0-9, ]*\\]")]
    private static partial Regex Tokens();

    [Fact]
    public void Random_mutations_load_or_throw_VitWeightsException()
    {
        var rng = new Random(20240517);
        var tensors = new List<RawTensor>
        {
            F32("blocks.0.attn.qkv.weight", [6, 2], RandomFloats(rng, 12)),
            F16Bits("f16", [5], [0x3C00, 0x0001, 0x7C00, 0xFE00, 0x8000]),
            BF16Bits("bf16", [2, 3], [0x3F80, 0, 0x8000, 0x7F80, 0xFFC0, 0x0001]),
            F64("f64", [3], [1.0 / 3, -1e300, double.Epsilon]),
            U8("u8", [7], [1, 2, 3, 4, 5, 6, 7]),
            I64("i64", [2], [long.MinValue, 42]),
            new RawTensor("i32", "I32", [2], new byte[8]),
            new RawTensor("f4", "F4", [4], new byte[2]),
            F32("scalar", [], [3.5f]),
            F32("empty", [0, 2], []),
        };
        byte[] valid = Build(tensors, new Dictionary<string, string> { ["format"] = "pt" }, pad: false);
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        string headerText = Encoding.UTF8.GetString(valid, 8, headerLength);
        byte[] buffer = valid[(8 + headerLength)..];
        string path = Path.Combine(_folder.Path, "mutant.safetensors");

        int accepted = 0, rejected = 0;
        var failures = new List<string>();
        var kinds = new int[7];
        for (int iteration = 0; iteration < Iterations; iteration++)
        {
            int kind = rng.Next(7);
            kinds[kind]++;
            byte[] mutant = Mutate(rng, kind, valid, headerText, buffer, out string description);
            File.WriteAllBytes(path, mutant);
            try
            {
                ReadEverything(path);
                accepted++;
            }
            catch (VitWeightsException e)
            {
                rejected++;
                if (!e.Message.Contains(path, StringComparison.Ordinal))
                {
                    failures.Add($"#{iteration} {description}: message lacks the path: {e.Message}");
                }
            }
#pragma warning disable CA1031 // the point of the test: any other exception is a failure to report
            catch (Exception e)
#pragma warning restore CA1031
            {
                failures.Add($"#{iteration} {description}: {e.GetType().Name}: {e.Message}");
            }
        }
        output.WriteLine($"{Iterations} mutants: {accepted} loaded and read, {rejected} rejected with VitWeightsException; kinds {string.Join(",", kinds)}");
        foreach (string f in failures.Take(20)) output.WriteLine(f);
        Assert.Empty(failures);
        Assert.True(rejected > Iterations / 2, "most mutants should be rejected");
        Assert.True(accepted > 0, "some mutants (e.g. flips inside tensor data) should load");
    }

    private static byte[] Mutate(Random rng, int kind, byte[] valid, string headerText, byte[] buffer, out string description)
    {
        int headerEnd = valid.Length - buffer.Length;
        switch (kind)
        {
            case 0:
            {
                byte[] m = (byte[])valid.Clone();
                int flips = rng.Next(1, 5);
                for (int i = 0; i < flips; i++) m[rng.Next(m.Length)] = (byte)rng.Next(256);
                description = $"{flips} random bytes anywhere";
                return m;
            }
            case 1:
            {
                byte[] m = (byte[])valid.Clone();
                int at = rng.Next(headerEnd);
                m[at] ^= (byte)(1 << rng.Next(8));
                description = $"bit flip at header byte {at}";
                return m;
            }
            case 2:
            {
                int length = rng.Next(valid.Length);
                description = $"truncated to {length}";
                return valid[..length];
            }
            case 3:
            {
                int extra = rng.Next(1, 17);
                var tail = new byte[extra];
                rng.NextBytes(tail);
                description = $"{extra} bytes appended";
                return [.. valid, .. tail];
            }
            case 4:
            {
                MatchCollection numbers = Numbers().Matches(headerText);
                Match target = numbers[rng.Next(numbers.Count)];
                string replacement = rng.Next(3) == 0
                    ? (long.Parse(target.Value, System.Globalization.CultureInfo.InvariantCulture) + rng.Next(-3, 4)).ToString(System.Globalization.CultureInfo.InvariantCulture)
                    : NumberReplacements[rng.Next(NumberReplacements.Length)];
                string text = headerText[..target.Index] + replacement + headerText[(target.Index + target.Length)..];
                description = $"number '{target.Value}' at {target.Index} -> '{replacement}'";
                return Rebuild(rng, text, buffer, headerText.Length);
            }
            case 5:
            {
                string text;
                if (rng.Next(2) == 0)
                {
                    MatchCollection tokens = Tokens().Matches(headerText);
                    Match target = tokens[rng.Next(tokens.Count)];
                    string replacement = TokenReplacements[rng.Next(TokenReplacements.Length)];
                    text = headerText[..target.Index] + replacement + headerText[(target.Index + target.Length)..];
                    description = $"token {target.Value} at {target.Index} -> {replacement}";
                }
                else if (rng.Next(2) == 0)
                {
                    int at = rng.Next(headerText.Length);
                    text = headerText.Remove(at, 1);
                    description = $"header char {at} deleted";
                }
                else
                {
                    int at = rng.Next(headerText.Length + 1);
                    char c = InsertChars[rng.Next(InsertChars.Length)];
                    text = headerText.Insert(at, c.ToString());
                    description = $"'{c}' inserted at header char {at}";
                }
                return Rebuild(rng, text, buffer, headerText.Length);
            }
            default:
            {
                byte[] m = (byte[])valid.Clone();
                ulong n = rng.Next(4) switch
                {
                    0 => (ulong)(headerEnd - 8 + rng.Next(-8, 9)),
                    1 => (ulong)rng.Next(0, valid.Length + 64),
                    2 => 100_000_000UL + (ulong)rng.Next(-2, 3),
                    _ => (ulong)rng.NextInt64() << rng.Next(0, 2),
                };
                BinaryPrimitives.WriteUInt64LittleEndian(m, n);
                description = $"header length set to {n}";
                return m;
            }
        }
    }

    /// <summary>The edited header with the buffer; the length prefix is usually the new length, sometimes the old one.</summary>
    private static byte[] Rebuild(Random rng, string text, byte[] buffer, int oldLength)
    {
        byte[] header = Encoding.UTF8.GetBytes(text);
        ulong prefix = rng.Next(5) == 0 ? (ulong)oldLength : (ulong)header.Length;
        return Raw(prefix, header, buffer);
    }

    private static void ReadEverything(string path)
    {
        using (var file = SafeTensorsFile.Open(path))
        {
            foreach (SafeTensorInfo t in file.Tensors)
            {
                Assert.Equal(t.ByteLength, file.GetBytes(t).Length);
                switch (t.DType)
                {
                    case SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.F64:
                        file.ReadFloat32(t.Name, new float[t.ElementCount]);
                        file.ReadFloat64(t.Name, new double[t.ElementCount]);
                        break;
                    case SafeTensorDType.U8:
                        Assert.Equal(t.ElementCount, file.ReadBytes(t.Name).Length);
                        break;
                    case SafeTensorDType.I64:
                        Assert.Equal(t.ElementCount, file.ReadInt64(t.Name).Length);
                        break;
                    default:
                        break;
                }
            }
        }

        using var reader = CheckpointReader.Open(path);
        foreach (SafeTensorInfo t in reader.File.Tensors)
        {
            if (t.DType is not (SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.F64)) continue;
            if (t.Shape.Any(d => d > int.MaxValue)) continue;
            int[] shape = t.Shape.Select(d => (int)d).ToArray();
            if (reader.Contains(t.Name)) reader.Read(t.Name, shape, new float[t.ElementCount]);
        }
    }
}
