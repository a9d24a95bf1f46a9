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

    /// <summary>
    /// Whether this is one partition's part of an <em>aligned</em> checkpoint of a run with keyed state (barriers through
    /// the exchanges, <see cref="Sequence"/> is the run's checkpoint id). A sink that commits whole checkpoints itself
    /// (<see cref="ICheckpointCommitter"/>) keeps the rows of this checkpoint aside — it does not commit them — until
    /// <see cref="ICheckpointCommitter.CommitCheckpointAsync"/> commits every partition's rows, the positions and the
    /// state together. <see cref="Positions"/> is empty for a keyed partition's part.
    /// </summary>
    public bool Aligned { get; init; }
}

/// <summary>One keyed partition's snapshot of one window's state, as a checkpoint stores it.</summary>
/// <param name="Window">The window member's name.</param>
/// <param name="Schema">What the state's bytes mean (key and accumulator codecs, window spec), compared on restore.</param>
/// <param name="Partition">The keyed partition the snapshot is of.</param>
/// <param name="Bytes">The snapshot.</param>
public sealed record WindowState(string Window, string Schema, int Partition, ReadOnlyMemory<byte> Bytes);

/// <summary>A complete checkpoint of a run with keyed state: where every source partition resumes, and every window's state.</summary>
/// <param name="Id">The checkpoint's id (increasing over the pipeline's runs).</param>
/// <param name="Positions">The next position of every input partition read.</param>
/// <param name="State">Every keyed partition's snapshot of every window.</param>
public sealed record StoredCheckpoint(long Id, IReadOnlyList<SourcePosition> Positions, IReadOnlyList<WindowState> State)
{
    /// <summary>When the checkpoint was committed, when the store knows (for the restore's log line).</summary>
    public DateTimeOffset? Taken { get; init; }
}

/// <summary>
/// A transactional sink that is also the checkpoint store of a run with keyed state (windows behind Kafka): it commits
/// the rows every partition produced before a checkpoint's barriers (<see cref="Checkpoint.Aligned"/>), the source
/// positions and the windows' state in one transaction — exactly-once window results without two-phase commit.
/// </summary>
public interface ICheckpointCommitter
{
    /// <summary>
    /// Claims the pipeline's checkpoints for this run (a later run's claim fences this one off: its commits fail) and
    /// returns the last committed checkpoint, or null when there is none.
    /// </summary>
    ValueTask<StoredCheckpoint?> ClaimCheckpointAsync(string pipeline, CancellationToken cancellationToken);

    /// <summary>
    /// Commits, in one transaction, the rows the sink's writers kept aside for every checkpoint up to
    /// <paramref name="checkpoint"/>'s id, its positions and its state. Idempotent for a checkpoint already committed.
    /// The state's bytes (<see cref="WindowState.Bytes"/>) are valid only until the returned task completes: the runtime
    /// reuses their buffers for later checkpoints, so copy what must be kept.
    /// </summary>
    ValueTask CommitCheckpointAsync(string pipeline, StoredCheckpoint checkpoint, CancellationToken cancellationToken);

    /// <summary>Where the checkpoints are kept, for messages (no secrets).</summary>
    string CheckpointLocation { get; }
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
