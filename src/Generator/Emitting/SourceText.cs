using System.Globalization;

namespace ViTGen.Generator.Emitting;

/// <summary>How values are printed into generated C#: invariant culture, the way a person would write them.</summary>
internal static class SourceText
{
    private static readonly char[] FloatMarkers = { '.', 'e' };

    public static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static string Bool(bool value) => value ? "true" : "false";

    /// <summary>
    /// A float literal that round-trips ("R") and reads like hand-written code: <c>1e-6f</c>, not <c>1E-06f</c>;
    /// <c>1.0f</c>, not <c>1f</c>.
    /// </summary>
    public static string Float(float value)
    {
        string text = value.ToString("R", CultureInfo.InvariantCulture).Replace("E-0", "e-").Replace("E+0", "e+").Replace("E", "e");
        return (text.IndexOfAny(FloatMarkers) < 0 ? text + ".0" : text) + "f";
    }

    /// <summary>Text for an XML doc comment.</summary>
    public static string Xml(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
