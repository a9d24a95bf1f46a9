namespace Compiled.Runtime;

/// <summary>What a finished run did.</summary>
public sealed class PipelineResult
{
    internal PipelineResult(string pipelineName, PipelineOutcome outcome, TimeSpan elapsed, int parallelism, string source, long recordsRead, IReadOnlyList<SinkResult> sinks, FailureCounts failures)
    {
        PipelineName = pipelineName;
        Outcome = outcome;
        Elapsed = elapsed;
        Parallelism = parallelism;
        Source = source;
        RecordsRead = recordsRead;
        Sinks = sinks;
        Malformed = failures.Malformed;
        OperatorFailures = failures.OperatorFailures;
        DeadLettered = failures.DeadLettered;
        DeadLetterDestination = failures.DeadLettered > 0 ? failures.Destination : null;
        Filtered = failures.OneToOne && sinks.Count > 0 ? recordsRead - failures.OperatorFailures - sinks[^1].Records : null;
    }

    /// <summary>Records whose bytes could not be decoded (counted in no other figure).</summary>
    public long Malformed { get; }

    /// <summary>Input lines the malformed records covered: one each, more for a CSV record whose quoted field spanned lines.</summary>
    public long MalformedLines { get; init; }

    /// <summary>The run's delivery guarantee: exactly-once when its only sink stored records and positions together.</summary>
    public DeliveryGuarantee Delivery { get; init; }

    /// <summary>Records an operator threw on.</summary>
    public long OperatorFailures { get; }

    /// <summary>Failed records written to the dead-letter sink.</summary>
    public long DeadLettered { get; }

    /// <summary>Where dead letters went, when there were any.</summary>
    public string? DeadLetterDestination { get; }

    /// <summary>
    /// Records dropped by filters, when the chain is one record in, at most one out (no flatMap): records read =
    /// written to the last sink + filtered + operator failures. Null otherwise.
    /// </summary>
    public long? Filtered { get; }

    /// <summary>Records in: decoded records plus malformed ones.</summary>
    public long RecordsIn => RecordsRead + Malformed;

    /// <summary>The pipeline's name.</summary>
    public string PipelineName { get; }

    /// <summary>Whether the input ended or the run was asked to stop.</summary>
    public PipelineOutcome Outcome { get; }

    /// <summary>
    /// Whether the run was stopped before the end of a bounded input whose source stores no positions (files that are
    /// not followed, a collection, a counted generator): the input was read only in part, and a rerun starts it over.
    /// The host exits with <see cref="ExitCodes.StoppedBeforeEnd"/> then.
    /// </summary>
    public bool StoppedBeforeEnd { get; init; }

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

    /// <summary>
    /// Records the windows dropped as too late for every window they belong to — whether or not a <c>[LateData]</c>
    /// sink received them (then they are also in its count).
    /// </summary>
    public long LateRecords { get; init; }

    /// <summary>The run's checkpoints of window state (windows behind a source that commits positions), else null.</summary>
    public StateSummary? State { get; init; }

    /// <summary>Per window: records dropped as late.</summary>
    public IReadOnlyList<WindowSummary> Windows { get; init; } = [];

    /// <summary>Per lookup join: how its cache served the records and how often it asked the table.</summary>
    public IReadOnlyList<LookupSummary> Lookups { get; init; } = [];

    /// <summary>Per asynchronous transform: its calls, retries, timeouts and failures.</summary>
    public IReadOnlyList<AsyncSummary> AsyncTransforms { get; init; } = [];
}

/// <summary>What one asynchronous transform of a run did, over all its partitions.</summary>
/// <param name="Transform">The method's name.</param>
/// <param name="Calls">Calls made, retries included.</param>
/// <param name="Retries">Calls that were a retry of a failed attempt.</param>
/// <param name="TimedOut">Attempts that exceeded the timeout.</param>
/// <param name="Failed">Records that failed every attempt and went to the error policy.</param>
/// <param name="PeakInFlight">The most calls one partition had in flight at once (never above its MaxInFlight).</param>
public sealed record AsyncSummary(string Transform, long Calls, long Retries, long TimedOut, long Failed, int PeakInFlight);

/// <summary>What one lookup join of a run did, over all its partitions.</summary>
/// <param name="Lookup">The lookup member's name.</param>
/// <param name="CacheHits">Records whose key was in the cache (and fresh).</param>
/// <param name="KeysFetched">Keys asked of the table (each distinct key once per batch that lacked it).</param>
/// <param name="Fetches">Calls to the table's reader: one per batch with keys to fetch.</param>
/// <param name="RowsFetched">Rows the table returned.</param>
/// <param name="Unmatched">Records whose key had no row: dropped by an inner join, passed on alone by a left-outer one.</param>
public sealed record LookupSummary(string Lookup, long CacheHits, long KeysFetched, long Fetches, long RowsFetched, long Unmatched);

/// <summary>What one window of a run did.</summary>
/// <param name="Window">The window member's name.</param>
/// <param name="LateRecords">Records too late for every window they belong to.</param>
/// <param name="LateSink">The <c>[LateData]</c> sink that received them, or null: they were dropped (and counted).</param>
public sealed record WindowSummary(string Window, long LateRecords, string? LateSink)
{
    /// <summary>Keys whose state outlived the window's time-to-live and was dropped (running aggregates).</summary>
    public long ExpiredKeys { get; init; }

    /// <summary>Whether the stage is a join of two streams (its late records met nothing) rather than a window.</summary>
    public bool IsJoin { get; init; }
}

/// <summary>What a run did with its window state's checkpoints.</summary>
/// <param name="Location">Where the checkpoints are (a directory, or the exactly-once sink's tables; no secrets).</param>
/// <param name="Restored">The checkpoint restored at the start, or null (the run started empty).</param>
/// <param name="Written">Checkpoints completed by this run.</param>
/// <param name="KeptOpen">Whether the run stopped with a final checkpoint, keeping its open windows for the next run.</param>
public sealed record StateSummary(string Location, long? Restored, long Written, bool KeptOpen);

/// <summary>How a run ended without failing.</summary>
public enum PipelineOutcome
{
    /// <summary>The source reached the end of its input and everything was written.</summary>
    Completed,

    /// <summary>The run was asked to stop; sources stopped, in-flight batches drained, sinks flushed.</summary>
    Stopped,
}

/// <summary>The failure counts of a run.</summary>
internal readonly record struct FailureCounts(long Malformed, long OperatorFailures, long DeadLettered, string Destination, bool OneToOne);

/// <summary>What one connector sink received.</summary>
/// <param name="Name">The sink member's name.</param>
/// <param name="Description">The connector's description.</param>
/// <param name="Records">Records written.</param>
public sealed record SinkResult(string Name, string Description, long Records);
