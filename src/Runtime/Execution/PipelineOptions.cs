namespace Compiled.Runtime;

/// <summary>How a pipeline runs. Every default is a named constant with its reason.</summary>
public sealed class PipelineOptions
{
    /// <summary>
    /// Records per batch: 1024 records of a 32-byte struct are 32 KiB, which stays in L1/L2 between the fused loop and
    /// its output, while the per-batch costs (a virtual call, a queue hop, a sink call) are spread over a thousand records.
    /// </summary>
    public const int DefaultBatchSize = 1024;

    /// <summary>
    /// Batches queued in front of a decoupled sink, per partition: enough to overlap processing with the sink's I/O,
    /// few enough that memory stays bounded (at most capacity + 3 batches per sink and partition exist at once).
    /// </summary>
    public const int DefaultSinkQueueCapacity = 4;

    /// <summary>The largest batch size accepted: beyond it a batch no longer fits in cache and latency grows for nothing.</summary>
    public const int MaxBatchSize = 1 << 20;

    /// <summary>The largest parallelism accepted: far beyond any machine's cores; guards against typos such as 4000.</summary>
    public const int MaxParallelism = 1024;

    /// <summary>
    /// How long a stopping run may take to drain, flush and commit before it is aborted: 5 s, long enough for sinks to
    /// flush their last batches, short enough for an orchestrator's own kill timeout (Kubernetes waits 30 s).
    /// </summary>
    public static readonly TimeSpan DefaultGracePeriod = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often a partition whose source commits positions (Kafka) takes a checkpoint: 1 s. It bounds what a crash
    /// replays (at-least-once) and how long a sink transaction stays open (exactly-once), while a checkpoint — a wait
    /// for the sinks to flush — costs nothing noticeable once a second.
    /// </summary>
    public static readonly TimeSpan DefaultCheckpointInterval = TimeSpan.FromSeconds(1);

    /// <summary>How often sources that commit positions take a checkpoint. Default: <see cref="DefaultCheckpointInterval"/>.</summary>
    public TimeSpan CheckpointInterval { get; set; } = DefaultCheckpointInterval;

    /// <summary>
    /// Where checkpoints of keyed state are written, one folder per pipeline beneath it (<c>{StateDirectory}/{pipeline}/</c>).
    /// Used by pipelines with windows behind a source that commits positions (Kafka): the latest complete checkpoint is
    /// restored when the run starts. Default: <c>state</c> in the working directory. See docs/state.md.
    /// </summary>
    public string StateDirectory { get; set; } = "state";

    /// <summary>
    /// Where keyed state lives: <see cref="StateBackend.Memory"/> (the default; tables on the heap) or
    /// <see cref="StateBackend.Disk"/> (RocksDB in <c>{StateDirectory}/{pipeline}/live/</c>, the hottest
    /// <see cref="StateCacheKeys"/> keys of each partition in memory), for state larger than memory. Running aggregates
    /// and tumbling and sliding windows; sessions and joins are refused. See docs/state.md.
    /// </summary>
    public StateBackend StateBackend { get; set; } = StateBackend.Memory;

    /// <summary>
    /// With <see cref="StateBackend.Disk"/>: the most keys (for a window, pane entries) a keyed partition holds in memory. Default: 1,048,576 — about
    /// 40 MB per partition with a small key and accumulator (docs/state.md, "Sizing").
    /// </summary>
    public int StateCacheKeys { get; set; } = DefaultStateCacheKeys;

    /// <summary>The default of <see cref="StateCacheKeys"/>: a million keys of a small key and accumulator take about 40 MB, a fraction of any heap a job with that much state runs in.</summary>
    public const int DefaultStateCacheKeys = 1 << 20;

    /// <summary>How many complete checkpoints are kept (older ones are deleted). Default: 3.</summary>
    public int RetainedCheckpoints { get; set; } = 3;

    /// <summary>
    /// Stop with a savepoint: on a stop, the final checkpoint of the window state is also written to this directory
    /// (<c>chk-{id}/</c> with its manifest), kept until you delete it. Start another build or parallelism from it with
    /// <see cref="RestoreFrom"/>. Only for pipelines with windows behind a source that commits positions. See docs/state.md.
    /// </summary>
    public string? SavepointDirectory { get; set; }

    /// <summary>
    /// Restore from the newest complete checkpoint in this directory (a savepoint) instead of the state directory's.
    /// Only for pipelines with windows behind a source that commits positions. See docs/state.md.
    /// </summary>
    public string? RestoreFrom { get; set; }

    /// <summary>How long a stop may take before the run is aborted. Default: <see cref="DefaultGracePeriod"/>.</summary>
    public TimeSpan GracePeriod { get; set; } = DefaultGracePeriod;

    /// <summary>Where the run logs (start, stop, the first failed record, failures). Default: nowhere.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Receives the run's live state, for progress displays (see <see cref="PipelineMonitor"/>).</summary>
    public PipelineMonitor? Monitor { get; set; }

    /// <summary>The number of partitions (workers). Default: the processor count.</summary>
    public int Parallelism { get; set; } = Environment.ProcessorCount;

    /// <summary>The number of records per batch. Default: <see cref="DefaultBatchSize"/>.</summary>
    public int BatchSize { get; set; } = DefaultBatchSize;

    /// <summary>Batches queued in front of each decoupled sink writer. Default: <see cref="DefaultSinkQueueCapacity"/>.</summary>
    public int SinkQueueCapacity { get; set; } = DefaultSinkQueueCapacity;

    /// <summary>What to do with records that fail to decode or make an operator throw. Default: the pipeline's declared policy.</summary>
    public ErrorPolicy? ErrorPolicy { get; set; }

    /// <summary>Where dead letters go. Overrides <see cref="DeadLetterPath"/> and the pipeline's <c>[DeadLetters]</c> member.</summary>
    public ISink<DeadLetter>? DeadLetterSink { get; set; }

    /// <summary>
    /// A JSON Lines file for dead letters, overriding the pipeline's <c>[DeadLetters]</c> member. Without either:
    /// <c>{pipeline}.deadletters.jsonl</c> in the working directory.
    /// </summary>
    public string? DeadLetterPath { get; set; }

    /// <summary>
    /// The clock the run reads: processing-time windows, idle timeouts, watermark lag and the grace period follow it.
    /// Default: <see cref="TimeProvider.System"/>. Tests pass a fake one (the test driver uses its own).
    /// </summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Checks the options, throwing <see cref="PipelineConfigurationException"/> naming the bad option and what is valid.</summary>
    public void Validate(string pipelineName)
    {
        Check(Parallelism is >= 1 and <= MaxParallelism, pipelineName, "parallelism", Parallelism, $"1 to {MaxParallelism}");
        Check(BatchSize is >= 1 and <= MaxBatchSize, pipelineName, "batch size", BatchSize, $"1 to {MaxBatchSize}");
        Check(SinkQueueCapacity >= 1, pipelineName, "sink queue capacity", SinkQueueCapacity, "1 or more");
        if (CheckpointInterval <= TimeSpan.Zero)
        {
            throw new PipelineConfigurationException(pipelineName, $"Invalid checkpoint interval {CheckpointInterval}: it must be positive.");
        }

        if (GracePeriod <= TimeSpan.Zero)
        {
            throw new PipelineConfigurationException(pipelineName, $"Invalid grace period {GracePeriod}: it must be positive.");
        }

        Check(RetainedCheckpoints >= 1, pipelineName, "number of retained checkpoints", RetainedCheckpoints, "1 or more");
        Check(StateCacheKeys >= 1, pipelineName, "number of state cache keys", StateCacheKeys, "1 or more");
        if (string.IsNullOrWhiteSpace(StateDirectory))
        {
            throw new PipelineConfigurationException(pipelineName, "Invalid state directory: give a path.");
        }
    }

    private static void Check(bool valid, string pipelineName, string option, int value, string range)
    {
        if (!valid)
        {
            throw new PipelineConfigurationException(pipelineName, $"Invalid {option} {value}: it must be {range}.");
        }
    }
}
