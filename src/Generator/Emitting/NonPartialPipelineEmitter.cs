using Compiled.Generator.Planning;

namespace Compiled.Generator.Emitting;

/// <summary>
/// For a <c>[Pipeline]</c> class declared without <c>partial</c> (CMPL0001): its <c>RunAsync</c> entry points as C# 14
/// extension members, which need no <c>partial</c>, so that a call such as <c>MyPipeline.RunAsync(args)</c> compiles
/// and CMPL0001 is the only error the user sees (not CS0117 beside it). They throw, naming the errors. Kept apart from
/// <see cref="PipelineEmitter"/>: it writes nothing into the pipeline type.
/// </summary>
internal static class NonPartialPipelineEmitter
{
    /// <summary>The stub file, or null when the pipeline is partial, nested, or the language has no extension members.</summary>
    public static (string HintName, string Source)? Emit(PipelinePlan plan, bool extensionMembers)
    {
        var model = plan.Model;
        if (!extensionMembers || !plan.NeedsExtensionStandIns)
        {
            return null;
        }

        var ids = plan.ErrorIds;
        var message = SourceWriter.Literal($"Pipeline '{model.PipelineName}' was not compiled because its declaration has errors ({ids}); fix them and rebuild.");
        var writer = new SourceWriter();
        TypeScopes.Begin(writer, model.Namespace, model.ContainingTypes);
        writer.Line($"/// <summary>Stand-ins for the entry points of '{model.TypeName}', which is not partial ({ids}).</summary>");
        writer.Line(Names.GeneratedCode);
        writer.Open($"internal static class __{model.TypeName}_CompiledStubs");
        writer.Open($"extension({model.FullName})");
        writer.Line("/// <summary>Not available: the pipeline's declaration has errors (" + ids + ").</summary>");
        writer.Line($"public static {Names.Task}<int> RunAsync(string[] args, {Names.CancellationToken} cancellationToken = default)");
        writer.Line($"    => throw new {Names.InvalidOperation}({message});");
        writer.Close();
        if (model.RuntimeAvailable)
        {
            writer.Line();
            writer.Open($"extension({model.FullName} pipeline)");
            writer.Line("/// <summary>Not available: the pipeline's declaration has errors (" + ids + ").</summary>");
            writer.Line($"public {Names.Task}<{Names.PipelineResult}> RunAsync({Names.PipelineOptions}? options = null, {Names.CancellationToken} cancellationToken = default)");
            writer.Line($"    => throw new {Names.InvalidOperation}({message});");
            writer.Close();
        }

        writer.Close();
        TypeScopes.End(writer, model.Namespace, model.ContainingTypes);
        return (TypeScopes.HintName(model.Namespace, model.ContainingTypes, model.TypeName, ".Stubs"), writer.ToString());
    }
}
