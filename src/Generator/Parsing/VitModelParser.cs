using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Numerics;
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
    private static readonly string[] CountArguments = { "classes", "mlpDim", "registers" };
    private static readonly string[] ExpectedParameters =
    {
        "patch", "dim", "depth", "heads", "imageSize", "channels", "classes", "mlpDim", "qkvBias", "classToken",
        "pooling", "activation", "normEps", "layerScale", "registers", "noEmbedClass", "preNorm", "distilled",
        "hybridLayers", "hybridWidth",
    };
    /// <summary>The largest buffer, in floats, whose byte offsets fit an int (2^31 - 4 bytes).</summary>
    private const int MaxBufferFloats = int.MaxValue / 4;
    private static readonly SymbolDisplayFormat GenericNameFormat = new(
        typeQualificationStyle: SymbolDisplayTypeQualificationStyle.NameAndContainingTypes,
        genericsOptions: SymbolDisplayGenericsOptions.IncludeTypeParameters);

    public static ParseResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var type = (INamedTypeSymbol)context.TargetSymbol;
        var classSyntax = (TypeDeclarationSyntax)context.TargetNode;
        var attribute = context.Attributes[0];
        var attributeSyntax = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;
        var attributeLocation = attributeSyntax?.GetLocation() ?? classSyntax.Identifier.GetLocation();

        // While the user types, the class may have no name yet: the compiler reports that, and there is nothing to emit.
        if (classSyntax.Identifier.IsMissing || type.Name.Length == 0)
            return new ParseResult(null, EquatableArray<DiagnosticInfo>.Empty);

        // [VitModel] repeated on several partial declarations is the compiler's CS0579; the first one speaks for
        // the class, so the others neither report twice nor emit a second file with the same hint name.
        if (!IsFirstApplication(type, attribute))
            return new ParseResult(null, EquatableArray<DiagnosticInfo>.Empty);

        var diagnostics = new List<DiagnosticInfo>();
        CheckDeclaration(type, classSyntax, attributeLocation, diagnostics);
        var arguments = BindArguments(attribute);
        if (arguments is null)
            return new ParseResult(null, diagnostics.ToEquatableArray());

        Location Where(string name) => ArgumentLocation(attributeSyntax, attribute, name) ?? attributeLocation;
        var spec = CreateSpec(type, attributeSyntax, arguments);
        // Values are checked on their own list: a declaration error must not hide them (the user fixes both at once).
        var valueDiagnostics = new List<DiagnosticInfo>();
        CheckValues(spec, arguments, Where, valueDiagnostics);
        diagnostics.AddRange(valueDiagnostics);
        bool hasErrors = diagnostics.Any(d => d.Descriptor.DefaultSeverity == DiagnosticSeverity.Error);
        return new ParseResult(hasErrors ? null : spec, diagnostics.ToEquatableArray());
    }

    private static bool IsFirstApplication(INamedTypeSymbol type, AttributeData attribute)
    {
        var first = type.GetAttributes().FirstOrDefault(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, attribute.AttributeClass));
        var firstSyntax = first?.ApplicationSyntaxReference;
        var ours = attribute.ApplicationSyntaxReference;
        return firstSyntax is null || ours is null
            || (firstSyntax.SyntaxTree == ours.SyntaxTree && firstSyntax.Span == ours.Span);
    }

    private static void CheckDeclaration(INamedTypeSymbol type, TypeDeclarationSyntax syntax, Location location, List<DiagnosticInfo> diagnostics)
    {
        string? unsupported = syntax is RecordDeclarationSyntax ? "a record"
            : type.IsStatic ? "static"
            : type.IsAbstract ? "abstract"
            : syntax.Modifiers.Any(m => m.Text == "file") ? "file-local"
            : null;
        if (unsupported is not null)
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedClassKind, location, type.Name, unsupported));
        var caseTwin = CaseTwin(type);
        if (caseTwin is not null)
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NameDiffersOnlyInCase, location, type.Name, caseTwin));
        if (GeneratedMembers.Names.Contains(type.Name))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ReservedName, location, type.Name));
        if (!syntax.Modifiers.Any(m => m.Text == "partial"))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotPartial, location, type.Name));
        if (type.IsGenericType) // also true when a containing type is generic: name the class with its containers
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.Generic, location, type.ToDisplayString(GenericNameFormat)));
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
            // hybridLayers alone may be null (a plain ViT); an array's Value throws, so its elements are checked apart.
            if (value.Kind == TypedConstantKind.Error || (value.IsNull && constructor.Parameters[i].Name != "hybridLayers")) return null;
            arguments[constructor.Parameters[i].Name] = value;
        }
        // A look-alike attribute with other parameters (or a future runtime) is not ours to interpret.
        return ExpectedParameters.All(name => arguments.TryGetValue(name, out var value) && HasExpectedShape(name, value))
            ? arguments
            : null;
    }

    private static bool HasExpectedShape(string name, TypedConstant value) => name == "hybridLayers"
        ? value.Kind == TypedConstantKind.Array && (value.IsNull || value.Values.All(v => v.Kind != TypedConstantKind.Error && v.Value is int))
        : value.Kind != TypedConstantKind.Array && HasExpectedType(name, value.Value);

    private static bool HasExpectedType(string name, object? value) => name switch
    {
        "qkvBias" or "classToken" or "layerScale" or "noEmbedClass" or "preNorm" or "distilled" => value is bool,
        "normEps" => value is float,
        _ => value is int, // the counts, and the enums (whose constants arrive as their int values)
    };

    private static VitModelSpec CreateSpec(INamedTypeSymbol type, AttributeSyntax? syntax, Dictionary<string, TypedConstant> a)
    {
        // BindArguments returned every expected parameter with its expected type, so these casts cannot fail.
        int Int(string name) => (int)a[name].Value!;
        bool Bool(string name) => (bool)a[name].Value!;
        float eps = (float)a["normEps"].Value!;
        int dim = Int("dim"), mlpDim = Int("mlpDim");
        var layers = a["hybridLayers"];
        return new VitModelSpec(
            Describe(type),
            syntax is null ? "[VitModel]" : "[" + string.Join(" ", syntax.ToString().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)) + "]",
            Int("patch"), dim, Int("depth"), Int("heads"), Int("imageSize"), Int("channels"), Int("classes"),
            mlpDim == 0 ? 4 * dim : mlpDim,
            Bool("qkvBias"), Bool("classToken"), (Pooling)Int("pooling"), (Activation)Int("activation"), eps,
            Bool("layerScale"), Int("registers"), Bool("noEmbedClass"), Bool("preNorm"), Bool("distilled"),
            !layers.IsNull, layers.IsNull ? EquatableArray<int>.Empty : layers.Values.Select(v => (int)v.Value!).ToEquatableArray(), Int("hybridWidth"));
    }

    private static TypeLocation Describe(INamedTypeSymbol type)
    {
        var containing = new List<string>();
        var kinds = new List<string>();
        for (var parent = type.ContainingType; parent is not null; parent = parent.ContainingType)
        {
            containing.Insert(0, parent.Name);
            kinds.Insert(0, DeclarationKeyword(parent));
        }
        // Plain names, segment by segment (ToDisplayString would add '@' to keywords; the emitter decides that).
        var segments = new List<string>();
        for (var ns = type.ContainingNamespace; ns is not null && !ns.IsGlobalNamespace; ns = ns.ContainingNamespace) segments.Insert(0, ns.Name);
        return new TypeLocation(segments.Count == 0 ? null : string.Join(".", segments), containing.ToEquatableArray(), kinds.ToEquatableArray(), type.Name);
    }

    /// <summary>Another [VitModel] type beside this one whose name differs only in case; the ordinal-first one keeps its name.</summary>
    private static string? CaseTwin(INamedTypeSymbol type)
    {
        var siblings = type.ContainingType is { } parent ? parent.GetTypeMembers() : type.ContainingNamespace.GetTypeMembers();
        foreach (var sibling in siblings)
        {
            if (!SymbolEqualityComparer.Default.Equals(sibling, type)
                && string.Equals(sibling.Name, type.Name, StringComparison.OrdinalIgnoreCase)
                && string.CompareOrdinal(sibling.Name, type.Name) < 0
                && sibling.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == "ViTGen.VitModelAttribute"))
                return sibling.Name;
        }
        return null;
    }

    private static string DeclarationKeyword(INamedTypeSymbol type) => type switch
    {
        { IsRecord: true, TypeKind: TypeKind.Struct } => "record struct",
        { IsRecord: true } => "record",
        { TypeKind: TypeKind.Struct } => "struct",
        { TypeKind: TypeKind.Interface } => "interface",
        _ => "class",
    };

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
        if (spec.Hybrid) CheckHybrid(spec, Report);
        else if (spec.ImageSize % spec.Patch != 0) Report(DiagnosticDescriptors.ImageNotDivisibleByPatch, "imageSize", Text("imageSize"), Text("patch"));
        if (!spec.Hybrid && spec.HybridWidth != 64) Report(DiagnosticDescriptors.HybridWidthWithoutLayers, "hybridWidth", Text("hybridWidth"));
        if (!spec.ClassToken && spec.Pooling == Pooling.Token) Report(DiagnosticDescriptors.TokenPoolingWithoutClassToken, "classToken");
        if (spec.Distilled)
        {
            if (!spec.ClassToken) Report(DiagnosticDescriptors.DistilledUnsupported, "distilled", "'classToken' is false");
            else if (spec.Pooling != Pooling.Token) Report(DiagnosticDescriptors.DistilledUnsupported, "distilled", "'pooling' is not Token");
            else if (spec.Classes == 0) Report(DiagnosticDescriptors.DistilledUnsupported, "distilled", "'classes' is 0 (a distilled model averages two heads)");
            else if (spec.Registers > 0) Report(DiagnosticDescriptors.DistilledUnsupported, "distilled", "'registers' is not 0");
        }
        if (diagnostics.Any(d => d.Descriptor.DefaultSeverity == DiagnosticSeverity.Error)) return;

        CheckSizes(spec, a, where, diagnostics);
        if (diagnostics.Any(d => d.Descriptor.DefaultSeverity == DiagnosticSeverity.Error)) return;
        var attentionSize = (BigInteger)spec.Depth * spec.Heads * spec.Tokens * spec.Tokens;
        if (attentionSize > int.MaxValue) Report(DiagnosticDescriptors.AttentionTooLarge, "depth", attentionSize.ToString(CultureInfo.InvariantCulture));
        if (spec.HeadDim % 8 != 0) Report(DiagnosticDescriptors.UnusualHeadDim, "heads", spec.HeadDim.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// timm's <c>_resnetv2</c> trunk: at most four stages (a fifth would dilate rather than stride, and timm has four
    /// stage widths), each with at least one bottleneck, every channel count splitting into GroupNorm's 32 groups, and a
    /// feature map of whole patches. Sizes stay within the buffer limit checked afterwards by <see cref="CheckSizes"/>.
    /// </summary>
    private static void CheckHybrid(VitModelSpec spec, Action<DiagnosticDescriptor, string, string[]> report)
    {
        string Number(BigInteger value) => value.ToString(CultureInfo.InvariantCulture);
        var layers = spec.HybridLayers;
        if (layers.Count > HybridGeometry.MaxStages)
            report(DiagnosticDescriptors.TooManyHybridStages, "hybridLayers", new[] { Number(layers.Count), Number(HybridGeometry.MaxStages) });
        for (int i = 0; i < layers.Count; i++)
        {
            if (layers[i] < 1)
                report(DiagnosticDescriptors.HybridStageNotPositive, "hybridLayers", new[] { Number(i), Number(layers[i]) });
        }
        if (spec.HybridWidth < HybridGeometry.Groups || spec.HybridWidth % HybridGeometry.Groups != 0)
            report(DiagnosticDescriptors.HybridWidthNotGroups, "hybridWidth", new[] { Number(spec.HybridWidth), Number(HybridGeometry.Groups) });
        else if ((BigInteger)spec.HybridWidth * 4 << Math.Max(layers.Count - 1, 0) > MaxBufferFloats)
            report(DiagnosticDescriptors.TooLarge, "hybridWidth", new[] { "widest hybrid stage", Number((BigInteger)spec.HybridWidth * 4 << Math.Max(layers.Count - 1, 0)) + " channels", "hybridWidth" });
        if (layers.Count > HybridGeometry.MaxStages || layers.Any(l => l < 1) || spec.HybridWidth % HybridGeometry.Groups != 0 || spec.HybridWidth < 1) return;

        var sizes = new List<int> { spec.ImageSize, HybridGeometry.SameOutput(spec.ImageSize, 2), HybridGeometry.StemOutput(spec.ImageSize) };
        for (int i = 0; i < layers.Count; i++) sizes.Add(HybridGeometry.SameOutput(sizes[sizes.Count - 1], HybridGeometry.StageStride(i)));
        int feature = sizes[sizes.Count - 1];
        if (feature % spec.Patch != 0)
            report(DiagnosticDescriptors.FeatureMapNotDivisibleByPatch, "patch",
                new[] { string.Join(" -> ", sizes.Select(n => Number(n))), Number(feature), Number(spec.Patch) });
    }

    /// <summary>
    /// Every buffer the generated code allocates must fit the kernels' 32-bit byte offsets. Exact arithmetic: with
    /// values near int.MaxValue a long product (or the int prefix-token count) would wrap and slip through. The
    /// diagnostic points at the argument that dominates the buffer.
    /// </summary>
    private static void CheckSizes(VitModelSpec spec, Dictionary<string, TypedConstant> a, Func<string, Location> where, List<DiagnosticInfo> diagnostics)
    {
        BigInteger channels = spec.Channels, imageSize = spec.ImageSize, patch = spec.Patch, dim = spec.Dim, classes = spec.Classes;
        BigInteger grid = spec.FeatureMapSize / spec.Patch;
        BigInteger tokens = (spec.ClassToken ? 1 : 0) + (spec.Distilled ? 1 : 0) + (BigInteger)spec.Registers + grid * grid;
        bool defaultMlp = a["mlpDim"].Value is 0;
        BigInteger mlpDim = defaultMlp ? 4 * dim : spec.MlpDim;
        string tokenArgument = spec.Registers > grid * grid ? "registers" : "imageSize";
        string mlpArgument = defaultMlp ? "dim" : "mlpDim";
        string Larger(BigInteger rows, BigInteger width, string widthArgument) => rows >= width ? tokenArgument : widthArgument;

        (string What, BigInteger Floats, string Argument)[] buffers =
        {
            ("input pixels", channels * imageSize * imageSize, "imageSize"),
            ("qkv activations", tokens * 3 * dim, Larger(tokens, dim, "dim")),
            ("MLP activations", tokens * mlpDim, Larger(tokens, mlpDim, mlpArgument)),
            ("attention scores", tokens * tokens, tokenArgument),
            ("patch features", channels * patch * patch * tokens, Larger(tokens, channels * patch * patch, "patch")),
            ("MLP weights", mlpDim * dim, mlpDim >= dim ? mlpArgument : "dim"),
            ("head weights", classes * dim, classes >= dim ? "classes" : "dim"),
        };
        if (spec.Hybrid) buffers = buffers.Concat(HybridBuffers(spec)).ToArray();
        foreach (var (what, floats, argument) in buffers)
        {
            if (floats > MaxBufferFloats)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.TooLarge, where(argument),
                    what, floats.ToString(CultureInfo.InvariantCulture) + " floats", argument));
                return;
            }
        }
    }

    /// <summary>
    /// The hybrid trunk's largest buffers (after <see cref="CheckHybrid"/> passed): the image and the stem's maps, and
    /// per stage its unfolded 3x3 input, its output map and its widest weight.
    /// </summary>
    private static IEnumerable<(string What, BigInteger Floats, string Argument)> HybridBuffers(VitModelSpec spec)
    {
        // A map of side n and c channels: the image size dominates while n² ≥ c, the trunk's width after that.
        (string, BigInteger, string) Map(string what, BigInteger side, BigInteger channels)
            => (what, side * side * channels, side * side >= channels ? "imageSize" : "hybridWidth");
        BigInteger width = spec.HybridWidth;
        int stem = HybridGeometry.SameOutput(spec.ImageSize, 2);
        yield return Map("hybrid stem's unfolded input", stem, 49 * (BigInteger)spec.Channels);
        yield return Map("hybrid stem's feature map", stem, width);
        int size = HybridGeometry.StemOutput(spec.ImageSize);
        for (int i = 0; i < spec.HybridLayers.Count; i++)
        {
            BigInteger mid = width << i;
            int output = HybridGeometry.SameOutput(size, HybridGeometry.StageStride(i));
            yield return Map($"hybrid stage {i}'s unfolded 3x3 input", output, 9 * mid);
            yield return Map($"hybrid stage {i}'s feature map", size, 4 * mid);
            yield return ($"hybrid stage {i}'s weights", 4 * mid * mid * (i == 0 ? 1 : 2), "hybridWidth");
            size = output;
        }
        BigInteger grid = size / spec.Patch;
        yield return ("unfolded hybrid feature patches", grid * grid * spec.FeatureMapChannels * spec.Patch * spec.Patch, "patch");
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
