using System.Text.Json;

namespace ViTGen.Tests.Imaging;

/// <summary>Reads tests/fixtures/imaging/index.json (written by make_imaging_fixtures.py).</summary>
internal static class ImagingFixtures
{
    internal sealed record ImageEntry(string File, int Width, int Height, int Channels, string Pixels);

    internal sealed record Setting(int Size, double CropPct, VitInterpolation Interpolation, float[] Mean, float[] Std)
    {
        internal VitPreprocessing ToPreprocessing() => VitPreprocessing.Timm(Size, CropPct, Interpolation, Mean, Std);
    }

    internal sealed record PreprocessCase(string Image, string SettingName, string Expected, bool Uint8);

    internal sealed record Reject(string File, string MessageContains);

    internal static string Directory { get; } = Path.Combine(AppContext.BaseDirectory, "fixtures", "imaging");

    private static readonly Lazy<Index> Data = new(Read);

    internal static IReadOnlyList<ImageEntry> Images => Data.Value.Images;

    internal static IReadOnlyDictionary<string, Setting> Settings => Data.Value.Settings;

    internal static IReadOnlyList<PreprocessCase> Cases => Data.Value.Cases;

    internal static IReadOnlyList<Reject> Rejects => Data.Value.Rejects;

    internal static string PathOf(string file) => Path.Combine(Directory, file);

    internal static byte[] Bytes(string file) => File.ReadAllBytes(PathOf(file));

    internal static ImageEntry Image(string file) => Images.Single(i => i.File == file);

    /// <summary>The pixels PIL decoded for <paramref name="file"/>, as a <see cref="VitImage"/>.</summary>
    internal static VitImage PilImage(string file)
    {
        ImageEntry e = Image(file);
        return new VitImage(e.Width, e.Height, e.Channels, Bytes(e.Pixels));
    }

    internal static float[] Floats(string file)
    {
        byte[] bytes = Bytes(file);
        var values = new float[bytes.Length / 4];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = BitConverter.ToSingle(bytes, 4 * i); // little-endian on every supported host
        }
        return values;
    }

    private sealed record Index(List<ImageEntry> Images, Dictionary<string, Setting> Settings, List<PreprocessCase> Cases, List<Reject> Rejects);

    private static Index Read()
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(PathOf("index.json")));
        JsonElement root = doc.RootElement;
        var images = root.GetProperty("images").EnumerateArray().Select(e => new ImageEntry(
            e.GetProperty("file").GetString()!, e.GetProperty("width").GetInt32(), e.GetProperty("height").GetInt32(),
            e.GetProperty("channels").GetInt32(), e.GetProperty("pixels").GetString()!)).ToList();
        var settings = root.GetProperty("settings").EnumerateObject().ToDictionary(p => p.Name, p => new Setting(
            p.Value.GetProperty("size").GetInt32(), p.Value.GetProperty("crop_pct").GetDouble(),
            Enum.Parse<VitInterpolation>(p.Value.GetProperty("interpolation").GetString()!, ignoreCase: true),
            p.Value.GetProperty("mean").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray(),
            p.Value.GetProperty("std").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray()));
        var cases = root.GetProperty("preprocess").EnumerateArray().Select(e => new PreprocessCase(
            e.GetProperty("image").GetString()!, e.GetProperty("setting").GetString()!, e.GetProperty("expected").GetString()!,
            e.GetProperty("dtype").GetString() == "uint8")).ToList();
        var rejects = root.GetProperty("rejects").EnumerateArray().Select(e => new Reject(
            e.GetProperty("file").GetString()!, e.GetProperty("message_contains").GetString()!)).ToList();
        return new Index(images, settings, cases, rejects);
    }
}
