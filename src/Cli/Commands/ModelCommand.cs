using System.CommandLine;
using ViTGen.Cli.Models;

namespace ViTGen.Cli.Commands;

/// <summary>
/// What the commands that run a compiled model on images share (<c>classify</c>, <c>attention</c>, <c>features</c>):
/// the images argument, <c>--model</c> and <c>--threads</c>, finding the compiled model for the config, and the images
/// to read (the bundled samples when none are given).
/// </summary>
internal static class ModelCommand
{
    /// <summary>An image to read: its name in messages, and how to decode it (errors surface when it is decoded).</summary>
    public sealed record Input(string Path, Func<VitImage> Decode);

    /// <summary>The model a command runs: its config, the weights file, and the compiled class that fits them.</summary>
    public sealed record Resolved(ModelConfig Config, string Weights, ModelEntry Entry);

    public static Argument<string[]> Images()
    {
        var images = new Argument<string[]>("images") { Description = "PNG, JPEG, PPM or PGM files. None: the bundled samples.", Arity = ArgumentArity.ZeroOrMore };
        // A misspelt option would otherwise be taken for an image and fail as a file (exit 1): make it a usage error (2).
        images.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                if (token.Value.Length > 1 && token.Value[0] == '-' && !File.Exists(token.Value))
                    result.AddError($"unknown option '{token.Value}' (a file of that name would be read)");
            }
        });
        return images;
    }

    public static Option<string?> Model() => new("--model") { Description = "A directory with model.json and model.safetensors. Default: the bundled Fashion-MNIST model." };

    public static Option<int> Threads() => new("--threads") { Description = "Threads per forward pass.", DefaultValueFactory = _ => Environment.ProcessorCount };

    /// <summary>PIL's decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS): larger images are refused.</summary>
    public const long DefaultMaxPixels = VitImageOptions.DefaultMaxPixels;

    public static Option<long> MaxPixels() => new("--max-pixels")
    {
        Description = "Refuse images of more than N pixels (width x height). Default: 178,956,970 (PIL's decompression-bomb limit).",
        DefaultValueFactory = _ => DefaultMaxPixels,
    };

    /// <summary>
    /// Checks the options the model commands share; false after printing a usage error (exit code 2).
    /// </summary>
    public static bool ValidateShared(int threads, long maxPixels)
    {
        if (threads < 1)
        {
            Console.Error.WriteLine("error: --threads must be at least 1");
            return false;
        }
        if (maxPixels < 1)
        {
            Console.Error.WriteLine($"error: --max-pixels must be at least 1, not {maxPixels}");
            return false;
        }
        return true;
    }

    /// <summary>
    /// The config and compiled model of <paramref name="directory"/> (null: the bundled one), or null after printing
    /// why not: an unreadable or invalid model.json, or an architecture this binary has not compiled (then the
    /// attribute that compiles it).
    /// </summary>
    public static Resolved? Resolve(string? directory)
    {
        ModelConfig config;
        string weights;
        try
        {
            (config, weights) = ModelConfig.Open(directory);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return null;
        }
        var entry = config.FindCompiled();
        if (entry is null)
        {
            Console.Error.WriteLine($"error: this vitgen binary has no compiled model with the shapes of {(directory is null ? "the bundled model.json" : Path.Combine(directory, "model.json"))}.");
            Console.Error.WriteLine($"Compile it into your program with:\n    {config.Attribute}\n    public partial class MyModel;");
            return null;
        }
        return new Resolved(config, weights, entry);
    }

    /// <summary>
    /// The files named on the command line, or the bundled samples when there are none; each refuses to decode an image
    /// of more than <paramref name="maxPixels"/> pixels.
    /// </summary>
    public static IEnumerable<Input> Inputs(string[] paths, long maxPixels) => paths.Length > 0
        ? paths.Select(p => new Input(p, () => Decode(p, null, maxPixels)))
        : BundledModel.Samples().Select(s => new Input(s.Name, () => Decode(s.Name, s.Data, maxPixels)));

    /// <summary>
    /// The one place the model commands decode an image: the file <paramref name="path"/>, or <paramref name="data"/>
    /// (named <paramref name="path"/>) when given, refused from its header, before any pixel buffer exists, when it
    /// declares more than <paramref name="maxPixels"/> pixels (<c>--max-pixels</c>).
    /// </summary>
    internal static VitImage Decode(string path, byte[]? data, long maxPixels)
    {
        var options = new VitImageOptions { MaxPixels = maxPixels };
        return data is null ? VitImage.Load(path, options) : VitImage.Decode(data, path, options);
    }

    /// <summary>
    /// Decodes and preprocesses one input into <paramref name="pixels"/>, or reports why not (to <paramref name="error"/>,
    /// else as <c>PATH: error: MESSAGE</c> on stderr) and returns false.
    /// </summary>
    public static bool TryPreprocess(Input input, VitPreprocessing preprocessing, Span<float> pixels, Action<string, string>? error = null)
    {
        try
        {
            preprocessing.Apply(input.Decode(), pixels);
            return true;
        }
        catch (Exception e) when (e is VitImageException or IOException or UnauthorizedAccessException)
        {
            if (error is null) Console.Error.WriteLine($"{input.Path}: error: {e.Message}");
            else error(input.Path, e.Message);
            return false;
        }
    }
}
