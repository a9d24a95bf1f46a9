namespace Compiled;

/// <summary>
/// A connector that receives records of type <typeparamref name="T"/>. The runtime opens it once, creates one writer
/// per pipeline partition, and closes it after every writer is disposed. Constructors of sinks only store
/// configuration: nothing is opened before <see cref="OpenAsync"/>.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public interface ISink<T>
{
    /// <summary>Prepares the sink (connects, creates tables) before any record flows.</summary>
    ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken);

    /// <summary>Creates the writer of partition <paramref name="partition"/>.</summary>
    ISinkWriter<T> CreateWriter(int partition);

    /// <summary>Releases what <see cref="OpenAsync"/> acquired. Called once, after every writer is disposed.</summary>
    ValueTask CloseAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Whether the runtime calls the writers on the partition's own worker (<see cref="SinkExecution.Inline"/>: cheap,
    /// in-memory sinks) or behind a bounded queue on a worker of their own (<see cref="SinkExecution.Decoupled"/>:
    /// sinks that do I/O, so that processing overlaps writing and a slow sink slows the source down).
    /// </summary>
    SinkExecution Execution => SinkExecution.Decoupled;

    /// <summary>A short, secret-free description for plans and summaries, e.g. <c>sqlite people.db/people</c>.</summary>
    string Describe() => GetType().Name;
}

/// <summary>How the runtime calls a sink's writers.</summary>
public enum SinkExecution
{
    /// <summary>Behind a bounded queue of batches, on a worker of its own (the default).</summary>
    Decoupled,

    /// <summary>Directly on the partition's worker, after each batch.</summary>
    Inline,
}

/// <summary>Writes one partition's records. Calls on one writer never overlap.</summary>
/// <typeparam name="T">The record type.</typeparam>
public interface ISinkWriter<T> : IAsyncDisposable
{
    /// <summary>
    /// Writes (or buffers) a batch. The memory belongs to the caller and is reused once the returned task completes:
    /// a writer that keeps records must copy them.
    /// </summary>
    ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken);

    /// <summary>Makes everything written so far durable (committed, fsynced, acknowledged).</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Makes everything written so far durable as of <paramref name="checkpoint"/>. A transactional sink
    /// (<see cref="ITransactionalSink"/>) commits the records and <see cref="Checkpoint.Positions"/> in one
    /// transaction; any other sink just flushes.
    /// </summary>
    ValueTask CommitAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => FlushAsync(cancellationToken);

    /// <summary>
    /// Releases the writer of a partition that did not complete — the run failed or was aborted — instead of
    /// <see cref="IAsyncDisposable.DisposeAsync"/>. Nothing written since the last flush or commit may be presented
    /// as complete: a file sink leaves its <c>*.inprogress</c> file unrenamed, a transactional sink rolls back. The
    /// default disposes the writer, for writers whose dispose finalises nothing.
    /// </summary>
    ValueTask AbortAsync() => DisposeAsync();
}

/// <summary>What a sink is told when a run starts.</summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class SinkContext<T>
{
    /// <summary>Creates a context.</summary>
    public SinkContext(string pipelineName, string sinkName, int parallelism, int batchSize, RecordSchema<T>? schema)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        PipelineName = pipelineName;
        SinkName = sinkName;
        Parallelism = parallelism;
        BatchSize = batchSize;
        Schema = schema;
    }

    /// <summary>The pipeline's name.</summary>
    public string PipelineName { get; }

    /// <summary>The name of the sink member in the pipeline.</summary>
    public string SinkName { get; }

    /// <summary>The number of partitions, and so of writers the runtime will create.</summary>
    public int Parallelism { get; }

    /// <summary>The number of records per batch the runtime aims for.</summary>
    public int BatchSize { get; }

    /// <summary>The compile-time schema of <typeparamref name="T"/>, when the record type has fields.</summary>
    public RecordSchema<T>? Schema { get; }

    /// <summary>
    /// Writes a warning to the run's log, naming the pipeline and the sink: for what an operator should see although
    /// the run goes on, such as a failure that is being retried. Null outside a run.
    /// </summary>
    public Action<string>? Warn { get; init; }

    /// <summary>
    /// Where a sink reports records its destination rejected for good (an HTTP 400 for one record of a batch): reported
    /// with <see cref="FailureKind.Rejected"/>, they become dead letters under the pipeline's error policy and are
    /// durable before the source commits past them. Thread-safe: writers may report from their own tasks. Null outside a
    /// run; a sink without it must fail instead of dropping records.
    /// </summary>
    public IDeadLetterChannel? DeadLetters { get; init; }
}
