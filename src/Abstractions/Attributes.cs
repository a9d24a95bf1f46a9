namespace Compiled;

/// <summary>
/// Marks a partial class as a pipeline. Its members marked <see cref="SourceAttribute"/>,
/// <see cref="TransformAttribute"/> and <see cref="SinkAttribute"/> form the chain, read top to bottom in declaration
/// order. The generator type-checks the chain, fuses it into loops and adds <c>RunAsync</c> entry points.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = false)]
public sealed class PipelineAttribute : Attribute
{
    /// <summary>The pipeline's name in logs, errors and metrics. Defaults to the class name.</summary>
    public string? Name { get; set; }

    /// <summary>What to do with records that fail to decode or make an operator throw. Default: <see cref="ErrorPolicy.DeadLetter"/>.</summary>
    public ErrorPolicy ErrorPolicy { get; set; } = ErrorPolicy.DeadLetter;
}

/// <summary>
/// Marks the member that produces the pipeline's records: a property or field whose type implements
/// <see cref="ISource{T}"/>. A pipeline has exactly one source, and it comes first.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class SourceAttribute : Attribute
{
}

/// <summary>
/// Marks an operator. On a pipeline member it declares a stage: a method (<c>U Map(T)</c>, <c>bool Filter(T)</c>,
/// <c>void FlatMap(T, Emitter&lt;U&gt;)</c>), or a property or field whose type is an operator class. On a partial class it
/// declares a reusable operator class whose single public operator method (or the one marked
/// <see cref="OperatorAttribute"/>) is the logic.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method | AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class TransformAttribute : Attribute
{
    /// <summary>
    /// The stage this one reads from, by member name (<c>Input = nameof(Parse)</c>); by default the stage declared just
    /// above. Naming an earlier stage starts a branch: one stream then feeds several chains, each with its own
    /// transforms, windows and sinks, without copying records. Ignored on an operator class.
    /// </summary>
    public string? Input { get; set; }
}

/// <summary>
/// Marks a destination for the records flowing at this point of the chain: a property or field whose type implements
/// <see cref="ISink{T}"/>, or a method <c>void M(T)</c> called inline for every record. Records continue past a sink
/// to the stages after it, so a pipeline may write to several sinks.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Method, Inherited = false, AllowMultiple = false)]
public sealed class SinkAttribute : Attribute
{
    /// <summary>The stage this sink reads from, by member name; by default the stage declared just above (see <see cref="TransformAttribute.Input"/>).</summary>
    public string? Input { get; set; }
}

/// <summary>
/// Chooses the operator method of a <see cref="TransformAttribute"/> class that has more than one public method of
/// an operator shape.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false, AllowMultiple = false)]
public sealed class OperatorAttribute : Attribute
{
}

/// <summary>
/// Marks the member where the pipeline's failed records go: a property or field whose type implements
/// <c>ISink&lt;DeadLetter&gt;</c> (for instance <c>DeadLetterFile</c>). Without one, dead letters go to
/// <c>{pipeline}.deadletters.jsonl</c> in the working directory (or where the options say).
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class DeadLettersAttribute : Attribute
{
}


/// <summary>
/// Marks a member as part of the record's identity: sinks that upsert (<c>PostgresSink</c> in upsert mode) key on
/// the marked members, and tables they create get them as the primary key. On a positional record, write
/// <c>[Key] long Id</c> or <c>[property: Key] long Id</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter, AllowMultiple = false, Inherited = true)]
public sealed class KeyAttribute : Attribute
{
}
