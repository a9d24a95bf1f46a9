using System.Collections.Generic;
using System.Linq;
using Compiled.Generator.Model;
using Compiled.Generator.Planning;

namespace Compiled.Generator.Emitting;

/// <summary>
/// Writes the generated half of a pipeline class: its plan descriptor, the <c>RunAsync</c> entry points, the job that
/// binds its connectors, and one segment class per fused segment whose <c>Process</c> method is the chain as a loop
/// of direct calls.
/// </summary>
internal static class PipelineEmitter
{
    /// <summary>The generated file for <paramref name="plan"/>, or null when no partial can be added (the type is not partial, or cannot host one).</summary>
    public static (string HintName, string Source)? Emit(PipelinePlan plan)
    {
        var model = plan.Model;
        if (!CanHostPartial(plan))
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

    private static bool CanHostPartial(PipelinePlan plan)
        => plan.Model.IsPartial && !plan.Diagnostics.Any(d => d.Id is "CMPL0001" or "CMPL0002");

    /// <summary>
    /// With errors in the declaration, the entry points still exist (so calls to them compile and only the CMPL
    /// diagnostics show) but throw, naming the problems.
    /// </summary>
    private static void EmitStub(SourceWriter writer, PipelinePlan plan)
    {
        var model = plan.Model;
        var ids = string.Join(", ", plan.Diagnostics.Select(d => d.Id).Distinct());
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

    private static void EmitDescriptor(SourceWriter writer, PipelinePlan plan)
    {
        var model = plan.Model;
        writer.Line($"/// <summary>The compiled plan of pipeline '{Xml(model.PipelineName)}': its stages, and the loops they were fused into.</summary>");
        writer.Line(Names.GeneratedCode);
        writer.Line($"public static {Names.Descriptor} CompiledPlan {{ get; }} = new {Names.Descriptor}(");
        writer.Indent();
        writer.Line(SourceWriter.Literal(model.PipelineName) + ",");
        writer.Line(SourceWriter.Literal(model.FullName.Replace("global::", "")) + ",");
        writer.Open($"new {Names.StageDescriptor}[]");
        foreach (var stage in plan.Chain)
        {
            var s = stage.Stage;
            var input = stage.Index == 0 ? "null" : SourceWriter.Literal(s.InputType!.DisplayName);
            writer.Line($"new {Names.StageDescriptor}({SourceWriter.Number(stage.Index)}, {SourceWriter.Literal(s.MemberName)}, {Names.StageKind}.{Kind(s.Shape)}, {input}, {SourceWriter.Literal(stage.FlowType.DisplayName)}, {SourceWriter.Literal(Implementation(s))}, {SourceWriter.Number(stage.Segment)}),");
        }

        writer.Close(",");
        writer.Open($"new {Names.SegmentDescriptor}[]");
        foreach (var segment in plan.Segments)
        {
            writer.Line($"new {Names.SegmentDescriptor}({SourceWriter.Number(segment.Index)}, {SourceWriter.Number(segment.FirstStage)}, {SourceWriter.Number(segment.LastStage)}, {SourceWriter.Literal(segment.Reason)}),");
        }

        writer.Close(",");
        writer.Line($"global::Compiled.ErrorPolicy.{model.ErrorPolicy});");
        writer.Unindent();
    }

    private static void EmitJob(SourceWriter writer, PipelinePlan plan, string inputType)
    {
        var model = plan.Model;
        var source = plan.Chain[0].Stage;
        writer.Line("/// <summary>Binds this pipeline's connectors and creates its fused segments for the runtime.</summary>");
        writer.Line(Names.GeneratedCode);
        writer.Open($"private sealed class __CompiledJob : {Names.PipelineJob}<{inputType}>");
        writer.Line($"private readonly {model.FullName} _root;");
        writer.Line();
        writer.Line($"public __CompiledJob({model.FullName} root) : base(CompiledPlan) => _root = root;");
        writer.Line();
        writer.Line($"protected override {Names.ISource}<{inputType}> GetSource() => {Access(model, source, "_root")};");
        writer.Line();
        writer.Line($"protected override {Names.RecordSchema}<{inputType}>? SourceSchema => {SchemaFor(model, plan.Chain[0].FlowType)};");
        writer.Line();
        if (model.DeadLetters is { } deadLetters)
        {
            writer.Line($"protected override global::Compiled.ISink<global::Compiled.DeadLetter>? DeadLetterSink => {(deadLetters.IsStatic ? model.FullName : "_root")}.{deadLetters.Name};");
            writer.Line();
        }

        writer.Open($"protected override void BindSinks({Names.SinkBinder} binder)");
        foreach (var stage in plan.Chain.Where(s => s.SinkSlot >= 0))
        {
            var type = stage.Stage.InputType!;
            writer.Line($"binder.Add<{type.FullName}>({SourceWriter.Number(stage.Index)}, {Access(model, stage.Stage, "_root")}, {SchemaFor(model, type)}); // slot {SourceWriter.Number(stage.SinkSlot)}");
        }

        var window = plan.Chain.FirstOrDefault(s => s.Stage.Shape == StageShape.Window);
        if (window is not null && model.LateData is { } late)
        {
            var access = (late.IsStatic ? model.FullName : "_root") + "." + late.Name;
            writer.Line($"binder.Add<{late.RecordType.FullName}>({SourceWriter.Number(window.Index)}, {SourceWriter.Literal(late.Name)}, {access}, {SchemaFor(model, late.RecordType)}); // slot {SourceWriter.Number(LateSlot(plan))}: records too late for every window");
        }

        writer.Close();
        writer.Line();
        writer.Open($"protected override {Names.FusedSegment}<{inputType}> CreateSegment({Names.PartitionContext} partition)");
        if (SideNeedsInstances(plan, 0))
        {
            writer.Line("// Operators with instance state: every partition gets its own pipeline object (partition 0 uses the root).");
            writer.Line($"var pipeline = partition.Index == 0 ? _root : partition.Own(new {model.FullName}());");
            writer.Line("return new __Fused0(pipeline, partition);");
        }
        else
        {
            writer.Line("return new __Fused0(_root, partition);");
        }

        writer.Close();
        if (window is not null)
        {
            EmitKeyedStage(writer, plan, window);
        }

        writer.Close();
    }

    /// <summary>Whether the stages of segment <paramref name="segment"/> need a pipeline object per partition.</summary>
    private static bool SideNeedsInstances(PipelinePlan plan, int segment)
        => plan.Chain.Any(s => s.Segment == segment && s.Stage.NeedsPipelineInstance);

    /// <summary>The output slot of the late-data sink (after the chain's sinks), or -1.</summary>
    private static int LateSlot(PipelinePlan plan)
        => plan.Model.LateData is null ? -1 : plan.Chain.Count(s => s.SinkSlot >= 0);

    /// <summary>The slot of the exchange's input port: after every sink.</summary>
    private static int ExchangeSlot(PipelinePlan plan)
        => plan.Chain.Count(s => s.SinkSlot >= 0) + (plan.Model.LateData is null ? 0 : 1);

    private static void EmitKeyedStage(SourceWriter writer, PipelinePlan plan, PlannedStage window)
    {
        var model = plan.Model;
        var w = window.Stage.Window!;
        var input = window.Stage.InputType!.FullName;
        writer.Line();
        writer.Open($"protected override {Names.KeyedStage}? CreateKeyedStage()");
        writer.Line($"return new {Names.KeyedStage}<{w.Key.FullName}, {input}, {w.Aggregator.FullName}, {w.Accumulator.FullName}, {w.Result.FullName}>(");
        writer.Indent();
        writer.Line($"{Access(model, window.Stage, "_root")},");
        writer.Line($"{SourceWriter.Literal(window.Stage.MemberName)},");
        writer.Line($"hasEventTime: {(window.Stage.EventTime is null ? "false" : "true")},");
        writer.Line($"keyByStage: {SourceWriter.Number(window.Index - 1)},");
        writer.Line($"lateSlot: {SourceWriter.Number(LateSlot(plan))},");
        // Upstream and keyed partition 0 run on different threads: only one of them may use the root object.
        writer.Line(!SideNeedsInstances(plan, 1)
            ? "partition => new __Fused1(_root, partition));"
            : SideNeedsInstances(plan, 0)
                ? $"partition => new __Fused1(partition.Own(new {model.FullName}()), partition)); // the root object serves the loop before the exchange"
                : $"partition => new __Fused1(partition.Index == 0 ? _root : partition.Own(new {model.FullName}()), partition));");
        writer.Unindent();
        writer.Close();
    }

    private static void EmitSegment(SourceWriter writer, PipelinePlan plan, SegmentPlan segment, string inputType)
    {
        var model = plan.Model;
        var stages = plan.Chain.Where(s => s.Segment == segment.Index && s.Index > 0 && s.Stage.Shape != StageShape.Window).ToList();
        var usesPipeline = stages.Any(s => UsesPipelineLocal(s.Stage));
        var names = stages.ToDictionary(s => s.Index, s => SourceWriter.Camel(s.Stage.MemberName));
        var className = "__Fused" + SourceWriter.Number(segment.Index);
        // progress.Begin(i) stands for the first stage, or for the stateless prefix (found by replay if it throws);
        // the stages after that mark themselves.
        var firstStage = stages.Count > 0 ? stages[0].Index : segment.FirstStage;
        var markedFrom = segment.MarkedFrom;
        var hasPrefix = markedFrom > firstStage;

        writer.Line($"/// <summary>Segment {SourceWriter.Number(segment.Index)}: {Xml(string.Join(" → ", plan.Chain.Where(s => s.Segment == segment.Index).Select(s => s.Stage.MemberName)))}, fused into one loop ({Xml(segment.Reason)}).</summary>");
        writer.Line(Names.GeneratedCode);
        writer.Open($"private sealed class {className} : {Names.FusedSegment}<{inputType}>");

        // Fields: the pipeline object, operator objects, output ports, flatMap buffers.
        if (usesPipeline)
        {
            writer.Line($"private readonly {model.FullName} _pipeline;");
        }

        foreach (var stage in stages)
        {
            var name = names[stage.Index];
            var s = stage.Stage;
            if (s.Storage == OperatorStorage.Reference)
            {
                writer.Line($"private readonly {s.ComponentType!.FullName} _{name}Op;");
            }
            else if (s.Shape == StageShape.ConnectorSink)
            {
                writer.Line($"private readonly {Names.RecordBuffer}<{s.InputType!.FullName}> _{name}Out;");
            }
            else if (s.Shape == StageShape.KeyBy)
            {
                writer.Line($"private readonly {Names.RecordBuffer}<{KeyedType(plan, stage)}> _{name}Out;");
            }

            if (s.Shape == StageShape.FlatMap)
            {
                writer.Line($"private readonly {Names.RecordBuffer}<{s.OutputType!.FullName}> _{name}Emit = new();");
            }
        }

        writer.Line();
        writer.Open($"public {className}({model.FullName} pipeline, {Names.PartitionContext} partition) : base(partition, {SourceWriter.Number(segment.Index)}, firstStage: {SourceWriter.Number(firstStage)}, markedFrom: {SourceWriter.Number(markedFrom)})");
        if (usesPipeline)
        {
            writer.Line("_pipeline = pipeline;");
        }

        foreach (var stage in stages)
        {
            var name = names[stage.Index];
            var s = stage.Stage;
            if (s.Storage == OperatorStorage.Reference)
            {
                writer.Line($"_{name}Op = {Access(model, s, "pipeline")};");
            }
            else if (s.Shape == StageShape.ConnectorSink)
            {
                writer.Line($"_{name}Out = partition.Output<{s.InputType!.FullName}>({SourceWriter.Number(stage.SinkSlot)});");
            }
            else if (s.Shape == StageShape.KeyBy)
            {
                writer.Line($"_{name}Out = partition.Output<{KeyedType(plan, stage)}>({SourceWriter.Number(ExchangeSlot(plan))}); // the exchange");
            }
        }

        writer.Close();
        writer.Line();
        writer.Open($"protected override void Run({Names.ReadOnlySpan}<{inputType}> batch, ref {Names.SegmentProgress} progress)");
        EmitPrologue(writer, model, stages, names, usesPipeline);
        writer.Open("for (var i = progress.Record; i < batch.Length; i++)");
        writer.Line(hasPrefix
            ? $"progress.Begin(i); // stateless stages {SourceWriter.Number(firstStage)}-{SourceWriter.Number(markedFrom - 1)}: found by replay if one throws"
            : $"progress.Begin(i); // at stage {SourceWriter.Number(firstStage)}");
        writer.Line("var r0 = batch[i];");
        var openLoops = 0;
        var current = "r0";
        foreach (var stage in stages)
        {
            var s = stage.Stage;
            var name = names[stage.Index];
            var next = "r" + SourceWriter.Number(stage.Index);
            var index = SourceWriter.Number(stage.Index);
            writer.Line($"// {index} {s.MemberName}: {Describe(s)}");
            if (s.Shape != StageShape.ConnectorSink && (hasPrefix ? stage.Index >= markedFrom : stage.Index != firstStage))
            {
                writer.Line($"progress.Stage = {index};");
            }

            switch (s.Shape)
            {
                case StageShape.Map:
                    writer.Line($"var {next} = {Call(model, s, name, current)};");
                    WriteBack(writer, s, name);
                    current = next;
                    break;
                case StageShape.Filter when s.Storage == OperatorStorage.HoistedStruct:
                    writer.Line($"var keep{index} = {Call(model, s, name, current)};");
                    WriteBack(writer, s, name);
                    writer.Line($"if (!keep{index}) continue;");
                    break;
                case StageShape.Filter:
                    writer.Line($"if (!{Call(model, s, name, current)}) continue;");
                    break;
                case StageShape.FlatMap:
                    writer.Line($"{name}Emit.Reset();");
                    writer.Line($"{Call(model, s, name, current, $"new {Names.Emitter}<{s.OutputType!.FullName}>({name}Emit)")};");
                    WriteBack(writer, s, name);
                    writer.Open($"foreach (var {next} in {name}Emit.Span)");
                    if (hasPrefix && stage.Index < markedFrom && markedFrom <= segment.LastStage)
                    {
                        writer.Line("progress.Stage = 0; // back in the stateless stages for the next emitted record");
                    }

                    openLoops++;
                    current = next;
                    break;
                case StageShape.MethodSink:
                    writer.Line($"{Call(model, s, name, current)};");
                    WriteBack(writer, s, name);
                    break;
                case StageShape.ConnectorSink:
                    writer.Line($"if ((uint){name}Count >= (uint){name}Items.Length) {name}Items = {name}Out.Grow({name}Count);");
                    writer.Line($"{name}Items[{name}Count++] = {current};");
                    writer.Line($"{name}Out.SetCount({name}Count);");
                    break;
                case StageShape.KeyBy:
                    var eventTime = plan.Chain[stage.Index + 1].Stage.EventTime;
                    var time = eventTime is null ? "0L" : $"{Names.EventTimes}.Millis({current}.{eventTime})";
                    writer.Line($"var key{index} = {Call(model, s, name, current)};");
                    if (KeyMayBeNull(plan, stage))
                    {
                        writer.Line($"if (key{index} is null) throw new global::System.ArgumentNullException({SourceWriter.Literal(s.MemberName)}, \"The key selector returned null; records need a key.\");");
                    }

                    writer.Line($"if ((uint){name}Count >= (uint){name}Items.Length) {name}Items = {name}Out.Grow({name}Count);");
                    writer.Line($"{name}Items[{name}Count++] = new {KeyedType(plan, stage)}(key{index}, {time}, {current});");
                    writer.Line($"{name}Out.SetCount({name}Count);");
                    break;
            }
        }

        for (var i = 0; i < openLoops; i++)
        {
            writer.Close();
        }

        writer.Close(); // for
        writer.Close(); // Run
        if (hasPrefix)
        {
            writer.Line();
            EmitDiagnose(writer, plan, stages.Where(s => s.Index < markedFrom).ToList(), names, inputType);
        }

        writer.Close(); // class
    }

    /// <summary>
    /// Replays one failed record through the stateless prefix, each stage under watch, and returns the index of the
    /// stage that throws (or -1). Cold code: it runs only after a failure.
    /// </summary>
    private static void EmitDiagnose(SourceWriter writer, PipelinePlan plan, List<PlannedStage> prefix, Dictionary<int, string> names, string inputType)
    {
        var model = plan.Model;
        writer.Open($"protected override int Diagnose({inputType} r0)");
        if (prefix.Any(s => UsesPipelineLocal(s.Stage)))
        {
            writer.Line("var pipeline = _pipeline;");
        }

        foreach (var stage in prefix.Where(s => s.Stage.Storage == OperatorStorage.ReadOnlyStruct))
        {
            writer.Line($"var {names[stage.Index]}Op = {Access(model, stage.Stage, "pipeline")};");
        }

        foreach (var stage in prefix.Where(s => s.Stage.Storage == OperatorStorage.Reference))
        {
            writer.Line($"var {names[stage.Index]}Op = _{names[stage.Index]}Op;");
        }

        writer.Line("var stage = 0;");
        writer.Open("try");
        writer.Open("do");
        var openLoops = 0;
        var current = "r0";
        foreach (var stage in prefix)
        {
            var s = stage.Stage;
            var name = names[stage.Index];
            var next = "r" + SourceWriter.Number(stage.Index);
            var index = SourceWriter.Number(stage.Index);
            switch (s.Shape)
            {
                case StageShape.Map:
                    writer.Line($"stage = {index};");
                    writer.Line($"var {next} = {Call(model, s, name, current)};");
                    current = next;
                    break;
                case StageShape.Filter:
                    writer.Line($"stage = {index};");
                    writer.Line($"if (!{Call(model, s, name, current)}) continue;");
                    break;
                case StageShape.KeyBy:
                    writer.Line($"stage = {index};");
                    writer.Line(KeyMayBeNull(plan, stage)
                        ? $"if ({Call(model, s, name, current)} is null) throw new global::System.ArgumentNullException({SourceWriter.Literal(s.MemberName)});"
                        : $"_ = {Call(model, s, name, current)};");
                    break;
                case StageShape.FlatMap:
                    writer.Line($"stage = {index};");
                    writer.Line($"var {name}Replay = new {Names.RecordBuffer}<{s.OutputType!.FullName}>();");
                    writer.Line($"{Call(model, s, name, current, $"new {Names.Emitter}<{s.OutputType!.FullName}>({name}Replay)")};");
                    writer.Open($"foreach (var {next} in {name}Replay.Span)");
                    openLoops++;
                    current = next;
                    break;
            }
        }

        for (var i = 0; i < openLoops; i++)
        {
            writer.Close();
        }

        writer.Close(" while (false);");
        writer.Line("return -1;");
        writer.Close();
        writer.Open($"catch ({Names.Exception})");
        writer.Line("return stage;");
        writer.Close();
        writer.Close();
    }

    /// <summary>Copies what the loop uses into locals, so the JIT keeps them in registers for the whole batch.</summary>
    private static void EmitPrologue(SourceWriter writer, PipelineModel model, List<PlannedStage> stages, Dictionary<int, string> names, bool usesPipeline)
    {
        if (usesPipeline)
        {
            writer.Line("var pipeline = _pipeline;");
        }

        foreach (var stage in stages)
        {
            var name = names[stage.Index];
            var s = stage.Stage;
            switch (s.Storage)
            {
                case OperatorStorage.Reference:
                    writer.Line($"var {name}Op = _{name}Op;");
                    break;
                case OperatorStorage.HoistedStruct:
                    writer.Line($"var {name}Op = pipeline.{s.MemberName}; // a struct: its state stays in registers, written back after each call");
                    break;
                case OperatorStorage.ReadOnlyStruct:
                    writer.Line($"var {name}Op = {Access(model, s, "pipeline")};");
                    break;
            }

            if (s.Shape is StageShape.ConnectorSink or StageShape.KeyBy)
            {
                writer.Line($"var {name}Out = _{name}Out;");
                writer.Line($"var {name}Items = {name}Out.Items;");
                writer.Line($"var {name}Count = {name}Out.Count;");
            }

            if (s.Shape == StageShape.FlatMap)
            {
                writer.Line($"var {name}Emit = _{name}Emit;");
            }
        }
    }

    /// <summary><c>Keyed&lt;TKey, TIn&gt;</c> for a key selector: the key and input types of the window after it.</summary>
    private static string KeyedType(PipelinePlan plan, PlannedStage keyBy)
    {
        var window = plan.Chain[keyBy.Index + 1].Stage;
        return $"{Names.Keyed}<{window.Window!.Key.FullName}, {window.InputType!.FullName}>";
    }

    /// <summary>Whether a key selector can return null (a reference or nullable key): keyed state cannot hold a null key.</summary>
    private static bool KeyMayBeNull(PipelinePlan plan, PlannedStage keyBy)
    {
        var key = plan.Chain[keyBy.Index + 1].Stage.Window!.Key;
        return !key.IsValueType || key.Identity.StartsWith("System.Nullable<", System.StringComparison.Ordinal) || key.FullName.EndsWith("?", System.StringComparison.Ordinal);
    }

    private static void WriteBack(SourceWriter writer, StageModel stage, string name)
    {
        if (stage.Storage == OperatorStorage.HoistedStruct)
        {
            writer.Line($"pipeline.{stage.MemberName} = {name}Op;");
        }
    }

    private static bool UsesPipelineLocal(StageModel stage)
        => stage.NeedsPipelineInstance && (stage.MemberKind == MemberKind.Method || stage.Storage is OperatorStorage.HoistedStruct or OperatorStorage.ReadOnlyStruct);

    /// <summary>The call expression of a stage's operator on <paramref name="argument"/>.</summary>
    private static string Call(PipelineModel model, StageModel stage, string name, string argument, string? extra = null)
    {
        var arguments = extra is null ? argument : argument + ", " + extra;
        if (stage.MemberKind == MemberKind.Method)
        {
            var target = stage.OperatorMethodIsStatic ? model.FullName : "pipeline";
            return $"{target}.{stage.OperatorMethod}({arguments})";
        }

        var receiver = stage.Storage switch
        {
            OperatorStorage.None => stage.ComponentType!.Identity,
            OperatorStorage.StaticStruct => model.FullName + "." + stage.MemberName,
            _ => name + "Op",
        };
        return $"{receiver}.{stage.OperatorMethod}({arguments})";
    }

    /// <summary>How to read a property/field stage: statically on the type, or on a pipeline object.</summary>
    private static string Access(PipelineModel model, StageModel stage, string instance)
        => (stage.IsStatic ? model.FullName : instance) + "." + stage.MemberName;

    private static string SchemaFor(PipelineModel model, TypeRef type)
    {
        var schema = model.Schemas.FirstOrDefault(s => s.TypeFullName == type.Identity || s.TypeFullName == type.FullName);
        return schema is null ? "null" : SchemaEmitter.ClassName(schema) + ".Instance";
    }

    private static string Kind(StageShape shape) => shape switch
    {
        StageShape.Source => "Source",
        StageShape.Map => "Map",
        StageShape.Filter => "Filter",
        StageShape.FlatMap => "FlatMap",
        StageShape.KeyBy => "KeyBy",
        StageShape.Window => "Window",
        _ => "Sink",
    };

    private static string Describe(StageModel stage) => stage.Shape switch
    {
        StageShape.Map => $"map {stage.InputType!.DisplayName} -> {stage.OutputType!.DisplayName}",
        StageShape.Filter => $"filter {stage.InputType!.DisplayName}",
        StageShape.FlatMap => $"flatMap {stage.InputType!.DisplayName} -> {stage.OutputType!.DisplayName}*",
        StageShape.MethodSink => "sink (inline call)",
        StageShape.KeyBy => $"keyBy {stage.InputType!.DisplayName} -> hash exchange",
        _ => "sink (output port)",
    };

    private static string Implementation(StageModel stage)
    {
        if (stage.MemberKind == MemberKind.Method)
        {
            return stage.OperatorMethod!;
        }

        return stage.OperatorMethod is null
            ? stage.ComponentType!.DisplayName
            : stage.ComponentType!.DisplayName + "." + stage.OperatorMethod;
    }

    private static string Xml(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
