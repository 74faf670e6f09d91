namespace ViTGen;

/// <summary>The CRC-32 of PNG chunks (ISO 3309, reflected polynomial 0xEDB88320).</summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
            table[n] = c;
        }
        return table;
    }

    internal static uint Compute(ReadOnlySpan<byte> data)
    {
        uint[] table = Table;
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            c = table[(c ^ b) & 0xFF] ^ (c >> 8);
        }
        return c ^ 0xFFFFFFFFu;
    }
}
