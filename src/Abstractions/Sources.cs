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

    /// <summary>
    /// Called in runs whose keyed state is checkpointed, once a checkpoint is complete: commit exactly
    /// <paramref name="positions"/> (what <see cref="Positions"/> returned at that checkpoint's barrier), not the
    /// reader's current positions, which may be past records the checkpoint does not cover. The default commits the
    /// current positions (<see cref="CommitAsync(CancellationToken)"/>), which is right only for readers without positions.
    /// </summary>
    ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken) => CommitAsync(cancellationToken);

    /// <summary>
    /// Whether this reader commits positions as it goes (Kafka): then the runtime takes a checkpoint every
    /// <c>CheckpointInterval</c> — the sinks make everything so far durable, then <see cref="CommitAsync(CancellationToken)"/> runs — so
    /// that a crash replays at most one interval. Readers of inputs that are read again from the start each run
    /// (files, collections) leave it false and commit only at the end.
    /// </summary>
    bool CommitsPositions => false;

    /// <summary>
    /// Whether <see cref="Positions"/> describe, right now, a point the reader can resume from exactly. A reader in the
    /// middle of something its positions cannot express (a change-data-capture source inside one split of its initial
    /// snapshot) says false, and the runtime postpones its interval checkpoint until it says true again.
    /// </summary>
    bool CanCheckpoint => true;

    /// <summary>The next position of each input partition this reader has returned records from (see <see cref="Checkpoint"/>).</summary>
    IReadOnlyList<SourcePosition> Positions => [];

    /// <summary>What the reader adds to a checkpoint for sinks that commit its positions themselves; null by default.</summary>
    object? CheckpointState => null;
}

/// <summary>One batch from a source reader: a run of records, or the end of the input.</summary>
/// <typeparam name="T">The record type.</typeparam>
public readonly struct SourceBatch<T>
{
    private SourceBatch(ReadOnlyMemory<T> records, bool isEnd, IRecordOrigins? origins, bool isIdle = false, SourceSplits? splits = null)
    {
        Records = records;
        IsEnd = isEnd;
        Origins = origins;
        IsIdle = isIdle;
        Splits = splits;
    }

    /// <summary>The records of the batch (empty at the end, or when a reader woke up without data).</summary>
    public ReadOnlyMemory<T> Records { get; }

    /// <summary>True when the input is exhausted: the reader has nothing more, now or later.</summary>
    public bool IsEnd { get; }

    /// <summary>
    /// True when the reader has nothing to read for now and cannot say when it will (no split assigned to its
    /// partition, no file yet in follow mode, no Kafka partition assigned): until it returns records again, its
    /// partition does not hold back the watermarks of the windows it feeds (Flink's idle source splits).
    /// </summary>
    public bool IsIdle { get; }

    /// <summary>Where each record came from (file and line, offset, raw bytes), when the source knows; for dead letters.</summary>
    public IRecordOrigins? Origins { get; }

    /// <summary>
    /// The splits the reader reads at once and which of them each run of this batch's records came from, when the
    /// reader has several (a Kafka reader's topic partitions): each split then keeps its own event-time watermark.
    /// Null for a reader that reads one input at a time.
    /// </summary>
    public SourceSplits? Splits { get; }

    /// <summary>The end of the input.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000:Do not declare static members on generic types", Justification = "Reads naturally at call sites, as ImmutableArray<T>.Empty does.")]
    public static SourceBatch<T> End => new(default, isEnd: true, origins: null);

    /// <summary>Nothing to read for now, and no promise when (see <see cref="IsIdle"/>); the runtime asks again.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000:Do not declare static members on generic types", Justification = "Reads naturally at call sites, as ImmutableArray<T>.Empty does.")]
    public static SourceBatch<T> Idle => new(default, isEnd: false, origins: null, isIdle: true);

    /// <summary>A batch of records (an empty one means "nothing yet", not the end).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000:Do not declare static members on generic types", Justification = "Reads naturally at call sites, as ImmutableArray<T>.Empty does.")]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0027:API with optional parameter(s) should have the most parameters amongst its public overloads", Justification = "Of(records) is every simple reader's call; the overload with splits is a different kind of batch, not a longer form of this one.")]
    public static SourceBatch<T> Of(ReadOnlyMemory<T> records, IRecordOrigins? origins = null) => new(records, isEnd: false, origins);

    /// <summary>
    /// A batch of records from several splits, in runs that <paramref name="splits"/> describes (see
    /// <see cref="SourceSplits"/>); the reader keeps <paramref name="splits"/> and updates it for its next batch.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000:Do not declare static members on generic types", Justification = "Reads naturally at call sites, as ImmutableArray<T>.Empty does.")]
    public static SourceBatch<T> Of(ReadOnlyMemory<T> records, IRecordOrigins? origins, SourceSplits splits)
    {
        ArgumentNullException.ThrowIfNull(splits);
        return new(records, isEnd: false, origins, splits: splits);
    }
}

/// <summary>
/// The splits one reader reads at once (a Kafka reader's topic partitions) — so that each keeps its own watermark, as
/// Flink's per-partition watermarks do — and the runs of the current batch's records by split.
/// </summary>
/// <remarks>
/// <para>Event time in a split can be expected to grow (up to the out-of-orderness); across splits it need not: a
/// reader that catches up on a backlog reads one partition's records minutes ahead of another's. The watermark of the
/// records a reader produces is therefore the minimum over its splits: a split holds it back from the moment it is
/// added until it is idle or removed, even before its first record (after a restart a lagging partition's records
/// must not arrive late). A split is idle when the reader has read all it has for now (a Kafka partition at its end);
/// it holds nothing back until its next record. When every split is idle the reader holds nothing back either (as a
/// reader returning <see cref="SourceBatch{T}.Idle"/>), and its watermark is the largest of theirs.</para>
/// <para>The reader owns the object and changes it only inside its <c>ReadAsync</c>; the runtime reads it after.</para>
/// </remarks>
public sealed class SourceSplits
{
    private readonly List<int> _splits = [];
    private readonly List<bool> _idle = [];
    private readonly List<long?> _reached = [];
    private readonly List<SplitRun> _runs = [];
    private bool _runOpen;

    /// <summary>The number of splits the reader reads now.</summary>
    public int Count => _splits.Count;

    /// <summary>The id of the <paramref name="index"/>-th split.</summary>
    public int this[int index] => _splits[index];

    /// <summary>Whether the reader reads split <paramref name="split"/> now.</summary>
    public bool Contains(int split) => _splits.Contains(split);

    /// <summary>Whether the <paramref name="index"/>-th split is idle.</summary>
    public bool IsIdleAt(int index) => _idle[index];

    /// <summary>The event time the <paramref name="index"/>-th split says it has reached (<see cref="SetReached"/>), or null: its records' largest.</summary>
    public long? ReachedAt(int index) => _reached[index];

    /// <summary>The runs of the current batch: record counts by split, in the batch's order.</summary>
    public IReadOnlyList<SplitRun> Runs => _runs;

    /// <summary>The reader now reads split <paramref name="split"/> (an id of its choosing, ≥ 0); it holds the watermark back until it has records or is idle.</summary>
    public void Add(int split)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(split);
        if (!_splits.Contains(split))
        {
            _splits.Add(split);
            _idle.Add(false);
            _reached.Add(null);
        }
    }

    /// <summary>The reader no longer reads split <paramref name="split"/> (a revoked partition).</summary>
    public void Remove(int split)
    {
        var index = _splits.IndexOf(split);
        if (index >= 0)
        {
            _splits.RemoveAt(index);
            _idle.RemoveAt(index);
            _reached.RemoveAt(index);
        }
    }

    /// <summary>
    /// Split <paramref name="split"/> has reached <paramref name="eventTime"/>: from now on the watermark takes this for
    /// the split's largest event time, not its records'. For a split that interleaves several inputs at different
    /// progress — a partition of a repartition topic, fed by the writers of every source partition — whose records'
    /// largest event time runs ahead of its slowest input; its writers' marks say how far all of them have got. It only
    /// moves forward.
    /// </summary>
    public void SetReached(int split, long eventTime)
    {
        var index = _splits.IndexOf(split);
        if (index >= 0)
        {
            _reached[index] = _reached[index] is { } reached ? Math.Max(reached, eventTime) : eventTime;
        }
    }

    /// <summary>Split <paramref name="split"/> has nothing more to read for now (or again has, with <paramref name="idle"/> false).</summary>
    public void SetIdle(int split, bool idle)
    {
        var index = _splits.IndexOf(split);
        if (index >= 0)
        {
            _idle[index] = idle;
        }

        _runOpen = false; // the split's next record starts a run of its own, and clears the idleness again
    }

    /// <summary>Starts a new batch: forgets the runs of the last one.</summary>
    public void ClearRuns()
    {
        _runs.Clear();
        _runOpen = false;
    }

    /// <summary>The batch's next <paramref name="count"/> records came from split <paramref name="split"/>, which is no longer idle.</summary>
    public void Append(int split, int count)
    {
        if (count <= 0)
        {
            return;
        }

        Append(split);
        if (count > 1)
        {
            _runs[^1] = new SplitRun(split, _runs[^1].Count + count - 1);
        }
    }

    /// <summary>The batch's next record came from split <paramref name="split"/>, which is no longer idle.</summary>
    public void Append(int split)
    {
        if (_runOpen && _runs[^1].Split == split)
        {
            _runs[^1] = new SplitRun(split, _runs[^1].Count + 1);
            return;
        }

        SetIdle(split, idle: false);
        _runs.Add(new SplitRun(split, 1));
        _runOpen = true;
    }
}

/// <summary>
/// A reader whose splits carry state of their own — what a partition of a repartition topic has deduplicated, and how
/// far its writers have got. In a distributed run, where split i's keys are keyed partition i's, each checkpoint keeps
/// a split's state with that partition's state, taken at the same cut (it travels with the checkpoint's barrier), and
/// the run that takes the partition over finds it in <see cref="SourceContext{T}.RestoredSplitStates"/>.
/// </summary>
public interface ISplitStateReader
{
    /// <summary>Appends split <paramref name="split"/>'s state as of the records handed on so far; nothing when it has none.</summary>
    void WriteSplitState(int split, System.Buffers.IBufferWriter<byte> output);
}

/// <summary><paramref name="Count"/> consecutive records of a batch, from split <paramref name="Split"/>.</summary>
public readonly record struct SplitRun(int Split, int Count);

/// <summary>What a source is told when a run starts.</summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class SourceContext<T>
{
    /// <summary>Creates a context.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0027:API with optional parameter(s) should have the most parameters amongst its public overloads", Justification = "The short form a test or a wrapping source writes; the runtime uses the full one, whose parameters are all required.")]
    public SourceContext(string pipelineName, string sourceName, int parallelism, int batchSize, RecordSchema<T>? schema, IDeadLetterChannel? deadLetters = null)
        : this(pipelineName, sourceName, parallelism, batchSize, schema, deadLetters, DeliveryGuarantee.AtLeastOnce, null, null)
    {
    }

    /// <summary>Creates a context for a run with a delivery guarantee and a checkpoint hook.</summary>
    public SourceContext(
        string pipelineName,
        string sourceName,
        int parallelism,
        int batchSize,
        RecordSchema<T>? schema,
        IDeadLetterChannel? deadLetters,
        DeliveryGuarantee delivery,
        ITransactionalSink? positionStore,
        Func<int, CancellationToken, ValueTask>? checkpoint)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        PipelineName = pipelineName;
        SourceName = sourceName;
        Parallelism = parallelism;
        BatchSize = batchSize;
        Schema = schema;
        DeadLetters = deadLetters ?? FailFastDeadLetterChannel.Instance;
        Delivery = delivery;
        PositionStore = positionStore;
        _checkpoint = checkpoint;
    }

    private readonly Func<int, CancellationToken, ValueTask>? _checkpoint;

    /// <summary>The run's delivery guarantee.</summary>
    public DeliveryGuarantee Delivery { get; }

    /// <summary>
    /// Under <see cref="DeliveryGuarantee.ExactlyOnce"/>, the transactional sink that stores this source's positions:
    /// the source resumes from <see cref="ITransactionalSink.ClaimPositionsAsync"/> rather than from its own commits.
    /// </summary>
    public ITransactionalSink? PositionStore { get; }

    /// <summary>
    /// Takes a checkpoint of partition <paramref name="partition"/> now: everything its reader returned so far is made
    /// durable by the sinks (with the reader's positions, for transactional sinks), then the reader's
    /// <see cref="ISourceReader{T}.CommitAsync(CancellationToken)"/> runs. Call it only from inside that reader's own
    /// <see cref="ISourceReader{T}.ReadAsync"/> — a Kafka reader does when partitions are revoked, before it lets them go.
    /// </summary>
    public ValueTask CheckpointAsync(int partition, CancellationToken cancellationToken)
        => _checkpoint?.Invoke(partition, cancellationToken) ?? ValueTask.CompletedTask;

    /// <summary>
    /// Writes an informational line to the pipeline's log (for events an operator wants to see, such as a Kafka
    /// rebalance moving partitions). Not for per-record messages.
    /// </summary>
    public Action<string> Inform { get; init; } = static _ => { };

    /// <summary>
    /// Whether the run checkpoints keyed state (windows behind this source): the positions a checkpoint records must
    /// describe every record read before it, so input partitions must not move between this run's readers while it runs —
    /// a source assigns them to readers itself instead of letting a consumer group rebalance them.
    /// </summary>
    public bool CheckpointsState { get; init; }

    /// <summary>
    /// The positions of the checkpoint the run restored (empty when none): a reader resumes each input partition listed
    /// here at its offset, before any committed or configured start position.
    /// </summary>
    public IReadOnlyList<SourcePosition> RestoredPositions { get; init; } = [];

    /// <summary>
    /// In a distributed run (<see cref="IDistributedSource"/>), the input partitions this copy holds now, in order; null
    /// otherwise. A source reads only these: the i-th by reader i mod <see cref="Parallelism"/>, with i as its split id
    /// (<see cref="SourceSplits"/>) — the run routes each split's records to keyed partition i, which owns its state.
    /// </summary>
    public IReadOnlyList<SourcePosition>? Assignment { get; init; }

    /// <summary>
    /// In a distributed run, what a reader that implements <see cref="ISplitStateReader"/> wrote of each split at the
    /// checkpoint the run restored, by split id (the index in <see cref="Assignment"/>); empty otherwise.
    /// </summary>
    public IReadOnlyDictionary<int, ReadOnlyMemory<byte>> RestoredSplitStates { get; init; } = new Dictionary<int, ReadOnlyMemory<byte>>();

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

    /// <summary>
    /// The context of source <paramref name="sourceName"/> read as part of this one (a member of a union of sources):
    /// the same run, with that name, and <paramref name="checkpoint"/> for <see cref="CheckpointAsync"/>.
    /// </summary>
    public SourceContext<T> ForMember(string sourceName, Func<int, CancellationToken, ValueTask>? checkpoint)
        => new(PipelineName, sourceName, Parallelism, BatchSize, Schema, DeadLetters, Delivery, PositionStore, checkpoint)
        {
            Inform = Inform,
            CheckpointsState = CheckpointsState,
            RestoredPositions = RestoredPositions,
        };
}
