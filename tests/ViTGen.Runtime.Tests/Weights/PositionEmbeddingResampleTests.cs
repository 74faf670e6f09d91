using System.Text.Json;
using ViTGen.CompilerServices;
using ViTGen.Tests.Cuda;
using ViTGen.Tests.Parity;
using Xunit.Abstractions;

namespace ViTGen.Tests.Weights;

/// <summary>
/// Loading a checkpoint trained at another image size: the position embedding is resampled as timm's loader does
/// (prefix rows kept, the square grid resized by PyTorch's antialiased bicubic interpolation), checked against the
/// float64 PyTorch references of tests/fixtures/make_resample_fixtures.py, on the CPU Load and the GPU plan's load.
/// </summary>
public sealed class PositionEmbeddingResampleTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>The resampled embedding against PyTorch's float64 resize (float32 rounding alone is ~3e-8).</summary>
    public const double TensorBound = 1e-5;

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static string Directory => Path.Combine(AppContext.BaseDirectory, "fixtures", "resample");

    /// <summary>A fixture's compiled model: its loaders (CPU, and the GPU plan run by the CPU executor) and pos_embed layout.</summary>
    private sealed record Target(
        Func<string, VitOptions?, IParityModel> Load, Func<string, float[], int, VitOptions?, float[]> Plan,
        int PrefixRows, int Grid, int Dim);

    private static readonly Dictionary<string, Target> Targets = new(StringComparer.Ordinal)
    {
        ["up_cls"] = new((p, o) => ResampleUpCls.Load(p, o), (p, x, b, o) => CpuPlanExecutor.Forward<ResampleUpCls.CudaPlan>(p, x, b, o), 1, 7, 24),
        ["up_dinov2"] = new((p, o) => ResampleUpDinov2.Load(p, o), (p, x, b, o) => CpuPlanExecutor.Forward<ResampleUpDinov2.CudaPlan>(p, x, b, o), 0, 7, 24),
        ["down_registers"] = new((p, o) => FixtureRegisters.Load(p, o), (p, x, b, o) => CpuPlanExecutor.Forward<FixtureRegisters.CudaPlan>(p, x, b, o), 5, 4, 24),
        ["down_noembed"] = new((p, o) => FixtureRegistersNoembed.Load(p, o), (p, x, b, o) => CpuPlanExecutor.Forward<FixtureRegistersNoembed.CudaPlan>(p, x, b, o), 0, 4, 24),
        ["down_distilled"] = new((p, o) => FixtureDistilled.Load(p, o), (p, x, b, o) => CpuPlanExecutor.Forward<FixtureDistilled.CudaPlan>(p, x, b, o), 2, 4, 24),
        ["down_to_1x1"] = new((p, o) => ResampleOnePatch.Load(p, o), (p, x, b, o) => CpuPlanExecutor.Forward<ResampleOnePatch.CudaPlan>(p, x, b, o), 1, 1, 24),
        ["up_from_1x1"] = new((p, o) => FixtureBasic.Load(p, o), (p, x, b, o) => CpuPlanExecutor.Forward<FixtureBasic.CudaPlan>(p, x, b, o), 1, 8, 64),
    };

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (string name in Targets.Keys.Order(StringComparer.Ordinal)) data.Add(name);
        return data;
    }

    private static string Weights(string name) => Path.Combine(Directory, name + ".safetensors");

    private static (float[] Input, int Batch, double[] PositionEmbedding, double[] Expected) Io(string name)
    {
        using var io = SafeTensorsFile.Open(Path.Combine(Directory, name + ".io.safetensors"));
        var input = new float[io.GetTensor("input").ElementCount];
        var pos = new double[io.GetTensor("pos_embed").ElementCount];
        var expected = new double[io.GetTensor("expected").ElementCount];
        io.ReadFloat32("input", input);
        io.ReadFloat64("pos_embed", pos);
        io.ReadFloat64("expected", expected);
        return (input, (int)io.GetTensor("input").Shape[0], pos, expected);
    }

    [Fact]
    public void Every_generated_case_is_tested_with_its_layout()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "cases.json")));
        var cases = json.RootElement.EnumerateArray().ToList();
        Assert.Equal(Targets.Keys.Order(StringComparer.Ordinal), cases.Select(c => c.GetProperty("name").GetString()!).Order(StringComparer.Ordinal));
        foreach (var c in cases)
        {
            Target t = Targets[c.GetProperty("name").GetString()!];
            Assert.Equal(c.GetProperty("prefix_rows").GetInt32(), t.PrefixRows);
            Assert.Equal(c.GetProperty("grid").GetInt32(), t.Grid);
            Assert.NotEqual(c.GetProperty("source_grid").GetInt32(), t.Grid);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Resampled_position_embedding_matches_PyTorch(string name)
    {
        Target t = Targets[name];
        var (_, _, expected, _) = Io(name);
        var actual = Enumerable.Repeat(float.NaN, expected.Length).ToArray();
        using (var reader = CheckpointReader.Open(Weights(name)))
        {
            WeightLoading.ReadPositionEmbedding(reader, TimmNames.PositionEmbedding, t.PrefixRows, t.Grid, t.Grid, t.Dim, actual);
        }
        Numerics.AssertClose(actual, expected, TensorBound, out double error);
        output.WriteLine($"{name}: pos_embed relative L2 {error:E2}");

        // The prefix rows are copied, not resampled: bit for bit the checkpoint's.
        using var file = SafeTensorsFile.Open(Weights(name));
        var stored = new float[file.GetTensor("pos_embed").ElementCount];
        file.ReadFloat32("pos_embed", stored);
        Assert.Equal(stored.AsSpan(0, t.PrefixRows * t.Dim).ToArray(), actual.AsSpan(0, t.PrefixRows * t.Dim).ToArray());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Load_resamples_and_the_logits_match_PyTorch(string name)
    {
        var (input, batch, _, expected) = Io(name);
        using var model = Targets[name].Load(Weights(name), new VitOptions { Threads = 2 });
        var logits = Enumerable.Repeat(float.NaN, expected.Length).ToArray();
        model.Forward(input, logits, batch);
        Numerics.AssertClose(logits, expected, ParityTests.Bound, out double error);
        output.WriteLine($"{name}: logits relative L2 {error:E2}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gpu_plan_load_resamples_like_the_cpu(string name)
    {
        // LoadCuda reads through the same CudaLoading.ReadWeights; the CPU executor runs the plan on that image.
        var (input, batch, _, expected) = Io(name);
        float[] planned = Targets[name].Plan(Weights(name), input, batch, null);
        Numerics.AssertClose(planned, expected, CpuPlanParityTests.TorchBound, out double error);
        output.WriteLine($"{name}: GPU plan (CPU executor) relative L2 {error:E2}");
    }

    [CudaTheory]
    [InlineData("up_cls")]
    [InlineData("down_registers")]
    public void LoadCuda_resamples_on_the_device(string name)
    {
        var (input, batch, _, expected) = Io(name);
        using VitCudaModel model = name == "up_cls" ? ResampleUpCls.LoadCuda(Weights(name)) : FixtureRegisters.LoadCuda(Weights(name));
        var logits = Enumerable.Repeat(float.NaN, expected.Length).ToArray();
        model.Forward(input, logits, batch);
        Numerics.AssertClose(logits, expected, CpuPlanParityTests.TorchBound, out double error);
        output.WriteLine($"{name}: LoadCuda relative L2 {error:E2}");
    }

    public static TheoryData<string> Grids()
    {
        var data = new TheoryData<string>();
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "grids.json")));
        foreach (var g in json.RootElement.EnumerateArray()) data.Add(g.GetProperty("name").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(Grids))]
    public void Resampler_matches_PyTorch_interpolate(string name)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "grids.json")));
        var g = json.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
        int[] source = g.GetProperty("source").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int[] target = g.GetProperty("target").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int dim = g.GetProperty("dim").GetInt32();

        using var file = SafeTensorsFile.Open(Path.Combine(Directory, "grids.safetensors"));
        var grid = new float[source[0] * source[1] * dim];
        var expected = new double[target[0] * target[1] * dim];
        file.ReadFloat32(name + ".source", grid);
        file.ReadFloat64(name + ".expected", expected);
        var actual = Enumerable.Repeat(float.NaN, expected.Length).ToArray();
        PositionEmbeddingResampler.Resample(grid, source[0], source[1], actual, target[0], target[1], dim);
        Numerics.AssertClose(actual, expected, TensorBound, out double error);
        output.WriteLine($"{name}: relative L2 {error:E2}");
    }

    [Fact]
    public void A_hugging_face_checkpoint_is_resampled_too()
    {
        // Hugging Face stores pos_embed as vit.embeddings.position_embeddings; the resample reads it through the mapping.
        var (input, batch, _, expected) = Io("up_cls");
        string path = _folder.Write(SafeTensorsWriter.Build(DialectFiles.HuggingFace(DialectFiles.ReadAll(Weights("up_cls")), classifier: true)));
        using var model = ResampleUpCls.Load(path, new VitOptions { Threads = 1 });
        var logits = Enumerable.Repeat(float.NaN, expected.Length).ToArray();
        model.Forward(input, logits, batch);
        Numerics.AssertClose(logits, expected, ParityTests.Bound, out _);
    }

    [Fact]
    public void Turning_the_option_off_restores_the_shape_error()
    {
        string path = Weights("down_registers");
        var e = Assert.Throws<VitWeightsException>(() => FixtureRegisters.Load(path, new VitOptions { ResamplePositionEmbedding = false }).Dispose());
        Assert.Equal($"tensor 'pos_embed' in '{path}' has shape [1, 54, 24] but the model expects [1, 21, 24]", e.Message);
        Assert.Throws<VitWeightsException>(() => CpuPlanExecutor.Forward<FixtureRegisters.CudaPlan>(path, new float[3 * 16 * 16], 1,
            new VitOptions { ResamplePositionEmbedding = false }));
    }

    /// <summary>The up_cls checkpoint (1 prefix row, dim 24, for a 7x7 model) with its pos_embed replaced.</summary>
    private string WithPositionEmbedding(string name, long[] shape, int seed = 1)
    {
        int count = (int)shape.Aggregate(1L, (a, b) => a * b);
        var tensors = DialectFiles.ReadAll(Weights(name)).Where(t => t.Name != "pos_embed")
            .Append(SafeTensorsWriter.F32("pos_embed", shape, SafeTensorsWriter.RandomFloats(new Random(seed), count)));
        return _folder.Write(SafeTensorsWriter.Build(tensors));
    }

    [Fact]
    public void Rows_that_are_not_a_square_grid_are_refused_naming_tensor_rows_and_expectation()
    {
        string path = WithPositionEmbedding("up_cls", [1, 16, 24]);
        var e = Assert.Throws<VitWeightsException>(() => ResampleUpCls.Load(path).Dispose());
        Assert.Equal($"tensor 'pos_embed' in '{path}' has shape [1, 16, 24]: after the model's 1 prefix row, its 15 remaining rows are not a square grid of patches, "
            + "so it cannot be resampled to the model's 7 x 7 grid (the model expects [1, 50, 24])", e.Message);
        Assert.Throws<VitWeightsException>(() => CpuPlanExecutor.Forward<ResampleUpCls.CudaPlan>(path, new float[3 * 28 * 28], 1));
    }

    [Fact]
    public void A_checkpoint_with_prefix_rows_for_a_noEmbedClass_model_is_refused()
    {
        // 5 prefix rows + 4x4 = 21 rows: a no_embed_class model takes all rows as the grid, and 21 is not a square.
        string path = WithPositionEmbedding("up_dinov2", [1, 21, 24]);
        var e = Assert.Throws<VitWeightsException>(() => ResampleUpDinov2.Load(path).Dispose());
        Assert.Contains("with no prefix rows (noEmbedClass), its 21 remaining rows are not a square grid", e.Message, StringComparison.Ordinal);
        Assert.Contains("(the model expects [1, 49, 24])", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fewer_rows_than_prefix_tokens_are_refused()
    {
        string path = WithPositionEmbedding("down_registers", [1, 5, 24]);
        var e = Assert.Throws<VitWeightsException>(() => FixtureRegisters.Load(path).Dispose());
        Assert.Equal($"tensor 'pos_embed' in '{path}' has shape [1, 5, 24]: after the model's 5 prefix rows, no rows are left for the patch grid, "
            + "so it cannot be resampled to the model's 4 x 4 grid (the model expects [1, 21, 24])", e.Message);
    }

    [Fact]
    public void Another_width_is_the_usual_shape_error()
    {
        string path = WithPositionEmbedding("up_cls", [1, 17, 12]);
        var e = Assert.Throws<VitWeightsException>(() => ResampleUpCls.Load(path).Dispose());
        Assert.Equal($"tensor 'pos_embed' in '{path}' has shape [1, 17, 12] but the model expects [1, 50, 24]", e.Message);
        string flat = WithPositionEmbedding("up_cls", [17, 24]);
        e = Assert.Throws<VitWeightsException>(() => ResampleUpCls.Load(flat).Dispose());
        Assert.Equal($"tensor 'pos_embed' in '{flat}' has shape [17, 24] but the model expects [1, 50, 24]", e.Message);
    }

    [Fact]
    public void A_large_constant_grid_shrinks_to_its_value()
    {
        // 64x64 -> 1x1: the filter spans the whole grid (support 2 x 64); weights normalized per output pixel keep a
        // constant grid constant, whatever their number.
        const int Side = 64, Dim = 24;
        var rows = new float[(1 + Side * Side) * Dim];
        for (int r = 0; r < 1 + Side * Side; r++)
            for (int c = 0; c < Dim; c++) rows[r * Dim + c] = r == 0 ? -1f : 0.25f * (c + 1);
        var tensors = DialectFiles.ReadAll(Weights("down_to_1x1")).Where(t => t.Name != "pos_embed")
            .Append(SafeTensorsWriter.F32("pos_embed", [1, 1 + Side * Side, Dim], rows));
        string path = _folder.Write(SafeTensorsWriter.Build(tensors));
        var actual = Enumerable.Repeat(float.NaN, 2 * Dim).ToArray();
        using (var reader = CheckpointReader.Open(path))
        {
            WeightLoading.ReadPositionEmbedding(reader, TimmNames.PositionEmbedding, 1, 1, 1, Dim, actual);
        }
        for (int c = 0; c < Dim; c++)
        {
            Assert.Equal(-1f, actual[c]);
            Assert.Equal(0.25f * (c + 1), actual[Dim + c], 1e-6f);
        }
        using var model = ResampleOnePatch.Load(path); // and Load takes it
    }

    [Fact]
    public void A_huge_claimed_grid_is_refused_before_anything_is_allocated_for_it()
    {
        // The header claims a 2^20 x 2^20 grid (2^40 rows) the file does not hold: the safetensors checks refuse it
        // when the file is opened, so no buffer of that size is ever requested.
        string header = "{\"pos_embed\":{\"dtype\":\"F32\",\"shape\":[1,1099511627777,24],\"data_offsets\":[0,96]}}";
        string path = _folder.Write(SafeTensorsWriter.FromHeader(header, new byte[96]));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<VitWeightsException>(() => ResampleUpCls.Load(path).Dispose());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("pos_embed", e.Message, StringComparison.Ordinal);
        Assert.True(allocated < 1 << 20, $"refusing the file allocated {allocated} bytes");
    }
}
