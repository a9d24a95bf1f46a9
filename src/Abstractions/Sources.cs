namespace Compiled;

/// <summary>
/// A connector that produces records of type <typeparamref name="T"/>. The runtime opens it once, asks it for one
/// reader per pipeline partition (the source decides how its splits — collection slices, file chunks, Kafka
/// partitions, connections — are spread over those readers), and closes it after every reader is disposed.
/// Constructors of sources only store configuration: nothing is opened before <see cref="OpenAsync"/>.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public interface ISource<T>
{
    /// <summary>Prepares the source for a run with <see cref="SourceContext{T}.Parallelism"/> partitions.</summary>
    ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken);

    /// <summary>Creates the reader of partition <paramref name="partition"/> (0-based, below the parallelism).</summary>
    ISourceReader<T> CreateReader(int partition);

    /// <summary>Releases what <see cref="OpenAsync"/> acquired. Called once, after every reader is disposed.</summary>
    ValueTask CloseAsync(CancellationToken cancellationToken);

    /// <summary>A short, secret-free description for plans and summaries, e.g. <c>collection (2 records)</c>.</summary>
    string Describe() => GetType().Name;
}

/// <summary>
/// Reads the batches of one pipeline partition. A batch returned by <see cref="ReadAsync"/> stays valid until the next
/// call; the runtime processes it completely before asking for the next one.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public interface ISourceReader<T> : IAsyncDisposable
{
    /// <summary>
    /// Returns the next batch, or <see cref="SourceBatch{T}.End"/> when a bounded input is exhausted. An unbounded
    /// source waits for data; when <paramref name="cancellationToken"/> is cancelled (the run is stopping) it may
    /// throw <see cref="OperationCanceledException"/> or return <see cref="SourceBatch{T}.End"/>.
    /// </summary>
    ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Called when every record returned so far by this reader has been made durable by every sink. Sources with
    /// positions (Kafka offsets, file positions) commit them here; this is what makes delivery at-least-once.
    /// </summary>
    ValueTask CommitAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
}

/// <summary>One batch from a source reader: a run of records, or the end of the input.</summary>
/// <typeparam name="T">The record type.</typeparam>
public readonly struct SourceBatch<T>
{
    private SourceBatch(ReadOnlyMemory<T> records, bool isEnd, IRecordOrigins? origins)
    {
        Records = records;
        IsEnd = isEnd;
        Origins = origins;
    }

    /// <summary>The records of the batch (empty at the end, or when a reader woke up without data).</summary>
    public ReadOnlyMemory<T> Records { get; }

    /// <summary>True when the input is exhausted: the reader has nothing more, now or later.</summary>
    public bool IsEnd { get; }

    /// <summary>Where each record came from (file and line, offset, raw bytes), when the source knows; for dead letters.</summary>
    public IRecordOrigins? Origins { get; }

    /// <summary>The end of the input.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000:Do not declare static members on generic types", Justification = "Reads naturally at call sites, as ImmutableArray<T>.Empty does.")]
    public static SourceBatch<T> End => new(default, isEnd: true, origins: null);

    /// <summary>A batch of records (an empty one means "nothing yet", not the end).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000:Do not declare static members on generic types", Justification = "Reads naturally at call sites, as ImmutableArray<T>.Empty does.")]
    public static SourceBatch<T> Of(ReadOnlyMemory<T> records, IRecordOrigins? origins = null) => new(records, isEnd: false, origins);
}

/// <summary>What a source is told when a run starts.</summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class SourceContext<T>
{
    /// <summary>Creates a context.</summary>
    public SourceContext(string pipelineName, string sourceName, int parallelism, int batchSize, RecordSchema<T>? schema, IDeadLetterChannel? deadLetters = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        PipelineName = pipelineName;
        SourceName = sourceName;
        Parallelism = parallelism;
        BatchSize = batchSize;
        Schema = schema;
        DeadLetters = deadLetters ?? FailFastDeadLetterChannel.Instance;
    }

    /// <summary>The pipeline's name.</summary>
    public string PipelineName { get; }

    /// <summary>Where to report records that fail to decode (it applies the pipeline's error policy).</summary>
    public IDeadLetterChannel DeadLetters { get; }

    /// <summary>The name of the source member in the pipeline.</summary>
    public string SourceName { get; }

    /// <summary>The number of partitions, and so of readers the runtime will create.</summary>
    public int Parallelism { get; }

    /// <summary>The preferred number of records per batch.</summary>
    public int BatchSize { get; }

    /// <summary>The compile-time schema of <typeparamref name="T"/>, when the record type has fields.</summary>
    public RecordSchema<T>? Schema { get; }
}
