using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using ViTGen.Cli.Commands;

namespace ViTGen.Cli.Tests;

/// <summary>
/// A checkpoint trained at another image size than the compiled model's: <c>classify --model</c> loads it (the
/// position embedding is resampled) and <c>inspect</c> reports the grid it was trained at.
/// </summary>
[Collection(nameof(Console))]
public sealed class ResampledCheckpointTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("vitgen-resample-tests").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>
    /// DIR/model.json is the bundled Fashion-MNIST one (img_size 28, a 7 x 7 grid, which this binary has compiled);
    /// DIR/model.safetensors has its weights with pos_embed's grid replaced by <paramref name="grid"/> rows: from
    /// <see cref="Upsampled"/> the same model as if trained at 56 pixels.
    /// </summary>
    private string ModelDirectory(Func<float[], int, float[]> grid)
    {
        using (var json = BundledModel.Open("model.json"))
        using (var copy = File.Create(Path.Combine(_directory, "model.json")))
        {
            json.CopyTo(copy);
        }
        var tensors = new List<(string Name, long[] Shape, float[] Data)>();
        using (var file = SafeTensorsFile.Open(BundledModel.ExtractWeights()))
        {
            foreach (var t in file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                var data = new float[t.ElementCount];
                file.ReadFloat32(t.Name, data);
                if (t.Name == "pos_embed")
                {
                    int dim = (int)t.Shape[2];
                    data = grid(data, dim);
                    tensors.Add((t.Name, [1, data.Length / dim, dim], data));
                }
                else
                {
                    tensors.Add((t.Name, t.Shape.ToArray(), data));
                }
            }
        }
        WriteSafeTensors(Path.Combine(_directory, "model.safetensors"), tensors);
        return _directory;
    }

    /// <summary>The class row, then each of the 7 x 7 positions repeated over a 2 x 2 block: a 14 x 14 grid.</summary>
    private static float[] Upsampled(float[] pos, int dim)
    {
        const int Side = 7, Factor = 2, Big = Side * Factor;
        var result = new float[(1 + Big * Big) * dim];
        pos.AsSpan(0, dim).CopyTo(result);
        for (int y = 0; y < Big; y++)
            for (int x = 0; x < Big; x++)
                pos.AsSpan((1 + y / Factor * Side + x / Factor) * dim, dim).CopyTo(result.AsSpan((1 + y * Big + x) * dim));
        return result;
    }

    internal static void WriteSafeTensors(string path, List<(string Name, long[] Shape, float[] Data)> tensors)
    {
        using var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            long offset = 0;
            foreach (var (name, shape, data) in tensors)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", "F32");
                w.WriteStartArray("shape");
                foreach (long d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset += 4L * data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        var json = new List<byte>(header.ToArray());
        while (json.Count % 8 != 0) json.Add((byte)' ');
        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Count);
        file.Write(length);
        file.Write(json.ToArray());
        foreach (var (_, _, data) in tensors)
        {
            var bytes = new byte[4 * data.Length];
            for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), data[i]);
            file.Write(bytes);
        }
    }

    [Fact]
    public void ClassifyLoadsACheckpointTrainedAtAnotherImageSize()
    {
        string directory = ModelDirectory(Upsampled);
        var result = CliRunner.Run("classify", "--model", directory, "--json");
        Assert.Equal("", result.Error);
        Assert.Equal(0, result.ExitCode);
        // Resampling the 14 x 14 grid back to 7 x 7 (antialiased bicubic) blurs the learned embedding a little; the
        // bundled samples are still each classified as the class they are named after.
        Assert.Equal(8, result.OutLines.Length);
        foreach (var line in result.OutLines)
        {
            var root = JsonDocument.Parse(line).RootElement;
            Assert.Equal(CommandTests.LabelOfSampleName(root.GetProperty("path").GetString()!), root.GetProperty("label").GetString());
        }
    }

    [Fact]
    public void ClassifyRefusesAPositionEmbeddingThatIsNotASquareGrid()
    {
        string directory = ModelDirectory((pos, dim) => pos.AsSpan(0, 40 * dim).ToArray()); // class row + 39
        var result = CliRunner.Run("classify", "--model", directory);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("tensor 'pos_embed'", result.Error);
        Assert.Contains("its 39 remaining rows are not a square grid of patches", result.Error);
        Assert.Contains("the model expects [1, 50, 64]", result.Error);
    }

    [Fact]
    public void InspectReportsThePositionGridAndTheImageSizeItImplies()
    {
        string weights = Path.Combine(ModelDirectory(Upsampled), "model.safetensors");
        var text = CliRunner.Run("inspect", weights);
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("  posEmbed     14 x 14 grid + 1 prefix row: trained at 56 x 56 pixels (4-pixel patches); a model compiled for another image size resamples it at load\n", text.Out);
        Assert.Contains("imageSize: 56", text.Out);

        var json = CliRunner.Run("inspect", weights, "--json");
        Assert.Equal(0, json.ExitCode);
        var pos = JsonDocument.Parse(json.Out).RootElement.GetProperty("architecture").GetProperty("pos_embed");
        Assert.Equal([14, 14], pos.GetProperty("grid").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(1, pos.GetProperty("prefix_rows").GetInt32());
        Assert.Equal(56, pos.GetProperty("image_size").GetInt32());
    }
}
