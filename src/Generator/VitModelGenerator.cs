using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using ViTGen.Generator.Emitting.Cpu;
using ViTGen.Generator.Emitting.Gpu;
using ViTGen.Generator.Lowering;
using ViTGen.Generator.Parsing;

namespace ViTGen.Generator;

/// <summary>
/// Turns each <c>[VitModel(...)]</c> partial class into a shape-specialized Vision Transformer.
/// </summary>
/// <remarks>
/// Pipeline: ForAttributeWithMetadataName finds the classes without a semantic walk of the compilation; the
/// parser reduces each to value-equal data (model + diagnostics), so an edit elsewhere compares equal and
/// stops there. Valid models are lowered once to a backend-neutral description (Lowering/), which the CPU and
/// GPU emitters translate into the model's two files. Diagnostics and source leave on separate branches: moving an attribute (which moves its
/// diagnostics' locations) re-reports them without re-emitting unchanged source.
/// </remarks>
[Generator(LanguageNames.CSharp)]
public sealed class VitModelGenerator : IIncrementalGenerator
{
    /// <summary>Tracking names of the pipeline steps, for incrementality tests.</summary>
    public static class TrackingNames
    {
        /// <summary>The parsed model and its diagnostics.</summary>
        public const string Parse = "VitModel.Parse";
        /// <summary>Models that passed validation.</summary>
        public const string Models = "VitModel.Models";
        /// <summary>The models lowered to descriptions.</summary>
        public const string Lowered = "VitModel.Lowered";
        /// <summary>The diagnostics branch.</summary>
        public const string Diagnostics = "VitModel.Diagnostics";
    }

    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var parsed = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                "ViTGen.VitModelAttribute",
                static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax, // records get a diagnostic
                static (syntaxContext, token) => VitModelParser.Parse(syntaxContext, token))
            .WithTrackingName(TrackingNames.Parse);

        var diagnostics = parsed.SelectMany(static (result, _) => result.Diagnostics).WithTrackingName(TrackingNames.Diagnostics);
        // Reported against the current compilation's trees (so pragmas apply); the combine re-runs only this cheap
        // step on edits, never the parser or the emitters.
        context.RegisterSourceOutput(diagnostics.Combine(context.CompilationProvider),
            static (output, pair) => output.ReportDiagnostic(pair.Left.ToDiagnostic(pair.Right)));

        var models = parsed
            .Where(static result => result.Model is not null)
            .Select(static (result, _) => result.Model!)
            .WithTrackingName(TrackingNames.Models);
        var lowered = models.Select(static (model, _) => ModelLowering.Lower(model)).WithTrackingName(TrackingNames.Lowered);
        context.RegisterSourceOutput(lowered, static (output, model) => output.AddSource(CpuModelEmitter.HintName(model.Spec), CpuModelEmitter.Emit(model)));
        context.RegisterSourceOutput(lowered, static (output, model) => output.AddSource(GpuPlanEmitter.HintName(model.Spec), GpuPlanEmitter.Emit(model)));
    }
}
