using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using ViTGen.Generator.Diagnostics;
using ViTGen.Generator.Helpers;
using ViTGen.Generator.Model;

namespace ViTGen.Generator.Parsing;

/// <summary>
/// Reads one <c>[VitModel]</c> class into a <see cref="VitModelSpec"/> and checks every rule the emitter relies
/// on. It never throws on user input: a value it cannot use is a diagnostic, and a class whose attribute does
/// not bind (wrong argument types, missing arguments) is left to the compiler's own errors.
/// </summary>
internal static class VitModelParser
{
    private static readonly string[] PositiveArguments = { "patch", "dim", "depth", "heads", "imageSize", "channels" };
    private static readonly char[] Whitespace = { '\r', '\n', ' ', '\t' };
    private static readonly string[] CountArguments = { "classes", "mlpDim", "registers" };
    private static readonly string[] ExpectedParameters =
    {
        "patch", "dim", "depth", "heads", "imageSize", "channels", "classes", "mlpDim", "qkvBias", "classToken",
        "pooling", "activation", "normEps", "layerScale", "registers", "noEmbedClass", "preNorm", "distilled",
    };

    public static ParseResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var type = (INamedTypeSymbol)context.TargetSymbol;
        var classSyntax = (ClassDeclarationSyntax)context.TargetNode;
        var attribute = context.Attributes[0];
        var attributeSyntax = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;
        var attributeLocation = attributeSyntax?.GetLocation() ?? classSyntax.Identifier.GetLocation();
        var diagnostics = new List<DiagnosticInfo>();

        CheckDeclaration(type, classSyntax, attributeLocation, diagnostics);
        var arguments = BindArguments(attribute);
        if (arguments is null)
            return new ParseResult(null, diagnostics.ToEquatableArray());

        Location Where(string name) => ArgumentLocation(attributeSyntax, attribute, name) ?? attributeLocation;
        var spec = CreateSpec(type, attributeSyntax, arguments);
        CheckValues(spec, arguments, Where, diagnostics);
        bool hasErrors = diagnostics.Any(d => d.Descriptor.DefaultSeverity == DiagnosticSeverity.Error);
        return new ParseResult(hasErrors ? null : spec, diagnostics.ToEquatableArray());
    }

    private static void CheckDeclaration(INamedTypeSymbol type, ClassDeclarationSyntax syntax, Location location, List<DiagnosticInfo> diagnostics)
    {
        if (!syntax.Modifiers.Any(m => m.Text == "partial"))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotPartial, location, type.Name));
        if (type.IsGenericType)
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.Generic, location, type.Name));
        for (var parent = syntax.Parent as TypeDeclarationSyntax; parent is not null; parent = parent.Parent as TypeDeclarationSyntax)
        {
            if (!parent.Modifiers.Any(m => m.Text == "partial"))
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ContainingTypeNotPartial, location, type.Name, parent.Identifier.Text));
        }
    }

    /// <summary>The constructor's arguments by parameter name (defaults included), or null if the attribute did not bind.</summary>
    private static Dictionary<string, TypedConstant>? BindArguments(AttributeData attribute)
    {
        var constructor = attribute.AttributeConstructor;
        if (constructor is null || constructor.Parameters.Length != attribute.ConstructorArguments.Length)
            return null;
        var arguments = new Dictionary<string, TypedConstant>(StringComparer.Ordinal);
        for (int i = 0; i < constructor.Parameters.Length; i++)
        {
            var value = attribute.ConstructorArguments[i];
            if (value.Kind == TypedConstantKind.Error || value.IsNull) return null;
            arguments[constructor.Parameters[i].Name] = value;
        }
        // A look-alike attribute with other parameters (or a future runtime) is not ours to interpret.
        return ExpectedParameters.All(name => arguments.TryGetValue(name, out var value) && HasExpectedType(name, value.Value))
            ? arguments
            : null;
    }

    private static bool HasExpectedType(string name, object? value) => name switch
    {
        "qkvBias" or "classToken" or "layerScale" or "noEmbedClass" or "preNorm" or "distilled" => value is bool,
        "normEps" => value is float,
        _ => value is int, // the counts, and the enums (whose constants arrive as their int values)
    };

    private static VitModelSpec CreateSpec(INamedTypeSymbol type, AttributeSyntax? syntax, Dictionary<string, TypedConstant> a)
    {
        int Int(string name) => a.TryGetValue(name, out var v) && v.Value is int i ? i : 0;
        bool Bool(string name, bool fallback) => a.TryGetValue(name, out var v) && v.Value is bool b ? b : fallback;
        float eps = a.TryGetValue("normEps", out var e) && e.Value is float f ? f : 1e-6f;
        int dim = Int("dim"), mlpDim = Int("mlpDim");
        return new VitModelSpec(
            Describe(type),
            syntax is null ? "[VitModel]" : "[" + string.Join(" ", syntax.ToString().Split(Whitespace, StringSplitOptions.RemoveEmptyEntries)) + "]",
            Int("patch"), dim, Int("depth"), Int("heads"), Int("imageSize"), Int("channels"), Int("classes"),
            mlpDim == 0 ? 4 * dim : mlpDim,
            Bool("qkvBias", true), Bool("classToken", true), (Pooling)Int("pooling"), (Activation)Int("activation"), eps,
            Bool("layerScale", false), Int("registers"), Bool("noEmbedClass", false), Bool("preNorm", false), Bool("distilled", false));
    }

    private static TypeLocation Describe(INamedTypeSymbol type)
    {
        var containing = new List<string>();
        for (var parent = type.ContainingType; parent is not null; parent = parent.ContainingType) containing.Insert(0, parent.Name);
        string? ns = type.ContainingNamespace.IsGlobalNamespace ? null : type.ContainingNamespace.ToDisplayString();
        return new TypeLocation(ns, containing.ToEquatableArray(), type.Name);
    }

    private static void CheckValues(VitModelSpec spec, Dictionary<string, TypedConstant> a, Func<string, Location> where, List<DiagnosticInfo> diagnostics)
    {
        void Report(DiagnosticDescriptor descriptor, string argument, params string[] args)
            => diagnostics.Add(DiagnosticInfo.Create(descriptor, where(argument), args));
        string Text(string name) => Convert.ToString(a[name].Value, CultureInfo.InvariantCulture) ?? "";

        foreach (var name in PositiveArguments)
            if (a[name].Value is int value && value < 1) Report(DiagnosticDescriptors.NotPositive, name, name, Text(name));
        foreach (var name in CountArguments)
            if (a[name].Value is int value && value < 0) Report(DiagnosticDescriptors.Negative, name, name, Text(name));
        if ((uint)spec.Pooling > (uint)Pooling.Avg) Report(DiagnosticDescriptors.InvalidEnum, "pooling", "pooling", Text("pooling"), "VitPooling");
        if ((uint)spec.Activation > (uint)Activation.Relu) Report(DiagnosticDescriptors.InvalidEnum, "activation", "activation", Text("activation"), "VitActivation");
        if (!(spec.NormEps > 0) || float.IsInfinity(spec.NormEps))
            Report(DiagnosticDescriptors.InvalidEpsilon, "normEps", spec.NormEps.ToString("R", CultureInfo.InvariantCulture));
        if (diagnostics.Count > 0 && diagnostics.Any(d => d.Descriptor.DefaultSeverity == DiagnosticSeverity.Error)) return;

        if (spec.Dim % spec.Heads != 0) Report(DiagnosticDescriptors.DimNotDivisibleByHeads, "heads", Text("dim"), Text("heads"));
        if (spec.ImageSize % spec.Patch != 0) Report(DiagnosticDescriptors.ImageNotDivisibleByPatch, "imageSize", Text("imageSize"), Text("patch"));
        if (!spec.ClassToken && spec.Pooling == Pooling.Token) Report(DiagnosticDescriptors.TokenPoolingWithoutClassToken, "classToken");
        if (spec.Distilled)
        {
            if (!spec.ClassToken) Report(DiagnosticDescriptors.DistilledUnsupported, "distilled", "'classToken' is false");
            else if (spec.Pooling != Pooling.Token) Report(DiagnosticDescriptors.DistilledUnsupported, "distilled", "'pooling' is not Token");
            else if (spec.Classes == 0) Report(DiagnosticDescriptors.DistilledUnsupported, "distilled", "'classes' is 0 (a distilled model averages two heads)");
            else if (spec.Registers > 0) Report(DiagnosticDescriptors.DistilledUnsupported, "distilled", "'registers' is not 0");
        }
        if (diagnostics.Any(d => d.Descriptor.DefaultSeverity == DiagnosticSeverity.Error)) return;

        CheckSizes(spec, where("dim"), diagnostics);
        if (spec.HeadDim % 8 != 0) Report(DiagnosticDescriptors.UnusualHeadDim, "heads", spec.HeadDim.ToString(CultureInfo.InvariantCulture));
    }

    private static void CheckSizes(VitModelSpec spec, Location location, List<DiagnosticInfo> diagnostics)
    {
        long tokens = (long)spec.PrefixTokens + (long)(spec.ImageSize / spec.Patch) * (spec.ImageSize / spec.Patch);
        (string What, long Floats)[] buffers =
        {
            ("input pixels", (long)spec.Channels * spec.ImageSize * spec.ImageSize),
            ("qkv activations", tokens * 3 * spec.Dim),
            ("MLP activations", tokens * spec.MlpDim),
            ("attention scores", tokens * tokens),
            ("patch features", (long)spec.Channels * spec.Patch * spec.Patch * tokens),
            ("MLP weights", (long)spec.MlpDim * spec.Dim),
            ("head weights", (long)spec.Classes * spec.Dim),
        };
        foreach (var (what, floats) in buffers)
        {
            if (floats > int.MaxValue / 4)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.TooLarge, location, what, floats.ToString(CultureInfo.InvariantCulture) + " floats"));
                return;
            }
        }
    }

    /// <summary>The argument for a constructor parameter: by name (<c>dim: 768</c>) or by position.</summary>
    private static Location? ArgumentLocation(AttributeSyntax? syntax, AttributeData attribute, string parameter)
    {
        var list = syntax?.ArgumentList?.Arguments;
        if (list is null) return null;
        foreach (var argument in list)
        {
            if (argument.NameColon?.Name.Identifier.ValueText == parameter) return argument.GetLocation();
        }
        int index = attribute.AttributeConstructor!.Parameters.IndexOf(attribute.AttributeConstructor.Parameters.First(p => p.Name == parameter));
        return index < list.Value.Count && list.Value[index].NameColon is null && list.Value[index].NameEquals is null
            ? list.Value[index].GetLocation()
            : null;
    }
}
