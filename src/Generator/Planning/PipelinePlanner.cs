using System.Collections.Generic;
using System.Linq;
using Compiled.Generator.Model;

namespace Compiled.Generator.Planning;

/// <summary>
/// Turns a pipeline model into a plan: validates the chain (one source first, at least one sink, types that line up,
/// nothing unreachable or unused) and decides the fused segments. Pure: no Roslyn, so it is unit-tested directly.
/// </summary>
internal static class PipelinePlanner
{
    /// <summary>
    /// Why a whole chain fuses into one loop: every edge from the source to the last sink is forward, one-input and
    /// at the same parallelism (Flink's chaining rule), and no stage is asynchronous or re-keys the stream.
    /// </summary>
    public const string FusedReason = "all edges forward, one input, same parallelism";

    public static PipelinePlan Plan(PipelineModel model)
    {
        var diagnostics = new List<DiagnosticInfo>(model.Diagnostics);
        var stages = model.Stages.Items;
        var sourcePosition = -1;
        for (var i = 0; i < stages.Length; i++)
        {
            if (stages[i].Role != StageRole.Source)
            {
                continue;
            }

            if (sourcePosition < 0)
            {
                sourcePosition = i;
            }
            else
            {
                diagnostics.Add(DiagnosticInfo.Create("CMPL0102", stages[i].Location, model.TypeName, stages[sourcePosition].MemberName, stages[i].MemberName));
            }
        }

        if (sourcePosition < 0)
        {
            diagnostics.Add(DiagnosticInfo.Create("CMPL0101", model.Location, model.TypeName));
        }
        else
        {
            for (var i = 0; i < sourcePosition; i++)
            {
                diagnostics.Add(DiagnosticInfo.Create("CMPL0105", stages[i].Location, stages[i].MemberName, stages[sourcePosition].MemberName));
            }
        }

        var lastSink = -1;
        for (var i = stages.Length - 1; i > sourcePosition; i--)
        {
            if (stages[i].Role == StageRole.Sink)
            {
                lastSink = i;
                break;
            }
        }

        if (lastSink < 0)
        {
            diagnostics.Add(DiagnosticInfo.Create("CMPL0103", model.Location, model.TypeName));
        }
        else
        {
            for (var i = lastSink + 1; i < stages.Length; i++)
            {
                if (stages[i].Role == StageRole.Transform)
                {
                    diagnostics.Add(DiagnosticInfo.Create("CMPL0106", stages[i].Location, stages[i].MemberName));
                }
            }
        }

        var chain = new List<PlannedStage>();
        if (sourcePosition >= 0)
        {
            CheckTypes(stages, sourcePosition, lastSink < 0 ? stages.Length - 1 : lastSink, chain, diagnostics);
        }

        var needsInstances = chain.Any(s => s.Stage.NeedsPipelineInstance);
        if (needsInstances && !model.HasParameterlessConstructor)
        {
            var names = string.Join("', '", chain.Where(s => s.Stage.NeedsPipelineInstance).Select(s => s.Stage.MemberName));
            diagnostics.Add(DiagnosticInfo.Create("CMPL0003", model.Location, model.TypeName, names));
        }

        CheckKeyBy(model, diagnostics);
        var keyBy = chain.FindIndex(s => s.Stage.Shape == StageShape.KeyBy);
        EquatableArray<SegmentPlan> segments;
        if (chain.Count == 0)
        {
            segments = EquatableArray<SegmentPlan>.Empty;
        }
        else if (keyBy > 0 && keyBy + 1 < chain.Count && chain[keyBy + 1].Stage.Shape == StageShape.Window)
        {
            // The exchange cuts the chain: the loop before it ends by handing keyed records over; the loop after it
            // runs on the partition that owns the key, over what the window emits.
            for (var i = keyBy + 1; i < chain.Count; i++)
            {
                chain[i] = chain[i] with { Segment = 1 };
            }

            segments = new[]
            {
                new SegmentPlan(0, 0, keyBy, $"all edges forward up to keyBy '{chain[keyBy].Stage.MemberName}', where a hash exchange sends each record to the partition that owns its key", FirstStatefulStage(chain, 1, keyBy + 1)),
                new SegmentPlan(1, keyBy + 1, chain.Count - 1, $"all edges forward from window '{chain[keyBy + 1].Stage.MemberName}', which runs in the partition that owns each key and fires on watermarks", FirstStatefulStage(chain, keyBy + 2, chain.Count)),
            }.ToEquatableArray();
        }
        else
        {
            segments = new[] { new SegmentPlan(0, 0, chain.Count - 1, FusedReason, FirstStatefulStage(chain, 1, chain.Count)) }.ToEquatableArray();
        }

        return new PipelinePlan(model, chain.ToEquatableArray(), segments, needsInstances, diagnostics.ToEquatableArray());
    }

    /// <summary>One key selector per pipeline, and a window right after it.</summary>
    private static void CheckKeyBy(PipelineModel model, List<DiagnosticInfo> diagnostics)
    {
        var stages = model.Stages.Items;
        StageModel? first = null;
        for (var i = 0; i < stages.Length; i++)
        {
            if (stages[i].Shape != StageShape.KeyBy)
            {
                continue;
            }

            if (first is not null)
            {
                diagnostics.Add(DiagnosticInfo.Create("CMPL0122", stages[i].Location, model.TypeName, first.MemberName, stages[i].MemberName));
                continue;
            }

            first = stages[i];
            if (i + 1 >= stages.Length || stages[i + 1].Shape is not (StageShape.Window or StageShape.Invalid))
            {
                diagnostics.Add(DiagnosticInfo.Create("CMPL0121", stages[i].Location, stages[i].MemberName));
            }
        }
    }

    /// <summary>
    /// Whether calling a stage again for a failed record is harmless: a static method, a static operator method, a
    /// readonly-struct operator (called on a copy), or a connector sink (never replayed). Instance methods, operator
    /// objects with state and sink methods are not.
    /// </summary>
    public static bool IsReplaySafe(StageModel stage) => stage.Shape switch
    {
        StageShape.ConnectorSink => true,
        StageShape.Map or StageShape.Filter or StageShape.FlatMap or StageShape.KeyBy when stage.MemberKind == MemberKind.Method => stage.OperatorMethodIsStatic,
        StageShape.Map or StageShape.Filter or StageShape.FlatMap => stage.Storage is OperatorStorage.None or OperatorStorage.ReadOnlyStruct,
        _ => false,
    };

    /// <summary>The chain index of the first stage in [from, to) that is not replay-safe (or <paramref name="to"/>).</summary>
    private static int FirstStatefulStage(List<PlannedStage> chain, int from, int to)
    {
        for (var i = from; i < to; i++)
        {
            if (!IsReplaySafe(chain[i].Stage))
            {
                return i;
            }
        }

        return to;
    }

    /// <summary>Walks the chain from the source, checking that each stage accepts what the stage before it produces.</summary>
    private static void CheckTypes(IReadOnlyList<StageModel> stages, int sourcePosition, int last, List<PlannedStage> chain, List<DiagnosticInfo> diagnostics)
    {
        var source = stages[sourcePosition];
        TypeRef? flow = source.OutputType;
        var previous = source.MemberName;
        var sinkSlots = 0;
        if (flow is not null)
        {
            chain.Add(new PlannedStage(source, 0, -1, 0, flow));
        }

        for (var i = sourcePosition + 1; i <= last; i++)
        {
            var stage = stages[i];
            if (stage.Role == StageRole.Source)
            {
                continue; // a second source has been reported; it takes no part in the chain
            }

            if (!stage.IsValid || stage.InputType is null)
            {
                flow = null; // the stage has been reported; don't cascade mismatches past it
                previous = stage.MemberName;
                continue;
            }

            if (flow is not null && !flow.IsAssignableTo(stage.InputType))
            {
                diagnostics.Add(DiagnosticInfo.Create("CMPL0104", stage.Location, stage.MemberName, stage.InputType.DisplayName, previous, flow.DisplayName));
                flow = null;
            }
            else if (flow is not null)
            {
                var slot = stage.Shape == StageShape.ConnectorSink ? sinkSlots++ : -1;
                var next = stage.Shape is StageShape.Map or StageShape.FlatMap or StageShape.Window ? stage.OutputType! : flow;
                chain.Add(new PlannedStage(stage, chain.Count, slot, 0, next));
                flow = next;
                previous = stage.MemberName;
                continue;
            }

            // After an error, resume checking from what this stage produces.
            flow = stage.Shape is StageShape.Map or StageShape.FlatMap or StageShape.Window ? stage.OutputType : stage.InputType;
            previous = stage.MemberName;
        }
    }
}
