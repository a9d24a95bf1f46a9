namespace Compiled.Runtime;

/// <summary>
/// The operator of one keyed partition, behind a hash exchange: records go in with <see cref="Add"/>, results come out
/// of <see cref="Results"/>; <see cref="Advance"/> moves its watermark. Windows and lookup joins are keyed operators.
/// Not thread-safe: one partition's worker owns it.
/// </summary>
public abstract class KeyedOperator<TKey, TIn, TResult>
    where TKey : notnull
{
    /// <summary>The operator's watermark: no record at or before it is expected any more. Starts at <see cref="long.MinValue"/>.</summary>
    public long Watermark { get; protected set; } = long.MinValue;

    /// <summary>
    /// The watermark the partition's inputs would have sent at the last checkpoint barrier had every one of them been
    /// idle: the largest event time they had read, less the out-of-orderness (restored with the state). After a restart
    /// the inputs know nothing of what they read before it; when every one of them is idle, the watermark moves to this,
    /// as it would have in a run that had gone on. <see cref="long.MinValue"/> when unknown.
    /// </summary>
    public long Reached { get; set; } = long.MinValue;

    /// <summary>
    /// In a distributed run: the state of the source split whose keys this partition holds, as of the last barrier
    /// (<see cref="ISplitStateReader"/>); kept in the snapshot's header, and handed back to the reader on restore.
    /// </summary>
    internal byte[]? SplitState { get; set; }

    /// <summary>Results emitted so far; the caller reads and resets it.</summary>
    public Compiled.RecordBuffer<TResult> Results { get; } = new();

    /// <summary>Where records too late for every window go; null drops them (they are still counted).</summary>
    public Compiled.RecordBuffer<TIn>? Late { get; set; }

    /// <summary>Records that were too late for every window they belong to.</summary>
    public long LateRecords { get; protected set; }

    /// <summary>Entries held in state now (keys × windows, sessions).</summary>
    public abstract int StateEntries { get; }

    /// <summary>Keys dropped because their state outlived its time-to-live.</summary>
    public long ExpiredEntries { get; protected set; }

    /// <summary>The run's clock (processing time, Unix ms) when the current batch arrived: what a time-to-live counts from.</summary>
    public long Now { get; set; }

    /// <summary>
    /// Runs before <see cref="Add"/> for every batch, on the partition's worker, and may wait: a lookup join fetches the
    /// rows the batch needs here, so that <see cref="Add"/> stays synchronous. Nothing to do by default.
    /// </summary>
    public virtual ValueTask PrepareAsync(ReadOnlyMemory<Keyed<TKey, TIn>> batch, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Drops state past its time-to-live (operators that have one); cheap when nothing is due.</summary>
    public virtual void Expire(long now)
    {
    }

    /// <summary>Adds a batch of records. Records whose windows have already fired (within the lateness) emit updates at once.</summary>
    public abstract void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch);

    /// <summary>Moves the watermark to <paramref name="watermark"/> (if it is later): fires the windows it completes and drops state past the lateness.</summary>
    public abstract void Advance(long watermark);

    /// <summary>
    /// The most results <see cref="Advance"/> emits before it pauses with <see cref="Firing"/> set, so that what a
    /// firing emits reaches the sinks in batches instead of piling up beside the state (the run sets its batch size).
    /// </summary>
    internal int FiringBatch { get; set; } = int.MaxValue;

    /// <summary>Whether the last <see cref="Advance"/> paused with results still to emit: <see cref="ContinueFiring"/> emits the next batch of them.</summary>
    internal bool Firing { get; private protected set; }

    /// <summary>Emits the next batch of a paused firing (at most <see cref="FiringBatch"/> results) and finishes the advance once none is left.</summary>
    internal virtual void ContinueFiring()
    {
    }

    /// <summary>Emits the rest of a paused firing at once: a record or a watermark arrived before the partition emitted it.</summary>
    private protected void FinishFiring()
    {
        if (!Firing)
        {
            return;
        }

        var batch = FiringBatch;
        FiringBatch = int.MaxValue;
        try
        {
            ContinueFiring();
        }
        finally
        {
            FiringBatch = batch;
        }
    }

    /// <summary>A checkpoint of a paused firing would hold windows half emitted; the partition emits the whole firing before it snapshots.</summary>
    private protected void ThrowIfFiring()
    {
        if (Firing)
        {
            throw new InvalidOperationException("A window cannot be checkpointed while it fires: its partition emits the whole firing first.");
        }
    }

    /// <summary>
    /// Sets the watermark of an operator restored from a checkpoint (the earliest of the checkpointed partitions'): what
    /// was late before the checkpoint stays late after it.
    /// </summary>
    internal void RestoreWatermark(long watermark) => Watermark = watermark;

    /// <summary>Counts a record too late for every window and hands it to <see cref="Late"/>.</summary>
    protected void Dropped(in TIn record)
    {
        LateRecords++;
        Late?.Add(record);
    }
}

/// <summary>
/// The keyed window state of one partition: records go in with <see cref="KeyedOperator{TKey, TIn, TResult}.Add"/>,
/// results come out when <see cref="KeyedOperator{TKey, TIn, TResult}.Advance"/> moves the watermark past window ends.
/// </summary>
public abstract class WindowOperator<TKey, TIn, TOut> : KeyedOperator<TKey, TIn, WindowResult<TKey, TOut>>
    where TKey : notnull
{
    /// <summary>Creates the operator.</summary>
    protected WindowOperator(long allowedLatenessMs)
    {
        LatenessMs = allowedLatenessMs;
    }

    /// <summary>The allowed lateness, milliseconds.</summary>
    protected long LatenessMs { get; }
}

/// <summary>Creates window operators.</summary>
public static class WindowOperator
{
    /// <summary>Creates the operator for <paramref name="window"/>, aggregating with <typeparamref name="TAgg"/>.</summary>
    public static WindowOperator<TKey, TIn, TOut> Create<TKey, TIn, TAgg, TAcc, TOut>(Window window, TimeSpan allowedLateness, TimeSpan timeToLive = default)
        where TKey : notnull
        where TAgg : IAggregator<TIn, TAcc, TOut>
    {
        var lateness = TimeMath.Millis(allowedLateness);
        if (lateness < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(allowedLateness), allowedLateness, "Allowed lateness cannot be negative.");
        }

        return window.Kind switch
        {
            WindowKind.Session => new SessionWindowOperator<TKey, TIn, TAgg, TAcc, TOut>(TimeMath.Millis(window.Size), lateness),
            WindowKind.Running => new RunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut>(TimeMath.Millis(timeToLive)),
            _ => new PaneWindowOperator<TKey, TIn, TAgg, TAcc, TOut>(TimeMath.Millis(window.Size), TimeMath.Millis(window.Slide), lateness),
        };
    }
}
