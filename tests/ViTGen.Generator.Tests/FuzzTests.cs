using System.Globalization;
using System.Text;
using Microsoft.CodeAnalysis;
using Xunit;

namespace ViTGen.Generator.Tests;

/// <summary>
/// Seeded random attribute applications: random subsets and orders of arguments, extreme and wrong-typed values,
/// unknown, duplicate and missing names, and look-alike attribute classes. The generator must never fail, and
/// what it generates must not add a single compiler error.
/// </summary>
public class FuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>Fixed, so failures reproduce; set VITGEN_FUZZ_SEED to explore other inputs locally.</summary>
    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("VITGEN_FUZZ_SEED"), out int seed) ? seed : 20240611;
    private const int Batches = 10;
    private const int ClassesPerBatch = 45;
    private const int LookAlikeCompilations = 50;

    private enum Kind { Int, Bool, Pooling, Activation, Float }

    private static readonly (string Name, Kind Kind)[] Parameters =
    {
        ("patch", Kind.Int), ("dim", Kind.Int), ("depth", Kind.Int), ("heads", Kind.Int),
        ("imageSize", Kind.Int), ("channels", Kind.Int), ("classes", Kind.Int), ("mlpDim", Kind.Int),
        ("qkvBias", Kind.Bool), ("classToken", Kind.Bool), ("pooling", Kind.Pooling), ("activation", Kind.Activation),
        ("normEps", Kind.Float), ("layerScale", Kind.Bool), ("registers", Kind.Int), ("noEmbedClass", Kind.Bool),
        ("preNorm", Kind.Bool), ("distilled", Kind.Bool),
    };

    private static readonly string[] ExtremeInts =
    {
        "int.MinValue", "-2147483647", "-1", "0", "1", "2", "3", "7", "65536", "1 << 20", "1 << 29", "46341",
        "int.MaxValue", "2147483646", "'A'", "(int)1e9", "unchecked((int)0x80000001)", "(short)-5", "(byte)255",
    };

    private static readonly string[] WrongValues =
    {
        "\"16\"", "16.5", "16f", "16L", "16u", "16m", "true", "null", "default", "VitPooling.Avg", "typeof(int)",
        "new[] { 16 }", "undefinedName", "1 / 0", "int.MaxValue + 1", "nameof(Object)", "(object)16", "1e-6",
        "float.NaN", "(VitActivation)1", "\"\"", "$\"{1}\"", "'\\0'", "-", "16,", "(16, 16)",
    };

    private static string RandomValue(Random random, Kind kind)
    {
        if (random.NextDouble() < 0.12) return Pick(random, WrongValues);
        return kind switch
        {
            Kind.Int => random.NextDouble() < 0.4
                ? Pick(random, ExtremeInts)
                : Pick(random, new[] { 1, 2, 3, 4, 6, 8, 12, 14, 16, 24, 32, 48, 64, 96, 128, 192, 224, 384, 768, 1000 })
                    .ToString(CultureInfo.InvariantCulture),
            Kind.Bool => Pick(random, new[] { "true", "false", "!true", "1 == 1", "default" }),
            Kind.Pooling => Pick(random, new[] { "VitPooling.Token", "VitPooling.Avg", "(VitPooling)7", "(VitPooling)(-1)", "0", "default", "(VitPooling)1" }),
            Kind.Activation => Pick(random, new[]
            {
                "VitActivation.Gelu", "VitActivation.GeluTanh", "VitActivation.QuickGelu", "VitActivation.Relu",
                "(VitActivation)4", "(VitActivation)int.MinValue", "0", "(ViTGen.VitActivation)3",
            }),
            _ => Pick(random, new[]
            {
                "1e-6f", "1e-5f", "0f", "-0f", "-1e-6f", "float.NaN", "float.PositiveInfinity", "float.NegativeInfinity",
                "float.Epsilon", "float.MaxValue", "1", "0.5f", "(float)1e-7", "1e-6f * 10", "float.MinValue",
            }),
        };
    }

    /// <summary>A plausible configuration, then random damage: the generator should see both valid and broken input.</summary>
    private static string RandomArguments(Random random)
    {
        double form = random.NextDouble();
        if (form < 0.03) return "";
        if (form < 0.06) return "()";

        var chosen = new List<(string Name, string Value)>();
        bool plausible = random.NextDouble() < 0.5;
        var shape = (Patch: Pick(random, new[] { 1, 4, 7, 14, 16, 32 }), Grid: Pick(random, new[] { 1, 2, 4, 7, 14 }),
            Heads: Pick(random, new[] { 1, 2, 3, 6, 12 }), HeadDim: Pick(random, new[] { 8, 12, 16, 64 }));
        foreach (var (name, kind) in Parameters)
        {
            bool required = Array.IndexOf(Parameters, (name, kind)) < 4;
            if (!required && random.NextDouble() < (plausible ? 0.7 : 0.5)) continue;
            if (required && random.NextDouble() < (plausible ? 0.0 : 0.08)) continue; // a missing required argument
            chosen.Add((name, plausible ? PlausibleValue(random, name, kind, shape) : RandomValue(random, kind)));
        }
        double damage = plausible ? 0.3 : 1;
        if (random.NextDouble() < 0.08 * damage) chosen.Add(("unknownArgument", "1"));
        if (random.NextDouble() < 0.06 * damage && chosen.Count > 0) chosen.Add(Pick(random, chosen.ToArray()));
        if (random.NextDouble() < 0.05 * damage) chosen.Add(("Patch", "16")); // a property name, as if settable

        int positional = random.NextDouble() < 0.3 ? random.Next(chosen.Count + 1) : 0;
        var named = chosen.Skip(positional).ToList();
        if (random.NextDouble() < 0.5) named = named.OrderBy(_ => random.Next()).ToList();
        var text = new StringBuilder();
        var parts = chosen.Take(positional).Select(a => a.Value)
            .Concat(named.Select(a => a.Name == "Patch" ? $"{a.Name} = {a.Value}" : $"{a.Name}: {a.Value}"))
            .ToList();
        if (random.NextDouble() < 0.04 * damage) parts.Add("42"); // a positional argument after everything else
        return "(" + string.Join(random.NextDouble() < 0.1 ? ",\n        " : ", ", parts) + ")";
    }

    private static string PlausibleValue(Random random, string name, Kind kind, (int Patch, int Grid, int Heads, int HeadDim) shape)
    {
        if (random.NextDouble() < 0.06) return RandomValue(random, kind);
        return name switch
        {
            "patch" => shape.Patch.ToString(CultureInfo.InvariantCulture),
            "dim" => (shape.Heads * shape.HeadDim).ToString(CultureInfo.InvariantCulture),
            "depth" => Pick(random, new[] { "1", "2", "12" }),
            "heads" => shape.Heads.ToString(CultureInfo.InvariantCulture),
            "imageSize" => (shape.Patch * shape.Grid).ToString(CultureInfo.InvariantCulture),
            "channels" => Pick(random, new[] { "1", "3", "4" }),
            "classes" => Pick(random, new[] { "0", "1", "10", "1000", "21843" }),
            "mlpDim" => Pick(random, new[] { "0", "100", "3072", "1536", "1" }),
            "registers" => Pick(random, new[] { "0", "1", "4", "16" }),
            "classToken" => random.NextDouble() < 0.8 ? "true" : "false",
            "distilled" => random.NextDouble() < 0.7 ? "false" : "true",
            "normEps" => Pick(random, new[] { "1e-6f", "1e-5f", "float.Epsilon", "1", "0.5f", "(float)1e-7" }),
            "pooling" => Pick(random, new[] { "VitPooling.Token", "VitPooling.Avg", "default" }),
            "activation" => Pick(random, new[] { "VitActivation.Gelu", "VitActivation.GeluTanh", "VitActivation.QuickGelu", "VitActivation.Relu", "0" }),
            _ => Pick(random, new[] { "true", "false", "!false" }),
        };
    }

    private static T Pick<T>(Random random, T[] items) => items[random.Next(items.Length)];

    private static string Declaration(Random random, int index, string arguments)
    {
        string attribute = Pick(random, new[] { "VitModel", "ViTGen.VitModel", "VitModelAttribute", "global::ViTGen.VitModelAttribute" });
        string modifiers = Pick(random, new[] { "public partial", "internal sealed partial", "partial", "public partial", "public partial", "public" });
        return $"[{attribute}{arguments}]\n{modifiers} class Model{index} {{ }}\n";
    }

    [Fact]
    public void RandomAttributeArgumentsNeverBreakTheGenerator()
    {
        var random = new Random(Seed);
        int generated = 0, reported = 0;
        for (int batch = 0; batch < Batches; batch++)
        {
            var source = new StringBuilder("using System;\nusing ViTGen;\n\nnamespace Fuzz;\n\n");
            for (int i = 0; i < ClassesPerBatch; i++) source.Append(Declaration(random, i, RandomArguments(random)));
            var (sources, diagnostics) = AssertGeneratorSurvives(GeneratorHarness.CreateCompilation(source.ToString()), $"batch {batch}");
            generated += sources;
            reported += diagnostics;
        }
        output.WriteLine($"{Batches * ClassesPerBatch} classes: {generated} generated, {reported} generator diagnostics.");
        // The distribution must exercise both outcomes, or the fuzzer is testing nothing.
        Assert.InRange(generated, Batches * ClassesPerBatch / 10, Batches * ClassesPerBatch);
        Assert.InRange(reported, Batches * ClassesPerBatch / 10, int.MaxValue);
    }

    /// <summary>Constructor parameter lists for a user-defined <c>ViTGen.VitModelAttribute</c>.</summary>
    private static (string Parameters, string Arguments) RandomLookAlike(Random random, int round)
    {
        if (round % 10 == 0)
        {
            // The real signature, declared in user code: the generator treats it as its own.
            return ("int patch, int dim, int depth, int heads, int imageSize = 224, int channels = 3, int classes = 1000, int mlpDim = 0, " +
                    "bool qkvBias = true, bool classToken = true, VitPooling pooling = VitPooling.Token, VitActivation activation = VitActivation.Gelu, " +
                    "float normEps = 1e-6f, bool layerScale = false, int registers = 0, bool noEmbedClass = false, bool preNorm = false, bool distilled = false, " +
                    "int[]? hybridLayers = null, int hybridWidth = 64",
                    "(patch: 8, dim: 64, depth: 1, heads: 2, imageSize: 32)");
        }
        var types = new[] { "int", "long", "float", "double", "bool", "string", "object", "int[]", "VitPooling", "System.Type", "byte", "uint", "char" };
        var parameters = new List<(string Type, string Name)>();
        foreach (var (name, kind) in Parameters)
        {
            if (random.NextDouble() < 0.25) continue;
            string type = random.NextDouble() < 0.6
                ? kind switch { Kind.Int => "int", Kind.Bool => "bool", Kind.Float => "float", Kind.Pooling => "VitPooling", _ => "VitActivation" }
                : Pick(random, types);
            parameters.Add((type, name));
        }
        if (random.NextDouble() < 0.3) parameters.Add((Pick(random, types), "extra"));
        if (random.NextDouble() < 0.5) parameters = parameters.OrderBy(_ => random.Next()).ToList();
        bool useParams = random.NextDouble() < 0.2;
        string list = string.Join(", ", parameters.Select(p => $"{p.Type} {p.Name}"));
        if (useParams) list += (list.Length > 0 ? ", " : "") + "params int[] rest";

        var arguments = parameters.Select(p => $"{p.Name}: {SampleFor(random, p.Type)}").ToList();
        if (useParams && random.NextDouble() < 0.5) arguments = parameters.Select(p => SampleFor(random, p.Type)).Append("1").Append("2").ToList();
        return (list, "(" + string.Join(", ", arguments) + ")");
    }

    private static string SampleFor(Random random, string type) => type switch
    {
        "int" => Pick(random, new[] { "0", "16", "-1", "int.MaxValue", "768" }),
        "long" => "16L",
        "float" => Pick(random, new[] { "1e-6f", "0f", "float.NaN" }),
        "double" => "1e-6",
        "bool" => Pick(random, new[] { "true", "false" }),
        "string" => Pick(random, new[] { "\"x\"", "null" }),
        "object" => Pick(random, new[] { "16", "\"16\"", "null", "typeof(int)", "1e-6f", "true" }),
        "int[]" => Pick(random, new[] { "new[] { 16 }", "null", "new int[0]" }),
        "VitPooling" => Pick(random, new[] { "VitPooling.Avg", "(VitPooling)9" }),
        "VitActivation" => "VitActivation.Relu",
        "System.Type" => Pick(random, new[] { "typeof(int)", "null" }),
        "byte" => "(byte)16",
        "uint" => "16u",
        _ => "'x'",
    };

    [Fact]
    public void LookAlikeAttributesNeverBreakTheGenerator()
    {
        var random = new Random(Seed + 1);
        int generated = 0;
        for (int round = 0; round < LookAlikeCompilations; round++)
        {
            var (parameters, arguments) = RandomLookAlike(random, round);
            string source = $$"""
                using System;
                using ViTGen;

                namespace ViTGen
                {
                    [AttributeUsage(AttributeTargets.Class)]
                    public sealed class VitModelAttribute : Attribute
                    {
                        public VitModelAttribute({{parameters}}) { }
                    }
                }

                namespace Fuzz
                {
                    [VitModel{{arguments}}]
                    public partial class LookAlike{{round}} { }

                    [VitModel(patch: 16, dim: 768, depth: 12, heads: 12)]
                    public partial class Standard{{round}} { }
                }
                """;
            generated += AssertGeneratorSurvives(GeneratorHarness.CreateCompilation(source), $"look-alike round {round}").Sources;
        }
        output.WriteLine($"{LookAlikeCompilations} look-alike compilations: {generated} sources generated.");
        Assert.InRange(generated, LookAlikeCompilations / 10, 2 * LookAlikeCompilations);
    }

    /// <summary>
    /// Runs the generator and checks it neither threw nor added an error. Returns how many sources it generated and
    /// how many diagnostics it reported.
    /// </summary>
    private static (int Sources, int Diagnostics) AssertGeneratorSurvives(Microsoft.CodeAnalysis.CSharp.CSharpCompilation compilation, string what)
    {
        string source = string.Join("\n// ----\n", compilation.SyntaxTrees.Select(t => t.ToString()));
        GeneratorRun run;
        try
        {
            run = GeneratorHarness.Run(compilation);
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"The driver threw on {what}: {e}\n{source}");
        }

        var result = run.Result;
        Assert.True(result.Exception is null, $"The generator threw on {what}: {result.Exception}\n{source}");
        var crashes = run.GeneratorDiagnostics.Where(d => d.Id is "CS8784" or "CS8785").ToList();
        Assert.True(crashes.Count == 0, $"{what}: {GeneratorHarness.Format(crashes)}\n{source}");
        Assert.All(run.GeneratorDiagnostics, d => Assert.StartsWith("VITG", d.Id, StringComparison.Ordinal));

        if (result.GeneratedSources.Length > 0)
        {
            static string Key(Diagnostic d) => $"{d.Id}@{d.Location.GetLineSpan()}";
            var before = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).Select(Key).ToHashSet(StringComparer.Ordinal);
            var added = run.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error && !before.Contains(Key(d))).ToList();
            if (added.Count > 0)
            {
                var files = added.Select(d => d.Location.SourceTree?.FilePath).Distinct()
                    .Select(path => run.Output.SyntaxTrees.FirstOrDefault(t => t.FilePath == path)?.ToString() ?? "");
                Assert.Fail($"The generated code added errors on {what}:\n{GeneratorHarness.Format(added)}\n{source}\n{string.Join("\n", files)}");
            }
        }
        return (result.GeneratedSources.Length, run.GeneratorDiagnostics.Length);
    }
}
