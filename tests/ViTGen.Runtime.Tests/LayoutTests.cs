// The runtime's namespaces follow its folders, with one rule: a file under src/Runtime/ declares
//     namespace ViTGen.CompilerServices;   if and only if it lives under src/Runtime/CompilerServices/
//                                          (what generated code calls; hidden from users), and
//     namespace ViTGen;                    everywhere else (the public API and its internals).
// A file that declares no types (GlobalUsings.cs) needs no namespace.
using System.Text.RegularExpressions;

namespace ViTGen.Tests;

public sealed partial class LayoutTests
{
    private const string CompilerServicesNamespace = "ViTGen.CompilerServices";
    private const string PublicNamespace = "ViTGen";

    [Fact]
    public void Runtime_namespaces_follow_the_CompilerServices_folder()
    {
        string root = RepositoryRoot();
        string runtime = Path.Combine(root, "src", "Runtime");
        string[] files = Directory.EnumerateFiles(runtime, "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToArray();
        Assert.NotEmpty(files);

        var offenders = new List<string>();
        foreach (string file in files)
        {
            string? problem = Check(file, File.ReadAllLines(Path.Combine(root, file)));
            if (problem is not null) offenders.Add($"{file}: {problem}");
        }
        Assert.True(offenders.Count == 0,
            $"{offenders.Count} file(s) under src/Runtime break the namespace rule (ViTGen.CompilerServices if and only if under " +
            "src/Runtime/CompilerServices/, ViTGen elsewhere):\n" + string.Join('\n', offenders));
    }

    [Theory]
    [InlineData("src/Runtime/CompilerServices/Gemm.cs", "namespace ViTGen.CompilerServices;", null)]
    [InlineData("src/Runtime/CompilerServices/Cuda/GpuPlan.cs", "namespace ViTGen.CompilerServices;", null)]
    [InlineData("src/Runtime/Imaging/VitImage.cs", "namespace ViTGen;", null)]
    [InlineData("src/Runtime/Kernels/Gemm.cs", "namespace ViTGen.CompilerServices;", "namespace is ViTGen.CompilerServices, expected ViTGen")]
    [InlineData("src/Runtime/CompilerServices/Kernels/Gemm.cs", "namespace ViTGen;", "namespace is ViTGen, expected ViTGen.CompilerServices")]
    [InlineData("src/Runtime/Weights/Reader.cs", "namespace ViTGen.Weights;", "namespace is ViTGen.Weights, expected ViTGen")]
    [InlineData("src/Runtime/Weights/Reader.cs", "namespace ViTGen { }", "no file-scoped 'namespace X;' declaration")]
    [InlineData("src/Runtime/Weights/Reader.cs", "internal static class Reader;", "no file-scoped 'namespace X;' declaration")]
    [InlineData("src/Runtime/GlobalUsings.cs", "global using System.Buffers;", null)]
    public void The_rule_itself(string file, string line, string? expected)
        => Assert.Equal(expected, Check(file, ["// comment", line]));

    /// <summary>Null when <paramref name="file"/> (a path from the repository root) follows the rule, else why not.</summary>
    private static string? Check(string file, string[] lines)
    {
        string expected = file.StartsWith("src/Runtime/CompilerServices/", StringComparison.Ordinal) ? CompilerServicesNamespace : PublicNamespace;
        string[] declared = lines.Select(l => FileScopedNamespace().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToArray();
        if (declared.Length > 1) return $"{declared.Length} namespace declarations";
        if (declared.Length == 1)
            return declared[0] == expected ? null : $"namespace is {declared[0]}, expected {expected}";
        // No file-scoped namespace: allowed only for a file of usings and assembly/module attributes.
        bool onlyUsings = lines.Select(l => l.Trim()).All(l =>
            l.Length == 0 || l.StartsWith("//", StringComparison.Ordinal) || l.StartsWith("using ", StringComparison.Ordinal)
            || l.StartsWith("global using ", StringComparison.Ordinal) || l.StartsWith("[assembly:", StringComparison.Ordinal)
            || l.StartsWith("[module:", StringComparison.Ordinal));
        return onlyUsings ? null : "no file-scoped 'namespace X;' declaration";
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "ViTGen.sln"))) return directory.FullName;
        }
        throw new DirectoryNotFoundException("ViTGen.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^\s*namespace\s+([\w.]+)\s*;")]
    private static partial Regex FileScopedNamespace();
}
