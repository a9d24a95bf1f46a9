using System.Collections.Generic;
using System.Linq;
using Compiled.Generator.Model;
using Compiled.Generator.Planning;

namespace Compiled.Generator.Emitting;

/// <summary>The job (<c>__CompiledJob</c>): binds the pipeline's connectors, and creates its segments and keyed stages.</summary>
internal static partial class PipelineEmitter
{
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
        if (plan.JoinSources is { } sides)
        {
            // Two record types, the inputs of a join: every source read as one stream, each record as the side it is.
            string Listed(IEnumerable<Model.StageModel> members) => string.Join(", ", members.Select(m => SourceWriter.Literal(m.MemberName)));
            string Accessed(IEnumerable<Model.StageModel> members) => string.Join(", ", members.Select(m => Access(model, m, "_root")));
            writer.Line($"protected override {Names.ISource}<{inputType}> GetSource() => global::Compiled.Runtime.CompilerServices.EitherSource.Create<{sides.LeftType.FullName}, {sides.RightType.FullName}>(");
            writer.Indent();
            writer.Line($"new string[] {{ {Listed(sides.Left)} }}, new {Names.ISource}<{sides.LeftType.FullName}>[] {{ {Accessed(sides.Left)} }}, {SchemaRef(sides.LeftSchema)},");
            writer.Line($"new string[] {{ {Listed(sides.Right)} }}, new {Names.ISource}<{sides.RightType.FullName}>[] {{ {Accessed(sides.Right)} }}, {SchemaRef(sides.RightSchema)});");
            writer.Unindent();
        }
        else if (plan.OtherSources.Count == 0)
        {
            writer.Line($"protected override {Names.ISource}<{inputType}> GetSource() => {Access(model, source, "_root")};");
        }
        else
        {
            // Several sources of one record type: read as one stream.
            var members = new[] { source }.Concat(plan.OtherSources.Items).ToList();
            var names = string.Join(", ", members.Select(m => SourceWriter.Literal(m.MemberName)));
            var accesses = string.Join(", ", members.Select(m => Access(model, m, "_root")));
            writer.Line($"protected override {Names.ISource}<{inputType}> GetSource() => new global::Compiled.Runtime.CompilerServices.UnionSource<{inputType}>(new string[] {{ {names} }}, new {Names.ISource}<{inputType}>[] {{ {accesses} }});");
        }
        writer.Line();
        writer.Line($"protected override {Names.RecordSchema}<{inputType}>? SourceSchema => {SchemaRef(plan.SourceSchema)};");
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
            writer.Line($"binder.Add<{type.FullName}>({SourceWriter.Number(stage.Index)}, {Access(model, stage.Stage, "_root")}, {SchemaRef(stage.Schema)}); // slot {SourceWriter.Number(stage.SinkSlot)}");
        }

        foreach (var window in plan.Chain.Where(s => s.LateSlot >= 0))
        {
            var late = window.Late!;
            var access = (late.IsStatic ? model.FullName : "_root") + "." + late.Name;
            writer.Line($"binder.Add<{late.RecordType.FullName}>({SourceWriter.Number(window.Index)}, {SourceWriter.Literal(late.Name)}, {access}, {SchemaRef(window.LateSchema)}); // slot {SourceWriter.Number(window.LateSlot)}: records too late for every window of '{window.Stage.MemberName}'");
        }

        writer.Close();
        writer.Line();
        writer.Open($"protected override {Names.FusedSegment}<{inputType}> CreateSegment({Names.PartitionContext} partition)");
        if (plan.Segments[0].Instances != SegmentInstances.Root)
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
        var windows = plan.Chain.Where(s => s.Stage.StartsLoop).ToList();
        if (windows.Count > 0)
        {
            EmitKeyedStages(writer, plan, windows);
        }

        writer.Close();
    }

    /// <summary>
    /// Opens a keyed stage's constructor arguments: the member, its name, whether its input has an event time, and where
    /// it sits (its key selector, itself as <paramref name="stageArgument"/>, the exchange's slot).
    /// </summary>
    private static void EmitStageArguments(SourceWriter writer, Model.PipelineModel model, PlannedStage stage, string stageArgument)
    {
        writer.Indent();
        writer.Line($"{Access(model, stage.Stage, "_root")},");
        writer.Line($"{SourceWriter.Literal(stage.Stage.MemberName)},");
        writer.Line($"hasEventTime: {(stage.Stage.EventTime is null ? "false" : "true")},");
        writer.Line($"keyByStage: {SourceWriter.Number(stage.Input)},");
        writer.Line($"{stageArgument}: {SourceWriter.Number(stage.Index)},");
        writer.Line($"exchangeSlot: {SourceWriter.Number(stage.ExchangeSlot)},");
    }

    /// <summary>
    /// The call of a window's key selector on a source record (<c>record</c>), when the selector reads the source's
    /// records directly and needs no per-partition object — a method (static, or of the root pipeline object) or a static
    /// operator; null otherwise.
    /// </summary>
    private static string? SourceKeyCall(PipelinePlan plan, PlannedStage window)
    {
        var keyBy = plan.Chain[window.Input];
        if (keyBy.Input != 0 || plan.JoinSources is not null)
        {
            return null;
        }

        var s = keyBy.Stage;
        return s.MemberKind == MemberKind.Method || s.Storage is OperatorStorage.None or OperatorStorage.StaticStruct
            ? Call(plan.Model, s, name: "", "record", instance: "_root")
            : null;
    }

    /// <summary>
    /// The keyed stages: for each window, the exchange in front of it and the loop after it, whose segments call the
    /// pipeline object the plan chose (<see cref="SegmentInstances"/>).
    /// </summary>
    private static void EmitKeyedStages(SourceWriter writer, PipelinePlan plan, List<PlannedStage> windows)
    {
        var model = plan.Model;
        writer.Line();
        writer.Open($"protected override {Names.KeyedStage}[] CreateKeyedStages()");
        writer.Line($"return new {Names.KeyedStage}[]");
        writer.Line("{");
        writer.Indent();
        foreach (var window in windows)
        {
            var input = window.Stage.InputType!.FullName;
            var segment = window.Segment;
            var pipelineObject = plan.Segments[segment].Instances switch
            {
                SegmentInstances.Root => "_root",
                SegmentInstances.OwnPerPartition => $"partition.Own(new {model.FullName}())",
                _ => $"partition.Index == 0 ? _root : partition.Own(new {model.FullName}())",
            };
            var factory = $"partition => new __Fused{SourceWriter.Number(segment)}({pipelineObject}, partition)";
            if (window.Stage.Async is { } call)
            {
                var s = window.Stage;
                var target = s.OperatorMethodIsStatic ? model.FullName : "pipeline";
                var arguments = call.TakesToken ? "record, cancellationToken" : "record";
                writer.Line($"// asynchronous transform '{s.MemberName}' reading '{plan.Chain[window.Input].Stage.MemberName}' partition by partition; segment {SourceWriter.Number(segment)} after it");
                writer.Line($"new {Names.AsyncStage}<{input}, {s.OutputType!.FullName}>(");
                writer.Indent();
                writer.Line($"{Names.AsyncSettings}.From({SourceWriter.Number(call.MaxInFlight)}, {SourceWriter.Number(call.TimeoutMilliseconds)}, {SourceWriter.Number(call.MaxAttempts)}, {SourceWriter.Number(call.RetryBackoffMilliseconds)}, {(call.Ordered ? "true" : "false")}{(call.Spread ? ", spread: true" : "")}),");
                writer.Line($"{SourceWriter.Literal(s.MemberName)},");
                writer.Line($"hasEventTime: {(s.EventTime is null ? "false" : "true")},");
                writer.Line($"inputStage: {SourceWriter.Number(window.Input)},");
                writer.Line($"asyncStage: {SourceWriter.Number(window.Index)},");
                writer.Line($"exchangeSlot: {SourceWriter.Number(window.ExchangeSlot)},");
                writer.Open("partition =>");
                writer.Line($"var pipeline = {pipelineObject};");
                writer.Line($"return {Names.AsyncPartition}.{(call.Flat ? "FlatMap" : "Map")}<{input}, {s.OutputType!.FullName}>(new __Fused{SourceWriter.Number(segment)}(pipeline, partition), (record, cancellationToken) => {target}.{s.OperatorMethod}({arguments}));");
                writer.Close("),");
                writer.Unindent();
                continue;
            }

            if (window.Stage.Join is { } join)
            {
                writer.Line($"// join '{window.Stage.MemberName}' behind the exchange of key selectors '{plan.Chain[window.Input].Stage.MemberName}' and '{plan.Chain[window.SecondInput].Stage.MemberName}'; segment {SourceWriter.Number(segment)} after it");
                writer.Line($"new {Names.JoinStage}<{join.Key.FullName}, {join.Left.FullName}, {join.Right.FullName}>(");
                writer.Indent();
                writer.Line($"{Access(model, window.Stage, "_root")},");
                writer.Line($"{SourceWriter.Literal(window.Stage.MemberName)},");
                writer.Line($"keyByStage: {SourceWriter.Number(window.Input)},");
                writer.Line($"joinStage: {SourceWriter.Number(window.Index)},");
                writer.Line($"exchangeSlot: {SourceWriter.Number(window.ExchangeSlot)},");
                writer.Line($"lateSlot: {SourceWriter.Number(window.LateSlot)},");
                writer.Line(factory + ",");
                writer.Line($"keyCodec: {join.KeyCodec ?? "null"},");
                writer.Line($"leftCodec: {join.LeftCodec ?? "null"},");
                if (join.RightChange is { } change)
                {
                    writer.Line($"rightCodec: {join.RightCodec ?? "null"},");
                    writer.Line($"change: static record => record.{change}),"); // a table join: what each change does to the row
                }
                else
                {
                    writer.Line($"rightCodec: {join.RightCodec ?? "null"}),");
                }
                writer.Unindent();
                continue;
            }

            if (window.Stage.Lookup is { } lookup)
            {
                writer.Line($"// lookup '{window.Stage.MemberName}' behind the exchange of key selector '{plan.Chain[window.Input].Stage.MemberName}'; segment {SourceWriter.Number(segment)} after it");
                writer.Line($"new {Names.LookupStage}<{lookup.Key.FullName}, {input}, {lookup.Row.FullName}>(");
                EmitStageArguments(writer, model, window, "lookupStage");
                writer.Line(factory + ",");
                writer.Line($"schema: {SchemaRef(window.Schema)}),");
                writer.Unindent();
                continue;
            }

            var w = window.Stage.Window!;
            writer.Line($"// window '{window.Stage.MemberName}' behind the exchange of key selector '{plan.Chain[window.Input].Stage.MemberName}'; segment {SourceWriter.Number(segment)} after it");
            writer.Line($"new {Names.KeyedStage}<{w.Key.FullName}, {input}, {w.Aggregator.FullName}, {w.Accumulator.FullName}, {w.Result.FullName}>(");
            EmitStageArguments(writer, model, window, "windowStage");
            writer.Line($"lateSlot: {SourceWriter.Number(window.LateSlot)},");
            writer.Line(factory + ",");
            writer.Line($"keyCodec: {w.KeyCodec ?? "null"},");
            if (SourceKeyCall(plan, window) is { } key)
            {
                // The [KeyBy] reads the source's records: a repartition hop can key them by it (issue 15).
                var keyBy = plan.Chain[window.Input];
                var time = keyBy.KeyEventTime is null ? "0L" : $"{Names.EventTimes}.Millis(record.{keyBy.KeyEventTime})";
                writer.Line($"accumulatorCodec: {w.AccumulatorCodec ?? "null"},");
                writer.Open("sourceKey: record =>");
                writer.Line($"var key = {key};");
                if (keyBy.KeyMayBeNull)
                {
                    writer.Line($"if (key is null) throw new global::System.ArgumentNullException({SourceWriter.Literal(keyBy.Stage.MemberName)}, \"The key selector returned null; records need a key.\");");
                }

                writer.Line($"return new {KeyedType(plan, keyBy)}(key, {time}, record);");
                writer.Close("),");
            }
            else
            {
                writer.Line($"accumulatorCodec: {w.AccumulatorCodec ?? "null"}),");
            }

            writer.Unindent();
        }

        writer.Unindent();
        writer.Line("};");
        writer.Close();
    }
}
