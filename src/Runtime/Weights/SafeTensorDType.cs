namespace ViTGen;

/// <summary>
/// The element types a safetensors file can declare (the <c>dtype</c> strings of huggingface/safetensors).
/// Member names are the dtype strings without underscores, e.g. <c>F8_E4M3</c> is <see cref="F8E4M3"/>.
/// </summary>
public enum SafeTensorDType
{
    /// <summary><c>BOOL</c>: one byte per element.</summary>
    Bool,
    /// <summary><c>F4</c>: 4-bit float (E2M1), two elements per byte.</summary>
    F4,
    /// <summary><c>F6_E2M3</c>: 6-bit float, packed.</summary>
    F6E2M3,
    /// <summary><c>F6_E3M2</c>: 6-bit float, packed.</summary>
    F6E3M2,
    /// <summary><c>U8</c>: unsigned 8-bit integer.</summary>
    U8,
    /// <summary><c>I8</c>: signed 8-bit integer.</summary>
    I8,
    /// <summary><c>F8_E5M2</c>: 8-bit float.</summary>
    F8E5M2,
    /// <summary><c>F8_E4M3</c>: 8-bit float.</summary>
    F8E4M3,
    /// <summary><c>F8_E8M0</c>: 8-bit exponent-only scale.</summary>
    F8E8M0,
    /// <summary><c>F8_E4M3FNUZ</c>: 8-bit float, finite, unsigned zero.</summary>
    F8E4M3Fnuz,
    /// <summary><c>F8_E5M2FNUZ</c>: 8-bit float, finite, unsigned zero.</summary>
    F8E5M2Fnuz,
    /// <summary><c>I16</c>: signed 16-bit integer.</summary>
    I16,
    /// <summary><c>U16</c>: unsigned 16-bit integer.</summary>
    U16,
    /// <summary><c>F16</c>: IEEE 754 half precision.</summary>
    F16,
    /// <summary><c>BF16</c>: bfloat16 (the upper half of a float32).</summary>
    BF16,
    /// <summary><c>I32</c>: signed 32-bit integer.</summary>
    I32,
    /// <summary><c>U32</c>: unsigned 32-bit integer.</summary>
    U32,
    /// <summary><c>F32</c>: IEEE 754 single precision.</summary>
    F32,
    /// <summary><c>C64</c>: complex number made of two float32.</summary>
    C64,
    /// <summary><c>F64</c>: IEEE 754 double precision.</summary>
    F64,
    /// <summary><c>I64</c>: signed 64-bit integer.</summary>
    I64,
    /// <summary><c>U64</c>: unsigned 64-bit integer.</summary>
    U64,
}

/// <summary>Names and sizes of <see cref="SafeTensorDType"/> values.</summary>
internal static class SafeTensorDTypes
{
    /// <summary>The size of one element in bits.</summary>
    public static int BitSize(SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F4 => 4,
        SafeTensorDType.F6E2M3 or SafeTensorDType.F6E3M2 => 6,
        SafeTensorDType.Bool or SafeTensorDType.U8 or SafeTensorDType.I8 or SafeTensorDType.F8E5M2
            or SafeTensorDType.F8E4M3 or SafeTensorDType.F8E8M0 or SafeTensorDType.F8E4M3Fnuz
            or SafeTensorDType.F8E5M2Fnuz => 8,
        SafeTensorDType.I16 or SafeTensorDType.U16 or SafeTensorDType.F16 or SafeTensorDType.BF16 => 16,
        SafeTensorDType.I32 or SafeTensorDType.U32 or SafeTensorDType.F32 => 32,
        SafeTensorDType.C64 or SafeTensorDType.F64 or SafeTensorDType.I64 or SafeTensorDType.U64 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>The dtype string as it appears in a safetensors header.</summary>
    public static string ToHeaderString(SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.Bool => "BOOL",
        SafeTensorDType.F4 => "F4",
        SafeTensorDType.F6E2M3 => "F6_E2M3",
        SafeTensorDType.F6E3M2 => "F6_E3M2",
        SafeTensorDType.U8 => "U8",
        SafeTensorDType.I8 => "I8",
        SafeTensorDType.F8E5M2 => "F8_E5M2",
        SafeTensorDType.F8E4M3 => "F8_E4M3",
        SafeTensorDType.F8E8M0 => "F8_E8M0",
        SafeTensorDType.F8E4M3Fnuz => "F8_E4M3FNUZ",
        SafeTensorDType.F8E5M2Fnuz => "F8_E5M2FNUZ",
        SafeTensorDType.I16 => "I16",
        SafeTensorDType.U16 => "U16",
        SafeTensorDType.F16 => "F16",
        SafeTensorDType.BF16 => "BF16",
        SafeTensorDType.I32 => "I32",
        SafeTensorDType.U32 => "U32",
        SafeTensorDType.F32 => "F32",
        SafeTensorDType.C64 => "C64",
        SafeTensorDType.F64 => "F64",
        SafeTensorDType.I64 => "I64",
        SafeTensorDType.U64 => "U64",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>Parses a header dtype string (exact, case-sensitive, as serde does).</summary>
    public static bool TryParse(string text, out SafeTensorDType dtype)
    {
        dtype = text switch
        {
            "BOOL" => SafeTensorDType.Bool,
            "F4" => SafeTensorDType.F4,
            "F6_E2M3" => SafeTensorDType.F6E2M3,
            "F6_E3M2" => SafeTensorDType.F6E3M2,
            "U8" => SafeTensorDType.U8,
            "I8" => SafeTensorDType.I8,
            "F8_E5M2" => SafeTensorDType.F8E5M2,
            "F8_E4M3" => SafeTensorDType.F8E4M3,
            "F8_E8M0" => SafeTensorDType.F8E8M0,
            "F8_E4M3FNUZ" => SafeTensorDType.F8E4M3Fnuz,
            "F8_E5M2FNUZ" => SafeTensorDType.F8E5M2Fnuz,
            "I16" => SafeTensorDType.I16,
            "U16" => SafeTensorDType.U16,
            "F16" => SafeTensorDType.F16,
            "BF16" => SafeTensorDType.BF16,
            "I32" => SafeTensorDType.I32,
            "U32" => SafeTensorDType.U32,
            "F32" => SafeTensorDType.F32,
            "C64" => SafeTensorDType.C64,
            "F64" => SafeTensorDType.F64,
            "I64" => SafeTensorDType.I64,
            "U64" => SafeTensorDType.U64,
            _ => (SafeTensorDType)(-1),
        };
        return (int)dtype >= 0;
    }
}
