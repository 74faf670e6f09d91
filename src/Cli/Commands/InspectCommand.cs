using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using ViTGen.CompilerServices;

namespace ViTGen.Cli.Commands;

/// <summary>
/// <c>vitgen inspect FILE</c>: what a safetensors checkpoint holds (size, tensors, dtypes, parameters, metadata),
/// its dialect, the ViT architecture its shapes imply, and the <c>[VitModel(...)]</c> attribute that compiles it.
/// </summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "A .safetensors checkpoint (timm, Hugging Face, torchvision or OpenAI CLIP names)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var all = new Option<bool>("--all") { Description = "Also list every tensor: name, dtype, shape and byte range in the data buffer." };
        var positions = new Option<string?>("--positions") { Description = "Write a PNG of the position embeddings' cosine similarities: for each patch position, its similarity with every other, laid out on the patch grid." };
        var command = new Command("inspect", "Describe a safetensors checkpoint and print the [VitModel] attribute that compiles it.") { file, json, all, positions };
        command.SetAction(r => Run(r.GetValue(file)!, r.GetValue(json), r.GetValue(all), r.GetValue(positions)));
        return command;
    }

    private static int Run(string path, bool json, bool all, string? positions)
    {
        try
        {
            using CheckpointReader reader = CheckpointReader.Open(path);
            CheckpointArchitecture architecture = CheckpointArchitecture.Infer(reader);
            string text = json ? Json(reader.File, architecture, all) : Text(reader.File, architecture, all);
            Console.Out.Write(text);
            if (positions is not null)
            {
                var similarity = VitPositionEmbedding.Similarity(path, out int grid);
                Pictures.Picture.PositionSimilarity(similarity, grid).SavePng(positions);
                if (!json) Console.WriteLine($"position embedding similarities: {positions}");
            }
            return 0;
        }
        catch (VitWeightsException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: cannot write {positions}: {e.Message}");
            return 2;
        }
    }



    /// <summary>Per dtype, in enum order: tensors, elements, bytes.</summary>
    private static List<(string DType, int Tensors, long Elements, long Bytes)> DTypes(SafeTensorsFile file)
        => file.Tensors.GroupBy(t => t.DType).OrderBy(g => g.Key)
            .Select(g => (g.First().DTypeName, g.Count(), g.Sum(t => t.ElementCount), g.Sum(t => t.ByteLength))).ToList();

    private static string Shape(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";

    private static string Number(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Bool(bool value) => value ? "true" : "false";

    private static string Eps(float value) => value.ToString("0.######e0", CultureInfo.InvariantCulture);

    private static string Text(SafeTensorsFile file, CheckpointArchitecture a, bool all)
    {
        var sb = new StringBuilder();
        void Line(string text) => sb.Append(text).Append('\n');
        void Field(string name, string value) => Line("  " + name.PadRight(13) + value);

        Line($"file         {file.Path}");
        Line(string.Create(CultureInfo.InvariantCulture, $"size         {Number(file.Length)} bytes ({file.Length / (1024.0 * 1024.0):F1} MiB)"));
        Line($"tensors      {Number(file.Tensors.Count)}");
        Line("dtypes       " + string.Join(", ", DTypes(file).Select(d =>
            string.Create(CultureInfo.InvariantCulture, $"{d.DType} x{d.Tensors} ({Number(d.Bytes)} bytes)"))));
        Line($"parameters   {Number(file.Tensors.Sum(t => t.ElementCount))} in the file, {Number(a.ParameterCount)} read by the model");
        Line("metadata     " + (file.Metadata.Count == 0 ? "(none)" : string.Join(", ", file.Metadata.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => $"{m.Key}={m.Value}"))));
        Line($"dialect      {a.DialectName}");
        Line("");
        Line("architecture (inferred from tensor shapes)");
        Field("patch", a.Patch.ToString(CultureInfo.InvariantCulture));
        Field("dim", a.Dim.ToString(CultureInfo.InvariantCulture));
        Field("depth", a.Depth.ToString(CultureInfo.InvariantCulture));
        Field("channels", a.Channels.ToString(CultureInfo.InvariantCulture));
        Field("imageSize", a.ImageSize.ToString(CultureInfo.InvariantCulture) + (a.NoEmbedClass ? " (pos_embed covers the patches only)" : "")
            + (a.SmallestImageSize != a.ImageSize ? string.Create(CultureInfo.InvariantCulture, $" (the largest of {a.SmallestImageSize}..{a.ImageSize}, which all give the same grid)") : ""));
        if (a.HybridLayers is { } layers)
        {
            Field("hybridLayers", "[" + string.Join(", ", layers.Select(l => l.ToString(CultureInfo.InvariantCulture))) + "]"
                + (layers.Count == 0 ? " (the stem only)" : " (bottlenecks per ResNetV2 stage)"));
            Field("hybridWidth", a.HybridWidth.ToString(CultureInfo.InvariantCulture) + " (the stem's channels)");
            Field("featureMap", string.Create(CultureInfo.InvariantCulture,
                $"{a.FeatureChannels} channels, {FeatureSide(a)} x {FeatureSide(a)} (the trunk's stride is {a.TrunkStride}; the patch embedding reads this map)"));
        }
        Field("posEmbed", PositionGrid(a));
        Field("classes", a.Classes.ToString(CultureInfo.InvariantCulture) + (a.Classes == 0 ? " (no head: Forward writes pooled features)" : ""));
        Field("mlpDim", a.MlpDim.ToString(CultureInfo.InvariantCulture));
        Field("qkvBias", Bool(a.QkvBias));
        Field("classToken", Bool(a.ClassToken));
        Field("registers", a.Registers.ToString(CultureInfo.InvariantCulture));
        Field("layerScale", Bool(a.LayerScale));
        Field("preNorm", Bool(a.PreNorm));
        Field("distilled", Bool(a.Distilled));
        Field("pooling", a.Pooling == VitPooling.Avg ? "Avg (fc_norm present)" : "Token");
        Field("noEmbedClass", Bool(a.NoEmbedClass));
        Field("heads", a.Heads.ToString(CultureInfo.InvariantCulture) + " (guess: not recorded in weights)");
        Field("activation", a.Activation + " (guess: dialect convention)");
        Field("normEps", Eps(a.NormEps) + " (guess: dialect convention)");
        Line("");
        Line("attribute (heads is a guess, see the notes: weights do not record it)");
        Line("  " + a.ToAttribute());
        Line("  public partial class MyVit;");
        if (a.Notes.Count > 0)
        {
            Line("");
            Line("notes");
            foreach (string note in a.Notes) Line("  - " + note);
        }
        if (all)
        {
            Line("");
            Line("tensors (byte ranges are the header's data_offsets)");
            var rows = file.Tensors.OrderBy(t => t.DataBegin).ThenBy(t => t.Name, StringComparer.Ordinal)
                .Select(t => (t.Name, t.DTypeName, Shape: Shape(t.Shape),
                    Range: string.Create(CultureInfo.InvariantCulture, $"{t.DataBegin}..{t.DataEnd}"))).ToList();
            int nameWidth = Math.Max(4, rows.Max(r => r.Name.Length));
            int dtypeWidth = Math.Max(5, rows.Max(r => r.DTypeName.Length));
            int shapeWidth = Math.Max(5, rows.Max(r => r.Shape.Length));
            Line("  " + "name".PadRight(nameWidth) + "  " + "dtype".PadRight(dtypeWidth) + "  " + "shape".PadRight(shapeWidth) + "  bytes");
            foreach (var r in rows)
            {
                Line("  " + r.Name.PadRight(nameWidth) + "  " + r.DTypeName.PadRight(dtypeWidth) + "  " + r.Shape.PadRight(shapeWidth) + "  " + r.Range);
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// The position embedding's patch grid and the image size it was trained at: a model compiled for another size
    /// resamples it at load (VitOptions.ResamplePositionEmbedding).
    /// </summary>
    private static string PositionGrid(CheckpointArchitecture a)
    {
        int grid = a.PositionGrid, prefix = PositionPrefixRows(a);
        string rows = prefix == 0 ? "no prefix rows" : $"{prefix} prefix row{(prefix == 1 ? "" : "s")}";
        string size = a.SmallestImageSize == a.ImageSize
            ? string.Create(CultureInfo.InvariantCulture, $"{a.ImageSize} x {a.ImageSize} pixels ({a.Patch}-pixel patches)")
            : string.Create(CultureInfo.InvariantCulture, $"{a.SmallestImageSize} to {a.ImageSize} pixels square ({a.Patch}-pixel patches of the trunk's feature map, stride {a.TrunkStride})");
        return string.Create(CultureInfo.InvariantCulture,
            $"{grid} x {grid} grid + {rows}: trained at {size}; a model compiled for another image size resamples it at load");
    }

    /// <summary>The side of the feature map the patch embedding reads (of a hybrid's trunk, or the image).</summary>
    private static int FeatureSide(CheckpointArchitecture a) => a.PositionGrid * a.Patch;

    /// <summary>The class, distillation and register rows at the start of pos_embed (none with noEmbedClass).</summary>
    private static int PositionPrefixRows(CheckpointArchitecture a) => a.NoEmbedClass ? 0 : a.PrefixTokens;

    private static string Json(SafeTensorsFile file, CheckpointArchitecture a, bool all)
    {
        using var stream = new MemoryStream();
        // Relaxed escaping keeps quotes and apostrophes in names and notes readable; the output is not embedded in HTML.
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("file", file.Path);
            w.WriteNumber("size_bytes", file.Length);
            w.WriteNumber("tensor_count", file.Tensors.Count);
            w.WriteStartObject("dtypes");
            foreach (var d in DTypes(file))
            {
                w.WriteStartObject(d.DType);
                w.WriteNumber("tensors", d.Tensors);
                w.WriteNumber("elements", d.Elements);
                w.WriteNumber("bytes", d.Bytes);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteNumber("parameters", file.Tensors.Sum(t => t.ElementCount));
            w.WriteStartObject("metadata");
            foreach (var m in file.Metadata.OrderBy(m => m.Key, StringComparer.Ordinal)) w.WriteString(m.Key, m.Value);
            w.WriteEndObject();
            w.WriteString("dialect", a.Dialect.ToString());
            w.WriteString("dialect_name", a.DialectName);
            w.WriteStartObject("architecture");
            w.WriteNumber("patch", a.Patch);
            w.WriteNumber("dim", a.Dim);
            w.WriteNumber("depth", a.Depth);
            w.WriteNumber("heads", a.Heads);
            w.WriteBoolean("heads_guessed", true);
            w.WriteNumber("image_size", a.ImageSize);
            w.WriteNumber("channels", a.Channels);
            w.WriteNumber("classes", a.Classes);
            w.WriteNumber("mlp_dim", a.MlpDim);
            w.WriteBoolean("qkv_bias", a.QkvBias);
            w.WriteBoolean("class_token", a.ClassToken);
            w.WriteNumber("registers", a.Registers);
            w.WriteBoolean("layer_scale", a.LayerScale);
            w.WriteBoolean("pre_norm", a.PreNorm);
            w.WriteBoolean("distilled", a.Distilled);
            w.WriteString("pooling", a.Pooling == VitPooling.Avg ? "avg" : "token");
            w.WriteBoolean("no_embed_class", a.NoEmbedClass);
            if (a.HybridLayers is { } layers)
            {
                w.WriteStartObject("hybrid");
                w.WriteStartArray("layers");
                foreach (int l in layers) w.WriteNumberValue(l);
                w.WriteEndArray();
                w.WriteNumber("width", a.HybridWidth);
                w.WriteNumber("feature_channels", a.FeatureChannels);
                w.WriteNumber("feature_size", FeatureSide(a));
                w.WriteNumber("stride", a.TrunkStride);
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("hybrid");
            }
            w.WriteStartObject("pos_embed");
            w.WriteStartArray("grid");
            w.WriteNumberValue(a.PositionGrid);
            w.WriteNumberValue(a.PositionGrid);
            w.WriteEndArray();
            w.WriteNumber("prefix_rows", PositionPrefixRows(a));
            w.WriteNumber("image_size", a.ImageSize);
            w.WriteNumber("smallest_image_size", a.SmallestImageSize);
            w.WriteEndObject();
            w.WriteString("activation", a.Activation.ToString());
            w.WriteNumber("norm_eps", double.Parse(a.NormEps.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));
            w.WriteNumber("parameters", a.ParameterCount);
            w.WriteEndObject();
            w.WriteString("attribute", a.ToAttribute());
            w.WriteStartArray("notes");
            foreach (string note in a.Notes) w.WriteStringValue(note);
            w.WriteEndArray();
            if (all)
            {
                w.WriteStartArray("tensors");
                foreach (SafeTensorInfo t in file.Tensors.OrderBy(t => t.DataBegin).ThenBy(t => t.Name, StringComparer.Ordinal))
                {
                    w.WriteStartObject();
                    w.WriteString("name", t.Name);
                    w.WriteString("dtype", t.DTypeName);
                    w.WriteStartArray("shape");
                    foreach (long d in t.Shape) w.WriteNumberValue(d);
                    w.WriteEndArray();
                    w.WriteStartArray("data_offsets");
                    w.WriteNumberValue(t.DataBegin);
                    w.WriteNumberValue(t.DataEnd);
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
