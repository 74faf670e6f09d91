using System.Collections.Immutable;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using ViTGen.Generator;

namespace ViTGen.Generator.Tests;

/// <summary>The result of one generator run over a compilation built from source text.</summary>
internal sealed record GeneratorRun(
    CSharpCompilation Input,
    Compilation Output,
    ImmutableArray<Diagnostic> GeneratorDiagnostics,
    GeneratorDriver Driver)
{
    public GeneratorRunResult Result => Driver.GetRunResult().Results.Single();

    /// <summary>Every generated source by hint name, companion files included.</summary>
    public IReadOnlyDictionary<string, string> AllSources
        => Result.GeneratedSources.ToDictionary(s => s.HintName, s => s.SourceText.ToString(), StringComparer.Ordinal);

    /// <summary>The model files (<c>{FullName}.g.cs</c>) by hint name: one per generated model.</summary>
    public IReadOnlyDictionary<string, string> Sources
        => AllSources.Where(kv => GeneratorHarness.IsModelFile(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    /// <summary>Warnings and errors of the compilation with the generated code, generator diagnostics included.</summary>
    public ImmutableArray<Diagnostic> OutputDiagnostics()
        => Output.GetDiagnostics().AddRange(GeneratorDiagnostics).Where(d => d.Severity >= DiagnosticSeverity.Warning).ToImmutableArray();
}

/// <summary>
/// Builds compilations against the running framework and ViTGen.Runtime, and runs the generator on them with
/// step tracking on, the way the IDE does.
/// </summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    /// <summary>Files the generator writes beside a model's own <c>{FullName}.g.cs</c>.</summary>
    private static readonly string[] CompanionSuffixes = { ".CudaPlan.g.cs" };

    /// <summary>Whether a hint name is a model's own file rather than a companion such as its CUDA plan.</summary>
    public static bool IsModelFile(string hintName)
        => hintName.EndsWith(".g.cs", StringComparison.Ordinal) && !CompanionSuffixes.Any(s => hintName.EndsWith(s, StringComparison.Ordinal));

    private static readonly CSharpCompilationOptions CompilationOptions = new(
        OutputKind.DynamicallyLinkedLibrary,
        nullableContextOptions: NullableContextOptions.Enable,
        warningLevel: 9999,
        allowUnsafe: true);

    private static readonly Lazy<ImmutableArray<MetadataReference>> LazyReferences = new(LoadReferences);

    public static ImmutableArray<MetadataReference> References => LazyReferences.Value;

    /// <summary>The framework's assemblies (from the trusted platform list) plus ViTGen.Runtime and what it references.</summary>
    private static ImmutableArray<MetadataReference> LoadReferences()
    {
        string frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(p => string.Equals(Path.GetDirectoryName(p), frameworkDirectory, StringComparison.OrdinalIgnoreCase))
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        var runtime = typeof(VitModelAttribute).Assembly;
        paths.Add(runtime.Location);
        foreach (var name in runtime.GetReferencedAssemblies())
        {
            string? location = TryLocate(name);
            if (location is not null) paths.Add(location);
        }
        return paths.OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToImmutableArray();
    }

    private static string? TryLocate(AssemblyName name)
    {
        try
        {
            var location = Assembly.Load(name).Location;
            return string.IsNullOrEmpty(location) ? null : location;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static CSharpCompilation CreateCompilation(params string[] sources)
        => CreateCompilation(sources.Select((text, i) => ($"/src/File{i}.cs", text)));

    public static CSharpCompilation CreateCompilation(IEnumerable<(string Path, string Text)> files, IEnumerable<MetadataReference>? references = null)
        => CSharpCompilation.Create(
            "UserAssembly",
            files.Select(f => CSharpSyntaxTree.ParseText(f.Text, ParseOptions, f.Path)),
            references ?? References,
            CompilationOptions);

    /// <summary>A driver for <see cref="VitModelGenerator"/> that records every tracked step.</summary>
    public static GeneratorDriver CreateDriver()
        => CSharpGeneratorDriver.Create(
            new[] { new VitModelGenerator().AsSourceGenerator() },
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static GeneratorRun Run(params string[] sources) => Run(CreateCompilation(sources));

    public static GeneratorRun Run(CSharpCompilation compilation, GeneratorDriver? driver = null)
    {
        driver = (driver ?? CreateDriver()).RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        return new GeneratorRun(compilation, output, diagnostics, driver);
    }

    /// <summary>Compiler diagnostics of a compilation at warning level or above.</summary>
    public static ImmutableArray<Diagnostic> WarningsAndErrors(Compilation compilation)
        => compilation.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToImmutableArray();

    public static string Format(IEnumerable<Diagnostic> diagnostics)
        => string.Join(Environment.NewLine, diagnostics.Select(d => d.ToString()));
}
