using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Linq;
using Compiled.Generator.Diagnostics;
using Compiled.Generator.Model;
using Compiled.Generator.Parsing;
using Compiled.Generator.Planning;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Compiled.Generator;

/// <summary>
/// Reports the CMPL diagnostics of pipelines and operator classes. It runs the same parser and planner as the
/// generator and reports at locations in the user's own syntax trees, so <c>#pragma warning disable</c> and
/// .editorconfig severities work, and the generator's cached models never hold a <see cref="Location"/>.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class PipelineAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => DiagnosticDescriptors.All;

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var trees = new ConcurrentDictionary<string, SyntaxTree>();
            foreach (var tree in start.Compilation.SyntaxTrees)
            {
                trees.TryAdd(tree.FilePath, tree);
            }

            start.RegisterSymbolAction(
                symbolContext =>
                {
                    var type = (INamedTypeSymbol)symbolContext.Symbol;
                    if ((Symbols.HasAttribute(type, KnownNames.PipelineAttribute) || Symbols.HasAttribute(type, KnownNames.RecordAttribute))
                        && type.Locations.FirstOrDefault(l => l.IsInSource) is { SourceTree.Options: CSharpParseOptions { LanguageVersion: < LanguageVersion.CSharp11 and var version } } at)
                    {
                        symbolContext.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.LanguageVersionTooOld, at, type.Name, version.ToDisplayString()));
                        return; // the compiler's own errors in the generated code say the rest
                    }

                    if (Symbols.HasAttribute(type, KnownNames.PipelineAttribute))
                    {
                        var plan = PipelinePlanner.Plan(PipelineParser.Parse(type, symbolContext.Compilation, symbolContext.CancellationToken));
                        Report(symbolContext, trees, plan.Diagnostics);
                    }

                    if (Symbols.HasAttribute(type, KnownNames.TransformAttribute))
                    {
                        Report(symbolContext, trees, OperatorClassParser.Parse(type).Diagnostics);
                    }

                    if (Symbols.HasAttribute(type, KnownNames.RecordAttribute))
                    {
                        Report(symbolContext, trees, CodecParser.Parse(type, symbolContext.Compilation).Diagnostics);
                    }
                },
                SymbolKind.NamedType);
            start.RegisterSyntaxNodeAction(ReportCodecOfUnmarkedType, SyntaxKind.QualifiedName, SyntaxKind.SimpleMemberAccessExpression);
        });
    }

    /// <summary>
    /// <c>T.JsonCodec</c> (or CsvCodec, BinaryCodec) where <c>T</c> is not a partial <c>[Record]</c> type: the compiler says
    /// only that the name does not exist; this says what to add.
    /// </summary>
    private static void ReportCodecOfUnmarkedType(SyntaxNodeAnalysisContext context)
    {
        var (left, right) = context.Node switch
        {
            QualifiedNameSyntax qualified => ((ExpressionSyntax)qualified.Left, qualified.Right),
            MemberAccessExpressionSyntax access => (access.Expression, access.Name),
            _ => (null!, null!),
        };
        var codec = right?.Identifier.ValueText;
        if (codec is not ("JsonCodec" or "CsvCodec" or "BinaryCodec") || context.SemanticModel.GetSymbolInfo(right!, context.CancellationToken).Symbol is not null)
        {
            return;
        }

        if (context.SemanticModel.GetSymbolInfo(left, context.CancellationToken).Symbol is not INamedTypeSymbol { TypeKind: TypeKind.Class or TypeKind.Struct } type
            || type.DeclaringSyntaxReferences.Length == 0)
        {
            return;
        }

        var marked = Symbols.HasAttribute(type, KnownNames.RecordAttribute);
        var partial = Symbols.IsPartial(type);
        if (marked && partial)
        {
            return; // the generator did write it; another error (in the record) explains why it is missing
        }

        var fix = (marked, partial) switch
        {
            (false, false) => "mark it [Record] and make it partial (codecs are generated into partial [Record] types)",
            (false, true) => "mark it [Record] (codecs are generated into partial [Record] types)",
            _ => "make it partial (the generator adds the codecs to the type's own declaration)",
        };
        context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.CodecOfUnmarkedType, right!.GetLocation(), type.Name, codec, fix));
    }

    private static void Report(SymbolAnalysisContext context, ConcurrentDictionary<string, SyntaxTree> trees, EquatableArray<DiagnosticInfo> diagnostics)
    {
        foreach (var info in diagnostics.Distinct())
        {
            var location = info.Location is { } where && trees.TryGetValue(where.FilePath, out var tree)
                ? Location.Create(tree, where.Span)
                : Location.None;
            context.ReportDiagnostic(Diagnostic.Create(info.Descriptor, location, info.Arguments.Items.Cast<object>().ToArray()));
        }
    }
}
