using System.Reflection;

namespace ViTGen.Cli.Commands;

/// <summary>The Fashion-MNIST model and sample images embedded in the binary.</summary>
internal static class BundledModel
{
    private const string Prefix = "fashion-mnist/";

    public static Stream Open(string name) => Assembly.GetExecutingAssembly().GetManifestResourceStream(Prefix + name)
        ?? throw new InvalidOperationException($"resource '{Prefix + name}' is missing from the vitgen binary");

    /// <summary>Sample images as (name, bytes), in name order.</summary>
    public static IEnumerable<(string Name, byte[] Data)> Samples()
    {
        var assembly = Assembly.GetExecutingAssembly();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix + "samples/", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            yield return (resource[Prefix.Length..], memory.ToArray());
        }
    }

    /// <summary>
    /// The weights as a file (Load maps files): extracted once per content into the temp directory.
    /// </summary>
    public static string ExtractWeights()
    {
        using var stream = Open("model.safetensors");
        string path = Path.Combine(Path.GetTempPath(), $"vitgen-fashion-mnist-{stream.Length}-{typeof(BundledModel).Assembly.ManifestModule.ModuleVersionId:N}.safetensors");
        if (!File.Exists(path))
        {
            string partial = path + "." + Environment.ProcessId + ".tmp";
            using (var file = File.Create(partial)) stream.CopyTo(file);
            File.Move(partial, path, overwrite: true);
        }
        return path;
    }
}
