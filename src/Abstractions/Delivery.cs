namespace Compiled;

/// <summary>
/// A position in a replayable, partitioned input: the offset of the next record to read in one partition of one
/// stream (a Kafka topic partition). A source that reports positions can be resumed from them exactly.
/// </summary>
/// <param name="Stream">The stream: a topic name.</param>
/// <param name="Partition">The partition of the stream.</param>
/// <param name="Offset">The offset of the next record to read (the last one processed + 1); -1 when none is stored.</param>
/// <param name="Epoch">
/// The fencing token of the reader that owns the partition, from <see cref="ITransactionalSink.ClaimPositionsAsync"/>:
/// a transactional sink stores a position only while the epoch it was claimed with is still current, so a reader that
/// lost its partitions without knowing (a zombie) cannot overwrite the new owner's progress.
/// </param>
public readonly record struct SourcePosition(string Stream, int Partition, long Offset, long Epoch = 0)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Stream}[{Partition}]@{Offset}";
}

/// <summary>
/// A consistent cut of one pipeline partition, handed to its sink writers: every record the partition's reader
/// returned before <see cref="Positions"/> was taken has been processed and handed to the writer; the writer makes
/// them durable and — if it is transactional — stores the positions in the same transaction.
/// </summary>
public sealed class Checkpoint
{
    /// <summary>Creates a checkpoint.</summary>
    public Checkpoint(string pipeline, string source, int partition, long sequence, IReadOnlyList<SourcePosition> positions, object? sourceState = null)
    {
        ArgumentNullException.ThrowIfNull(positions);
        Pipeline = pipeline;
        Source = source;
        Partition = partition;
        Sequence = sequence;
        Positions = positions;
        SourceState = sourceState;
    }

    /// <summary>The pipeline's name: transactional sinks key stored positions by it.</summary>
    public string Pipeline { get; }

    /// <summary>The source member's name.</summary>
    public string Source { get; }

    /// <summary>The pipeline partition the checkpoint is of.</summary>
    public int Partition { get; }

    /// <summary>Counts the partition's checkpoints in this run, from 1.</summary>
    public long Sequence { get; }

    /// <summary>The next position of every input partition the reader has read from (empty for sources without positions).</summary>
    public IReadOnlyList<SourcePosition> Positions { get; }

    /// <summary>What the source adds for sinks that commit its positions themselves (a Kafka consumer's group metadata).</summary>
    public object? SourceState { get; }
}

/// <summary>
/// A sink that can make the output of a checkpoint and the source positions it came from durable together, in one
/// transaction: the basis of exactly-once delivery. Implemented by sinks such as <c>PostgresSink</c> (rows and
/// offsets in one database transaction) and the transactional <c>KafkaSink</c> (records and consumer offsets in one
/// Kafka transaction).
/// </summary>
public interface ITransactionalSink
{
    /// <summary>Whether this sink was configured to store positions transactionally (exactly-once).</summary>
    bool IsTransactional { get; }

    /// <summary>
    /// Whether the sink commits the source's positions to the source system itself (a Kafka transaction sending
    /// consumer offsets): then the source must not commit them. False when the sink stores them in its own store.
    /// </summary>
    bool CommitsSourcePositions { get; }

    /// <summary>
    /// Claims input partitions for a reader that was just assigned them, and returns where it resumes: for each
    /// partition its stored offset (-1 when none) and a new <see cref="SourcePosition.Epoch"/>, which fences off any
    /// earlier owner. Returns null when positions live in the source system (<see cref="CommitsSourcePositions"/>).
    /// Called by the source on assignment (start, rebalance) — after the sink's <c>OpenAsync</c>.
    /// </summary>
    ValueTask<IReadOnlyList<SourcePosition>?> ClaimPositionsAsync(string pipeline, string source, IReadOnlyList<SourcePosition> partitions, CancellationToken cancellationToken);
}

/// <summary>What a run promises about each input record reaching the sinks.</summary>
public enum DeliveryGuarantee
{
    /// <summary>
    /// Every record reaches every sink at least once: positions are committed only after the sinks made the records
    /// durable, so after a crash the uncommitted tail is read again (and may be written twice).
    /// </summary>
    AtLeastOnce,

    /// <summary>
    /// Every record's effect is stored exactly once: the pipeline's single transactional sink stores the records
    /// and the positions they came from atomically, and the source resumes from those positions.
    /// </summary>
    ExactlyOnce,
}
