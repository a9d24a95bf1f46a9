using System.Collections.Generic;
using System.Linq;
using Compiled.Generator.Model;
using Compiled.Generator.Planning;

namespace Compiled.Generator.Emitting;

/// <summary>The segment classes: each fused loop, written as the user's graph of stages inside one <c>for</c> loop.</summary>
internal static partial class PipelineEmitter
{
    private static void EmitSegment(SourceWriter writer, PipelinePlan plan, SegmentPlan segment, string inputType)
    {
        var model = plan.Model;
        var stages = plan.Chain.Where(s => s.Segment == segment.Index && s.Index > segment.FirstStage).ToList();
        var usesPipeline = stages.Any(s => UsesPipelineLocal(s.Stage));

        // Asynchronous transforms this loop feeds: the loop ends there, writing each record into the transform's exchange.
        var entries = plan.Chain.Where(s => s.Stage.Shape == StageShape.Async && s.Input >= segment.FirstStage && s.Input <= segment.LastStage).ToList();
        var withEntries = stages.Concat(entries).ToList();
        var names = LocalNames(withEntries);
        foreach (var join in plan.Chain.Where(s => s.SecondInput >= 0 && names.ContainsKey(s.Input) && names.ContainsKey(s.SecondInput)))
        {
            names[join.SecondInput] = names[join.Input]; // both inputs of a join write into its one exchange: one output, one set of locals
        }

        var outputs = withEntries.Where(s => s.Stage.Shape is StageShape.ConnectorSink or StageShape.KeyBy or StageShape.Async).GroupBy(s => names[s.Index]).Select(g => g.First()).ToList();
        // A record that can write several outputs (a flatMap's copies, branches) is undone whole when one of them
        // fails: the marked loop notes each output's count as a record starts, and the error path sets it back.
        var undo = outputs.Count > 0 && withEntries.Any(s => s.Stage.Shape == StageShape.FlatMap || s.Readers.Count(r => r <= segment.LastStage && names.ContainsKey(r)) > 1);
        var className = "__Fused" + SourceWriter.Number(segment.Index);
        // progress.Begin(i) stands for the first stage, or for the stateless prefix (found by replay if it throws);
        // the stages after that mark themselves.
        var firstStage = stages.Count > 0 ? stages[0].Index : segment.FirstStage;
        var markedFrom = segment.MarkedFrom;
        var hasPrefix = markedFrom > firstStage;

        // After a lookup join, the fast loop reads each record's cached rows in place (no joined record written out).
        var first = plan.Chain[segment.FirstStage].Stage;
        var lookup = segment.HasFastPath ? first.Lookup : null;
        var left = first.InputType?.FullName;
        var lookupTypes = lookup is null ? null : $"{lookup.Key.FullName}, {left}, {lookup.Row.FullName}";

        writer.Line($"/// <summary>Segment {SourceWriter.Number(segment.Index)}: {Xml(Outline(plan, segment))}, fused into one loop ({Xml(segment.Reason)}).</summary>");
        writer.Line(Names.GeneratedCode);
        writer.Open($"private sealed class {className} : {Names.FusedSegment}<{inputType}>{(lookupTypes is null ? "" : $", {Names.LookupSegment}<{lookupTypes}>")}");

        // Fields: the pipeline object, operator objects, output ports, flatMap buffers.
        if (usesPipeline)
        {
            writer.Line($"private readonly {model.FullName} _pipeline;");
        }

        foreach (var stage in withEntries)
        {
            var name = names[stage.Index];
            var s = stage.Stage;
            if (s.Storage == OperatorStorage.Reference)
            {
                writer.Line($"private readonly {s.ComponentType!.FullName} _{name}Op;");
            }
            else if (s.Shape == StageShape.Async)
            {
                writer.Line($"private readonly {Names.RecordBuffer}<{AsyncEntryType(s)}> _{name}Out;");
            }
            else if (s.Shape == StageShape.ConnectorSink)
            {
                writer.Line($"private readonly {Names.RecordBuffer}<{s.InputType!.FullName}> _{name}Out;");
            }
            else if (s.Shape == StageShape.KeyBy && outputs.Contains(stage))
            {
                writer.Line($"private readonly {Names.RecordBuffer}<{KeyedType(plan, stage)}> _{name}Out;");
            }

            if (s.Shape == StageShape.FlatMap)
            {
                writer.Line($"private readonly {Names.RecordBuffer}<{s.OutputType!.FullName}> _{name}Emit = new();");
            }
        }

        if (undo)
        {
            foreach (var output in outputs)
            {
                writer.Line($"private int _{names[output.Index]}Mark; // the output's count when the marked loop's current record started");
            }
        }

        writer.Line();
        writer.Open($"public {className}({model.FullName} pipeline, {Names.PartitionContext} partition) : base(partition, {SourceWriter.Number(segment.Index)}, firstStage: {SourceWriter.Number(firstStage)}, markedFrom: {SourceWriter.Number(markedFrom)})");
        if (usesPipeline)
        {
            writer.Line("_pipeline = pipeline;");
        }

        foreach (var stage in withEntries)
        {
            var name = names[stage.Index];
            var s = stage.Stage;
            if (s.Storage == OperatorStorage.Reference)
            {
                writer.Line($"_{name}Op = {Access(model, s, "pipeline")};");
            }
            else if (s.Shape == StageShape.Async)
            {
                writer.Line($"_{name}Out = partition.Output<{AsyncEntryType(s)}>({SourceWriter.Number(stage.ExchangeSlot)}); // the records waiting for asynchronous transform '{s.MemberName}'");
            }
            else if (s.Shape == StageShape.ConnectorSink)
            {
                writer.Line($"_{name}Out = partition.Output<{s.InputType!.FullName}>({SourceWriter.Number(stage.SinkSlot)});");
            }
            else if (s.Shape == StageShape.KeyBy && outputs.Contains(stage))
            {
                writer.Line($"_{name}Out = partition.Output<{KeyedType(plan, stage)}>({SourceWriter.Number(stage.ExchangeSlot)}); // the exchange to {KindName(WindowOf(plan, stage).Shape)} '{WindowOf(plan, stage).MemberName}'");
            }
        }

        writer.Close();
        writer.Line();
        writer.Open($"protected override void Run({Names.ReadOnlySpan}<{inputType}> batch, ref {Names.SegmentProgress} progress)");
        EmitPrologue(writer, model, withEntries, outputs, names, usesPipeline);
        var reserved = OneWritePerRecord(withEntries, names);
        if (reserved)
        {
            EmitReserve(writer, outputs.Select(o => names[o.Index]), "batch.Length - progress.Record");
        }

        EmitMarks(writer, undo, outputs, names);
        writer.Open("for (var i = progress.Record; i < batch.Length; i++)");
        writer.Line(hasPrefix
            ? $"progress.Begin(i); // stateless stages {SourceWriter.Number(firstStage)}-{SourceWriter.Number(markedFrom - 1)}: found by replay if one throws"
            : $"progress.Begin(i); // at stage {SourceWriter.Number(firstStage)}");
        EmitMarks(writer, undo, outputs, names);
        writer.Line("var r0 = batch[i];");
        var loop = new LoopContext(plan, segment, names, firstStage, hasPrefix, Reserved: reserved);
        EmitReaders(writer, loop, plan.Chain[segment.FirstStage], "r0", tail: true);
        writer.Close(); // for
        writer.Close(); // Run
        if (undo)
        {
            writer.Line();
            writer.Open("protected override void UndoRecord()");
            writer.Line("// The failing record's outputs so far (a flatMap's earlier copies, another branch's) go too: it is dead-lettered whole.");
            foreach (var output in outputs)
            {
                var name = names[output.Index];
                writer.Line($"_{name}Out.SetCount(_{name}Mark);");
            }

            writer.Close();
        }

        if (hasPrefix)
        {
            writer.Line();
            EmitDiagnose(writer, plan, stages.Where(s => s.Index < markedFrom).ToList(), names, inputType);
        }

        if (segment.HasFastPath)
        {
            writer.Line();
            var fast = new FastLoop(plan, segment, withEntries, outputs, names, usesPipeline, firstStage);
            EmitFastPath(writer, fast, "protected override bool TryRunFast", $"{Names.ReadOnlySpan}<{inputType}> batch", "RunFast", "batch", [("for (var i = 0; i < batch.Length; i++)", "var r0 = batch[i];")]);
            if (lookup is not null)
            {
                writer.Line();
                EmitFastPath(
                    writer,
                    fast,
                    $"bool {Names.LookupSegment}<{lookupTypes}>.TryRunLookup",
                    $"{Names.ReadOnlySpan}<{Names.Keyed}<{lookup.Key.FullName}, {left}>> batch, in {Names.LookupMatches}<{left}, {lookup.Row.FullName}> matches",
                    "RunLookup",
                    "batch, matches",
                    [
                        ("for (var i = 0; i < batch.Length; i++)", "var rows = matches.Count(i); // the record's rows, or 1 alone (left-outer) or 0 when its key has none"),
                        ("for (var row = 0; row < rows; row++)", "var r0 = matches.Join(batch[i].Record, i, row);"),
                    ]);
            }

            EmitStateAccessors(writer, withEntries, names);
        }

        writer.Close(); // class
    }

    /// <summary>
    /// The loop without bookkeeping, for a segment whose every stage can run a batch again from its start: static and
    /// readonly operators (harmless to call again), mutable struct operators (written back only once the batch is
    /// done, so a failure leaves them as they were) and outputs (their counts set back). It runs first; if anything in
    /// the batch throws, the outputs are set back and the marked loop (<c>Run</c>) runs the batch again to find the
    /// record and stage and apply the error policy — bookkeeping paid only when a record fails.
    /// </summary>
    /// <remarks>
    /// <paramref name="method"/> declares the method that tries it, up to its <paramref name="parameters"/>;
    /// <paramref name="run"/> names the loop's method, which takes the same parameters, passed as
    /// <paramref name="arguments"/>; <paramref name="loops"/> opens the loop, each with its first line (the innermost
    /// one's sets <c>r0</c>, the record the first stage reads).
    /// </remarks>
    private static void EmitFastPath(SourceWriter writer, FastLoop fast, string method, string parameters, string run, string arguments, (string Open, string First)[] loops)
    {
        var (plan, segment, stages, outputStages, names, usesPipeline, firstStage) = fast;
        var outputs = outputStages.Select(s => names[s.Index]).ToList();
        writer.Open($"{method}({parameters})");
        foreach (var output in outputs)
        {
            writer.Line($"var {output}Start = _{output}Out.Count;");
        }

        var saved = SavedFields(stages, names);
        foreach (var (owner, accessor, local, field) in saved)
        {
            writer.Line($"var {local} = {accessor}({owner}); // '{field.Name}' of the {(owner == "_pipeline" ? "pipeline" : "operator")} object, set back if a record fails");
        }

        writer.Open("try");
        writer.Line($"{run}({arguments});");
        writer.Line("return true;");
        writer.Close();
        writer.Open("catch (global::System.Exception)");
        writer.Line(saved.Count == 0
            ? "// Some record failed: undo the batch's outputs; the marked loop runs it again and finds which."
            : "// Some record failed: undo the batch's outputs and the state saved above; the marked loop runs it again and finds which.");
        foreach (var output in outputs)
        {
            writer.Line($"_{output}Out.SetCount({output}Start);");
        }

        foreach (var (owner, accessor, local, _) in saved)
        {
            writer.Line($"{accessor}({owner}) = {local};");
        }

        writer.Line("return false;");
        writer.Close();
        writer.Close();
        writer.Line();
        writer.Line("[global::System.Runtime.CompilerServices.MethodImpl(global::System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] // the loop stays out of the caller's try");
        writer.Open($"private void {run}({parameters})");
        EmitPrologue(writer, plan.Model, stages, outputStages, names, usesPipeline);
        var reserved = loops.Length == 1 && OneWritePerRecord(stages, names); // the loop after a lookup can join a record with several rows
        if (reserved)
        {
            EmitReserve(writer, outputs, "batch.Length");
        }

        foreach (var (open, first) in loops)
        {
            writer.Open(open);
            writer.Line(first);
        }

        var loop = new LoopContext(plan, segment, names, firstStage, HasPrefix: false, Fast: true, Reserved: reserved);
        EmitReaders(writer, loop, plan.Chain[segment.FirstStage], "r0", tail: true);
        foreach (var _ in loops)
        {
            writer.Close(); // for
        }

        foreach (var stage in stages)
        {
            WriteBack(writer, stage.Stage, names[stage.Index]);
        }

        foreach (var output in outputs)
        {
            writer.Line($"{output}Out.SetCount({output}Count);");
        }

        writer.Close();
    }

    /// <summary>Notes each output's count (in the marked loop, where a record can write several): at the start of the batch and of each record.</summary>
    private static void EmitMarks(SourceWriter writer, bool undo, List<PlannedStage> outputs, Dictionary<int, string> names)
    {
        if (!undo)
        {
            return;
        }

        foreach (var output in outputs)
        {
            var name = names[output.Index];
            writer.Line($"_{name}Mark = {name}Count;");
        }
    }

    /// <summary>
    /// The fields the loop without bookkeeping saves before a batch: each mutable field of each operator object whose
    /// state can be set back, and each field of the pipeline object that the loop's pipeline methods write — each with
    /// the object that holds it, its accessor's name and the local that keeps it.
    /// </summary>
    private static List<(string Owner, string Accessor, string Local, SavedField Field)> SavedFields(List<PlannedStage> stages, Dictionary<int, string> names)
    {
        var saved = stages
            .Where(s => s.Stage.Storage == OperatorStorage.Reference && s.Stage.SavedState is { Count: > 0 })
            .SelectMany(s => s.Stage.SavedState!.Value.Select((field, k) => ($"_{names[s.Index]}Op", $"__{names[s.Index]}State{SourceWriter.Number(k)}", $"{names[s.Index]}Saved{SourceWriter.Number(k)}", field)))
            .ToList();
        // Each pipeline field that one of the loop's pipeline methods writes, once. A stage's locals take these names only
        // if its member's name is '__pipeline'.
        var pipeline = stages
            .Where(s => s.Stage.MemberKind == MemberKind.Method && !s.Stage.OperatorMethodIsStatic && s.Stage.SavedState is not null)
            .SelectMany(s => s.Stage.SavedState!.Value)
            .GroupBy(field => field.Name)
            .Select(g => g.First());
        saved.AddRange(pipeline.Select((field, k) => ("_pipeline", $"__pipelineState{SourceWriter.Number(k)}", $"__pipelineSaved{SourceWriter.Number(k)}", field)));

        return saved;
    }

    /// <summary>
    /// Declares a reference to each saved field (<see cref="SavedFields"/>): an <c>UnsafeAccessor</c> reaches a private
    /// field — an auto-property's backing field too — without reflection, and works under Native AOT and trimming.
    /// </summary>
    private static void EmitStateAccessors(SourceWriter writer, List<PlannedStage> stages, Dictionary<int, string> names)
    {
        foreach (var (_, accessor, _, field) in SavedFields(stages, names))
        {
            writer.Line();
            writer.Line($"[global::System.Runtime.CompilerServices.UnsafeAccessor(global::System.Runtime.CompilerServices.UnsafeAccessorKind.Field, Name = \"{field.Name}\")]");
            writer.Line($"private static extern ref {field.Type} {accessor}({field.DeclaringType} op);");
        }
    }

    /// <summary>What a segment's loops without bookkeeping share: its stages, outputs and local names.</summary>
    private sealed record FastLoop(PipelinePlan Plan, SegmentPlan Segment, List<PlannedStage> Stages, List<PlannedStage> Outputs, Dictionary<int, string> Names, bool UsesPipeline, int FirstStage);

    /// <summary>What the loop's stage emitters share; <paramref name="Fast"/>: the loop without bookkeeping.</summary>
    /// <remarks><paramref name="Reserved"/>: the outputs have room for the batch already (<see cref="EmitReserve"/>); writes skip the capacity check.</remarks>
    private sealed record LoopContext(PipelinePlan Plan, SegmentPlan Segment, Dictionary<int, string> Names, int FirstStage, bool HasPrefix, bool Fast = false, bool Reserved = false);

    /// <summary>
    /// Before a loop in which each record writes at most once to each output (no flatMap, one record per iteration):
    /// makes room in every output for <paramref name="records"/> more, so that the loop's writes need no capacity
    /// check. A call to <c>Grow</c> inside the loop, however rare, made the JIT keep the loop's index and the record's
    /// fields on the stack across the whole loop (a spill per value per record), which cost a loop writing records to
    /// a sink about half its speed.
    /// </summary>
    private static void EmitReserve(SourceWriter writer, IEnumerable<string> outputs, string records)
    {
        foreach (var name in outputs)
        {
            writer.Line($"while ({name}Items.Length - {name}Count < {records}) {name}Items = {name}Out.Grow({name}Count); // room for the batch: no call in the loop");
        }
    }

    /// <summary>
    /// Whether each record of the loop writes at most once to each output: no flatMap among its stages, and no output
    /// written by two stages (the two inputs of a join share one exchange; a stream joined with itself writes both).
    /// </summary>
    private static bool OneWritePerRecord(List<PlannedStage> stages, Dictionary<int, string> names)
        => !stages.Any(s => s.Stage.Shape == StageShape.FlatMap)
            && stages.Where(s => s.Stage.Shape is StageShape.ConnectorSink or StageShape.KeyBy or StageShape.Async)
                .GroupBy(s => names[s.Index]).All(g => g.Count() == 1);

    private static void EmitCapacityCheck(SourceWriter writer, LoopContext loop, string name)
    {
        if (!loop.Reserved)
        {
            writer.Line($"if ((uint){name}Count >= (uint){name}Items.Length) {name}Items = {name}Out.Grow({name}Count);");
        }
    }

    /// <summary>
    /// Emits the stages that read <paramref name="stage"/> within the loop, each passed <paramref name="value"/>. In
    /// tail position — nothing of the loop body runs after it — a filter may <c>continue</c>; a branch that another
    /// follows keeps its filters in blocks instead, so the next branch still sees the record.
    /// </summary>
    private static void EmitReaders(SourceWriter writer, LoopContext loop, PlannedStage stage, string value, bool tail)
    {
        var readers = stage.Readers.Where(r => r <= loop.Segment.LastStage || loop.Plan.Chain[r].Stage.Shape == StageShape.Async).ToList();
        for (var k = 0; k < readers.Count; k++)
        {
            if (readers.Count > 1)
            {
                writer.Line($"// branch {SourceWriter.Number(k + 1)} of {SourceWriter.Number(readers.Count)} reading {loop.Plan.Chain[stage.Index].Stage.MemberName}");
            }

            EmitStage(writer, loop, loop.Plan.Chain[readers[k]], value, tail && k == readers.Count - 1);
        }
    }

    private static void EmitStage(SourceWriter writer, LoopContext loop, PlannedStage stage, string current, bool tail)
    {
        var plan = loop.Plan;
        var model = plan.Model;
        var s = stage.Stage;
        var name = loop.Names[stage.Index];
        var next = "r" + SourceWriter.Number(stage.Index);
        var index = SourceWriter.Number(stage.Index);
        writer.Line($"// {index} {s.MemberName}: {Describe(s)}");
        if (!loop.Fast && s.Shape is not (StageShape.ConnectorSink or StageShape.Async) && (loop.HasPrefix ? stage.Index >= loop.Segment.MarkedFrom : stage.Index != loop.FirstStage))
        {
            writer.Line($"progress.Stage = {index};");
        }

        switch (s.Shape)
        {
            case StageShape.Map:
                writer.Line($"var {next} = {Call(model, s, name, current)};");
                WriteBack(writer, loop, s, name);
                EmitReaders(writer, loop, stage, next, tail);
                break;
            case StageShape.Filter:
                string condition;
                if (s.Storage == OperatorStorage.HoistedStruct)
                {
                    writer.Line($"var keep{index} = {Call(model, s, name, current)};");
                    WriteBack(writer, loop, s, name);
                    condition = $"keep{index}";
                }
                else
                {
                    condition = Call(model, s, name, current);
                }

                if (tail)
                {
                    writer.Line($"if (!{condition}) continue;");
                    EmitReaders(writer, loop, stage, current, tail: true);
                }
                else
                {
                    writer.Open($"if ({condition})");
                    EmitReaders(writer, loop, stage, current, tail: false);
                    writer.Close();
                }

                break;
            case StageShape.FlatMap:
                writer.Line($"{name}Emit.Reset();");
                writer.Line($"{Call(model, s, name, current, $"new {Names.Emitter}<{s.OutputType!.FullName}>({name}Emit)")};");
                WriteBack(writer, loop, s, name);
                writer.Open($"foreach (var {next} in {name}Emit.Span)");
                if (!loop.Fast && loop.HasPrefix && stage.Index < loop.Segment.MarkedFrom && loop.Segment.MarkedFrom <= loop.Segment.LastStage)
                {
                    writer.Line("progress.Stage = 0; // back in the stateless stages for the next emitted record");
                }

                EmitReaders(writer, loop, stage, next, tail: true); // the end of the foreach body: continue takes the next emitted record
                writer.Close();
                break;
            case StageShape.MethodSink:
                writer.Line($"{Call(model, s, name, current)};");
                WriteBack(writer, loop, s, name);
                EmitReaders(writer, loop, stage, current, tail);
                break;
            case StageShape.ConnectorSink:
                EmitCapacityCheck(writer, loop, name);
                writer.Line($"{name}Items[{name}Count++] = {current};");
                if (!loop.Fast)
                {
                    writer.Line($"{name}Out.SetCount({name}Count);");
                }

                EmitReaders(writer, loop, stage, current, tail);
                break;
            case StageShape.Async:
                var asyncTime = s.EventTime is null ? "0L" : $"{Names.EventTimes}.Millis({current}.{s.EventTime})";
                EmitCapacityCheck(writer, loop, name);
                writer.Line($"{name}Items[{name}Count++] = new {AsyncEntryType(s)}(0, {asyncTime}, {current});");
                if (!loop.Fast)
                {
                    writer.Line($"{name}Out.SetCount({name}Count);");
                }

                break;
            case StageShape.Source:
                // One side of a pipeline that reads two record types: this source's records, picked out of the stream of both.
                var isLeft = s.OutputType!.Identity == plan.JoinSources!.LeftType.Identity;
                var side = isLeft ? "Left" : "Right";
                if (tail)
                {
                    writer.Line($"if ({(isLeft ? "!" : "")}{current}.IsLeft) continue;");
                    writer.Line($"var {next} = {current}.{side};");
                    EmitReaders(writer, loop, stage, next, tail: true);
                }
                else
                {
                    writer.Open($"if ({(isLeft ? "" : "!")}{current}.IsLeft)");
                    writer.Line($"var {next} = {current}.{side};");
                    EmitReaders(writer, loop, stage, next, tail: false);
                    writer.Close();
                }

                break;
            case StageShape.KeyBy:
                var time = stage.KeyEventTime is null ? "0L" : $"{Names.EventTimes}.Millis({current}.{stage.KeyEventTime})";
                var keyed = WindowOf(plan, stage).Join is { } sides ? $"{Names.Either}<{sides.Left.FullName}, {sides.Right.FullName}>.{(stage.IsRightInput ? "FromRight" : "FromLeft")}({current})" : current;
                writer.Line($"var key{index} = {Call(model, s, name, current)};");
                if (stage.KeyMayBeNull)
                {
                    writer.Line($"if (key{index} is null) throw new global::System.ArgumentNullException({SourceWriter.Literal(s.MemberName)}, \"The key selector returned null; records need a key.\");");
                }

                EmitCapacityCheck(writer, loop, name);
                writer.Line($"{name}Items[{name}Count++] = new {KeyedType(plan, stage)}(key{index}, {time}, {keyed});");
                if (!loop.Fast)
                {
                    writer.Line($"{name}Out.SetCount({name}Count);");
                }

                break;
        }
    }

    /// <summary>The segment's stages as the user declared them, for the class summary: <c>A → B → (C → D | E)</c>.</summary>
    private static string Outline(PipelinePlan plan, SegmentPlan segment)
    {
        string From(int index)
        {
            var stage = plan.Chain[index];
            var readers = stage.Readers.Where(r => r <= segment.LastStage).ToList();
            return readers.Count switch
            {
                0 => stage.Stage.MemberName,
                1 => stage.Stage.MemberName + " → " + From(readers[0]),
                _ => stage.Stage.MemberName + " → (" + string.Join(" | ", readers.Select(From)) + ")",
            };
        }

        return From(segment.FirstStage);
    }

    /// <summary>Local and field names per stage: the member name in camelCase, made unique where overloads share a name.</summary>
    private static Dictionary<int, string> LocalNames(List<PlannedStage> stages)
    {
        var names = new Dictionary<int, string>();
        var used = new HashSet<string>();
        foreach (var stage in stages)
        {
            var name = SourceWriter.Camel(stage.Stage.MemberName);
            if (!used.Add(name))
            {
                name += SourceWriter.Number(stage.Index);
                used.Add(name);
            }

            names[stage.Index] = name;
        }

        return names;
    }

    /// <summary>Copies what the loop uses into locals, so the JIT keeps them in registers for the whole batch.</summary>
    private static void EmitPrologue(SourceWriter writer, PipelineModel model, List<PlannedStage> stages, List<PlannedStage> outputs, Dictionary<int, string> names, bool usesPipeline)
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

            if (outputs.Contains(stage))
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

    /// <summary>A struct operator's write-back after each call — in the marked loop; the fast loop writes back once, after the batch.</summary>
    private static void WriteBack(SourceWriter writer, LoopContext loop, StageModel stage, string name)
    {
        if (!loop.Fast)
        {
            WriteBack(writer, stage, name);
        }
    }

    private static void WriteBack(SourceWriter writer, StageModel stage, string name)
    {
        if (stage.Storage == OperatorStorage.HoistedStruct)
        {
            writer.Line($"pipeline.{stage.MemberName} = {name}Op;");
        }
    }

    private static string Describe(StageModel stage) => stage.Shape switch
    {
        StageShape.Map => $"map {stage.InputType!.DisplayName} -> {stage.OutputType!.DisplayName}",
        StageShape.Filter => $"filter {stage.InputType!.DisplayName}",
        StageShape.FlatMap => $"flatMap {stage.InputType!.DisplayName} -> {stage.OutputType!.DisplayName}*",
        StageShape.MethodSink => "sink (inline call)",
        StageShape.KeyBy => $"keyBy {stage.InputType!.DisplayName} -> hash exchange",
        StageShape.Async => $"async {stage.InputType!.DisplayName} -> {stage.OutputType!.DisplayName}: the loop ends here; the calls run outside it",
        StageShape.Source => $"the {stage.OutputType!.DisplayName} records of the stream",
        _ => "sink (output port)",
    };
}
