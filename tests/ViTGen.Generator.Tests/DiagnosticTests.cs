using System.Globalization;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Xunit;

namespace ViTGen.Generator.Tests;

/// <summary>
/// One test (or theory) per descriptor: the id, the severity, the location (the offending argument, or the
/// attribute when the value came from a default), and a message that names the argument and its value.
/// </summary>
public class DiagnosticTests
{
    private const string B16 = "patch: 16, dim: 768, depth: 12, heads: 12";

    private static GeneratorRun RunModel(string arguments, string declaration = "public partial class Model { }")
        => GeneratorHarness.Run($$"""
            using ViTGen;

            namespace Models;

            [VitModel({{arguments}})]
            {{declaration}}
            """);

    /// <summary>The source text a diagnostic points at.</summary>
    private static string LocatedText(GeneratorRun run, Diagnostic diagnostic)
    {
        var span = diagnostic.Location.GetLineSpan();
        Assert.True(span.IsValid, $"{diagnostic.Id} has no source location.");
        var tree = run.Input.SyntaxTrees.Single(t => t.FilePath == span.Path);
        return tree.GetText().ToString(diagnostic.Location.SourceSpan);
    }

    /// <summary>Asserts the run reported exactly one diagnostic, and checks it.</summary>
    private static Diagnostic AssertSingle(GeneratorRun run, string id, DiagnosticSeverity severity, string locatedText, params string[] messageParts)
    {
        var diagnostic = Assert.Single(run.GeneratorDiagnostics);
        AssertDiagnostic(run, diagnostic, id, severity, locatedText, messageParts);
        return diagnostic;
    }

    private static void AssertDiagnostic(GeneratorRun run, Diagnostic diagnostic, string id, DiagnosticSeverity severity, string locatedText, params string[] messageParts)
    {
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(severity, diagnostic.Severity);
        Assert.Equal(locatedText, LocatedText(run, diagnostic));
        string message = diagnostic.GetMessage(CultureInfo.InvariantCulture);
        foreach (var part in messageParts) Assert.Contains(part, message, StringComparison.Ordinal);
        if (severity == DiagnosticSeverity.Error)
            Assert.Empty(run.Result.GeneratedSources);
    }

    [Fact]
    public void Vitg0001_ClassNotPartial()
    {
        var run = RunModel(B16, "public sealed class Plain { }");
        AssertSingle(run, "VITG0001", DiagnosticSeverity.Error, $"VitModel({B16})", "'Plain'", "partial");
    }

    [Fact]
    public void Vitg0002_NestedInNonPartialType()
    {
        var run = GeneratorHarness.Run($$"""
            namespace Models;

            public partial class Zoo
            {
                public static class Shelf
                {
                    [ViTGen.VitModel({{B16}})]
                    public partial class Inner { }
                }
            }
            """);
        AssertSingle(run, "VITG0002", DiagnosticSeverity.Error, $"ViTGen.VitModel({B16})", "'Inner'", "'Shelf'");
    }

    [Fact]
    public void Vitg0002_EveryNonPartialContainerIsNamed()
    {
        var run = GeneratorHarness.Run($$"""
            public class A { public partial class B { public struct C { [ViTGen.VitModel({{B16}})] public partial class Model { } } } }
            """);
        Assert.Equal(2, run.GeneratorDiagnostics.Length);
        Assert.All(run.GeneratorDiagnostics, d => Assert.Equal("VITG0002", d.Id));
        Assert.Contains(run.GeneratorDiagnostics, d => d.GetMessage(CultureInfo.InvariantCulture).Contains("'A'", StringComparison.Ordinal));
        Assert.Contains(run.GeneratorDiagnostics, d => d.GetMessage(CultureInfo.InvariantCulture).Contains("'C'", StringComparison.Ordinal));
        Assert.Empty(run.Result.GeneratedSources);
    }

    [Fact]
    public void Vitg0003_GenericClass()
    {
        var run = RunModel(B16, "public partial class Generic<T> { }");
        AssertSingle(run, "VITG0003", DiagnosticSeverity.Error, $"VitModel({B16})", "'Generic<T>'", "generic");
    }

    [Fact]
    public void Vitg0003_NestedInGenericType()
    {
        var run = GeneratorHarness.Run($$"""
            public partial class Outer<T>
            {
                [ViTGen.VitModel({{B16}})]
                public partial class Inner { }
            }
            """);
        AssertSingle(run, "VITG0003", DiagnosticSeverity.Error, $"ViTGen.VitModel({B16})", "'Outer<T>.Inner'", "generic");
    }

    [Theory]
    [InlineData("patch", "0")]
    [InlineData("dim", "0")]
    [InlineData("depth", "-1")]
    [InlineData("heads", "0")]
    [InlineData("imageSize", "-224")]
    [InlineData("channels", "0")]
    [InlineData("heads", "int.MinValue")]
    public void Vitg0004_NonPositive(string argument, string value)
    {
        var values = new Dictionary<string, string> { ["patch"] = "16", ["dim"] = "768", ["depth"] = "12", ["heads"] = "12", [argument] = value };
        string arguments = string.Join(", ", values.Select(kv => $"{kv.Key}: {kv.Value}"));
        string shown = value == "int.MinValue" ? int.MinValue.ToString(CultureInfo.InvariantCulture) : value;
        var run = RunModel(arguments);
        AssertSingle(run, "VITG0004", DiagnosticSeverity.Error, $"{argument}: {value}", $"'{argument}'", $" {shown}:");
    }

    [Fact]
    public void Vitg0004_PositionalArgument()
    {
        var run = RunModel("16, 768, 0, 12");
        var diagnostic = AssertSingle(run, "VITG0004", DiagnosticSeverity.Error, "0", "'depth'", " 0:");
        var attribute = run.Input.SyntaxTrees[0].GetRoot().DescendantNodes().OfType<AttributeSyntax>().Single();
        Assert.Equal(attribute.ArgumentList!.Arguments[2].Span, diagnostic.Location.SourceSpan);
    }

    [Fact]
    public void Vitg0004_EveryBadArgumentIsReported()
    {
        var run = RunModel("patch: 0, dim: 0, depth: 0, heads: 0, imageSize: 0, channels: 0, classes: -1, mlpDim: -1, registers: -1");
        Assert.Equal(
            new[] { "VITG0004", "VITG0004", "VITG0004", "VITG0004", "VITG0004", "VITG0004", "VITG0007", "VITG0007", "VITG0007" },
            run.GeneratorDiagnostics.Select(d => d.Id).OrderBy(id => id, StringComparer.Ordinal));
        Assert.Empty(run.Result.GeneratedSources);
    }

    [Fact]
    public void Vitg0005_DimNotDivisibleByHeads()
    {
        var run = RunModel("patch: 16, dim: 770, depth: 12, heads: 12");
        AssertSingle(run, "VITG0005", DiagnosticSeverity.Error, "heads: 12", "'dim' (770)", "'heads' (12)");
    }

    [Fact]
    public void Vitg0006_ImageSizeNotMultipleOfPatch()
    {
        var run = RunModel("patch: 15, dim: 768, depth: 12, heads: 12, imageSize: 224");
        AssertSingle(run, "VITG0006", DiagnosticSeverity.Error, "imageSize: 224", "'imageSize' (224)", "'patch' (15)");
    }

    [Fact]
    public void Vitg0006_DefaultImageSizePointsAtTheAttribute()
    {
        var run = RunModel("patch: 15, dim: 768, depth: 12, heads: 12");
        AssertSingle(run, "VITG0006", DiagnosticSeverity.Error, "VitModel(patch: 15, dim: 768, depth: 12, heads: 12)", "'imageSize' (224)", "'patch' (15)");
    }

    [Theory]
    [InlineData("classes")]
    [InlineData("registers")]
    [InlineData("mlpDim")]
    public void Vitg0007_NegativeCount(string argument)
    {
        var run = RunModel($"{B16}, {argument}: -3");
        AssertSingle(run, "VITG0007", DiagnosticSeverity.Error, $"{argument}: -3", $"'{argument}'", " -3:");
    }

    [Fact]
    public void Vitg0008_TokenPoolingWithoutClassToken()
    {
        var run = RunModel($"{B16}, classToken: false");
        AssertSingle(run, "VITG0008", DiagnosticSeverity.Error, "classToken: false", "'classToken' is false", "'pooling' is Token");
    }

    [Fact]
    public void Vitg0008_ExplicitTokenPooling()
    {
        var run = RunModel($"{B16}, pooling: VitPooling.Token, classToken: false");
        AssertSingle(run, "VITG0008", DiagnosticSeverity.Error, "classToken: false", "'classToken' is false");
    }

    [Theory]
    [InlineData("classToken: false, pooling: VitPooling.Avg", "'classToken' is false")]
    [InlineData("pooling: VitPooling.Avg", "'pooling' is not Token")]
    [InlineData("classes: 0", "'classes' is 0")]
    [InlineData("registers: 4", "'registers' is not 0")]
    public void Vitg0009_DistilledUnsupported(string extra, string reason)
    {
        var run = RunModel($"{B16}, {extra}, distilled: true");
        AssertSingle(run, "VITG0009", DiagnosticSeverity.Error, "distilled: true", "'distilled' is true", reason);
    }

    [Theory]
    [InlineData("0f", "0")]
    [InlineData("-0f", "-0")]
    [InlineData("-1e-6f", "-1E-06")]
    [InlineData("float.NaN", "NaN")]
    [InlineData("float.PositiveInfinity", "Infinity")]
    [InlineData("float.NegativeInfinity", "-Infinity")]
    [InlineData("float.MaxValue * 2f", "Infinity")]
    public void Vitg0010_InvalidEpsilon(string value, string shown)
    {
        var run = RunModel($"{B16}, normEps: {value}");
        AssertSingle(run, "VITG0010", DiagnosticSeverity.Error, $"normEps: {value}", "'normEps'", $" is {shown}:");
    }

    [Theory]
    [InlineData("pooling: (VitPooling)7", "'pooling'", "7", "VitPooling")]
    [InlineData("pooling: (VitPooling)(-1)", "'pooling'", "-1", "VitPooling")]
    [InlineData("activation: (VitActivation)4", "'activation'", "4", "VitActivation")]
    [InlineData("activation: (VitActivation)int.MinValue", "'activation'", "-2147483648", "VitActivation")]
    public void Vitg0011_UndefinedEnumValue(string argument, string name, string value, string enumName)
    {
        var run = RunModel($"{B16}, {argument}");
        AssertSingle(run, "VITG0011", DiagnosticSeverity.Error, argument, name, $"value {value},", enumName);
    }

    [Fact]
    public void Vitg0012_TooLarge()
    {
        var run = RunModel("patch: 1, dim: 768, depth: 12, heads: 12, imageSize: 65536");
        AssertSingle(run, "VITG0012", DiagnosticSeverity.Error, "imageSize: 65536", "input pixels (12884901888 floats)", "reduce 'imageSize'");
    }

    [Theory]
    [InlineData("patch: 16, dim: 8192, depth: 1, heads: 8, imageSize: 4096", "imageSize: 4096", "qkv activations (1610637312 floats)")]
    [InlineData("patch: 16, dim: 65536, depth: 1, heads: 64, imageSize: 16, mlpDim: 16384", "dim: 65536", "MLP weights (1073741824 floats)")]
    [InlineData("patch: 16, dim: 1024, depth: 1, heads: 8, imageSize: 224, classes: 1000000", "classes: 1000000", "head weights (1024000000 floats)")]
    [InlineData("patch: 1, dim: 8, depth: 1, heads: 1, imageSize: 200, channels: 1", "imageSize: 200", "attention scores (1600080001 floats)")]
    [InlineData("patch: 16, dim: 64, depth: 1, heads: 8, imageSize: 224, registers: 2147483647", "registers: 2147483647", "qkv activations (412316898048 floats)")]
    [InlineData("patch: 16, dim: 64, depth: 1, heads: 8, imageSize: 224, registers: 2147483647, classToken: false, pooling: VitPooling.Avg", "registers: 2147483647", "qkv activations")]
    [InlineData("patch: 16, dim: 768, depth: 1, heads: 8, imageSize: 224, mlpDim: 2147483647", "mlpDim: 2147483647", "MLP activations")]
    [InlineData("patch: 16, dim: 134217728, depth: 1, heads: 8, imageSize: 16, classes: 0", "dim: 134217728", "qkv activations")]
    [InlineData("patch: 46341, dim: 8, depth: 1, heads: 1, imageSize: 46341, channels: 1", "imageSize: 46341", "input pixels")]
    [InlineData("patch: 2147483647, dim: 64, depth: 1, heads: 8, imageSize: 2147483647, channels: 4", "imageSize: 2147483647", "input pixels (18446744056529682436 floats)")]
    public void Vitg0012_TooLargeBuffers(string arguments, string locatedText, string what)
    {
        var run = RunModel(arguments);
        string argument = locatedText.Substring(0, locatedText.IndexOf(':', StringComparison.Ordinal));
        AssertSingle(run, "VITG0012", DiagnosticSeverity.Error, locatedText, what, $"reduce '{argument}'");
    }

    [Fact]
    public void Vitg0012_DefaultMlpDimBlamesDim()
    {
        var run = RunModel("patch: 16, dim: 24576, depth: 1, heads: 8, imageSize: 16");
        AssertSingle(run, "VITG0012", DiagnosticSeverity.Error, "dim: 24576", "MLP weights (2415919104 floats)", "reduce 'dim'");
    }

    [Fact]
    public void Vitg0013_UnusualHeadDim()
    {
        var run = RunModel("patch: 16, dim: 36, depth: 2, heads: 3, imageSize: 32");
        AssertSingle(run, "VITG0013", DiagnosticSeverity.Warning, "heads: 3", "= 12 ", "multiple of 8");
        Assert.Single(run.Sources);
    }

    [Fact]
    public void Vitg0017_AttentionMapsTooLargeForASpan()
    {
        // 197 tokens: 7000 blocks x 8 heads x 197² = 2173304000 floats per image, over int.MaxValue.
        var run = RunModel("patch: 16, dim: 64, depth: 7000, heads: 8, imageSize: 224");
        AssertSingle(run, "VITG0017", DiagnosticSeverity.Warning, "depth: 7000", "2173304000 floats", "no ForwardAttention or AttentionSize");
        string source = Assert.Single(run.Sources).Value;
        Assert.DoesNotContain("ForwardAttention", source, StringComparison.Ordinal);
        Assert.DoesNotContain("AttentionSize", source, StringComparison.Ordinal);
        Assert.Contains("public void ForwardFeatures(", source, StringComparison.Ordinal);
        Assert.Contains("public void ForwardPooled(", source, StringComparison.Ordinal);
        Assert.Empty(run.OutputDiagnostics().Where(d => d.Id != "VITG0017"));
    }

    [Fact]
    public void Vitg0017_NotReportedAtTheLargestAttentionThatFits()
    {
        // 5 tokens (4 patches + class): 10737418 x 8 x 25 = 2147483600 <= int.MaxValue.
        var run = RunModel("patch: 16, dim: 64, depth: 10737418, heads: 8, imageSize: 32");
        Assert.Empty(run.GeneratorDiagnostics);
        Assert.Contains("public const int AttentionSize = 2147483600;", Assert.Single(run.Sources).Value, StringComparison.Ordinal);
    }

    [Fact]
    public void Vitg0013_CanBeSuppressedInTheProject()
    {
        var compilation = GeneratorHarness.CreateCompilation("""
            [ViTGen.VitModel(patch: 16, dim: 36, depth: 2, heads: 3, imageSize: 32)]
            public partial class Model { }
            """);
        compilation = compilation.WithOptions(compilation.Options.WithSpecificDiagnosticOptions(
            new Dictionary<string, ReportDiagnostic> { ["VITG0013"] = ReportDiagnostic.Suppress }));
        var run = GeneratorHarness.Run(compilation);
        Assert.Empty(run.GeneratorDiagnostics);
        Assert.Single(run.Sources);
    }

    [Fact]
    public void DiagnosticsPointIntoTheUsersSourceTreeSoPragmasApply()
    {
        // The compiler applies #pragma warning disable only to diagnostics located in one of its own trees; an
        // external location (path + span) would escape it.
        var compilation = GeneratorHarness.CreateCompilation("""
            [ViTGen.VitModel(patch: 16, dim: 36, depth: 2, heads: 3, imageSize: 32)]
            public partial class Model { }
            """);
        var run = GeneratorHarness.Run(compilation);
        var diagnostic = Assert.Single(run.GeneratorDiagnostics, d => d.Id == "VITG0013");
        Assert.True(diagnostic.Location.IsInSource);
        Assert.Same(compilation.SyntaxTrees.Single(), diagnostic.Location.SourceTree);
    }

    [Fact]
    public void Vitg0013_CanBeMadeAnError()
    {
        var compilation = GeneratorHarness.CreateCompilation("""
            [ViTGen.VitModel(patch: 16, dim: 36, depth: 2, heads: 3, imageSize: 32)]
            public partial class Model { }
            """);
        compilation = compilation.WithOptions(compilation.Options.WithSpecificDiagnosticOptions(
            new Dictionary<string, ReportDiagnostic> { ["VITG0013"] = ReportDiagnostic.Error }));
        var run = GeneratorHarness.Run(compilation);
        Assert.Equal(DiagnosticSeverity.Error, Assert.Single(run.GeneratorDiagnostics).Severity);
    }

    [Fact]
    public void DeclarationAndValueErrorsAreReportedTogether()
    {
        var run = RunModel("patch: 16, dim: 770, depth: 12, heads: 12", "public class NotPartial { }");
        Assert.Equal(new[] { "VITG0001", "VITG0005" }, run.GeneratorDiagnostics.Select(d => d.Id).OrderBy(id => id, StringComparer.Ordinal));
    }

    [Fact]
    public void DiagnosticsPointIntoTheRightFile()
    {
        var compilation = GeneratorHarness.CreateCompilation(
            "namespace A; [ViTGen.VitModel(patch: 16, dim: 768, depth: 12, heads: 12)] public partial class Ok;",
            "namespace B;\n\n\n[ViTGen.VitModel(patch: 16, dim: 768, depth: 0, heads: 12)] public partial class Bad;");
        var run = GeneratorHarness.Run(compilation);
        var diagnostic = Assert.Single(run.GeneratorDiagnostics);
        var span = diagnostic.Location.GetLineSpan();
        Assert.Equal("/src/File1.cs", span.Path);
        Assert.Equal(3, span.StartLinePosition.Line);
        Assert.Equal("depth: 0", LocatedText(run, diagnostic));
        Assert.Equal(new[] { "A.Ok.g.cs" }, run.Sources.Keys);
    }

    [Fact]
    public void DescriptorsAreNumberedWithoutGapsAndDocumented()
    {
        var type = typeof(VitModelGenerator).Assembly.GetType("ViTGen.Generator.Diagnostics.DiagnosticDescriptors", throwOnError: true)!;
        var descriptors = type.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(DiagnosticDescriptor))
            .Select(f => (DiagnosticDescriptor)f.GetValue(null)!)
            .OrderBy(d => d.Id, StringComparer.Ordinal)
            .ToList();
        Assert.Equal(Enumerable.Range(1, 22).Select(i => $"VITG{i:0000}"), descriptors.Select(d => d.Id));
        Assert.All(descriptors, d =>
        {
            Assert.Equal("ViTGen", d.Category);
            Assert.True(d.IsEnabledByDefault);
            Assert.False(string.IsNullOrWhiteSpace(d.Title.ToString(CultureInfo.InvariantCulture)));
            Assert.False(string.IsNullOrWhiteSpace(d.Description.ToString(CultureInfo.InvariantCulture)));
        });
        Assert.Equal(new[] { "VITG0013", "VITG0017" }, descriptors.Where(d => d.DefaultSeverity == DiagnosticSeverity.Warning).Select(d => d.Id));
    }
}
