using System.CommandLine;
using System.Text.Json;
using ViTGen.Cli.Models;

namespace ViTGen.Cli.Commands;

/// <summary><c>vitgen classify</c>: image files to labels with a compiled model.</summary>
internal static class ClassifyCommand
{
    private const int BatchSize = 16;

    public static Command Create()
    {
        var images = ModelCommand.Images();
        var model = ModelCommand.Model();
        var top = new Option<int>("--top") { Description = "How many classes to list per image.", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "One JSON object per image and line." };
        var threads = ModelCommand.Threads();
        var maxPixels = ModelCommand.MaxPixels();
        var command = new Command("classify", "Classify images with a compiled ViT (timm eval preprocessing).") { images, model, top, json, threads, maxPixels };
        command.SetAction(result => Run(result.GetValue(images) ?? [], result.GetValue(model), result.GetValue(top), result.GetValue(json), result.GetValue(threads), result.GetValue(maxPixels)));
        return command;
    }

    private static int Run(string[] paths, string? modelDirectory, int top, bool json, int threads, long maxPixels)
    {
        if (top < 1)
        {
            Console.Error.WriteLine("error: --top must be at least 1");
            return 2;
        }
        if (!ModelCommand.ValidateShared(threads, maxPixels)) return 2;
        if (ModelCommand.Resolve(modelDirectory) is not (var config, var weights, var entry)) return 2;
        try
        {
            using var model = entry.Load(weights, new VitOptions { Threads = threads });
            var inputs = ModelCommand.Inputs(paths, maxPixels);
            var output = new Output(json, Math.Min(top, config.Classes), config.Labels);
            bool allRead = true;
            foreach (var batch in inputs.Chunk(BatchSize)) allRead &= ClassifyBatch(model, config, batch, output);
            return allRead ? 0 : 1;
        }
        catch (VitWeightsException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
    }

    /// <summary>Decodes and preprocesses a batch (unreadable files are reported and skipped), runs it, prints results.</summary>
    private static bool ClassifyBatch(ICompiledModel model, ModelConfig config, ModelCommand.Input[] batch, Output output)
    {
        var preprocessing = config.Preprocessing;
        int inputSize = preprocessing.OutputLength;
        var pixels = new float[batch.Length * inputSize];
        var ok = new List<ModelCommand.Input>();
        foreach (var input in batch)
        {
            if (ModelCommand.TryPreprocess(input, preprocessing, pixels.AsSpan(ok.Count * inputSize, inputSize), output.Error)) ok.Add(input);
        }
        if (ok.Count == 0) return false;
        var logits = new float[ok.Count * config.Classes];
        model.Forward(pixels.AsSpan(0, ok.Count * inputSize), logits, ok.Count);
        for (int i = 0; i < ok.Count; i++)
        {
            var probabilities = logits.AsSpan(i * config.Classes, config.Classes);
            Classification.Probabilities(probabilities);
            output.Result(ok[i].Path, probabilities);
        }
        return ok.Count == batch.Length;
    }

    /// <summary>Prints results as text or JSON lines (Utf8JsonWriter: no reflection, AOT-safe).</summary>
    private sealed class Output(bool json, int top, string[] labels)
    {
        private string Label(int index) => Classification.Label(labels, index);

        public void Result(string path, ReadOnlySpan<float> probabilitySpan)
        {
            var probabilities = probabilitySpan.ToArray();
            var ranked = Classification.Rank(probabilities, top);
            if (!json)
            {
                var others = string.Join(", ", ranked.Skip(1).Select(i => $"{Label(i)} {probabilities[i]:P1}"));
                Console.WriteLine($"{path}: {Label(ranked[0])} ({probabilities[ranked[0]]:P1})" + (others.Length > 0 ? $"   [{others}]" : ""));
                return;
            }
            WriteJson(writer =>
            {
                writer.WriteString("path", path);
                // The fields `vitgen serve` answers POST /v1/classify with: one implementation for both.
                Classification.WriteFields(writer, probabilities, ranked, labels);
            });
        }

        public void Error(string path, string message)
        {
            if (!json)
            {
                Console.Error.WriteLine($"{path}: error: {message}");
                return;
            }
            WriteJson(writer =>
            {
                writer.WriteString("path", path);
                writer.WriteString("error", message);
            });
        }

        private static void WriteJson(Action<Utf8JsonWriter> body)
        {
            using var stream = new MemoryStream();
            using (var writer = new Utf8JsonWriter(stream))
            {
                writer.WriteStartObject();
                body(writer);
                writer.WriteEndObject();
            }
            Console.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        }
    }
}
