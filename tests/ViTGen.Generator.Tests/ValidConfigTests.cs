using Microsoft.CodeAnalysis;
using Xunit;

namespace ViTGen.Generator.Tests;

/// <summary>Valid declarations: no diagnostics, and generated code that compiles without errors or warnings.</summary>
public class ValidConfigTests
{
    private static GeneratorRun AssertCleanBuild(string source, int expectedSources)
    {
        var run = GeneratorHarness.Run(source);
        Assert.Empty(run.GeneratorDiagnostics);
        Assert.Equal(expectedSources, run.Sources.Count);
        var diagnostics = run.OutputDiagnostics();
        Assert.True(diagnostics.IsEmpty, GeneratorHarness.Format(diagnostics));
        return run;
    }

    [Theory]
    [InlineData("patch: 16, dim: 768, depth: 12, heads: 12")]
    [InlineData("16, 768, 12, 12")]
    [InlineData("16, 384, 12, 6, 224, 3, 1000, 1536, true, true, VitPooling.Token, VitActivation.Gelu, 1e-6f, false, 0, false, false, false")]
    [InlineData("patch: 7, dim: 48, depth: 3, heads: 3, imageSize: 28, channels: 1, classes: 7, mlpDim: 100, qkvBias: false")]
    [InlineData("patch: 4, dim: 64, depth: 2, heads: 2, imageSize: 16, classes: 0, layerScale: true, registers: 4, noEmbedClass: true")]
    [InlineData("patch: 4, dim: 64, depth: 2, heads: 2, imageSize: 16, classes: 10, pooling: VitPooling.Avg, registers: 2")]
    [InlineData("patch: 4, dim: 64, depth: 2, heads: 2, imageSize: 16, classes: 10, classToken: false, pooling: VitPooling.Avg")]
    [InlineData("patch: 4, dim: 64, depth: 2, heads: 2, imageSize: 16, classes: 10, distilled: true")]
    [InlineData("patch: 4, dim: 64, depth: 2, heads: 2, imageSize: 16, classes: 5, activation: VitActivation.QuickGelu, normEps: 1e-5f, preNorm: true")]
    [InlineData("patch: 4, dim: 64, depth: 2, heads: 2, imageSize: 16, activation: VitActivation.GeluTanh")]
    [InlineData("patch: 4, dim: 64, depth: 2, heads: 2, imageSize: 16, activation: VitActivation.Relu, normEps: 1f")]
    [InlineData("heads: 2, depth: 1, dim: 16, patch: 8, imageSize: 8, channels: 4")]
    [InlineData("patch: 1, dim: 8, depth: 1, heads: 1, imageSize: 1, channels: 1, classes: 1")]
    [InlineData("patch: 16, dim: 768, depth: 12, heads: 12, normEps: float.Epsilon")]
    public void AttributeConfigurationsBuildCleanly(string arguments)
    {
        AssertCleanBuild($$"""
            using ViTGen;

            namespace Models;

            [VitModel({{arguments}})]
            public partial class Model { }
            """, 1);
    }

    [Fact]
    public void GlobalNamespace()
    {
        var run = AssertCleanBuild("""
            [ViTGen.VitModel(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32)]
            internal sealed partial class GlobalModel;
            """, 1);
        Assert.Contains("GlobalModel.g.cs", run.Sources.Keys);
    }

    [Fact]
    public void BlockScopedAndNestedNamespaces()
    {
        var run = AssertCleanBuild("""
            using ViTGen;

            namespace Outer
            {
                namespace Inner.Deeper
                {
                    [VitModel(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32)]
                    public partial class Model { }
                }
            }
            """, 1);
        Assert.Contains("Outer.Inner.Deeper.Model.g.cs", run.Sources.Keys);
    }

    [Fact]
    public void NestedInPartialContainers()
    {
        var run = AssertCleanBuild("""
            using ViTGen;

            namespace Zoo;

            public static partial class Models
            {
                internal partial class Vision
                {
                    [VitModel(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32)]
                    private sealed partial class Tiny { }

                    public object Create(string path) => Tiny.Load(path);
                }

                [VitModel(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32, classes: 0)]
                public partial class Features { }
            }
            """, 2);
        Assert.Contains("Zoo.Models.Vision.Tiny.g.cs", run.Sources.Keys);
        Assert.Contains("Zoo.Models.Features.g.cs", run.Sources.Keys);
    }

    [Fact]
    public void SeveralModelsInOneFile()
    {
        var run = AssertCleanBuild("""
            using ViTGen;

            namespace Zoo;

            [VitModel(patch: 16, dim: 192, depth: 12, heads: 3)] public partial class VitTiny16;
            [VitModel(patch: 16, dim: 384, depth: 12, heads: 6)] public partial class VitSmall16;
            [VitModel(patch: 16, dim: 768, depth: 12, heads: 12)] public partial class VitBase16;
            [VitModel(patch: 32, dim: 768, depth: 12, heads: 12)] public partial class VitBase32;
            [VitModel(patch: 14, dim: 384, depth: 12, heads: 6, imageSize: 518, classes: 0, layerScale: true, registers: 4, noEmbedClass: true)]
            public partial class Dinov2Small;
            """, 5);
        Assert.Equal(
            new[] { "Zoo.Dinov2Small.g.cs", "Zoo.VitBase16.g.cs", "Zoo.VitBase32.g.cs", "Zoo.VitSmall16.g.cs", "Zoo.VitTiny16.g.cs" },
            run.Sources.Keys.OrderBy(k => k, StringComparer.Ordinal));
    }

    [Fact]
    public void ModelsAcrossFilesAndPartialDeclarations()
    {
        var compilation = GeneratorHarness.CreateCompilation(
            """
            namespace Zoo;

            [ViTGen.VitModel(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32)]
            public partial class Split { }
            """,
            """
            namespace Zoo;

            public partial class Split
            {
                public string Describe() => $"{Dim}x{Depth}";
            }
            """,
            """
            using static ViTGen.VitPooling;

            namespace Other
            {
                [ViTGen.VitModel(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32, pooling: Avg)]
                public partial class Split { }
            }
            """);
        var run = GeneratorHarness.Run(compilation);
        Assert.Empty(run.GeneratorDiagnostics);
        Assert.Equal(new[] { "Other.Split.g.cs", "Zoo.Split.g.cs" }, run.Sources.Keys.OrderBy(k => k, StringComparer.Ordinal));
        var diagnostics = run.OutputDiagnostics();
        Assert.True(diagnostics.IsEmpty, GeneratorHarness.Format(diagnostics));
    }

    [Fact]
    public void GeneratedApiIsUsableFromUserCode()
    {
        AssertCleanBuild("""
            using System;
            using ViTGen;

            namespace App;

            [VitModel(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32, classes: 10)]
            public partial class Model { }

            public static class Use
            {
                public static int Run(string path)
                {
                    using var model = Model.Load(path, new VitOptions());
                    Span<float> output = stackalloc float[Model.OutputSize * 2];
                    model.Forward(new float[Model.InputSize * 2], output, batch: 2);
                    IDisposable disposable = model;
                    return Model.NumClasses + Model.Tokens + Model.HeadDim + disposable.GetHashCode();
                }
            }
            """, 1);
    }

    [Fact]
    public void HeadDimWarningStillGeneratesCompilableCode()
    {
        var run = GeneratorHarness.Run("""
            [ViTGen.VitModel(patch: 5, dim: 36, depth: 2, heads: 3, imageSize: 35, classes: 10)]
            public partial class Hd12 { }
            """);
        var diagnostic = Assert.Single(run.GeneratorDiagnostics);
        Assert.Equal("VITG0013", diagnostic.Id);
        Assert.Single(run.Sources);
        var compilerDiagnostics = GeneratorHarness.WarningsAndErrors(run.Output);
        Assert.True(compilerDiagnostics.IsEmpty, GeneratorHarness.Format(compilerDiagnostics));
    }

    [Fact]
    public void AttributeSpellings()
    {
        AssertCleanBuild("""
            using ViTGen;
            using Vit = ViTGen.VitModelAttribute;

            namespace Spellings;

            [VitModelAttribute(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32)] public partial class A;
            [global::ViTGen.VitModel(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32)] public partial class B;
            [Vit(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32)] public partial class C;
            [System.Serializable, VitModel(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 32)] public partial class D;
            [VitModel(patch: 8, dim: 32, depth: 1, heads: 4, imageSize: 2 * 16, classes: 'A', normEps: 1e-6f * 10)] public partial class E;
            """, 5);
    }
}
