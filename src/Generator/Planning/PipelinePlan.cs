using System.Linq;
using Compiled.Generator.Diagnostics;
using Compiled.Generator.Model;

namespace Compiled.Generator.Planning;

/// <summary>
/// The plan of a pipeline: its valid stages as a graph in execution order, how the graph is cut into fused loops
/// (segments), and every diagnostic (from parsing and from planning). A plan with diagnostics is emitted as a stub
/// that explains itself.
/// </summary>
/// <param name="OtherSources">
/// The sources declared after the first, when there are several: all are read as one stream (a union), which the
/// first source's stage (chain index 0) stands for; every stage that reads one of them reads the union.
/// </param>
/// <param name="JoinSources">
/// For a pipeline that reads two record types (the inputs of its join): the sources of each side. The root (chain
/// index 0) then stands for all of them, read as one stream of <c>Either&lt;TLeft, TRight&gt;</c>, and each side's first
/// source is a stage of the first loop that picks its side's records out of it.
/// </param>
/// <param name="Chain">
/// The stages in execution order: segment by segment, and within a segment depth-first from its root (the source, or
/// the window behind an exchange), readers in declaration order. That is the order the loop's code runs them in.
/// </param>
internal sealed record PipelinePlan(
    PipelineModel Model,
    EquatableArray<PlannedStage> Chain,
    EquatableArray<SegmentPlan> Segments,
    bool NeedsInstancePerPartition,
    EquatableArray<DiagnosticInfo> Diagnostics,
    EquatableArray<StageModel> OtherSources,
    JoinSources? JoinSources = null)
{
    public bool HasErrors => Diagnostics.Count > 0;

    /// <summary>The IDs of the errors, each once, for the stand-ins that name them.</summary>
    public string ErrorIds => string.Join(", ", Diagnostics.Select(d => d.Id).Distinct());

    /// <summary>Whether a partial can be added to the pipeline type: it is partial (and everything around it), and a class that can hold the members.</summary>
    public bool CanHostPartial => Model.IsPartial && !Diagnostics.Any(d => d.Descriptor == DiagnosticDescriptors.MissingPartial || d.Descriptor == DiagnosticDescriptors.UnsupportedPipelineType);

    /// <summary>
    /// Whether the entry points are written as C# 14 extension members instead (when the language has them): the type is
    /// not partial, so nothing can be added to it, but it is a top-level type of a kind a pipeline can be.
    /// </summary>
    public bool NeedsExtensionStandIns => !Model.IsPartial && Model.ContainingTypes.Count == 0 && !Diagnostics.Any(d => d.Descriptor == DiagnosticDescriptors.UnsupportedPipelineType);

    /// <summary>The generated source schema: of the records the source stage (chain index 0) produces, or null.</summary>
    public string? SourceSchema => Chain.Count == 0 ? null : Chain[0].Schema;
}

/// <summary>A stage placed in the graph.</summary>
/// <param name="Stage">The declaration.</param>
/// <param name="Index">Position in the chain (execution order); the source is 0.</param>
/// <param name="Input">The chain index of the stage it reads from; -1 for the source.</param>
/// <param name="SinkSlot">For connector sinks, the index of the sink's output port; otherwise -1.</param>
/// <param name="Segment">The fused segment the stage runs in.</param>
/// <param name="FlowType">The type of the records leaving the stage (a filter or sink passes its input type through).</param>
/// <param name="Readers">The chain indexes of the stages that read from it, in execution order.</param>
/// <param name="ExchangeSlot">For a key selector, the output slot of its exchange; for a window, the same slot (its input); otherwise -1.</param>
/// <param name="LateSlot">For a window with a <c>[LateData]</c> output, that sink's slot; otherwise -1.</param>
/// <param name="SecondInput">For a join, the chain index of its right input's key selector; otherwise -1.</param>
/// <param name="Schema">
/// The identifier of the generated schema of the records this stage hands to or takes from a connector — a source's
/// records, a connector sink's, a lookup's rows — or null when the type has none.
/// </param>
/// <param name="Late">For a window or join with a <c>[LateData]</c> output: that member (its slot is <paramref name="LateSlot"/>).</param>
/// <param name="LateSchema">The schema identifier of the late records, or null.</param>
/// <param name="KeyMayBeNull">For a key selector: whether its key can be null (a reference or nullable key), which keyed state cannot hold, so the loop checks it.</param>
/// <param name="IsRightInput">For a key selector: whether it is the right input of the join it feeds.</param>
/// <param name="KeyEventTime">For a key selector: the member of its records that the exchange carries as their event time (the join side's, or the window's input's), or null.</param>
internal sealed record PlannedStage(
    StageModel Stage,
    int Index,
    int Input,
    int SinkSlot,
    int Segment,
    TypeRef FlowType,
    EquatableArray<int> Readers,
    int ExchangeSlot = -1,
    int LateSlot = -1,
    int SecondInput = -1,
    string? Schema = null,
    LateDataMemberModel? Late = null,
    string? LateSchema = null,
    bool KeyMayBeNull = false,
    bool IsRightInput = false,
    string? KeyEventTime = null);

/// <summary>The sources of the two sides of a join, and the two record types.</summary>
/// <param name="LeftSchema">The identifier of the generated schema of the left records, or null.</param>
/// <param name="RightSchema">The identifier of the generated schema of the right records, or null.</param>
internal sealed record JoinSources(EquatableArray<StageModel> Left, EquatableArray<StageModel> Right, TypeRef LeftType, TypeRef RightType, string? LeftSchema = null, string? RightSchema = null);

/// <summary>Which pipeline object the stages of a segment call, per partition.</summary>
internal enum SegmentInstances
{
    /// <summary>No stage of the segment has instance state: every partition calls the root object.</summary>
    Root,

    /// <summary>Instance state, and the first segment with it: partition 0 calls the root object, the others their own.</summary>
    RootForPartitionZero,

    /// <summary>Instance state, but an earlier segment's partition 0 holds the root (loops run on different workers): every partition gets its own.</summary>
    OwnPerPartition,
}

/// <summary>A group of stages fused into one loop, and why it starts and ends where it does.</summary>
/// <param name="Index">The segment's index: 0 is the source's loop, each window starts one more.</param>
/// <param name="FirstStage">The chain index of its root: the source, or a window.</param>
/// <param name="LastStage">The chain index of its last stage (segments are contiguous in the chain).</param>
/// <param name="MarkedFrom">
/// The first stage of the segment that marks itself in the loop's progress. The stages before it (after the root)
/// form a straight chain of stateless stages — static methods, static operator methods, readonly-struct operators,
/// connector sinks, key selectors — so when one of them throws, the runtime finds which by replaying the failing record
/// through them; they need no per-record marker store.
/// </param>
/// <param name="Instances">Which pipeline object its stages call, per partition.</param>
/// <param name="HasFastPath">
/// Whether it also gets the loop without bookkeeping: every stage after the root can run a batch again from its start
/// (static and readonly operators, mutable struct operators of values only, outputs).
/// </param>
internal sealed record SegmentPlan(int Index, int FirstStage, int LastStage, string Reason, int MarkedFrom, SegmentInstances Instances = SegmentInstances.Root, bool HasFastPath = false);
