using System.CommandLine;
using System.Globalization;
using ViTGen.Cli.Models;
using ViTGen.Cli.Pictures;

namespace ViTGen.Cli.Commands;

/// <summary>
/// <c>vitgen attention</c>: where a compiled model looks. Per image a PNG of the model's view beside it under a heat map
/// of attention rollout (or one block's head-mean with <c>--layer</c>); with <c>--distance</c> one chart of the mean
/// attention distance per head against depth over all the images.
/// </summary>
internal static class AttentionCommand
{
    public static Command Create()
    {
        var images = ModelCommand.Images();
        var model = ModelCommand.Model();
        var output = new Option<string>("--out") { Description = "Where to write the pictures.", DefaultValueFactory = _ => "." };
        var layer = new Option<int?>("--layer") { Description = "Show block N's attention (1 = the first block), averaged over heads, instead of the rollout through all blocks." };
        var distance = new Option<bool>("--distance") { Description = "Also chart the mean attention distance per head against depth (the ViT paper's Figure 7)." };
        var threads = ModelCommand.Threads();
        var maxPixels = ModelCommand.MaxPixels();
        var command = new Command("attention", "Draw what a compiled ViT attends to: attention rollout heat maps and mean attention distance.")
            { images, model, output, layer, distance, threads, maxPixels };
        command.SetAction(result => Run(result.GetValue(images) ?? [], result.GetValue(model), result.GetValue(output)!,
            result.GetValue(layer), result.GetValue(distance), result.GetValue(threads), result.GetValue(maxPixels)));
        return command;
    }

    private static int Run(string[] paths, string? modelDirectory, string outDirectory, int? layer, bool distance, int threads, long maxPixels)
    {
        if (!ModelCommand.ValidateShared(threads, maxPixels)) return 2;
        if (ModelCommand.Resolve(modelDirectory) is not (var config, var weights, var entry)) return 2;
        var a = entry.Architecture;
        if (layer is < 1 || layer > a.Depth)
        {
            Console.Error.WriteLine($"error: --layer must be between 1 and {a.Depth} (the model's blocks)");
            return 2;
        }
        int grid = a.ImageSize / a.Patch;
        if (a.Tokens - a.PrefixTokens != grid * grid)
        {
            // Not reachable for compiled models (square grids by construction); a wrong picture would be worse than none.
            Console.Error.WriteLine($"error: {a.Tokens - a.PrefixTokens} patch tokens do not form the {grid}x{grid} patch grid");
            return 2;
        }

        try
        {
            Directory.CreateDirectory(outDirectory);
            using var model = entry.Load(weights, new VitOptions { Threads = threads });
            var preprocessing = config.Preprocessing;
            var pixels = new float[preprocessing.OutputLength];
            var logits = new float[a.OutputSize];
            var attention = new float[(long)a.Depth * a.Heads * a.Tokens * a.Tokens];
            var distances = new float[a.Depth * a.Heads];
            var sum = new double[a.Depth * a.Heads]; // per-image distances, summed: the mean over images without keeping every map
            int scale = Picture.ScaleFor(a.ImageSize), side = a.ImageSize * scale, images = 0;
            bool allRead = true;
            foreach (var input in ModelCommand.Inputs(paths, maxPixels))
            {
                string name = input.Path;
                if (!ModelCommand.TryPreprocess(input, preprocessing, pixels))
                {
                    allRead = false;
                    continue;
                }
                model.ForwardAttention(pixels, logits, attention);
                images++;
                if (distance)
                {
                    VitAttention.MeanDistance(attention, 1, a.Depth, a.Heads, a.Tokens, a.PrefixTokens, grid, a.Patch, distances);
                    for (int i = 0; i < sum.Length; i++) sum[i] += distances[i];
                }

                var map = PatchWeights(attention, a, layer, grid);
                var view = Picture.ModelView(pixels, a.Channels, a.ImageSize, config.Mean, config.Std, scale);
                string file = Path.Combine(outDirectory, Path.GetFileNameWithoutExtension(name) + (layer is { } n ? $".layer{n}" : ".rollout") + ".png");
                Picture.HeatMap(view, side, map, grid).SavePng(file);
                Console.WriteLine($"{name}: {file}");
            }
            if (distance && images > 0)
            {
                var result = sum.Select(d => (float)(d / images)).ToArray();
                float step = a.Patch * MathF.Max(1, MathF.Round(grid / 4f));
                float max = MathF.Ceiling(Math.Max(result.Max(), a.Patch) / step) * step;
                string file = Path.Combine(outDirectory, "attention-distance.png");
                Picture.DistanceChart(result, a.Depth, a.Heads, max, step).SavePng(file);
                Console.WriteLine($"mean attention distance (pixels), block x head, over {images} image(s): {file}");
                for (int block = 0; block < a.Depth; block++)
                {
                    Console.WriteLine($"  block {block + 1,2}: " + string.Join(" ", result.AsSpan(block * a.Heads, a.Heads).ToArray()
                        .Select(d => d.ToString("F1", CultureInfo.InvariantCulture).PadLeft(6))));
                }
            }
            return allRead ? 0 : 1;
        }
        catch (Exception e) when (e is VitWeightsException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
    }

    /// <summary>
    /// One weight per patch. The source matrix is the rollout through all blocks, or block <paramref name="layer"/>'s
    /// attention averaged over heads. Its row is the class token's (what the head reads) or, without a class token,
    /// the mean of the patch tokens' rows (what average pooling reads). Only the patch columns are kept: the class,
    /// distillation and register tokens are not places in the image, so they are left out of the map.
    /// </summary>
    private static float[] PatchWeights(float[] attention, VitArchitecture a, int? layer, int grid)
    {
        int t = a.Tokens;
        var matrix = new float[t * t];
        if (layer is { } n)
        {
            int block = (n - 1) * a.Heads * t * t;
            for (int h = 0; h < a.Heads; h++)
                for (int i = 0; i < t * t; i++) matrix[i] += attention[block + h * t * t + i] / a.Heads;
        }
        else
        {
            VitAttention.Rollout(attention, a.Depth, a.Heads, t, matrix);
        }
        var weights = new float[grid * grid];
        int prefix = a.PrefixTokens;
        if (a.ClassToken)
        {
            matrix.AsSpan(prefix, grid * grid).CopyTo(weights); // row 0: the class token
            return weights;
        }
        for (int q = prefix; q < t; q++)
            for (int k = 0; k < grid * grid; k++) weights[k] += matrix[q * t + prefix + k] / (t - prefix);
        return weights;
    }
}
