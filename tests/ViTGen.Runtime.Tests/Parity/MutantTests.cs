using System.Buffers.Binary;
using System.Text.Json;
using ViTGen.CompilerServices;
using ViTGen.Tests.Kernels;
using Xunit.Abstractions;

namespace ViTGen.Tests.Parity;

/// <summary>
/// The parity bound has teeth: the `sensitive` fixture passes <see cref="ParityTests.Bound"/> when compiled with its
/// own attribute and fails it, by orders of magnitude, when the model gets LayerNorm eps, the GELU form or the
/// prefix token order wrong. (Its weights are rescaled so those mistakes matter: see `_sensitive` in
/// tests/fixtures/make_fixtures.py; the float64 size of each mistake is in tests/fixtures/parity/README.md.)
/// Non-parallel collection: one test forces SIMD tiers.
/// </summary>
[Collection(nameof(KernelSwitches))]
public sealed class MutantTests(ITestOutputHelper output)
{
    private const string Name = "sensitive";

    private static readonly Dictionary<string, Func<string, VitOptions?, IParityModel>> Mutants = new(StringComparer.Ordinal)
    {
        ["normEps 1e-5"] = (path, options) => MutantSensitiveEps5.Load(path, options),
        ["GeluTanh"] = (path, options) => MutantSensitiveGeluTanh.Load(path, options),
    };

    public static TheoryData<string> MutantNames() => new(Mutants.Keys);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void RightAttributeMatchesPyTorch(int threads)
    {
        var fixture = Fixture.Read(Name);
        double error = Run(fixture, FixtureSensitive.Load(fixture.WeightsPath, new VitOptions { Threads = threads }));
        Assert.True(error <= ParityTests.Bound, $"relative L2 error {error:E3} exceeds {ParityTests.Bound:E1}");
        output.WriteLine($"{Name} threads={threads}: relative L2 {error:E2}");
    }

    [Theory]
    [TierData(512)]
    [TierData(256)]
    [TierData(128)]
    public void RightAttributeMatchesPyTorchOnEveryTier(int bits)
    {
        using var tier = Simd.Force(Tiers.Of(bits));
        var fixture = Fixture.Read(Name);
        double error = Run(fixture, FixtureSensitive.Load(fixture.WeightsPath, new VitOptions { Threads = 2 }));
        Assert.True(error <= ParityTests.Bound, $"relative L2 error {error:E3} exceeds {ParityTests.Bound:E1}");
        output.WriteLine($"{Name} ({Tiers.Of(bits)}): relative L2 {error:E2}");
    }

    [Theory]
    [MemberData(nameof(MutantNames))]
    public void WrongAttributeFailsTheBound(string mutant)
    {
        var fixture = Fixture.Read(Name);
        double error = Run(fixture, Mutants[mutant](fixture.WeightsPath, new VitOptions { Threads = 2 }));
        AssertFails(mutant, error);
    }

    /// <summary>
    /// Token order. A forward that put the registers before the class token, [reg0, reg1, cls, patches], adding
    /// pos_embed in that order, computes exactly what the right forward computes on rewritten weights (attention
    /// has no positional bias, so it is equivariant to token order). Two ways to get it wrong:
    /// <list type="bullet">
    /// <item>still pooling the class token (at its new index): the class token gets pos_embed row 2, the registers
    /// rows 0 and 1, i.e. pos_embed rows [0, 1, 2] become [2, 0, 1];</item>
    /// <item>pooling index 0 (now a register): cls_token becomes reg0 and reg_token becomes [reg1, cls].</item>
    /// </list>
    /// </summary>
    [Theory]
    [InlineData("registers first, class token pooled")]
    [InlineData("registers first, token 0 pooled")]
    public void SwappedTokenOrderFailsTheBound(string mutant)
    {
        var fixture = Fixture.Read(Name);
        byte[] file = File.ReadAllBytes(fixture.WeightsPath);
        const int dim = 24, registers = 2;
        var pos = Rows(file, "pos_embed", dim);
        var cls = Rows(file, "cls_token", dim);
        var reg = Rows(file, "reg_token", dim);
        if (mutant.EndsWith("class token pooled", StringComparison.Ordinal))
        {
            var original = new float[]?[registers + 1];
            for (int i = 0; i <= registers; i++) original[i] = pos.Read(i);
            pos.Write(0, original[registers]!);
            for (int i = 0; i < registers; i++) pos.Write(i + 1, original[i]!);
        }
        else
        {
            float[] c = cls.Read(0), r0 = reg.Read(0), r1 = reg.Read(1);
            cls.Write(0, r0);
            reg.Write(0, r1);
            reg.Write(1, c);
        }
        string path = Path.Combine(Path.GetTempPath(), $"vitgen-mutant-{Guid.NewGuid():N}.safetensors");
        try
        {
            File.WriteAllBytes(path, file);
            double error = Run(fixture, FixtureSensitive.Load(path, new VitOptions { Threads = 2 }));
            AssertFails(mutant, error);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void RewritingTheWeightsFileUnchangedStillPasses()
    {
        // The rewrite path itself (read rows, write them back, load from a temp file) changes nothing.
        var fixture = Fixture.Read(Name);
        byte[] file = File.ReadAllBytes(fixture.WeightsPath);
        var pos = Rows(file, "pos_embed", 24);
        for (int i = 0; i < 3; i++) pos.Write(i, pos.Read(i));
        string path = Path.Combine(Path.GetTempPath(), $"vitgen-mutant-{Guid.NewGuid():N}.safetensors");
        try
        {
            File.WriteAllBytes(path, file);
            Assert.Equal(File.ReadAllBytes(fixture.WeightsPath), File.ReadAllBytes(path));
            double error = Run(fixture, FixtureSensitive.Load(path, new VitOptions { Threads = 1 }));
            Assert.True(error <= ParityTests.Bound);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static double Run(Fixture fixture, IParityModel loaded)
    {
        using var model = loaded;
        var result = fixture.PoisonedOutput();
        model.Forward(fixture.Input, result, fixture.Batch);
        foreach (float v in result) Assert.False(float.IsNaN(v), "output contains NaN (an element was never written)");
        return Numerics.RelativeL2(result, fixture.Expected);
    }

    private void AssertFails(string mutant, double error)
    {
        output.WriteLine($"{Name} mutant '{mutant}': relative L2 {error:E2} = {error / ParityTests.Bound:F0} x bound {ParityTests.Bound:E0}");
        Assert.True(error > ParityTests.Bound, $"mutant '{mutant}' passes: relative L2 {error:E3} within {ParityTests.Bound:E1}");
    }

    /// <summary>Rows of <paramref name="width"/> F32 values of one tensor inside a safetensors file's bytes.</summary>
    private static TensorRows Rows(byte[] file, string tensor, int width)
    {
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(file);
        using var header = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
        var info = header.RootElement.GetProperty(tensor);
        Assert.Equal("F32", info.GetProperty("dtype").GetString());
        int start = 8 + (int)headerLength + info.GetProperty("data_offsets")[0].GetInt32();
        return new TensorRows(file, start, width);
    }

    private readonly record struct TensorRows(byte[] File, int Start, int Width)
    {
        public float[] Read(int row)
        {
            var values = new float[Width];
            for (int i = 0; i < Width; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(File.AsSpan(Start + 4 * (row * Width + i)));
            return values;
        }

        public void Write(int row, float[] values)
        {
            for (int i = 0; i < Width; i++) BinaryPrimitives.WriteSingleLittleEndian(File.AsSpan(Start + 4 * (row * Width + i)), values[i]);
        }
    }
}
