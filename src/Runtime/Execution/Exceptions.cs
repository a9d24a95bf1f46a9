namespace Compiled.Runtime;

/// <summary>A pipeline run failed. The message names the pipeline and, where known, the stage and partition.</summary>
public class PipelineException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PipelineException(string pipelineName, string message, Exception? innerException = null)
        : base(message, innerException) => PipelineName = pipelineName;

    /// <summary>The pipeline that failed.</summary>
    public string PipelineName { get; }
}

/// <summary>An operator threw while processing a record.</summary>
public sealed class OperatorException : PipelineException
{
    /// <summary>Creates the exception.</summary>
    public OperatorException(string pipelineName, StageDescriptor stage, int partition, Exception innerException)
        : base(pipelineName, $"Pipeline '{pipelineName}': stage {stage.Index} '{stage.Name}' ({stage.Implementation}) failed in partition {partition}: {innerException?.GetType().Name}: {innerException?.Message}", innerException)
    {
        ArgumentNullException.ThrowIfNull(stage);
        StageName = stage.Name;
        StageIndex = stage.Index;
        Partition = partition;
    }

    /// <summary>The failing stage's member name.</summary>
    public string StageName { get; }

    /// <summary>The failing stage's position in the chain.</summary>
    public int StageIndex { get; }

    /// <summary>The partition the failure happened in.</summary>
    public int Partition { get; }
}

/// <summary>A source or sink failed (to open, read, write, flush or close).</summary>
public sealed class ConnectorException : PipelineException
{
    /// <summary>Creates the exception.</summary>
    public ConnectorException(string pipelineName, string connectorName, int? partition, string action, Exception innerException)
        : base(pipelineName, $"Pipeline '{pipelineName}': connector '{connectorName}' failed to {action}{(partition is { } p ? $" in partition {p}" : "")}: {MessageOf(innerException)}", innerException)
    {
        ConnectorName = connectorName;
        Partition = partition;
    }

    /// <summary>
    /// <paramref name="exception"/>'s message for a user: without the " (Parameter 'X')" .NET appends to an invalid
    /// option's <see cref="ArgumentException"/> — also when a connector wrapped it (with its message last) in another
    /// exception — since connectors' messages name the setting themselves.
    /// </summary>
    internal static string? MessageOf(Exception? exception)
    {
        var message = exception?.Message;
        for (var e = exception; e is not null && message is not null; e = e.InnerException)
        {
            if (e is ArgumentException { ParamName: { Length: > 0 } name } && message.EndsWith($" (Parameter '{name}')", StringComparison.Ordinal))
            {
                return message[..^$" (Parameter '{name}')".Length];
            }
        }

        return message;
    }

    /// <summary>The source or sink member's name.</summary>
    public string ConnectorName { get; }

    /// <summary>The first <see cref="ConnectorException"/> among the causes of <paramref name="exception"/>, or null.</summary>
    internal static ConnectorException? Within(Exception exception)
    {
        for (var e = exception.InnerException; e is not null; e = e.InnerException)
        {
            if (e is ConnectorException connector)
            {
                return connector;
            }
        }

        return null;
    }

    /// <summary>The partition, when the failure belongs to one.</summary>
    public int? Partition { get; }
}

/// <summary>The pipeline's configuration (options, connector settings) is invalid; nothing ran.</summary>
public sealed class PipelineConfigurationException : PipelineException
{
    /// <summary>Creates the exception.</summary>
    public PipelineConfigurationException(string pipelineName, string message, Exception? innerException = null)
        : base(pipelineName, message, innerException)
    {
    }
}

/// <summary>
/// The run was aborted — by a second Ctrl+C, by the host, or because the grace period ran out while stopping — before
/// it could drain. Sinks may hold partial batches; sources did not commit what was in flight, so it is read again on
/// the next run (at-least-once).
/// </summary>
public sealed class PipelineAbortedException : PipelineException
{
    /// <summary>Creates the exception.</summary>
    public PipelineAbortedException(string pipelineName, string message, Exception? innerException = null)
        : base(pipelineName, message, innerException)
    {
    }
}
