using Compiled.Generator.Planning;

namespace Compiled.Generator.Emitting;

/// <summary>
/// Writes the generated half of a pipeline class: its plan descriptor, the <c>RunAsync</c> entry points, the job that
/// binds its connectors, and one segment class per fused segment whose <c>Process</c> method is the chain as a loop
/// of direct calls. One partial file per output: this one the file and its entry points (or the stand-ins of a plan
/// with errors); <c>.Descriptor</c>, <c>.Job</c>, <c>.Segments</c> and <c>.Diagnose</c> the parts, <c>.Expressions</c>
/// the calls and names they share. Every decision is the plan's; these only write.
/// </summary>
internal static partial class PipelineEmitter
{
    /// <summary>The generated file for <paramref name="plan"/>, or null when no partial can be added (the type is not partial, or cannot host one).</summary>
    public static (string HintName, string Source)? Emit(PipelinePlan plan)
    {
        var model = plan.Model;
        if (!plan.CanHostPartial)
        {
            return null;
        }

        var writer = new SourceWriter();
        TypeScopes.Begin(writer, model.Namespace, model.ContainingTypes);
        if (plan.HasErrors)
        {
            EmitStub(writer, plan);
        }
        else
        {
            EmitPipeline(writer, plan);
        }

        TypeScopes.End(writer, model.Namespace, model.ContainingTypes);
        return (TypeScopes.HintName(model.Namespace, model.ContainingTypes, model.TypeName, ""), writer.ToString());
    }

    /// <summary>
    /// With errors in the declaration, the entry points still exist (so calls to them compile and only the CMPL
    /// diagnostics show) but throw, naming the problems.
    /// </summary>
    private static void EmitStub(SourceWriter writer, PipelinePlan plan)
    {
        var model = plan.Model;
        var ids = plan.ErrorIds;
        var message = SourceWriter.Literal($"Pipeline '{model.PipelineName}' was not compiled because its declaration has errors ({ids}); fix them and rebuild.");
        writer.Open("partial class " + model.TypeName);
        writer.Line("/// <summary>Not available: the pipeline's declaration has errors (" + ids + ").</summary>");
        writer.Line(Names.GeneratedCode);
        writer.Line($"public static {Names.Task}<int> RunAsync(string[] args, {Names.CancellationToken} cancellationToken = default)");
        writer.Line($"    => throw new {Names.InvalidOperation}({message});");
        if (model.RuntimeAvailable)
        {
            writer.Line();
            writer.Line("/// <summary>Not available: the pipeline's declaration has errors (" + ids + ").</summary>");
            writer.Line(Names.GeneratedCode);
            writer.Line($"public {Names.Task}<{Names.PipelineResult}> RunAsync({Names.PipelineOptions}? options = null, {Names.CancellationToken} cancellationToken = default)");
            writer.Line($"    => throw new {Names.InvalidOperation}({message});");
        }

        writer.Close();
    }

    private static void EmitPipeline(SourceWriter writer, PipelinePlan plan)
    {
        var model = plan.Model;
        var source = plan.Chain[0];
        var inputType = source.FlowType.FullName;
        writer.Open($"partial class {model.TypeName} : {Names.CompiledPipeline}");
        EmitDescriptor(writer, plan);
        writer.Line();
        if (model.HasParameterlessConstructor)
        {
            writer.Line("/// <summary>");
            writer.Line($"/// Runs pipeline '{Xml(model.PipelineName)}' as a command-line program: reads options from <paramref name=\"args\"/> (see <c>--help</c>),");
            writer.Line("/// runs until the source ends or Ctrl+C / SIGTERM asks it to stop, prints a summary, and returns the exit code.");
            writer.Line("/// </summary>");
            writer.Line(Names.GeneratedCode);
            writer.Line($"public static {Names.Task}<int> RunAsync(string[] args, {Names.CancellationToken} cancellationToken = default)");
            writer.Line($"    => {Names.PipelineHost}.RunAsync(new {model.TypeName}(), args, cancellationToken);");
            writer.Line();
        }

        writer.Line("/// <summary>");
        writer.Line("/// Runs this pipeline object to completion, or until <paramref name=\"cancellationToken\"/> asks it to stop (then sources stop,");
        writer.Line("/// in-flight batches drain and sinks are flushed). This object's source and sinks are the ones used, and it is partition 0's");
        writer.Line("/// operator instance; other partitions get their own objects.");
        writer.Line("/// </summary>");
        writer.Line(Names.GeneratedCode);
        writer.Line($"public {Names.Task}<{Names.PipelineResult}> RunAsync({Names.PipelineOptions}? options = null, {Names.CancellationToken} cancellationToken = default)");
        writer.Line($"    => new __CompiledJob(this).RunAsync(options ?? new {Names.PipelineOptions}(), cancellationToken, default);");
        writer.Line();
        writer.Line(Names.GeneratedCode);
        writer.Line($"{Names.IPipelineJob} {Names.CompiledPipeline}.CreateJob() => new __CompiledJob(this);");
        writer.Line();
        EmitJob(writer, plan, inputType);
        foreach (var segment in plan.Segments)
        {
            writer.Line();
            EmitSegment(writer, plan, segment, segment.Index == 0 ? inputType : plan.Chain[segment.FirstStage].FlowType.FullName);
        }

        foreach (var schema in model.Schemas)
        {
            writer.Line();
            SchemaEmitter.Emit(writer, schema);
        }

        writer.Close();
    }
}
