using System.Collections.Generic;
using System.Linq;
using Compiled.Generator.Diagnostics;
using Compiled.Generator.Model;

namespace Compiled.Generator.Planning;

/// <summary>
/// Turns a pipeline model into a plan: resolves which stage each stage reads from (the one declared above it, or the
/// one its attribute names), validates the graph (one source, types that line up, no cycles, every branch ends in a
/// sink, key selectors feed their windows) and cuts it into fused loops. Pure: no Roslyn, so it is unit-tested directly.
/// </summary>
/// <remarks>
/// Every stage reads from exactly one other, so the graph is a tree rooted at the source. Loops are cut only where an
/// exchange must move records between partitions: a <c>[KeyBy]</c> ends its loop and the <c>[Window]</c> after it starts
/// one. Fan-out (several stages reading one) stays inside the loop: the record is passed to each branch in turn.
/// </remarks>
internal static class PipelinePlanner
{
    /// <summary>
    /// Why a whole chain fuses into one loop: every edge from the source to the last sink is forward, one-input and
    /// at the same parallelism (Flink's chaining rule), and no stage is asynchronous or re-keys the stream.
    /// </summary>
    public const string FusedReason = "all edges forward, one input, same parallelism";

    private const int NoInput = -1;
    private const int BrokenInput = -2;

    public static PipelinePlan Plan(PipelineModel model)
    {
        var diagnostics = new List<DiagnosticInfo>(model.Diagnostics);
        var join = FindJoin(model, diagnostics);
        var sides = join >= 0 ? Sides(model, join) : null;
        if (sides is not null)
        {
            // Two record types, the inputs of a join: one stream of both (Either<TLeft, TRight>) is the root, and each
            // side's first source reads its records out of it.
            var root = model.Stages[sides.Left[0]] with
            {
                Order = model.Stages.Count,
                MemberName = $"({string.Join(", ", sides.Left.Concat(sides.Right).OrderBy(i => i).Select(i => model.Stages[i].MemberName))})",
                ComponentType = model.Stages[join].InputType,
                OutputType = model.Stages[join].InputType,
                InputName = null,
            };
            model = model with { Stages = model.Stages.Items.Append(root).ToEquatableArray() };
        }

        var stages = model.Stages.Items;
        var (source, others) = sides is null ? FindSources(model, diagnostics) : (stages.Length - 1, new List<int>());
        var inputs = ResolveInputs(model, source, others, diagnostics);
        var secondInputs = new int[stages.Length];
        for (var i = 0; i < stages.Length; i++)
        {
            secondInputs[i] = NoInput;
        }

        if (sides is not null)
        {
            ResolveSides(model, sides, join, inputs, secondInputs);
        }

        var readers = Readers(inputs);
        if (sides is not null && secondInputs[join] >= 0)
        {
            readers[secondInputs[join]].Add(join);
        }

        CheckKeyBy(model, inputs, secondInputs, readers, diagnostics);

        // The tree below the source, with its types checked; a stage is placed only when every stage above it is.
        var flows = new TypeRef?[stages.Length];
        var placed = new bool[stages.Length];
        var reached = new bool[stages.Length];
        if (source >= 0)
        {
            Walk(model, source, readers, secondInputs, flows, placed, reached, diagnostics);
        }

        foreach (var other in others)
        {
            reached[other] = true; // read as part of the first source's stage
        }

        ReportUnreached(model, source, inputs, reached, diagnostics);
        CheckBranchEnds(model, source, inputs, readers, reached, diagnostics);

        var needsInstances = Enumerable.Range(0, stages.Length).Any(i => placed[i] && stages[i].NeedsPipelineInstance);
        if (needsInstances && !model.HasParameterlessConstructor)
        {
            var names = string.Join("', '", Enumerable.Range(0, stages.Length).Where(i => placed[i] && stages[i].NeedsPipelineInstance).Select(i => stages[i].MemberName));
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NeedsParameterlessConstructor, model.Location, model.TypeName, names));
        }

        var (chain, segments) = source >= 0 && placed[source]
            ? Layout(model, source, inputs, secondInputs, readers, flows, placed)
            : (new List<PlannedStage>(), new List<SegmentPlan>());
        if (sides is not null && chain.FirstOrDefault(s => s.Stage.Shape == StageShape.Join) is { } planned
            && (chain[planned.Input].Segment != 0 || chain[planned.SecondInput].Segment != 0))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidJoin, stages[join].Location, stages[join].MemberName, "must read key selectors in the loop of the sources: no window, lookup or asynchronous transform may stand between a source and the join"));
        }

        var joinSources = sides is null
            ? null
            : new JoinSources(sides.Left.Select(i => stages[i]).ToEquatableArray(), sides.Right.Select(i => stages[i]).ToEquatableArray(), stages[join].Join!.Left, stages[join].Join!.Right, SchemaOf(model, stages[join].Join!.Left), SchemaOf(model, stages[join].Join!.Right));
        DecideStages(model, chain);
        DecideSegments(chain, segments);
        return new PipelinePlan(model, chain.ToEquatableArray(), segments.ToEquatableArray(), needsInstances, diagnostics.ToEquatableArray(), others.Select(o => stages[o]).ToEquatableArray(), joinSources);
    }

    /// <summary>
    /// What each placed stage needs beyond its place in the graph, so the emitter only writes: the schemas of the records
    /// it exchanges with connectors, its late-data output, and for a key selector what it writes beside each record (the
    /// key, checked for null when it can be null; the event time of the window's or the join side's records).
    /// </summary>
    private static void DecideStages(PipelineModel model, List<PlannedStage> chain)
    {
        for (var i = 0; i < chain.Count; i++)
        {
            var planned = chain[i];
            var stage = planned.Stage;
            var schema = planned.Index == 0 ? SchemaOf(model, planned.FlowType)
                : stage.Shape == StageShape.ConnectorSink ? SchemaOf(model, stage.InputType)
                : stage.Lookup is { } lookup ? SchemaOf(model, lookup.Row)
                : null;
            var late = planned.LateSlot >= 0 ? model.LateData.FirstOrDefault(l => l.Window == stage.MemberName) : null;
            planned = planned with { Schema = schema, Late = late, LateSchema = late is null ? null : SchemaOf(model, late.RecordType) };
            if (stage.Shape == StageShape.KeyBy && planned.Readers.Count > 0)
            {
                var target = chain[planned.Readers[0]];
                var isRight = target.SecondInput == planned.Index;
                planned = planned with
                {
                    KeyMayBeNull = target.Stage.Key?.CanBeNull ?? false,
                    IsRightInput = isRight,
                    KeyEventTime = target.Stage.Join is { } join ? (isRight ? join.RightTime : join.LeftTime) : target.Stage.EventTime,
                };
            }

            chain[i] = planned;
        }
    }

    /// <summary>
    /// Which pipeline object each segment's stages call — loops run on different workers, so the root object serves one
    /// (segment, partition) only: partition 0 of the first segment with instance state — and which segments also get
    /// the loop without bookkeeping.
    /// </summary>
    private static void DecideSegments(List<PlannedStage> chain, List<SegmentPlan> segments)
    {
        bool NeedsInstances(int segment) => chain.Any(s => s.Segment == segment && s.Stage.NeedsPipelineInstance);
        for (var k = 0; k < segments.Count; k++)
        {
            var segment = segments[k];
            var stages = chain.Where(s => s.Segment == segment.Index && s.Index > segment.FirstStage).ToList();
            segments[k] = segment with
            {
                Instances = !NeedsInstances(segment.Index) ? SegmentInstances.Root
                    : Enumerable.Range(0, segment.Index).Any(NeedsInstances) ? SegmentInstances.OwnPerPartition
                    : SegmentInstances.RootForPartitionZero,
                HasFastPath = stages.Count > 0 && stages.All(s => IsReplaySafe(s.Stage) || CanBeSetBack(s.Stage)),
            };
        }
    }

    /// <summary>The identifier of the generated schema of <paramref name="type"/>'s records, matched by identity (annotations aside), or null.</summary>
    private static string? SchemaOf(PipelineModel model, TypeRef? type)
        => type is null ? null : model.Schemas.FirstOrDefault(s => s.TypeIdentity == type.Identity)?.Identifier;

    /// <summary>
    /// Whether a <c>[Join]</c> declaration was found wrong: its diagnostic says what the pipeline needs, so the
    /// second record type and the key selectors meant for the join are not reported again.
    /// </summary>
    private static bool JoinDiagnosed(List<DiagnosticInfo> diagnostics) => diagnostics.Any(d => d.Descriptor == DiagnosticDescriptors.InvalidJoin || d.Descriptor == DiagnosticDescriptors.JoinKeyMismatch || d.Descriptor == DiagnosticDescriptors.JoinWithoutEventTime);

    /// <summary>The declaration indexes of the sources of each side of a join, in declaration order.</summary>
    private sealed record SideIndexes(List<int> Left, List<int> Right);

    /// <summary>
    /// The declaration index of the pipeline's join of two streams when its sources produce exactly the join's two
    /// record types (both present), else -1. A second join is CMPL0146.
    /// </summary>
    private static int FindJoin(PipelineModel model, List<DiagnosticInfo> diagnostics)
    {
        var stages = model.Stages.Items;
        var found = -1;
        for (var i = 0; i < stages.Length; i++)
        {
            if (stages[i].Shape != StageShape.Join)
            {
                continue;
            }

            if (found >= 0)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidJoin, stages[i].Location, stages[i].MemberName, $"is a second join of two streams; a pipeline has one ('{stages[found].MemberName}'): join the others in pipelines of their own"));
                continue;
            }

            found = i;
        }

        if (found < 0)
        {
            return -1;
        }

        var sides = Sides(model, found);
        var spec = stages[found].Join!;
        if (sides.Left.Count == 0 || sides.Right.Count == 0)
        {
            var missing = sides.Left.Count == 0 ? spec.Left : spec.Right;
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidJoin, stages[found].Location, stages[found].MemberName, $"joins '{spec.Left.DisplayName}' and '{spec.Right.DisplayName}' records, but no [Source] of the pipeline produces '{missing.DisplayName}'"));
            return -1;
        }

        return sides.Left.Count + sides.Right.Count == stages.Count(s => s.Role == StageRole.Source) ? found : -1; // a third record type: CMPL0102
    }

    /// <summary>The sources of each side of join <paramref name="join"/>: those producing its left and its right record type.</summary>
    private static SideIndexes Sides(PipelineModel model, int join)
    {
        var stages = model.Stages.Items;
        var spec = stages[join].Join!;
        var sides = new SideIndexes([], []);
        for (var i = 0; i < stages.Length; i++)
        {
            if (stages[i].Role == StageRole.Source && stages[i].OutputType is { } type)
            {
                if (type.Identity == spec.Left.Identity)
                {
                    sides.Left.Add(i);
                }
                else if (type.Identity == spec.Right.Identity)
                {
                    sides.Right.Add(i);
                }
            }
        }

        return sides;
    }

    /// <summary>
    /// Wires a pipeline that reads two record types: each side's first source reads the root (the last stage), the
    /// other sources of a side are read with it (a union), a stage that reads a source reads the side of its own input
    /// type (so the two sources may be declared in either order), and the join reads its two key selectors.
    /// </summary>
    private static void ResolveSides(PipelineModel model, SideIndexes sides, int join, int[] inputs, int[] secondInputs)
    {
        var stages = model.Stages.Items;
        var root = stages.Length - 1;
        inputs[root] = NoInput;
        inputs[sides.Left[0]] = root;
        inputs[sides.Right[0]] = root;
        var spec = stages[join].Join!;
        var joinKeyBys = new[] { IndexOf(stages, spec.LeftKeyBy), IndexOf(stages, spec.RightKeyBy) };
        for (var i = 0; i < root; i++)
        {
            // A stage below a source — or below a key selector of the join, where nothing else may read — starts one side.
            var startsSide = stages[i].InputName is null && inputs[i] >= 0 && joinKeyBys.Contains(inputs[i])
                && (stages[i].InputType?.Identity == spec.Left.Identity || stages[i].InputType?.Identity == spec.Right.Identity);
            if (stages[i].Role == StageRole.Source || inputs[i] < 0 || (stages[inputs[i]].Role != StageRole.Source && !startsSide))
            {
                continue;
            }

            var side = stages[i].InputType?.Identity == spec.Right.Identity ? sides.Right
                : stages[i].InputType?.Identity == spec.Left.Identity ? sides.Left
                : sides.Left.Contains(inputs[i]) ? sides.Left : sides.Right;
            inputs[i] = side[0];
        }

        inputs[join] = IndexOf(stages, spec.LeftKeyBy);
        secondInputs[join] = IndexOf(stages, spec.RightKeyBy);
    }

    /// <summary>
    /// The declaration index of the first source, or -1, and of the other sources: all are read as one stream, so they
    /// must produce the first one's record type (CMPL0102 where one does not).
    /// </summary>
    private static (int Source, List<int> Others) FindSources(PipelineModel model, List<DiagnosticInfo> diagnostics)
    {
        var stages = model.Stages.Items;
        var source = -1;
        var others = new List<int>();
        for (var i = 0; i < stages.Length; i++)
        {
            if (stages[i].Role != StageRole.Source)
            {
                continue;
            }

            if (source < 0)
            {
                source = i;
            }
            else if (stages[i].OutputType is { } type && stages[source].OutputType is { } first && type.Identity != first.Identity)
            {
                if (JoinDiagnosed(diagnostics))
                {
                    continue; // meant as the other input of a join whose declaration is wrong: not read at all
                }

                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MultipleSources, stages[i].Location, model.TypeName, stages[source].MemberName, first.DisplayName, stages[i].MemberName, type.DisplayName));
            }
            else
            {
                others.Add(i);
            }
        }

        if (source < 0)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NoSource, model.Location, model.TypeName));
        }

        return (source, others);
    }

    /// <summary>
    /// The declaration index each stage reads from: the stage its attribute names, else the stage declared just above
    /// it. -1 for sources; -2 where that cannot be resolved (reported).
    /// </summary>
    private static int[] ResolveInputs(PipelineModel model, int source, List<int> others, List<DiagnosticInfo> diagnostics)
    {
        var stages = model.Stages.Items;
        var inputs = new int[stages.Length];
        for (var i = 0; i < stages.Length; i++)
        {
            var stage = stages[i];
            if (stage.Role == StageRole.Source)
            {
                inputs[i] = NoInput;
                continue;
            }

            if (stage.InputName is { } name)
            {
                var named = IndexOf(stages, name);
                if (named < 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnknownInput, stage.Location, stage.MemberName, name, model.TypeName));
                    inputs[i] = BrokenInput;
                }
                else if (named == i)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InputCycle, stage.Location, stage.MemberName, $"'{stage.MemberName}'"));
                    inputs[i] = BrokenInput;
                }
                else
                {
                    inputs[i] = named;
                }
            }
            else if (i == 0)
            {
                if (source >= 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnreachableStage, stage.Location, stage.MemberName, stages[source].MemberName));
                }

                inputs[i] = BrokenInput;
            }
            else
            {
                inputs[i] = i - 1;
            }
        }

        for (var i = 0; i < inputs.Length; i++)
        {
            if (others.Contains(inputs[i]))
            {
                inputs[i] = source; // reading any of the sources reads them all
            }
        }

        return inputs;
    }

    private static int IndexOf(IReadOnlyList<StageModel> stages, string name)
    {
        for (var i = 0; i < stages.Count; i++)
        {
            if (stages[i].MemberName == name)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>For each stage, the stages that read from it, in declaration order.</summary>
    private static List<int>[] Readers(int[] inputs)
    {
        var readers = new List<int>[inputs.Length];
        for (var i = 0; i < inputs.Length; i++)
        {
            readers[i] = [];
        }

        for (var i = 0; i < inputs.Length; i++)
        {
            if (inputs[i] >= 0)
            {
                readers[inputs[i]].Add(i);
            }
        }

        return readers;
    }

    /// <summary>
    /// A key selector is followed directly by its window (the window reads the stage declared above it), and nothing
    /// else reads a key selector: its records cross the exchange only to that window.
    /// </summary>
    private static void CheckKeyBy(PipelineModel model, int[] inputs, int[] secondInputs, List<int>[] readers, List<DiagnosticInfo> diagnostics)
    {
        var stages = model.Stages.Items;
        for (var i = 0; i < stages.Length; i++)
        {
            if (stages[i].Shape != StageShape.KeyBy)
            {
                continue;
            }

            var join = Enumerable.Range(0, stages.Length).Where(j => stages[j].Shape == StageShape.Join && (inputs[j] == i || secondInputs[j] == i)).DefaultIfEmpty(-1).First();
            if (join >= 0)
            {
                // An input of a join: the join reads it wherever it is declared.
                foreach (var reader in readers[i].Where(r => r != join))
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ReadsKeySelector, stages[reader].Location, stages[reader].MemberName, stages[i].MemberName, inputs[i] >= 0 ? stages[inputs[i]].MemberName : stages[i].MemberName));
                }

                continue;
            }

            var followed = i + 1 < stages.Length && (stages[i + 1].IsKeyed || stages[i + 1].Shape == StageShape.Invalid) && inputs[i + 1] == i;
            if (!followed && !JoinDiagnosed(diagnostics))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.KeyByWithoutWindow, stages[i].Location, stages[i].MemberName));
            }

            foreach (var reader in readers[i])
            {
                if (reader == i + 1 && (followed || stages[reader].InputName is null))
                {
                    continue; // its window, or the stage CMPL0121 already points at
                }

                var above = inputs[i] >= 0 ? stages[inputs[i]].MemberName : stages[i].MemberName;
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ReadsKeySelector, stages[reader].Location, stages[reader].MemberName, stages[i].MemberName, above));
            }
        }
    }

    /// <summary>
    /// Walks the tree from <paramref name="root"/>, checking that each stage accepts what the stage it reads produces,
    /// and computing what each produces. A stage is placed when it and every stage above it are valid.
    /// </summary>
    private static void Walk(PipelineModel model, int root, List<int>[] readers, int[] secondInputs, TypeRef?[] flows, bool[] placed, bool[] reached, List<DiagnosticInfo> diagnostics)
    {
        var stages = model.Stages.Items;
        reached[root] = true;
        flows[root] = stages[root].OutputType;
        placed[root] = flows[root] is not null;
        var pending = new Stack<int>();
        pending.Push(root);
        var joinArrivals = new Dictionary<int, (int Count, bool Placed)>();
        while (pending.Count > 0)
        {
            var parent = pending.Pop();
            foreach (var i in readers[parent])
            {
                var stage = stages[i];
                if (stage.Shape == StageShape.Join)
                {
                    WalkIntoJoin(stages, parent, i, secondInputs, flows, placed, reached, pending, joinArrivals, diagnostics);
                    continue;
                }

                if (reached[i])
                {
                    continue;
                }

                reached[i] = true;
                pending.Push(i);
                if (stage.Role == StageRole.Source)
                {
                    // One side of a pipeline that reads two record types: its records, picked out of the stream of both.
                    flows[i] = stage.OutputType;
                    placed[i] = placed[parent] && stage.OutputType is not null;
                    continue;
                }

                if (!stage.IsValid || stage.InputType is null)
                {
                    flows[i] = null; // reported already; don't cascade mismatches past it
                    continue;
                }

                var flow = flows[parent];
                if (flow is not null && !flow.IsAssignableTo(stage.InputType) && MeantAsFilter(stages[parent], stage) is { } mapper)
                {
                    // A map to a number whose reader wants the map's own input: a filter that returns int, not bool.
                    // Said at the map — where the mistake is — instead of at the stage after it.
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MapMeantAsFilter, mapper.Location, mapper.MemberName, mapper.OutputType!.DisplayName, mapper.InputType!.DisplayName, stage.MemberName));
                    flows[i] = Produces(stage, stage.InputType);
                    continue;
                }

                if (flow is not null && !flow.IsAssignableTo(stage.InputType))
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.TypeMismatch, stage.Location, stage.MemberName, stage.InputType.DisplayName, stages[parent].MemberName, flow.DisplayName));
                    flows[i] = Produces(stage, stage.InputType); // resume checking from what this stage produces
                    continue;
                }

                flows[i] = Produces(stage, flow ?? stage.InputType);
                placed[i] = placed[parent] && flow is not null;
            }
        }
    }

    /// <summary>
    /// A join is reached from each of its key selectors: each must carry the record type of its side (CMPL0104), and
    /// the join is placed — and walked on from — once both have arrived and are placed.
    /// </summary>
    private static void WalkIntoJoin(System.Collections.Immutable.ImmutableArray<StageModel> stages, int parent, int join, int[] secondInputs, TypeRef?[] flows, bool[] placed, bool[] reached, Stack<int> pending, Dictionary<int, (int Count, bool Placed)> arrivals, List<DiagnosticInfo> diagnostics)
    {
        if (secondInputs[join] < 0)
        {
            return; // not wired: the pipeline lacks one of its inputs (CMPL0146)
        }

        var spec = stages[join].Join!;
        var side = parent == secondInputs[join] ? spec.Right : spec.Left;
        var flow = flows[parent];
        var fits = flow is not null && flow.IsAssignableTo(side);
        if (flow is not null && !fits)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.TypeMismatch, stages[join].Location, stages[join].MemberName, side.DisplayName, stages[parent].MemberName, flow.DisplayName));
        }

        var (count, sidesPlaced) = arrivals.TryGetValue(join, out var seen) ? seen : (0, true);
        arrivals[join] = (count + 1, sidesPlaced && fits && placed[parent]);
        if (count + 1 < 2)
        {
            return;
        }

        reached[join] = true;
        flows[join] = stages[join].OutputType;
        placed[join] = arrivals[join].Placed;
        pending.Push(join);
    }

    private static readonly HashSet<string> NumberTypes = ["int", "long", "short", "byte", "sbyte", "uint", "ulong", "ushort"];

    /// <summary>The map <paramref name="parent"/> when it looks like a filter with the wrong return type: it returns a number and <paramref name="reader"/> takes the map's input.</summary>
    private static StageModel? MeantAsFilter(StageModel parent, StageModel reader)
        => parent.Shape == StageShape.Map && parent.InputType is { } input && parent.OutputType is { } output
            && NumberTypes.Contains(output.DisplayName) && input.IsAssignableTo(reader.InputType!)
            ? parent
            : null;

    /// <summary>What leaves a stage that takes <paramref name="input"/>: maps, flatMaps and windows produce their own type; the rest pass records through.</summary>
    private static TypeRef Produces(StageModel stage, TypeRef input)
        => stage.Shape is StageShape.Map or StageShape.FlatMap || stage.StartsLoop ? stage.OutputType! : input;

    /// <summary>Stages the walk from the source never reached: a cycle, or a chain that starts above the source (reported where it starts).</summary>
    private static void ReportUnreached(PipelineModel model, int source, int[] inputs, bool[] reached, List<DiagnosticInfo> diagnostics)
    {
        var stages = model.Stages.Items;
        for (var i = 0; i < stages.Length; i++)
        {
            if (reached[i] || inputs[i] < 0)
            {
                continue;
            }

            // Follow the inputs up: back to this stage is a cycle; a stage with no input is reported already.
            var seen = new List<int> { i };
            var at = inputs[i];
            while (at >= 0 && !seen.Contains(at))
            {
                seen.Add(at);
                at = inputs[at];
            }

            if (at == i)
            {
                var path = string.Join(" -> ", seen.Skip(1).Select(s => $"'{stages[s].MemberName}'"));
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InputCycle, stages[i].Location, stages[i].MemberName, path));
            }
            else if (at < 0 && source >= 0 && inputs[seen[seen.Count - 1]] == BrokenInput && stages[seen[seen.Count - 1]].InputName is null)
            {
                // Declared above the source, reading the stage above it: it can never see a record.
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnreachableStage, stages[i].Location, stages[i].MemberName, stages[source].MemberName));
            }
        }
    }

    /// <summary>
    /// Every branch ends in a sink: a stage nothing reads must be a sink (a key selector is reported by CMPL0121). If
    /// the pipeline has no sink at all that is CMPL0103; a transform after the last sink of its branch is CMPL0106; a
    /// branch without any sink is CMPL0132.
    /// </summary>
    private static void CheckBranchEnds(PipelineModel model, int source, int[] inputs, List<int>[] readers, bool[] reached, List<DiagnosticInfo> diagnostics)
    {
        var stages = model.Stages.Items;
        if (!stages.Any(s => s.Role == StageRole.Sink))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NoSink, model.Location, model.TypeName));
            return;
        }

        for (var i = 0; i < stages.Length; i++)
        {
            var stage = stages[i];
            if (!reached[i] || readers[i].Count > 0 || stage.Role is StageRole.Sink or StageRole.Source || stage.Shape == StageShape.KeyBy)
            {
                continue;
            }

            // Up the branch to where it forks off (or the source): is there a sink on the way?
            var sinkAbove = false;
            for (var at = inputs[i]; at >= 0; at = inputs[at])
            {
                if (stages[at].Role == StageRole.Sink)
                {
                    sinkAbove = true;
                    break;
                }

                if (readers[at].Count > 1 || at == source)
                {
                    break;
                }
            }

            diagnostics.Add(sinkAbove
                ? DiagnosticInfo.Create(DiagnosticDescriptors.UnconsumedStage, stage.Location, stage.MemberName)
                : DiagnosticInfo.Create(DiagnosticDescriptors.BranchWithoutSink, stage.Location, stage.MemberName));
        }
    }

    /// <summary>
    /// Cuts the placed tree into segments — the source's loop, and one loop per window — and lays the stages out in
    /// execution order: segment by segment, depth-first within each from its root, readers in declaration order.
    /// Assigns sink, late-data and exchange slots.
    /// </summary>
    private static (List<PlannedStage> Chain, List<SegmentPlan> Segments) Layout(PipelineModel model, int source, int[] inputs, int[] secondInputs, List<int>[] readers, TypeRef?[] flows, bool[] placed)
    {
        var stages = model.Stages.Items;

        // Roots in an order where every segment comes after the one that feeds it.
        var roots = new List<int> { source };
        var segmentOf = new int[stages.Length];
        for (var r = 0; r < roots.Count; r++)
        {
            var pending = new Stack<int>();
            pending.Push(roots[r]);
            while (pending.Count > 0)
            {
                var at = pending.Pop();
                segmentOf[at] = r;
                for (var k = readers[at].Count - 1; k >= 0; k--)
                {
                    var reader = readers[at][k];
                    if (!placed[reader])
                    {
                        continue;
                    }

                    if (stages[reader].StartsLoop)
                    {
                        if (!roots.Contains(reader))
                        {
                            roots.Add(reader); // a join is reached from both its key selectors
                        }
                    }
                    else
                    {
                        pending.Push(reader);
                    }
                }
            }
        }

        // Execution order: per segment, depth-first from the root.
        var order = new List<int>();
        foreach (var root in roots)
        {
            var pending = new Stack<int>();
            pending.Push(root);
            while (pending.Count > 0)
            {
                var at = pending.Pop();
                order.Add(at);
                for (var k = readers[at].Count - 1; k >= 0; k--)
                {
                    var reader = readers[at][k];
                    if (placed[reader] && !stages[reader].StartsLoop)
                    {
                        pending.Push(reader);
                    }
                }
            }
        }

        var indexOf = new Dictionary<int, int>();
        for (var k = 0; k < order.Count; k++)
        {
            indexOf[order[k]] = k;
        }

        // Slots: connector sinks in execution order, then late-data sinks per window, then one exchange per key selector.
        var sinkSlots = 0;
        var sinkSlotOf = new Dictionary<int, int>();
        foreach (var at in order.Where(at => stages[at].Shape == StageShape.ConnectorSink))
        {
            sinkSlotOf[at] = sinkSlots++;
        }

        var lateSlotOf = new Dictionary<int, int>();
        var nextSlot = sinkSlots;
        foreach (var at in order.Where(at => stages[at].Shape is StageShape.Window or StageShape.Join && model.LateData.Any(l => l.Window == stages[at].MemberName)))
        {
            lateSlotOf[at] = nextSlot++;
        }

        var exchangeSlotOf = new Dictionary<int, int>();
        var rightKeyBys = new HashSet<int>(secondInputs.Where(i => i >= 0));
        foreach (var at in order.Where(at => stages[at].Shape is StageShape.KeyBy or StageShape.Async && !rightKeyBys.Contains(at)))
        {
            exchangeSlotOf[at] = nextSlot++; // an asynchronous transform's own: the loop before it writes its records there
        }

        for (var at = 0; at < stages.Length; at++)
        {
            if (secondInputs[at] >= 0 && exchangeSlotOf.TryGetValue(inputs[at], out var shared))
            {
                exchangeSlotOf[secondInputs[at]] = shared; // both inputs of a join write into its one exchange
            }
        }

        var chain = new List<PlannedStage>();
        foreach (var at in order)
        {
            var stage = stages[at];
            var exchange = stage.Shape switch
            {
                StageShape.KeyBy or StageShape.Async => exchangeSlotOf.TryGetValue(at, out var own) ? own : -1, // -1: the right input of a join that is not placed (diagnosed)
                StageShape.Window or StageShape.Lookup or StageShape.Join => exchangeSlotOf.TryGetValue(inputs[at], out var slot) ? slot : -1,
                _ => -1,
            };
            chain.Add(new PlannedStage(
                stage,
                chain.Count,
                at == source ? -1 : indexOf[inputs[at]],
                sinkSlotOf.TryGetValue(at, out var sinkSlot) ? sinkSlot : -1,
                segmentOf[at],
                flows[at]!,
                readers[at].Where(r => placed[r]).Select(r => indexOf[r]).OrderBy(r => r).ToEquatableArray(),
                exchange,
                lateSlotOf.TryGetValue(at, out var lateSlot) ? lateSlot : -1,
                secondInputs[at] >= 0 && indexOf.TryGetValue(secondInputs[at], out var second) ? second : -1));
        }

        var segments = new List<SegmentPlan>();
        for (var r = 0; r < roots.Count; r++)
        {
            var first = indexOf[roots[r]];
            var last = first;
            while (last + 1 < chain.Count && chain[last + 1].Segment == r)
            {
                last++;
            }

            segments.Add(new SegmentPlan(r, first, last, Reason(chain, first, last), MarkedFrom(chain, first, last)));
        }

        return (chain, segments);
    }

    /// <summary>Why the stages of a segment fused into one loop, and where it hands records on.</summary>
    private static string Reason(List<PlannedStage> chain, int first, int last)
    {
        var stages = chain.Skip(first).Take(last - first + 1).ToList();
        var keyBys = stages.Where(s => s.Stage.Shape == StageShape.KeyBy).Select(s => $"keyBy '{s.Stage.MemberName}'").ToList();
        var forks = stages.Count(s => s.Readers.Count(r => r <= last) > 1);
        string reason;
        if (chain[first].Stage.StartsLoop)
        {
            reason = chain[first].Stage.Shape switch
            {
                StageShape.Lookup => $"all edges forward from lookup '{chain[first].Stage.MemberName}', which runs in the partition that owns each key and joins each record with its cached rows",
                StageShape.Async => $"all edges forward from asynchronous transform '{chain[first].Stage.MemberName}', whose calls for a batch run concurrently while the partition waits",
                StageShape.Join => $"all edges forward from join '{chain[first].Stage.MemberName}', which runs in the partition that owns each key and meets the records of '{chain[chain[first].Input].Stage.MemberName}' and '{chain[chain[first].SecondInput].Stage.MemberName}' by event time",
                _ => $"all edges forward from window '{chain[first].Stage.MemberName}', which runs in the partition that owns each key and fires on watermarks",
            };
            if (keyBys.Count > 0)
            {
                reason += $", up to {string.Join(" and ", keyBys)}, where a hash exchange sends each result to the partition that owns its new key";
            }
        }
        else
        {
            reason = keyBys.Count > 0
                ? $"all edges forward up to {string.Join(" and ", keyBys)}, where a hash exchange sends each record to the partition that owns its key"
                : FusedReason;
        }

        var asyncs = chain.Where(s => s.Stage.Shape == StageShape.Async && s.Input >= first && s.Input <= last).Select(s => $"'{s.Stage.MemberName}'").ToList();
        if (asyncs.Count > 0)
        {
            reason += $"; the loop ends at asynchronous transform {string.Join(" and ", asyncs)}, whose calls run outside it";
        }

        if (forks > 0)
        {
            reason += forks == 1
                ? "; the stream forks into branches inside the loop (each branch reads the same record, no copies)"
                : $"; the stream forks {forks} times inside the loop (each branch reads the same record, no copies)";
        }

        return reason;
    }

    /// <summary>
    /// The first stage of a segment that must mark itself: the stages before it form a straight chain from the root
    /// (each the only reader of the one before) of stages whose replay is harmless.
    /// </summary>
    private static int MarkedFrom(List<PlannedStage> chain, int root, int last)
    {
        var at = root + 1;
        while (at <= last
            && IsReplaySafe(chain[at].Stage)
            && (at == root + 1 ? chain[at].Input == root : chain[at].Input == at - 1 && chain[at - 1].Readers.Count == 1))
        {
            at++;
        }

        return at;
    }

    /// <summary>
    /// Whether a stage with state can run a batch in the loop without bookkeeping because its state can be set back when
    /// a record fails: a mutable struct operator or struct sink whose fields hold only values (written back only after
    /// the batch), or an operator object of a class whose state is all in fields holding values (saved before the batch,
    /// set back on failure: <see cref="StageModel.SavedState"/>), or an instance method of a pipeline whose state is all
    /// in such fields (the loop's own pipeline object's, saved the same way).
    /// </summary>
    private static bool CanBeSetBack(StageModel stage)
        => (stage.Storage == OperatorStorage.HoistedStruct && stage.ValueState)
            || ((stage.Storage == OperatorStorage.Reference || (stage.MemberKind == MemberKind.Method && !stage.OperatorMethodIsStatic))
                && stage.SavedState is not null && stage.Shape is StageShape.Map or StageShape.Filter or StageShape.FlatMap or StageShape.MethodSink);

    /// <summary>
    /// Whether calling a stage again for a failed record is harmless: a static method, a static operator method, a
    /// readonly-struct operator (called on a copy), an operator object of a class that cannot change (sealed, its
    /// fields readonly values: nothing for <see cref="Parsing.OperatorShapes.StateOf"/> to save), or a connector sink (never
    /// replayed). Instance methods, operator objects with state and sink methods are not.
    /// </summary>
    public static bool IsReplaySafe(StageModel stage) => stage.Shape switch
    {
        StageShape.ConnectorSink or StageShape.Source => true, // a source inside a loop picks its side's records out of the stream of two types
        StageShape.Map or StageShape.Filter or StageShape.FlatMap or StageShape.KeyBy when stage.MemberKind == MemberKind.Method => stage.OperatorMethodIsStatic,
        StageShape.Map or StageShape.Filter or StageShape.FlatMap => stage.Storage is OperatorStorage.None or OperatorStorage.ReadOnlyStruct
            || (stage.Storage == OperatorStorage.Reference && stage.Immutable),
        _ => false,
    };
}
