using System.Collections;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;
using Names = ViTGen.Generator.VitModelGenerator.TrackingNames;

namespace ViTGen.Generator.Tests;

/// <summary>
/// The generator as the IDE runs it: on every keystroke. Edits that do not change a model must stop at the
/// parse step (outputs Cached or Unchanged) and never re-emit source; the pipeline must hold only values.
/// </summary>
public class IncrementalityTests
{
    private static readonly string[] OurSteps = { Names.Parse, Names.Models, Names.Lowered, Names.Diagnostics };

    private const string TwoModels = """
        using ViTGen;

        namespace Zoo;

        [VitModel(patch: 16, dim: 192, depth: 2, heads: 3)]
        public partial class First { }

        [VitModel(patch: 16, dim: 384, depth: 2, heads: 6)]
        public partial class Second { }
        """;

    private static readonly IncrementalStepRunReason[] NotRecomputed = { IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged };

    /// <summary>Runs the generator on <paramref name="before"/>, then on <paramref name="after"/> with the same driver.</summary>
    private static GeneratorRunResult RunAgain(CSharpCompilation before, CSharpCompilation after)
    {
        var driver = GeneratorHarness.CreateDriver().RunGenerators(before);
        return driver.RunGenerators(after).GetRunResult().Results.Single();
    }

    private static IEnumerable<(object Value, IncrementalStepRunReason Reason)> Outputs(GeneratorRunResult result, string step)
        => result.TrackedSteps.TryGetValue(step, out var steps) ? steps.SelectMany(s => s.Outputs) : Enumerable.Empty<(object, IncrementalStepRunReason)>();

    /// <summary>The source-output steps fed by the model branch (the lowered models, not the diagnostics branch).</summary>
    private static IEnumerable<(object Value, IncrementalStepRunReason Reason)> SourceOutputs(GeneratorRunResult result)
        => result.TrackedOutputSteps.SelectMany(kv => kv.Value)
            .Where(step => step.Inputs.Any(input => input.Source.Name == Names.Lowered))
            .SelectMany(step => step.Outputs);

    private static string Describe(GeneratorRunResult result)
        => string.Join("\n", result.TrackedSteps.Concat(result.TrackedOutputSteps)
            .Select(kv => $"{kv.Key}: {string.Join(", ", kv.Value.SelectMany(s => s.Outputs).Select(o => o.Reason))}"));

    private static void AssertAll(IEnumerable<(object Value, IncrementalStepRunReason Reason)> outputs, IncrementalStepRunReason[] allowed, GeneratorRunResult result, string what)
    {
        var list = outputs.ToList();
        Assert.True(list.Count > 0, $"{what}: no outputs.\n{Describe(result)}");
        Assert.True(list.All(o => allowed.Contains(o.Reason)), $"{what}: {string.Join(", ", list.Select(o => o.Reason))}\n{Describe(result)}");
    }

    /// <summary>The class name of a model or lowering step's output (the generator's model types are internal).</summary>
    private static string ModelName(object value)
    {
        var spec = value.GetType().GetProperty("Spec")?.GetValue(value) ?? value;
        var type = spec.GetType().GetProperty("Type")!.GetValue(spec)!;
        return (string)type.GetType().GetProperty("Name")!.GetValue(type)!;
    }

    private static CSharpCompilation Edit(CSharpCompilation compilation, Func<string, string> edit, int tree = 0)
    {
        var old = compilation.SyntaxTrees[tree];
        var replaced = CSharpSyntaxTree.ParseText(edit(old.ToString()), GeneratorHarness.ParseOptions, old.FilePath);
        return compilation.ReplaceSyntaxTree(old, replaced);
    }

    [Fact]
    public void SameCompilationTwiceIsFullyCached()
    {
        var compilation = GeneratorHarness.CreateCompilation(TwoModels);
        var result = RunAgain(compilation, compilation);
        foreach (var step in OurSteps.Where(s => s != Names.Diagnostics))
            AssertAll(Outputs(result, step), new[] { IncrementalStepRunReason.Cached }, result, step);
        // Every other tracked step too, Roslyn's own included; its collected global-alias node re-runs and reports
        // Unchanged even on an identical compilation, which still stops there.
        AssertAll(result.TrackedSteps.Values.SelectMany(steps => steps).SelectMany(s => s.Outputs), NotRecomputed, result, "every tracked step");
        AssertAll(result.TrackedOutputSteps.Values.SelectMany(steps => steps).SelectMany(s => s.Outputs), new[] { IncrementalStepRunReason.Cached }, result, "every output step");
        Assert.Equal(2, result.GeneratedSources.Count(s => GeneratorHarness.IsModelFile(s.HintName)));
    }

    [Fact]
    public void FreshCompilationOfTheSameTextComparesEqual()
    {
        // New syntax trees, new symbols: only value equality of the parsed models can keep the outputs.
        var result = RunAgain(GeneratorHarness.CreateCompilation(TwoModels), GeneratorHarness.CreateCompilation(TwoModels));
        AssertAll(Outputs(result, Names.Parse), NotRecomputed, result, Names.Parse);
        AssertAll(Outputs(result, Names.Models), NotRecomputed, result, Names.Models);
        AssertAll(SourceOutputs(result), NotRecomputed, result, "source output");
    }

    public static TheoryData<string> UnrelatedEdits => new() { "comment", "comment above", "type", "file", "usage file", "whitespace in attribute" };

    [Theory]
    [MemberData(nameof(UnrelatedEdits))]
    public void UnrelatedEditsDoNotRegenerate(string edit)
    {
        var compilation = GeneratorHarness.CreateCompilation(TwoModels);
        var edited = edit switch
        {
            "comment" => Edit(compilation, text => text + "\n// a comment\n"),
            "comment above" => Edit(compilation, text => text.Replace("[VitModel(patch: 16, dim: 384", "// the second model\n[VitModel(patch: 16, dim: 384", StringComparison.Ordinal)),
            "type" => Edit(compilation, text => text + "\npublic class Unrelated { public int Value => 42; }\n"),
            "file" => compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("namespace Other; public record Point(int X, int Y);", GeneratorHarness.ParseOptions, "/src/Other.cs")),
            "usage file" => compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText(
                "namespace Zoo; public static class Use { public static int Size => First.Dim + Second.Tokens; }", GeneratorHarness.ParseOptions, "/src/Use.cs")),
            _ => Edit(compilation, text => text.Replace("dim: 192, depth: 2", "dim: 192,  depth:   2", StringComparison.Ordinal)),
        };
        var result = RunAgain(compilation, edited);
        AssertAll(Outputs(result, Names.Parse), NotRecomputed, result, Names.Parse);
        AssertAll(Outputs(result, Names.Models), NotRecomputed, result, Names.Models);
        AssertAll(SourceOutputs(result), NotRecomputed, result, "source output");
        Assert.Equal(2, result.GeneratedSources.Count(s => GeneratorHarness.IsModelFile(s.HintName)));
    }

    [Fact]
    public void ChangingOneModelRegeneratesOnlyThatModel()
    {
        var compilation = GeneratorHarness.CreateCompilation(TwoModels);
        var edited = Edit(compilation, text => text.Replace("dim: 384, depth: 2", "dim: 384, depth: 4", StringComparison.Ordinal));
        var result = RunAgain(compilation, edited);

        var models = Outputs(result, Names.Models).ToList();
        Assert.Equal(2, models.Count);
        Assert.Contains(models, o => ModelName(o.Value) == "First" && NotRecomputed.Contains(o.Reason));
        Assert.Contains(models, o => ModelName(o.Value) == "Second" && o.Reason == IncrementalStepRunReason.Modified);

        // Pair every source output with the model that fed it: only Second's are re-run.
        var sources = result.TrackedOutputSteps.SelectMany(kv => kv.Value)
            .SelectMany(step => step.Inputs.Where(input => input.Source.Name == Names.Lowered)
                .SelectMany(input => step.Outputs.Select(output => (Model: ModelName(input.Source.Outputs[input.OutputIndex].Value), output.Reason))))
            .ToList();
        Assert.Contains(sources, o => o.Model == "First");
        Assert.All(sources.Where(o => o.Model == "First"), o => Assert.Contains(o.Reason, NotRecomputed));
        Assert.Contains(sources, o => o.Model == "Second");
        Assert.All(sources.Where(o => o.Model == "Second"), o => Assert.Equal(IncrementalStepRunReason.Modified, o.Reason));
        Assert.Contains("public const int Depth = 4;", result.GeneratedSources.Single(s => s.HintName == "Zoo.Second.g.cs").SourceText.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void MovingTheAttributeMovesItsDiagnosticsWithoutRegenerating()
    {
        // Head dim 12 is a warning: the model still generates, and its diagnostic has a location to move.
        const string source = """
            namespace Zoo;

            [ViTGen.VitModel(patch: 16, dim: 36, depth: 2, heads: 3, imageSize: 32)]
            public partial class Odd { }
            """;
        var compilation = GeneratorHarness.CreateCompilation(source);
        var moved = Edit(compilation, text => text.Replace("namespace Zoo;\n", "namespace Zoo;\n\n\n\n", StringComparison.Ordinal));

        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        Assert.Equal(2, driver.GetRunResult().Diagnostics.Single().Location.GetLineSpan().StartLinePosition.Line);
        driver = driver.RunGenerators(moved);
        var run = driver.GetRunResult();
        var result = run.Results.Single();

        Assert.Equal(5, run.Diagnostics.Single().Location.GetLineSpan().StartLinePosition.Line);
        Assert.Contains(Outputs(result, Names.Parse), o => o.Reason == IncrementalStepRunReason.Modified);
        AssertAll(Outputs(result, Names.Models), NotRecomputed, result, Names.Models);
        AssertAll(SourceOutputs(result), NotRecomputed, result, "source output");
    }

    [Fact]
    public void MovingAnAttributeWithoutDiagnosticsChangesNothing()
    {
        var compilation = GeneratorHarness.CreateCompilation(TwoModels);
        var moved = Edit(compilation, text => text.Replace("namespace Zoo;\n", "namespace Zoo;\n\n\n\n", StringComparison.Ordinal));
        var result = RunAgain(compilation, moved);
        AssertAll(Outputs(result, Names.Parse), NotRecomputed, result, Names.Parse);
        AssertAll(SourceOutputs(result), NotRecomputed, result, "source output");
    }

    [Fact]
    public void RemovingTheAttributeRemovesTheSource()
    {
        var compilation = GeneratorHarness.CreateCompilation(TwoModels);
        var edited = Edit(compilation, text => text.Replace("[VitModel(patch: 16, dim: 384, depth: 2, heads: 6)]", "", StringComparison.Ordinal));
        var result = RunAgain(compilation, edited);
        Assert.Equal(new[] { "Zoo.First.g.cs" }, result.GeneratedSources.Select(s => s.HintName).Where(GeneratorHarness.IsModelFile));
        Assert.Contains(Outputs(result, Names.Models), o => o.Reason == IncrementalStepRunReason.Removed);
    }

    [Fact]
    public void FixingAnErrorGeneratesTheModel()
    {
        var compilation = GeneratorHarness.CreateCompilation(TwoModels.Replace("heads: 6", "heads: 7", StringComparison.Ordinal));
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        Assert.Equal("VITG0005", driver.GetRunResult().Diagnostics.Single().Id);
        driver = driver.RunGenerators(Edit(compilation, text => text.Replace("heads: 7", "heads: 6", StringComparison.Ordinal)));
        Assert.Empty(driver.GetRunResult().Diagnostics);
        Assert.Equal(2, driver.GetRunResult().Results.Single().GeneratedSources.Count(s => GeneratorHarness.IsModelFile(s.HintName)));
    }

    [Fact]
    public void PipelineHoldsNoSymbolsSyntaxOrCompilations()
    {
        // Valid models, a warning and errors, so that every kind of pipeline value is walked.
        var compilation = GeneratorHarness.CreateCompilation(
            TwoModels,
            """
            namespace Zoo.Nested;

            public partial class Outer
            {
                [ViTGen.VitModel(patch: 16, dim: 36, depth: 2, heads: 3, imageSize: 32, registers: 4, distilled: false)]
                internal partial class Warned { }

                [ViTGen.VitModel(patch: 15, dim: 770, depth: 0, heads: 12, normEps: float.NaN)]
                internal partial class Broken { }

                [ViTGen.VitModel(patch: 16, dim: 768, depth: 12, heads: 12)]
                internal class NotPartial { }
            }
            """);
        var result = GeneratorHarness.Run(compilation).Result;
        foreach (var name in OurSteps) Assert.True(result.TrackedSteps.ContainsKey(name), $"Step {name} was not tracked.");

        int walked = 0;
        foreach (var (name, steps) in result.TrackedSteps)
        {
            // Roslyn's own steps (ForAttributeWithMetadataName's syntax stages, the compilation inputs, the source
            // output that holds real Diagnostics) hold Roslyn objects by design; every other step must hold values.
            if (name.Contains("_ForAttribute", StringComparison.Ordinal) || RoslynSteps.Contains(name)) continue;
            for (int s = 0; s < steps.Length; s++)
            {
                for (int o = 0; o < steps[s].Outputs.Length; o++)
                {
                    AssertValueOnly(steps[s].Outputs[o].Value, $"{name}[{s}].Outputs[{o}]", new HashSet<object>(ReferenceEqualityComparer.Instance));
                    walked++;
                }
            }
        }
        Assert.True(walked >= 10, $"Only {walked} outputs walked.");
    }

    [Fact]
    public void TheWalkerFindsRoslynObjectsDeepInsideValues()
    {
        var tree = CSharpSyntaxTree.ParseText("class C { }");
        var nested = new { Name = "x", Items = new object[] { 1, new List<object> { ("a", tree.GetRoot().GetLocation()) } } };
        var error = Assert.ThrowsAny<Exception>(() => AssertValueOnly(nested, "value", new HashSet<object>(ReferenceEqualityComparer.Instance)));
        Assert.Contains("Location", error.Message, StringComparison.Ordinal);
        AssertValueOnly(new { Name = "x", Items = new[] { 1, 2 }, Span = tree.GetRoot().Span }, "value", new HashSet<object>(ReferenceEqualityComparer.Instance));
    }

    private static readonly HashSet<string> RoslynSteps = new(StringComparer.Ordinal)
    {
        "Compilation", "CompilationOptions", "ParseOptions", "AdditionalTexts", "AnalyzerConfigOptions", "MetadataReferences",
        "SourceOutput", "ImplementationSourceOutput",
    };

    private static readonly Type[] Forbidden = { typeof(ISymbol), typeof(SyntaxNode), typeof(SyntaxTree), typeof(Location), typeof(SemanticModel), typeof(Compilation), typeof(AttributeData) };

    private static void AssertValueOnly(object? value, string path, HashSet<object> visited)
    {
        if (value is null) return;
        var type = value.GetType();
        var forbidden = Forbidden.FirstOrDefault(f => f.IsInstanceOfType(value));
        Assert.True(forbidden is null, $"{path} is a {type.FullName} ({forbidden?.Name}): pipeline values must not hold Roslyn objects.");
        if (type.IsPrimitive || type.IsEnum || value is string or decimal) return;
        if (!type.IsValueType && !visited.Add(value)) return;
        if (value is DiagnosticDescriptor) return; // static, immutable metadata with value equality

        if (value is IEnumerable items)
        {
            int i = 0;
            foreach (var item in items) AssertValueOnly(item, $"{path}[{i++}]", visited);
            if (type.IsArray) return;
        }
        for (var t = type; t is not null && t != typeof(object) && t != typeof(ValueType); t = t.BaseType)
        {
            foreach (var field in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (field.FieldType.IsPointer || field.FieldType.IsByRefLike) continue;
                AssertValueOnly(field.GetValue(value), $"{path}.{field.Name}", visited);
            }
        }
    }
}
