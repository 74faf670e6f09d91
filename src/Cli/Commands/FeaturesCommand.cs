using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ViTGen.Cli.Models;

namespace ViTGen.Cli.Commands;

/// <summary><c>vitgen features</c>: each image's embedding (<c>ForwardPooled</c>: the pre-logits features), for retrieval.</summary>
internal static class FeaturesCommand
{
    public static Command Create()
    {
        var images = ModelCommand.Images();
        var model = ModelCommand.Model();
        var json = new Option<bool>("--json") { Description = "One JSON object per image and line, with every feature." };
        var threads = ModelCommand.Threads();
        var maxPixels = ModelCommand.MaxPixels();
        var command = new Command("features", "Print each image's embedding: timm's pre-logits features (class token or pooled mean after the final norm).")
            { images, model, json, threads, maxPixels };
        command.SetAction(result => Run(result.GetValue(images) ?? [], result.GetValue(model), result.GetValue(json), result.GetValue(threads), result.GetValue(maxPixels)));
        return command;
    }

    private static int Run(string[] paths, string? modelDirectory, bool json, int threads, long maxPixels)
    {
        if (!ModelCommand.ValidateShared(threads, maxPixels)) return 2;
        if (ModelCommand.Resolve(modelDirectory) is not (var config, var weights, var entry)) return 2;
        try
        {
            using var model = entry.Load(weights, new VitOptions { Threads = threads });
            var preprocessing = config.Preprocessing;
            var pixels = new float[preprocessing.OutputLength];
            var features = new float[entry.Architecture.Dim];
            bool allRead = true;
            foreach (var input in ModelCommand.Inputs(paths, maxPixels))
            {
                if (!ModelCommand.TryPreprocess(input, preprocessing, pixels))
                {
                    allRead = false;
                    continue;
                }
                model.ForwardPooled(pixels, features);
                Print(input.Path, features, json);
            }
            return allRead ? 0 : 1;
        }
        catch (VitWeightsException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
    }

    private static void Print(string name, float[] features, bool json)
    {
        double norm = Math.Sqrt(features.Sum(f => (double)f * f));
        if (!json)
        {
            string head = string.Join(", ", features.Take(6).Select(f => f.ToString("F4", CultureInfo.InvariantCulture)));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: {features.Length} features, L2 norm {norm:F4}: [{head}{(features.Length > 6 ? ", ..." : "")}]"));
            return;
        }
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteString("path", name);
            writer.WriteNumber("norm", norm);
            writer.WriteStartArray("features");
            foreach (float f in features) writer.WriteNumberValue(f);
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        Console.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
