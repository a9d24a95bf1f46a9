namespace Compiled.Runtime;

/// <summary>What a finished run did.</summary>
public sealed class PipelineResult
{
    internal PipelineResult(string pipelineName, PipelineOutcome outcome, TimeSpan elapsed, int parallelism, string source, long recordsRead, IReadOnlyList<SinkResult> sinks)
    {
        PipelineName = pipelineName;
        Outcome = outcome;
        Elapsed = elapsed;
        Parallelism = parallelism;
        Source = source;
        RecordsRead = recordsRead;
        Sinks = sinks;
    }

    /// <summary>The pipeline's name.</summary>
    public string PipelineName { get; }

    /// <summary>Whether the input ended or the run was asked to stop.</summary>
    public PipelineOutcome Outcome { get; }

    /// <summary>Wall-clock time from start to the last sink closed.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>The number of partitions that ran.</summary>
    public int Parallelism { get; }

    /// <summary>The source's description.</summary>
    public string Source { get; }

    /// <summary>Records read from the source.</summary>
    public long RecordsRead { get; }

    /// <summary>Per connector sink: what it is and how many records it received.</summary>
    public IReadOnlyList<SinkResult> Sinks { get; }
}

/// <summary>How a run ended without failing.</summary>
public enum PipelineOutcome
{
    /// <summary>The source reached the end of its input and everything was written.</summary>
    Completed,

    /// <summary>The run was asked to stop; sources stopped, in-flight batches drained, sinks flushed.</summary>
    Stopped,
}

/// <summary>What one connector sink received.</summary>
/// <param name="Name">The sink member's name.</param>
/// <param name="Description">The connector's description.</param>
/// <param name="Records">Records written.</param>
public sealed record SinkResult(string Name, string Description, long Records);
