using Compiled.Generator.Emitting;
using Compiled.Generator.Model;
using Compiled.Generator.Parsing;
using Compiled.Generator.Planning;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Generator;

/// <summary>
/// The incremental generator. It only wires the stages: find pipelines and operator classes by attribute
/// (Parsing) into value models (Model), plan them (Planning), write code (Emitting). Diagnostics are reported by
/// <see cref="PipelineAnalyzer"/> from the same models, at the user's declarations; so the models cached here are taken
/// without locations (<see cref="Locations"/>), and an edit that only moves a declaration leaves every step and output
/// cached.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class PipelineGenerator : IIncrementalGenerator
{
    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var pipelines = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                KnownNames.PipelineAttribute,
                static (node, _) => node is ClassDeclarationSyntax,
                static (ctx, ct) => PipelineParser.Parse((INamedTypeSymbol)ctx.TargetSymbol, ctx.SemanticModel.Compilation, ct).WithoutLocations())
            .WithTrackingName(TrackingNames.PipelineModel);

        var plans = pipelines
            .Select(static (model, _) => PipelinePlanner.Plan(model))
            .WithTrackingName(TrackingNames.PipelinePlan);

        context.RegisterSourceOutput(plans, static (spc, plan) =>
        {
            if (PipelineEmitter.Emit(plan) is { } file)
            {
                spc.AddSource(file.HintName, file.Source);
            }
        });

        // A pipeline class without 'partial' gets its entry points as extension members (C# 14), so calls to them compile.
        var extensionMembers = context.ParseOptionsProvider
            .Select(static (options, _) => options is CSharpParseOptions csharp && (int)csharp.LanguageVersion >= 1400);
        context.RegisterSourceOutput(plans.Combine(extensionMembers), static (spc, pair) =>
        {
            if (NonPartialPipelineEmitter.Emit(pair.Left, pair.Right) is { } file)
            {
                spc.AddSource(file.HintName, file.Source);
            }
        });

        var operators = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                KnownNames.TransformAttribute,
                static (node, _) => node is TypeDeclarationSyntax,
                static (ctx, _) => OperatorClassParser.Parse((INamedTypeSymbol)ctx.TargetSymbol).WithoutLocations())
            .WithTrackingName(TrackingNames.OperatorModel);

        context.RegisterSourceOutput(operators, static (spc, model) =>
        {
            if (OperatorEmitter.Emit(model) is { } file)
            {
                spc.AddSource(file.HintName, file.Source);
            }
        });

        var records = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                KnownNames.RecordAttribute,
                static (node, _) => node is TypeDeclarationSyntax,
                static (ctx, _) => CodecParser.Parse((INamedTypeSymbol)ctx.TargetSymbol, ctx.SemanticModel.Compilation).WithoutLocations())
            .WithTrackingName(TrackingNames.CodecModel);

        context.RegisterSourceOutput(records, static (spc, model) =>
        {
            if (CodecEmitter.Emit(model) is { } file)
            {
                spc.AddSource(file.HintName, file.Source);
            }
        });
    }
}

/// <summary>Names of the tracked incremental steps, for the incrementality tests.</summary>
internal static class TrackingNames
{
    public const string PipelineModel = nameof(PipelineModel);
    public const string PipelinePlan = nameof(PipelinePlan);
    public const string OperatorModel = nameof(OperatorModel);
    public const string CodecModel = nameof(CodecModel);
}
