using System.Text.Json;
using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Weights;

/// <summary>
/// The dialect names anchored by an independent source: tests/fixtures/dialects/published-tensor-names.json lists,
/// by hand from the public documentation and source of each checkpoint, every tensor name and shape of Hugging Face
/// <c>google/vit-base-patch16-224</c>, torchvision <c>vit_b_16</c> and OpenAI CLIP ViT-B/32's image tower, with
/// their timm counterparts as published by the converters. A checkpoint with exactly those names (the layer pattern
/// kept, the sizes scaled to a compiled fixture model) must load, read every tensor, and give the model the same
/// weights as the timm file: each tensor read through the reader equals the timm tensor, and the outputs match bit
/// for bit. Nothing here goes through the tests' DialectFiles rewriter or ViTGen's renamer to build the names.
/// </summary>
public sealed class PublishedNamesTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private sealed record Entry(string Name, long[] Shape, string Timm, string How);

    private sealed record Published(string Name, CheckpointDialect Dialect, string Fixture, int Layers,
        Dictionary<long, long> Scale, List<Entry> Tensors);

    private static List<Published> ReadFixture()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "fixtures", "dialects", "published-tensor-names.json");
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(path));
        var result = new List<Published>();
        foreach (JsonElement c in doc.RootElement.GetProperty("checkpoints").EnumerateArray())
        {
            var scale = c.GetProperty("scale").EnumerateObject().ToDictionary(p => long.Parse(p.Name, System.Globalization.CultureInfo.InvariantCulture), p => p.Value.GetInt64());
            var tensors = c.GetProperty("tensors").EnumerateArray().Select(t => new Entry(
                t[0].GetString()!, t[1].EnumerateArray().Select(d => d.GetInt64()).ToArray(), t[2].GetString()!, t[3].GetString()!)).ToList();
            result.Add(new Published(c.GetProperty("name").GetString()!, Enum.Parse<CheckpointDialect>(c.GetProperty("dialect").GetString()!),
                c.GetProperty("fixture").GetString()!, c.GetProperty("layers").GetInt32(), scale, tensors));
        }
        return result;
    }

    public static TheoryData<CheckpointDialect> Dialects() => new() { CheckpointDialect.HuggingFace, CheckpointDialect.TorchVision, CheckpointDialect.OpenAiClip };

    [Theory]
    [MemberData(nameof(Dialects))]
    public void Published_names_load_every_tensor_into_its_timm_place(CheckpointDialect dialect)
    {
        Published published = ReadFixture().Single(p => p.Dialect == dialect);
        Fixture fixture = Fixture.Read(published.Fixture);
        var timm = DialectFiles.ReadAll(fixture.WeightsPath).ToDictionary(t => t.Name);
        // The fixture's depth stands in for the published 12 layers; every other size goes through the scale table.
        int depth = timm.Keys.Count(n => n.StartsWith("blocks.", StringComparison.Ordinal) && n.EndsWith(".attn.qkv.weight", StringComparison.Ordinal));
        Assert.True(depth >= 2 && depth < published.Layers);
        bool clip = dialect == CheckpointDialect.OpenAiClip;
        if (clip)
        {
            // CLIP's head has no bias: compare against the timm weights with a zero head bias.
            timm["head.bias"] = DialectFiles.WithZeros(timm.Values, "head.bias").Single(t => t.Name == "head.bias");
        }

        var written = new List<RawTensor>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (Entry entry in published.Tensors)
        {
            var layers = entry.Name.Contains("{i}", StringComparison.Ordinal) ? Enumerable.Range(0, depth) : new[] { 0 };
            foreach (int i in layers)
            {
                string name = entry.Name.Replace("{i}", i.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
                string timmName = entry.Timm.Replace("{i}", i.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
                long[] shape = entry.Shape.Select(d => published.Scale.TryGetValue(d, out long s) ? s
                    : throw new InvalidOperationException($"{published.Name}: no scaled size for {d} in '{entry.Name}'")).ToArray();
                RawTensor source = timm.TryGetValue(timmName, out RawTensor? found) ? found
                    : throw new InvalidOperationException($"{published.Name}: the fixture has no '{timmName}' for '{name}'");
                written.Add(new RawTensor(name, source.DType, shape, Derive(source, entry.How, shape, name)));
                used.Add(timmName);
            }
        }
        // The published list covers the whole model (CLIP's missing head bias aside).
        Assert.Equal(timm.Keys.Where(n => !(clip && n == "head.bias")).Order(StringComparer.Ordinal), used.Order(StringComparer.Ordinal));
        Assert.Equal(written.Count, written.Select(t => t.Name).Distinct(StringComparer.Ordinal).Count());

        written.Reverse();
        string path = _folder.Write(SafeTensorsWriter.Build(written), $"published.{dialect}.safetensors");
        string timmPath = _folder.Write(SafeTensorsWriter.Build(timm.Values), $"timm.{dialect}.safetensors");

        using (var reader = CompilerServices.CheckpointReader.Open(path))
        {
            Assert.Equal(dialect, reader.Dialect);
            foreach (RawTensor t in timm.Values.Where(t => !(clip && t.Name == "head.bias")))
            {
                int[] shape = t.Shape.Select(d => (int)d).ToArray();
                var values = new float[DialectFiles.Floats(t).Length];
                reader.Read(t.Name, shape, values);
                Assert.True(DialectFiles.Floats(t).AsSpan().SequenceEqual(values), $"'{t.Name}' read from the {published.Name} names differs from the timm tensor");
            }
            reader.EnsureAllRead();
        }

        // The compiled model (strict: every tensor read, every shape checked) gives the same output as from timm names.
        Assert.Equal(Forward(published.Fixture, timmPath, fixture), Forward(published.Fixture, path, fixture));
    }

    private static byte[] Derive(RawTensor source, string how, long[] shape, string name)
    {
        long count = shape.Aggregate(1L, (a, d) => a * d);
        int size = source.Data.Length / (int)source.Shape.Aggregate(1L, (a, d) => a * d);
        switch (how)
        {
            case "":
                Assert.Equal(source.Shape, shape);
                return source.Data;
            case "reshape":
                Assert.Equal(source.Shape.Where(d => d != 1), shape.Where(d => d != 1));
                Assert.Equal(source.Data.Length, count * size);
                return source.Data;
            case "transpose":
                Assert.Equal(new[] { source.Shape[1], source.Shape[0] }, shape);
                float[] values = DialectFiles.Floats(source);
                int rows = (int)source.Shape[0], cols = (int)source.Shape[1];
                var transposed = new float[values.Length];
                for (int r = 0; r < rows; r++)
                {
                    for (int c = 0; c < cols; c++) transposed[c * rows + r] = values[r * cols + c];
                }
                Assert.Equal("F32", source.DType);
                return System.Runtime.InteropServices.MemoryMarshal.AsBytes(transposed.AsSpan()).ToArray();
            default:
                Assert.StartsWith("part ", how, StringComparison.Ordinal);
                string[] k = how[5..].Split('/');
                int part = int.Parse(k[0], System.Globalization.CultureInfo.InvariantCulture), parts = int.Parse(k[1], System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(source.Shape[0], parts * shape[0]);
                Assert.Equal(source.Shape.Skip(1), shape.Skip(1));
                int bytes = source.Data.Length / parts;
                Assert.True(bytes == count * size, $"'{name}'");
                return source.Data.AsSpan(part * bytes, bytes).ToArray();
        }
    }

    private static float[] Forward(string name, string weights, Fixture fixture)
    {
        using IParityModel model = ParityModels.Load[name](weights, null);
        float[] result = fixture.PoisonedOutput();
        model.Forward(fixture.Input, result, fixture.Batch);
        return result;
    }
}
