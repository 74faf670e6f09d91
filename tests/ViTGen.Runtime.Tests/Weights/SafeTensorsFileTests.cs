using System.Buffers.Binary;
using Xunit;
using static ViTGen.Tests.Weights.SafeTensorsWriter;

namespace ViTGen.Tests.Weights;

/// <summary>Valid files: layout, metadata, and exact dtype conversions.</summary>
public sealed class SafeTensorsFileTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Opens_a_valid_file_and_reports_its_layout()
    {
        float[] a = [1, 2, 3, 4, 5, 6];
        byte[] bytes = Build(
            [F32("zeta", [2, 3], a), U8("alpha", [3], [7, 8, 9]), I64("mid", [2], [-5, long.MaxValue]), F32("scalar", [], [42f]), F32("empty", [0, 4], [])],
            new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode" });
        string path = _folder.Write(bytes);
        using var file = SafeTensorsFile.Open(path);

        Assert.Equal(path, file.Path);
        Assert.Equal(bytes.Length, file.Length);
        Assert.Equal(["alpha", "empty", "mid", "scalar", "zeta"], file.Tensors.Select(t => t.Name));
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("ünïcode", file.Metadata["note"]);

        long bufferStart = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.True(file.TryGetTensor("zeta", out SafeTensorInfo? zeta));
        Assert.Equal(SafeTensorDType.F32, zeta.DType);
        Assert.Equal([2L, 3L], zeta.Shape);
        Assert.Equal(6, zeta.ElementCount);
        Assert.Equal(0, zeta.DataBegin);
        Assert.Equal(24, zeta.DataEnd);
        Assert.Equal(bufferStart, zeta.FileOffset);
        Assert.Equal(bytes.AsSpan((int)bufferStart, 24).ToArray(), file.GetBytes(zeta).ToArray());

        var floats = new float[6];
        file.ReadFloat32("zeta", floats);
        Assert.Equal(a, floats);
        var doubles = new double[6];
        file.ReadFloat64("zeta", doubles);
        Assert.Equal(a.Select(x => (double)x), doubles);

        Assert.Equal([7, 8, 9], file.ReadBytes("alpha"));
        Assert.Equal([-5L, long.MaxValue], file.ReadInt64("mid"));

        Assert.True(file.TryGetTensor("scalar", out SafeTensorInfo? scalar));
        Assert.Empty(scalar.Shape);
        Assert.Equal(1, scalar.ElementCount);
        var one = new float[1];
        file.ReadFloat32("scalar", one);
        Assert.Equal(42f, one[0]);

        Assert.True(file.TryGetTensor("empty", out SafeTensorInfo? empty));
        Assert.Equal(0, empty.ElementCount);
        file.ReadFloat32("empty", Span<float>.Empty);
        Assert.False(file.TryGetTensor("missing", out _));
    }

    [Fact]
    public void Header_need_not_be_padded_and_data_need_not_be_aligned()
    {
        var rng = new Random(7);
        float[] values = RandomFloats(rng, 37);
        double[] wide = Enumerable.Range(0, 5).Select(i => rng.NextDouble()).ToArray();
        // A 1-byte tensor first, so the F32 and F64 data start at odd file offsets.
        string path = _folder.Write(Build([U8("a", [1], [1]), F32("b", [37], values), F64("c", [5], wide)], pad: false));
        using var file = SafeTensorsFile.Open(path);
        Assert.True(file.TryGetTensor("b", out SafeTensorInfo? b));
        Assert.True(b.FileOffset % 4 != 0 || file.Tensors.Count == 3);
        var read = new float[37];
        file.ReadFloat32("b", read);
        Assert.Equal(values, read);
        var readWide = new double[5];
        file.ReadFloat64("c", readWide);
        Assert.Equal(wide, readWide);
    }

    [Fact]
    public void Empty_header_and_null_metadata_are_valid()
    {
        using (var file = SafeTensorsFile.Open(_folder.Write(FromHeader("{}", []))))
        {
            Assert.Empty(file.Tensors);
            Assert.Empty(file.Metadata);
        }
        using (var file = SafeTensorsFile.Open(_folder.Write(FromHeader("  {\"__metadata__\": null}        ", []))))
        {
            Assert.Empty(file.Metadata);
        }
        // Offsets out of name order, unknown extra fields and tensors sharing an empty range are all fine.
        string header = """{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8],"extra":[1,{"x":null}]},"a":{"shape":[1],"dtype":"F32","data_offsets":[0,4]},"z":{"dtype":"F16","shape":[0],"data_offsets":[8,8]}}""";
        using (var file = SafeTensorsFile.Open(_folder.Write(FromHeader(header, [0, 0, 128, 63, 0, 0, 0, 64]))))
        {
            var x = new float[1];
            file.ReadFloat32("a", x);
            Assert.Equal(1f, x[0]);
            file.ReadFloat32("b", x);
            Assert.Equal(2f, x[0]);
        }
    }

    [Fact]
    public void F16_converts_every_bit_pattern_exactly()
    {
        ushort[] bits = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        using var file = SafeTensorsFile.Open(_folder.Write(Build([F16Bits("h", [256, 256], bits)])));
        var floats = new float[65536];
        var doubles = new double[65536];
        file.ReadFloat32("h", floats);
        file.ReadFloat64("h", doubles);
        for (int i = 0; i < 65536; i++)
        {
            Half h = BitConverter.UInt16BitsToHalf((ushort)i);
            float expected = (float)h;
            if (float.IsNaN(expected))
            {
                Assert.True(float.IsNaN(floats[i]), $"0x{i:X4}");
                Assert.Equal(float.IsNegative(expected), float.IsNegative(floats[i]));
                Assert.True(double.IsNaN(doubles[i]), $"0x{i:X4}");
            }
            else
            {
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(floats[i]), $"0x{i:X4}: {expected} vs {floats[i]}");
                Assert.True(BitConverter.DoubleToInt64Bits((double)h) == BitConverter.DoubleToInt64Bits(doubles[i]), $"0x{i:X4}");
            }
        }
        // Named landmarks: smallest subnormal, largest subnormal, negative zero, infinities, a NaN.
        Assert.Equal(MathF.Pow(2, -24), floats[0x0001]);
        Assert.Equal(1023 * MathF.Pow(2, -24), floats[0x03FF]);
        Assert.Equal(BitConverter.SingleToInt32Bits(-0f), BitConverter.SingleToInt32Bits(floats[0x8000]));
        Assert.Equal(float.PositiveInfinity, floats[0x7C00]);
        Assert.Equal(float.NegativeInfinity, floats[0xFC00]);
        Assert.True(float.IsNaN(floats[0x7E00]));
        Assert.Equal(65504f, floats[0x7BFF]);
        Assert.Equal(1f, floats[0x3C00]);
    }

    [Fact]
    public void BF16_converts_every_bit_pattern_exactly()
    {
        // 65536 patterns plus 37 more so the vector loop leaves a scalar tail.
        ushort[] bits = Enumerable.Range(0, 65536 + 37).Select(i => (ushort)i).ToArray();
        using var file = SafeTensorsFile.Open(_folder.Write(Build([U8("pad", [1], [0]), BF16Bits("b", [bits.Length], bits)])));
        var floats = new float[bits.Length];
        file.ReadFloat32("b", floats);
        var doubles = new double[bits.Length];
        file.ReadFloat64("b", doubles);
        for (int i = 0; i < bits.Length; i++)
        {
            int expected = bits[i] << 16;
            Assert.True(expected == BitConverter.SingleToInt32Bits(floats[i]), $"0x{bits[i]:X4}");
            float f = BitConverter.Int32BitsToSingle(expected);
            Assert.True(float.IsNaN(f) ? double.IsNaN(doubles[i]) : doubles[i] == f && double.IsNegative(doubles[i]) == float.IsNegative(f), $"0x{bits[i]:X4}");
        }
        Assert.Equal(1f, floats[0x3F80]);
        Assert.Equal(-2f, floats[0xC000]);
    }

    [Fact]
    public void F64_narrows_to_the_nearest_float()
    {
        double[] values =
        [
            0, -0.0, 1.0 / 3, -2.5, 1e300, -1e300, 1e-300, double.Epsilon, double.NaN, double.PositiveInfinity,
            double.NegativeInfinity, float.MaxValue, (double)float.MaxValue * (1 + 1e-9), 1 + Math.Pow(2, -24), 1 + 3 * Math.Pow(2, -24),
            Math.Pow(2, -149), Math.Pow(2, -150), Math.Pow(2, -150) * 1.5, 123456789.123456789,
        ];
        using var file = SafeTensorsFile.Open(_folder.Write(Build([F64("d", [values.Length], values)])));
        var floats = new float[values.Length];
        file.ReadFloat32("d", floats);
        var doubles = new double[values.Length];
        file.ReadFloat64("d", doubles);
        for (int i = 0; i < values.Length; i++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits((float)values[i]), BitConverter.SingleToInt32Bits(floats[i]));
            Assert.Equal(BitConverter.DoubleToInt64Bits(values[i]), BitConverter.DoubleToInt64Bits(doubles[i]));
        }
        Assert.Equal(float.PositiveInfinity, floats[4]);
        Assert.Equal(BitConverter.SingleToInt32Bits(-0f), BitConverter.SingleToInt32Bits(floats[1]));
        Assert.Equal(1f, floats[13]); // tie rounds to even
    }

    [Fact]
    public void Every_dtype_string_is_accepted_with_its_size()
    {
        (string Name, SafeTensorDType DType, int Bits)[] all =
        [
            ("BOOL", SafeTensorDType.Bool, 8), ("F4", SafeTensorDType.F4, 4), ("F6_E2M3", SafeTensorDType.F6E2M3, 6),
            ("F6_E3M2", SafeTensorDType.F6E3M2, 6), ("U8", SafeTensorDType.U8, 8), ("I8", SafeTensorDType.I8, 8),
            ("F8_E5M2", SafeTensorDType.F8E5M2, 8), ("F8_E4M3", SafeTensorDType.F8E4M3, 8), ("F8_E8M0", SafeTensorDType.F8E8M0, 8),
            ("F8_E4M3FNUZ", SafeTensorDType.F8E4M3Fnuz, 8), ("F8_E5M2FNUZ", SafeTensorDType.F8E5M2Fnuz, 8),
            ("I16", SafeTensorDType.I16, 16), ("U16", SafeTensorDType.U16, 16), ("F16", SafeTensorDType.F16, 16),
            ("BF16", SafeTensorDType.BF16, 16), ("I32", SafeTensorDType.I32, 32), ("U32", SafeTensorDType.U32, 32),
            ("F32", SafeTensorDType.F32, 32), ("C64", SafeTensorDType.C64, 64), ("F64", SafeTensorDType.F64, 64),
            ("I64", SafeTensorDType.I64, 64), ("U64", SafeTensorDType.U64, 64),
        ];
        Assert.Equal(Enum.GetValues<SafeTensorDType>().Length, all.Length);
        // 12 elements of every dtype: a whole number of bytes even for 4- and 6-bit types.
        var tensors = all.Select(d => new RawTensor("t_" + d.Name, d.Name, [3, 4], new byte[12 * d.Bits / 8])).ToList();
        using var file = SafeTensorsFile.Open(_folder.Write(Build(tensors)));
        foreach (var d in all)
        {
            Assert.True(file.TryGetTensor("t_" + d.Name, out SafeTensorInfo? info));
            Assert.Equal(d.DType, info.DType);
            Assert.Equal(12 * d.Bits / 8, info.ByteLength);
            Assert.Equal(12 * d.Bits / 8, file.GetBytes(info).Length);
        }
    }
}
