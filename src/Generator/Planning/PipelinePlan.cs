using Compiled.Generator.Model;

namespace Compiled.Generator.Planning;

/// <summary>
/// The plan of a pipeline: its valid chain in order, how the chain is cut into fused segments, and every
/// diagnostic (from parsing and from planning). A plan with diagnostics is emitted as a stub that explains itself.
/// </summary>
internal sealed record PipelinePlan(
    PipelineModel Model,
    EquatableArray<PlannedStage> Chain,
    EquatableArray<SegmentPlan> Segments,
    bool NeedsInstancePerPartition,
    EquatableArray<DiagnosticInfo> Diagnostics)
{
    public bool HasErrors => Diagnostics.Count > 0;
}

/// <summary>A stage placed in the chain.</summary>
/// <param name="Stage">The declaration.</param>
/// <param name="Index">Position in the chain; the source is 0.</param>
/// <param name="SinkSlot">For connector sinks, the index of the sink's output port; otherwise -1.</param>
/// <param name="Segment">The fused segment the stage runs in.</param>
/// <param name="FlowType">The type of the records leaving the stage (a filter or sink passes its input type through).</param>
internal sealed record PlannedStage(StageModel Stage, int Index, int SinkSlot, int Segment, TypeRef FlowType);

/// <summary>A run of stages fused into one loop, and why it starts and ends where it does.</summary>
/// <param name="MarkedFrom">
/// The first stage of the segment that marks itself in the loop's progress. The stages before it (after the
/// source) are stateless — static methods, static operator methods, readonly-struct operators, connector sinks — so
/// when one of them throws, the runtime finds which by replaying the failing record through them; they need no
/// per-record marker store.
/// </param>
internal sealed record SegmentPlan(int Index, int FirstStage, int LastStage, string Reason, int MarkedFrom);
