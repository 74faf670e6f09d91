using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;
using ViTGen.Generator.Helpers;

namespace ViTGen.Generator.Model;

/// <summary>A location as values (file, span, line span): Roslyn's Location holds a syntax tree and is not equatable.</summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public static LocationInfo? From(Location? location) => location is null || location.SourceTree is null
        ? null
        : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);

    /// <summary>
    /// Back to a location in the compilation's own tree, so <c>#pragma warning disable</c> applies (an external
    /// location made from a path has no tree, and the compiler cannot see pragmas around it).
    /// </summary>
    public Location ToLocation(Compilation compilation)
    {
        foreach (var tree in compilation.SyntaxTrees)
        {
            if (tree.FilePath == FilePath && tree.Length >= Span.End) return Location.Create(tree, Span);
        }
        return Location.Create(FilePath, Span, LineSpan);
    }
}

/// <summary>A diagnostic as equatable data, turned into a real <see cref="Diagnostic"/> only when reported.</summary>
internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, LocationInfo? Location, EquatableArray<string> Arguments)
{
    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, Location? location, params string[] arguments)
        => new(descriptor, LocationInfo.From(location), arguments.ToEquatableArray());

    public Diagnostic ToDiagnostic(Compilation compilation)
        => Diagnostic.Create(Descriptor, Location?.ToLocation(compilation), System.Linq.Enumerable.ToArray<object>(Arguments));
}

/// <summary>What the parser found for one attributed class: a model to emit (null on errors) and diagnostics.</summary>
internal sealed record ParseResult(VitModelSpec? Model, EquatableArray<DiagnosticInfo> Diagnostics);
