using System.CommandLine;
using System.Text.Json;
using ViTGen.Cli.Batch;
using ViTGen.Cli.Models;

namespace ViTGen.Cli.Commands;

/// <summary>
/// <c>vitgen classify</c>: image files to labels with a compiled model, printed, or with <c>--output</c> written as
/// JSON-lines records to a file that a restarted run continues (<c>--resume</c>); <c>--input-list</c> and
/// <c>--shard I/N</c> split a long list of images across machines (see docs/deploy.md).
/// </summary>
internal static class ClassifyCommand
{
    private const int BatchSize = 16;

    /// <summary>What one <c>classify</c> invocation asks for.</summary>
    private sealed record Request(
        string[] Paths, string? ModelDirectory, int Top, bool Json, int Threads, long MaxPixels,
        string? InputList, string? Output, string? Shard, bool Resume);

    public static Command Create()
    {
        var images = ModelCommand.Images();
        var model = ModelCommand.Model();
        var top = new Option<int>("--top") { Description = "How many classes to list per image.", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "One JSON object per image and line." };
        var threads = ModelCommand.Threads();
        var maxPixels = ModelCommand.MaxPixels();
        var inputList = new Option<string?>("--input-list")
        {
            HelpName = "FILE",
            Description = "Read image paths from FILE, one per line (UTF-8; blank lines and lines starting with # are skipped; relative paths are relative to FILE's directory).",
        };
        var output = new Option<string?>("--output")
        {
            HelpName = "FILE",
            Description = "Write the --json records to FILE (one line per image, unreadable images as {\"path\", \"error\"} records), synced after every batch. Refuses an existing FILE unless --resume.",
        };
        var shard = new Option<string?>("--shard")
        {
            HelpName = "I/N",
            Description = "Classify only shard I of N of the --input-list (0 <= I < N): the paths whose SHA-256 mod N is I. Needs --input-list and --output.",
        };
        var resume = new Option<bool>("--resume")
        {
            Description = "Continue --output FILE (created when missing): keep its records, classify only the paths without one, cut off a torn last line.",
        };
        var command = new Command("classify", "Classify images with a compiled ViT (timm eval preprocessing).")
        {
            images, model, top, json, threads, maxPixels, inputList, output, shard, resume,
        };
        command.SetAction(result => Run(new Request(
            result.GetValue(images) ?? [], result.GetValue(model), result.GetValue(top), result.GetValue(json),
            result.GetValue(threads), result.GetValue(maxPixels), result.GetValue(inputList), result.GetValue(output),
            result.GetValue(shard), result.GetValue(resume))));
        return command;
    }

    private static int Run(Request request)
    {
        if (request.Top < 1) return UsageError("--top must be at least 1");
        if (!ModelCommand.ValidateShared(request.Threads, request.MaxPixels)) return 2;
        if (request.Shard is not null && (request.InputList is null || request.Output is null))
            return UsageError("--shard needs --input-list (the list to split) and --output (each shard writes its own results file)");
        if (request.Resume && request.Output is null) return UsageError("--resume needs --output (the results file to continue)");
        if (request.InputList is not null && request.Paths.Length > 0)
            return UsageError("give images either as arguments or with --input-list, not both");
        var shard = Shard.All;
        if (request.Shard is not null)
        {
            if (Shard.Parse(request.Shard, out string shardError) is not { } parsed) return UsageError(shardError);
            shard = parsed;
        }

        InputList? list = null;
        if (request.InputList is not null)
        {
            try
            {
                list = InputList.Read(request.InputList, shard);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                return UsageError($"cannot read --input-list {request.InputList}: {e.Message}");
            }
            if (list.Lines == 0) Console.Error.WriteLine($"note: {request.InputList} lists no images");
        }

        // Checked again when the file is created; here so that the mistake does not wait for a large model to load.
        if (request.Output is not null && !request.Resume && File.Exists(request.Output))
            return UsageError(ResultsFile.ExistsMessage(request.Output));
        if (ModelCommand.Resolve(request.ModelDirectory) is not (var config, var weights, var entry)) return 2;
        try
        {
            using var model = entry.Load(weights, new VitOptions { Threads = request.Threads });
            var inputs = list is null
                ? ModelCommand.Inputs(request.Paths, request.MaxPixels)
                : list.Paths.Select(p => new ModelCommand.Input(p, () => ModelCommand.Decode(list.Resolve(p), null, request.MaxPixels)));
            int top = Math.Min(request.Top, config.Classes);
            if (request.Output is not null) return RunToFile(request, shard, list, model, config, inputs, top);

            var output = new Output(request.Json, top, config.Labels, file: null);
            bool allRead = true;
            foreach (var batch in inputs.Chunk(BatchSize)) allRead &= ClassifyBatch(model, config, batch, output);
            return allRead ? 0 : 1;
        }
        catch (VitWeightsException e)
        {
            return UsageError(e.Message);
        }
    }

    /// <summary>
    /// <c>--output</c>: records go to the results file, which <c>--resume</c> continues. Exit code 0 once every image
    /// has a record (error records included: they are the report, and a batch scheduler must not retry a finished
    /// shard for them), 1 when the run stopped before that (the file could not be written), 2 for usage errors.
    /// </summary>
    private static int RunToFile(Request request, Shard shard, InputList? list, ICompiledModel model, ModelConfig config, IEnumerable<ModelCommand.Input> inputs, int top)
    {
        string outputPath = request.Output!;
        // Resume finds records by path: an image given twice would get two records, so it is read once.
        var all = inputs.DistinctBy(i => i.Path, StringComparer.Ordinal).ToList();
        ResultsFile results;
        try
        {
            results = ResultsFile.Open(outputPath, request.Resume);
        }
        catch (ResultsFileException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return e.Usage ? 2 : 1;
        }
        using (results)
        {
            if (results.TruncatedBytes > 0)
                Console.Error.WriteLine($"note: cut a torn last line ({results.TruncatedBytes} bytes, from an interrupted run) off {outputPath}");
            var wanted = all.Select(i => i.Path).ToHashSet(StringComparer.Ordinal);
            var stranger = results.Done.Where(d => !wanted.Contains(d.Key)).OrderBy(d => d.Value).FirstOrDefault();
            if (stranger.Key is not null)
            {
                string scope = list is null ? "the images given" : shard == Shard.All ? request.InputList! : $"shard {shard} of {request.InputList}";
                return UsageError($"{outputPath}:{stranger.Value}: {stranger.Key} is not in {scope}; is this the results file of another shard or list? Not resuming.");
            }
            var pending = all.Where(i => !results.Done.ContainsKey(i.Path)).ToList();
            var output = new Output(json: true, top, config.Labels, results);
            try
            {
                foreach (var batch in pending.Chunk(BatchSize))
                {
                    ClassifyBatch(model, config, batch, output);
                    results.Sync();
                }
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"error: writing {outputPath}: {e.Message} ({output.Classified + output.Failed} of {pending.Count} images written; rerun with --resume to continue)");
                return 1;
            }
            string what = list is null ? "images" : shard == Shard.All ? $"images in {request.InputList}" : $"images in shard {shard} of {request.InputList}";
            string repeats = list is { Repeats: > 0 } ? $" ({list.Repeats} repeated {(list.Repeats == 1 ? "line" : "lines")} read once)" : "";
            Console.Error.WriteLine(
                $"{outputPath}: {all.Count} {what}{repeats}: {results.Done.Count} already done, {output.Classified} classified, {output.Failed} unreadable (error records)");
            return 0;
        }
    }

    private static int UsageError(string message)
    {
        Console.Error.WriteLine("error: " + message);
        return 2;
    }

    /// <summary>
    /// Decodes and preprocesses a batch, runs the images that could be read, and reports every image in batch order
    /// (a result, or an error for a file that could not be read). False when some could not.
    /// </summary>
    private static bool ClassifyBatch(ICompiledModel model, ModelConfig config, ModelCommand.Input[] batch, Output output)
    {
        var preprocessing = config.Preprocessing;
        int inputSize = preprocessing.OutputLength;
        var pixels = new float[batch.Length * inputSize];
        var errors = new string?[batch.Length];
        int read = 0;
        for (int i = 0; i < batch.Length; i++)
        {
            if (ModelCommand.TryPreprocess(batch[i], preprocessing, pixels.AsSpan(read * inputSize, inputSize), (_, message) => errors[i] = message)) read++;
        }
        var logits = new float[read * config.Classes];
        if (read > 0) model.Forward(pixels.AsSpan(0, read * inputSize), logits, read);
        for (int i = 0, image = 0; i < batch.Length; i++)
        {
            if (errors[i] is { } error)
            {
                output.Error(batch[i].Path, error);
                continue;
            }
            var probabilities = logits.AsSpan(image++ * config.Classes, config.Classes);
            Classification.Probabilities(probabilities);
            output.Result(batch[i].Path, probabilities);
        }
        return read == batch.Length;
    }

    /// <summary>
    /// Prints results as text or JSON lines (Utf8JsonWriter: no reflection, AOT-safe), or appends the JSON lines to
    /// <paramref name="file"/> (error records also reported on stderr, for the logs of a batch job).
    /// </summary>
    private sealed class Output(bool json, int top, string[] labels, ResultsFile? file)
    {
        public int Classified { get; private set; }

        public int Failed { get; private set; }

        private string Label(int index) => Classification.Label(labels, index);

        public void Result(string path, ReadOnlySpan<float> probabilitySpan)
        {
            var probabilities = probabilitySpan.ToArray();
            var ranked = Classification.Rank(probabilities, top);
            Classified++;
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
            Failed++;
            if (!json || file is not null) Console.Error.WriteLine($"{path}: error: {message}");
            if (!json) return;
            WriteJson(writer =>
            {
                writer.WriteString("path", path);
                writer.WriteString("error", message);
            });
        }

        private void WriteJson(Action<Utf8JsonWriter> body)
        {
            using var stream = new MemoryStream();
            using (var writer = new Utf8JsonWriter(stream))
            {
                writer.WriteStartObject();
                body(writer);
                writer.WriteEndObject();
            }
            if (file is not null) file.Append(stream.GetBuffer().AsSpan(0, (int)stream.Length));
            else Console.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        }
    }
}
