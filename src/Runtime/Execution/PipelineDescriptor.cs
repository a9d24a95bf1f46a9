using System.Globalization;
using System.Text;

namespace Compiled.Runtime;

/// <summary>
/// The compiled plan of a pipeline, emitted by the generator: its stages in chain order and the segments (loops)
/// they were fused into. Used for errors, summaries, metrics and <c>--explain</c>.
/// </summary>
public sealed class PipelineDescriptor
{
    /// <summary>Creates a descriptor (called by generated code).</summary>
    public PipelineDescriptor(string name, string typeName, IReadOnlyList<StageDescriptor> stages, IReadOnlyList<SegmentDescriptor> segments, ErrorPolicy errorPolicy = ErrorPolicy.DeadLetter)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(stages);
        ArgumentNullException.ThrowIfNull(segments);
        if (stages.Count == 0 || stages[0].Kind != StageKind.Source)
        {
            throw new ArgumentException("A pipeline's first stage is its source.", nameof(stages));
        }

        Name = name;
        TypeName = typeName;
        Stages = stages;
        Segments = segments;
        ErrorPolicy = errorPolicy;
    }

    /// <summary>The error policy the pipeline declares (options may override it).</summary>
    public ErrorPolicy ErrorPolicy { get; }

    /// <summary>
    /// Whether every transform maps or filters (no flatMap, no window) and the stream never forks: then records in =
    /// out + filtered + failed holds for the last sink.
    /// </summary>
    public bool IsOneToOne => Stages.All(s => s.Kind is not (StageKind.FlatMap or StageKind.Window or StageKind.Lookup or StageKind.Async or StageKind.Join))
        && Stages.GroupBy(s => s.Input).All(readers => readers.Count() == 1);

    /// <summary>The pipeline's name.</summary>
    public string Name { get; }

    /// <summary>The pipeline class's full name.</summary>
    public string TypeName { get; }

    /// <summary>The stages in chain order; the source is stage 0.</summary>
    public IReadOnlyList<StageDescriptor> Stages { get; }

    /// <summary>The fused segments.</summary>
    public IReadOnlyList<SegmentDescriptor> Segments { get; }

    /// <summary>The plan as text: each segment with its stages, and why chains break.</summary>
    public string Explain()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"pipeline {Name} ({TypeName}), errors: {ErrorPolicy}\n");
        foreach (var segment in Segments)
        {
            text.Append(CultureInfo.InvariantCulture, $"  segment {segment.Index}: one fused loop ({segment.Reason})\n");
            for (var i = segment.FirstStage; i <= segment.LastStage; i++)
            {
                var stage = Stages[i];
                var types = stage.InputType is null ? stage.OutputType : $"{stage.InputType} -> {stage.OutputType}";
                var from = stage.Input >= 0 && stage.Input != stage.Index - 1 ? $" (reads {Stages[stage.Input].Name})" : "";
                text.Append(CultureInfo.InvariantCulture, $"    {stage.Index,2} {stage.Kind.ToString().ToLowerInvariant(),-8} {stage.Name} [{stage.Implementation}] {types}{from}\n");
            }
        }

        return text.ToString();
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>One stage of a compiled pipeline.</summary>
public sealed class StageDescriptor
{
    /// <summary>Creates a stage descriptor (called by generated code).</summary>
    /// <param name="index">Position in the plan.</param>
    /// <param name="name">The member that declares the stage.</param>
    /// <param name="kind">What the stage does.</param>
    /// <param name="inputType">The type it takes (null for the source).</param>
    /// <param name="outputType">The type leaving it.</param>
    /// <param name="implementation">The operator method or connector type.</param>
    /// <param name="segment">The fused loop it runs in.</param>
    /// <param name="input">The index of the stage it reads from; -1 for the source. Left out, the stage before it.</param>
    /// <param name="secondInput">For a join of two streams, the index of its right input's key selector; else -1.</param>
    public StageDescriptor(int index, string name, StageKind kind, string? inputType, string outputType, string implementation, int segment, int input = int.MinValue, int secondInput = -1)
    {
        Input = input == int.MinValue ? index - 1 : input;
        SecondInput = secondInput;
        Index = index;
        Name = name;
        Kind = kind;
        InputType = inputType;
        OutputType = outputType;
        Implementation = implementation;
        Segment = segment;
    }

    /// <summary>Position in the chain; the source is 0.</summary>
    public int Index { get; }

    /// <summary>The index of the stage this one reads from; -1 for the source. Several stages reading one is a fork into branches.</summary>
    public int Input { get; }

    /// <summary>For a join of two streams, the index of the key selector of its right input (the left one is <see cref="Input"/>); else -1.</summary>
    public int SecondInput { get; }

    /// <summary>The member name that declares the stage.</summary>
    public string Name { get; }

    /// <summary>What the stage does.</summary>
    public StageKind Kind { get; }

    /// <summary>The type the stage takes (null for the source).</summary>
    public string? InputType { get; }

    /// <summary>The type of the records leaving the stage.</summary>
    public string OutputType { get; }

    /// <summary>The operator method or connector type behind the stage.</summary>
    public string Implementation { get; }

    /// <summary>The fused segment the stage runs in.</summary>
    public int Segment { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Index}:{Name}";
}

/// <summary>What a stage does.</summary>
public enum StageKind
{
    /// <summary>Produces records.</summary>
    Source,
    /// <summary>One record in, one out.</summary>
    Map,
    /// <summary>Keeps or drops a record.</summary>
    Filter,
    /// <summary>One record in, zero or more out.</summary>
    FlatMap,
    /// <summary>Receives records.</summary>
    Sink,
    /// <summary>Computes each record's key and sends it across a hash exchange.</summary>
    KeyBy,
    /// <summary>A keyed window: aggregates per key and window, emits when the watermark passes.</summary>
    Window,
    /// <summary>A lookup join: each record with the table rows of its key, fetched in batches and cached.</summary>
    Lookup,
    /// <summary>An asynchronous transform: calls a method returning <c>ValueTask</c> for many records at once.</summary>
    Async,
    /// <summary>A join of two keyed streams: records of both inputs meet by key and event time behind one hash exchange.</summary>
    Join,
}

/// <summary>A run of stages fused into one loop.</summary>
public sealed class SegmentDescriptor
{
    /// <summary>Creates a segment descriptor (called by generated code).</summary>
    public SegmentDescriptor(int index, int firstStage, int lastStage, string reason)
    {
        Index = index;
        FirstStage = firstStage;
        LastStage = lastStage;
        Reason = reason;
    }

    /// <summary>The segment's index.</summary>
    public int Index { get; }

    /// <summary>The first stage in the segment.</summary>
    public int FirstStage { get; }

    /// <summary>The last stage in the segment.</summary>
    public int LastStage { get; }

    /// <summary>Why the segment's stages were fused, and why it ends where it does.</summary>
    public string Reason { get; }
}
