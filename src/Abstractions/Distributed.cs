namespace Compiled;

/// <summary>
/// A source whose input partitions are shared out among several copies of the pipeline by a coordinator outside the
/// engine — a Kafka consumer group. A run with keyed state behind such a source, when it is configured as distributed,
/// runs one <em>assignment</em> at a time: it waits for a <see cref="PartitionLease"/>, restores the state of the leased
/// partitions from the exactly-once sink's store (<see cref="IPartitionedCheckpointCommitter"/>), runs until the
/// coordinator takes the partitions back, writes a last checkpoint and releases the lease.
/// </summary>
public interface IDistributedSource
{
    /// <summary>Whether this source was configured to run as one of several copies of the pipeline.</summary>
    bool IsDistributed { get; }

    /// <summary>
    /// Waits until the coordinator assigns this copy its share of the input partitions (joining the group the first
    /// time) and returns them. The next call returns the next assignment, after this one's lease was released.
    /// </summary>
    ValueTask<PartitionLease> AcquireAsync(string pipeline, CancellationToken cancellationToken);

    /// <summary>
    /// Leaves the group and joins it again: called after a commit found the partitions fenced (another copy claimed
    /// them while this one did not know, e.g. after a pause longer than the session timeout).
    /// </summary>
    ValueTask RejoinAsync(CancellationToken cancellationToken);

    /// <summary>Leaves the group for good (the pipeline stops).</summary>
    ValueTask LeaveAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The input partitions a coordinator assigned to this copy of a distributed pipeline, until it takes them back.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "Its token sources have no timers and are cancelled, never disposed: tokens handed out stay valid after the lease ends.")]
public sealed class PartitionLease
{
    private readonly CancellationTokenSource _revoked = new();
    private readonly CancellationTokenSource _lost = new();
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Creates a lease of <paramref name="partitions"/> (offsets -1: where to resume is the sink's to say).</summary>
    public PartitionLease(IReadOnlyList<SourcePosition> partitions)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        Partitions = partitions;
    }

    /// <summary>The leased partitions, in a fixed order (stream, then partition number).</summary>
    public IReadOnlyList<SourcePosition> Partitions { get; }

    /// <summary>Fires when the coordinator asks for the partitions back: the run checkpoints, then releases the lease.</summary>
    public CancellationToken Revoked => _revoked.Token;

    /// <summary>Fires when the partitions were lost (this copy's session expired): the run stops without committing.</summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>Completes when the run that used the lease has ended (<see cref="Release"/>).</summary>
    public Task Released => _released.Task;

    /// <summary>The coordinator asks for the partitions back.</summary>
    public void Revoke() => Cancel(_revoked);

    /// <summary>The partitions are gone already.</summary>
    public void Lose() => Cancel(_lost);

    /// <summary>The run that used the lease has ended; its last commit (if any) is done.</summary>
    public void Release() => _released.TrySetResult();

    private static void Cancel(CancellationTokenSource source)
    {
        source.Cancel();
    }
}

/// <summary>
/// An exactly-once sink that keeps the checkpoints of a distributed run per input partition (its offset, its fencing
/// epoch and the keyed state of the keys it carries), so that a partition's state moves with it from copy to copy.
/// </summary>
public interface IPartitionedCheckpointCommitter : ICheckpointCommitter
{
    /// <summary>
    /// Claims <paramref name="partitions"/> for this copy (a new epoch for each, which fences off their previous owner)
    /// and returns, in one transaction: each partition's stored offset (-1 when none) with its new
    /// <see cref="SourcePosition.Epoch"/>, and the state stored with it (<see cref="WindowState.Partition"/> is the
    /// input partition's number). <see cref="StoredCheckpoint.Id"/> is the highest checkpoint id among them (0: none).
    /// </summary>
    ValueTask<StoredCheckpoint> ClaimPartitionsAsync(string pipeline, IReadOnlyList<SourcePosition> partitions, CancellationToken cancellationToken);

    /// <summary>
    /// Commits, in one transaction, the rows kept aside for every checkpoint up to <paramref name="checkpoint"/>'s id,
    /// each position and the state of each partition (<see cref="WindowState.Partition"/>: the input partition's
    /// number) — only if every position's epoch is still the partition's current one; otherwise throws
    /// <see cref="FencedException"/> and commits nothing. Idempotent for a checkpoint already committed.
    /// </summary>
    ValueTask CommitPartitionsAsync(string pipeline, StoredCheckpoint checkpoint, CancellationToken cancellationToken);

    /// <summary>Where the per-partition checkpoints are kept, for messages (no secrets).</summary>
    string PartitionCheckpointLocation { get; }
}

/// <summary>
/// A commit was refused because another copy of the pipeline has claimed the partitions since this one did: nothing
/// was written. A distributed run gives its partitions up and joins the group again; a single run stops (exit 2).
/// </summary>
public sealed class FencedException : NonRetryableException
{
    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public FencedException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// A pipeline's <c>[KeyBy]</c> as the writing half of a repartition hop applies it to source records: which partition of
/// the hop's topic owns a record's key — the same in every process and every run, so that all of a key's records
/// meet in one partition — and the record's event time.
/// </summary>
/// <typeparam name="T">The source's record type.</typeparam>
public interface IRepartitionKey<T>
{
    /// <summary>Whether the records have an event time (else <see cref="PartitionOf"/> gives 0).</summary>
    bool HasEventTime { get; }

    /// <summary>
    /// The partition, of <paramref name="partitions"/>, that owns <paramref name="record"/>'s key, and its event time in
    /// milliseconds since the Unix epoch. Throws what the key selector throws (a null key: <see cref="ArgumentNullException"/>).
    /// </summary>
    int PartitionOf(in T record, int partitions, out long eventTime);
}

/// <summary>
/// A distributed source (<see cref="IDistributedSource"/>) whose input is not partitioned by the pipeline's
/// <c>[KeyBy]</c> key, so that a key's records are spread over partitions other copies hold: before the copy joins the
/// group, it prepares a repartition hop — an internal topic partitioned by the key — and runs its writing half beside
/// the keyed run, which then leases partitions of the hop, not of the input (Kafka Streams' repartition topic).
/// </summary>
/// <typeparam name="T">The source's record type.</typeparam>
public interface IRepartitionSource<T> : IDistributedSource
{
    /// <summary>Whether this source's input needs the hop (false: it is partitioned by the key already).</summary>
    bool Repartitions { get; }

    /// <summary>
    /// Creates the hop's topic for <paramref name="stage"/> (or checks the one another copy created) and returns a
    /// description of it for the log. From then on <see cref="IDistributedSource.AcquireAsync"/> leases the hop's
    /// partitions and the readers read them.
    /// </summary>
    ValueTask<string> PrepareRepartitionAsync(string pipeline, string stage, CancellationToken cancellationToken);

    /// <summary>
    /// Runs the writing half: reads this copy's share of the input and writes each record to the hop partition
    /// <paramref name="key"/> names, committing the input's positions every <paramref name="commitInterval"/> once
    /// what came before them is written. Ends when <paramref name="stopping"/> fires (after a last commit); faults when it
    /// cannot write.
    /// </summary>
    Task RunRepartitionAsync(IRepartitionKey<T> key, TimeSpan commitInterval, CancellationToken stopping);
}
