using System.Reflection;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Xunit;

namespace ViTGen.Generator.Tests;

/// <summary>
/// VITG0014 rejects a model class named like a member the generator adds; the parser's list of those names
/// (Model/GeneratedMembers.cs) is checked here against what the emitters actually write, for models that use
/// every optional part, so the list cannot fall behind the emitters.
/// </summary>
public class GeneratedMembersTests
{
    private static readonly string[] Models =
    {
        "[VitModel(patch: 16, dim: 768, depth: 12, heads: 12)] public partial class Plain;",
        "[VitModel(patch: 16, dim: 192, depth: 2, heads: 3, distilled: true)] public partial class Distilled;",
        "[VitModel(patch: 32, dim: 64, depth: 2, heads: 2, classes: 0, preNorm: true, pooling: VitPooling.Avg, registers: 2, layerScale: true, noEmbedClass: true)] public partial class Features;",
    };

    private static HashSet<string> ReservedNames()
    {
        var type = typeof(VitModelGenerator).Assembly.GetType("ViTGen.Generator.Model.GeneratedMembers", throwOnError: true)!;
        return (HashSet<string>)type.GetField("Names", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
    }

    /// <summary>Names the generated files declare directly in the model class (private fields are '_'-prefixed and cannot clash).</summary>
    private static IEnumerable<string> DeclaredNames(string source, string model)
    {
        var root = CSharpSyntaxTree.ParseText(source).GetRoot();
        var modelClass = root.DescendantNodes().OfType<ClassDeclarationSyntax>().Single(c => c.Identifier.ValueText == model);
        foreach (var member in modelClass.Members)
        {
            switch (member)
            {
                case FieldDeclarationSyntax field:
                    foreach (var variable in field.Declaration.Variables) yield return variable.Identifier.ValueText;
                    break;
                case MethodDeclarationSyntax { ExplicitInterfaceSpecifier: null } method: yield return method.Identifier.ValueText; break;
                case PropertyDeclarationSyntax property: yield return property.Identifier.ValueText; break;
                case BaseTypeDeclarationSyntax type: yield return type.Identifier.ValueText; break;
            }
        }
    }

    [Fact]
    public void Every_generated_member_name_is_reserved()
    {
        var reserved = ReservedNames();
        var declared = new HashSet<string>(StringComparer.Ordinal);
        foreach (string model in Models)
        {
            string name = model[(model.LastIndexOf("class ", StringComparison.Ordinal) + 6)..^1];
            var run = GeneratorHarness.Run("using ViTGen;\nnamespace Zoo;\n" + model);
            Assert.Empty(run.OutputDiagnostics());
            foreach (var source in run.AllSources.Values) declared.UnionWith(DeclaredNames(source, name));
        }
        var missing = declared.Where(n => !n.StartsWith('_') && !reserved.Contains(n)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, "Generated but not in GeneratedMembers.Names: " + string.Join(", ", missing));
        Assert.Contains("Architecture", declared);
        Assert.Contains("CudaPlan", declared);
    }
}
