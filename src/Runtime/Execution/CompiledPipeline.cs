namespace Compiled.Runtime;

/// <summary>A runnable pipeline: what the generated code hands to the runtime and to hosts.</summary>
public interface IPipelineJob
{
    /// <summary>The compiled plan.</summary>
    PipelineDescriptor Descriptor { get; }

    /// <summary>
    /// The pipeline's connectors — its source first, then its sinks in chain order — as bound for this job: the same
    /// objects the run uses, so settings applied to them (<see cref="IConfigurable"/>) take effect.
    /// Throws <see cref="PipelineConfigurationException"/> when a connector member is null.
    /// </summary>
    IReadOnlyList<ConnectorInfo> Connectors { get; }

    /// <summary>
    /// Runs the pipeline. <paramref name="stopToken"/> asks for a graceful stop (sources stop, in-flight batches drain,
    /// sinks flush); <paramref name="abortToken"/> cancels everything, including sink writes.
    /// </summary>
    Task<PipelineResult> RunAsync(PipelineOptions options, CancellationToken stopToken, CancellationToken abortToken);
}

/// <summary>Implemented by every generated pipeline class, so hosts can run any pipeline.</summary>
public interface ICompiledPipeline
{
    /// <summary>A job that runs this pipeline object (its source and sinks, and it as partition 0's operators).</summary>
    IPipelineJob CreateJob();
}

/// <summary>A connector of a pipeline: the member that declares it, its role, and the object.</summary>
/// <param name="Name">The pipeline member's name (<c>Log</c>, <c>Table</c>); settings are named <c>{Name}.{Setting}</c>.</param>
/// <param name="Stage">The chain index of its stage.</param>
/// <param name="Role">Source or sink.</param>
/// <param name="Connector">The connector object (an <see cref="ISource{T}"/> or <see cref="ISink{T}"/>).</param>
/// <param name="Describe">Its secret-free description.</param>
/// <param name="Execution">For a sink, how the runtime calls its writers; null for the source.</param>
public sealed record ConnectorInfo(string Name, int Stage, ConnectorRole Role, object Connector, Func<string> Describe, SinkExecution? Execution)
{
    /// <summary>Its settings, named <c>{Name}.{Setting}</c>; empty when it has none.</summary>
    public IEnumerable<Setting> Settings => Connector is IConfigurable configurable
        ? configurable.Settings.Select(s => s.WithPrefix(Name))
        : [];
}

/// <summary>What a connector does in a pipeline.</summary>
public enum ConnectorRole
{
    /// <summary>It produces the records.</summary>
    Source,

    /// <summary>It receives records.</summary>
    Sink,

    /// <summary>A table records are joined with (<c>[Lookup]</c>).</summary>
    Lookup,

    /// <summary>Not a connector: the settings of an asynchronous transform (its concurrency, timeout and retries).</summary>
    Async,
}
