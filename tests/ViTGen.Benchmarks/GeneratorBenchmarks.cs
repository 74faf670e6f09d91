using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using ViTGen.Generator;

namespace ViTGen.Benchmarks;

/// <summary>
/// The source generator's cost in the build and the IDE, over a compilation with 20 different [VitModel] classes.
/// Setup warms the JIT and the generator; each cold iteration then runs a fresh driver over a fresh clone of the
/// compilation (no bound attributes, no cached pipeline), and the warm one replays an IDE keystroke.
/// </summary>
[MemoryDiagnoser]
public class GeneratorBenchmarks
{
    private const int Models = 20;

    private CSharpCompilation _compilation = null!;
    private CSharpCompilation _edited = null!;
    private GeneratorDriver _warmDriver = null!;

    [GlobalSetup]
    public void Setup()
    {
        _compilation = CSharpCompilation.Create(
            "GeneratorBenchmark",
            new[] { CSharpSyntaxTree.ParseText(Source(), ParseOptions, "/src/Models.cs") },
            References(),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        var tree = _compilation.SyntaxTrees[0];
        _edited = _compilation.ReplaceSyntaxTree(tree, tree.WithChangedText(tree.GetText().WithChanges(
            new Microsoft.CodeAnalysis.Text.TextChange(new Microsoft.CodeAnalysis.Text.TextSpan(tree.Length, 0), "\n// an edit elsewhere in the file\n"))));

        _warmDriver = CreateDriver().RunGenerators(_compilation);
        var run = _warmDriver.GetRunResult();
        if (!run.Diagnostics.IsEmpty || run.GeneratedTrees.Length < Models) // at least one file per model
            throw new InvalidOperationException($"Expected {Models} models, got {run.GeneratedTrees.Length} files: {string.Join("; ", run.Diagnostics)}");
        ColdRun(); // JIT the whole path once more on a fresh driver
    }

    /// <summary>A build: a new driver over a compilation whose symbols have never been bound.</summary>
    [Benchmark]
    public int ColdRun()
    {
        var result = CreateDriver().RunGenerators(_compilation.Clone()).GetRunResult();
        int chars = 0;
        foreach (var tree in result.GeneratedTrees) chars += tree.Length;
        return chars;
    }

    /// <summary>A keystroke in the IDE: the warm driver over an edit that changes no model (nothing is re-emitted).</summary>
    [Benchmark]
    public int WarmRunAfterUnrelatedEdit() => _warmDriver.RunGenerators(_edited).GetRunResult().GeneratedTrees.Length;

    private static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    private static GeneratorDriver CreateDriver()
        => CSharpGeneratorDriver.Create(new[] { new VitModelGenerator().AsSourceGenerator() }, parseOptions: ParseOptions);

    /// <summary>Twenty distinct, valid models spanning the attribute's options.</summary>
    private static string Source()
    {
        var text = new StringBuilder("using ViTGen;\n\nnamespace Bench;\n\n");
        string[] activations = { "Gelu", "GeluTanh", "QuickGelu", "Relu" };
        for (int i = 0; i < Models; i++)
        {
            int heads = 2 + i % 6, patch = 8 << (i % 3), grid = 4 + i % 5;
            string pooling = i % 4 == 3 ? "VitPooling.Avg" : "VitPooling.Token";
            text.Append(CultureInfo.InvariantCulture,
                $"[VitModel(patch: {patch}, dim: {heads * 64}, depth: {1 + i % 12}, heads: {heads}, imageSize: {patch * grid}, channels: {1 + i % 3}, ")
                .Append(CultureInfo.InvariantCulture,
                $"classes: {(i % 5 == 0 ? 0 : 10 * i)}, registers: {i % 3 * 2}, pooling: {pooling}, activation: VitActivation.{activations[i % 4]}, ")
                .Append(CultureInfo.InvariantCulture,
                $"layerScale: {(i % 2 == 0 ? "true" : "false")}, preNorm: {(i % 7 == 0 ? "true" : "false")}, normEps: {(i % 2 == 0 ? "1e-6f" : "1e-5f")})]\n")
                .Append(CultureInfo.InvariantCulture, $"public partial class Model{i:00} {{ }}\n\n");
        }
        return text.ToString();
    }

    /// <summary>The running framework's assemblies and ViTGen.Runtime.</summary>
    private static ImmutableArray<MetadataReference> References()
    {
        string framework = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        return ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(path => string.Equals(Path.GetDirectoryName(path), framework, StringComparison.OrdinalIgnoreCase))
            .Append(typeof(VitModelAttribute).Assembly.Location)
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .ToImmutableArray();
    }
}
