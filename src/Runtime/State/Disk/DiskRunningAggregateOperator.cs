namespace Compiled.Runtime;

/// <summary>
/// A running aggregate per key whose state lives in RocksDB (<c>StateBackend=Disk</c>), for key spaces larger than
/// memory: a <see cref="DiskTable{TKey, TAcc}"/> keyed by the window's key, its hottest keys in memory. Results are the
/// in-memory operator's, record for record.
/// </summary>
internal sealed class DiskRunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut> : WindowOperator<TKey, TIn, TOut>, IWindowState<TKey, TAcc>, IDisposable
    where TKey : notnull
    where TAgg : IAggregator<TIn, TAcc, TOut>
{
    private readonly DiskTable<TKey, TAcc> _table;
    private readonly string _root;
    private readonly string _restoreRoot;
    private readonly string _name;
    private long _distinct;

    /// <param name="root">The pipeline's state folder: the live database goes in <c>live/</c>, checkpoints beside <c>chk-N/</c>.</param>
    /// <param name="name">The window's name and partition, a folder name (<c>Total-p0</c>).</param>
    /// <param name="capacity">The most keys held in memory.</param>
    /// <param name="keys">How keys are written to RocksDB.</param>
    /// <param name="accumulators">How accumulators are written to RocksDB.</param>
    /// <param name="restoreFrom">The folder the restored checkpoint is in, when it is not <paramref name="root"/> (a savepoint's).</param>
    public DiskRunningAggregateOperator(string root, string name, int capacity, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, string? restoreFrom = null)
        : base(0)
    {
        _root = root;
        _restoreRoot = restoreFrom ?? root;
        _name = name;
        _table = new DiskTable<TKey, TAcc>(Path.Combine(root, "live", name), capacity, keys, accumulators);
    }

    /// <summary>Keys held, in memory or on disk.</summary>
    public override int StateEntries => (int)Math.Min(_distinct, int.MaxValue);

    /// <summary>Reads the keys of <paramref name="batch"/> that are not in memory from RocksDB, in one MultiGet.</summary>
    public override ValueTask PrepareAsync(ReadOnlyMemory<Keyed<TKey, TIn>> batch, CancellationToken cancellationToken)
    {
        _table.BeginPrepare();
        foreach (ref readonly var record in batch.Span)
        {
            _table.Need(record.Key);
        }

        _table.Load();
        return ValueTask.CompletedTask;
    }

    public override void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch)
    {
        for (var i = 0; i < batch.Length; i++)
        {
            ref readonly var record = ref batch[i];
            ref var entry = ref _table.Find(record.Key);
            var seen = entry.Exists;
            TAgg.Add(ref entry.Acc!, record.Record);
            entry.Exists = true;
            entry.Dirty = true;
            entry.Used = true;
            if (!seen)
            {
                _distinct++;
            }

            Results.Add(new WindowResult<TKey, TOut>(record.Key, long.MinValue, long.MaxValue, TAgg.Result(entry.Acc), seen));
        }

        _table.Trim();
    }

    public override void Advance(long watermark) => Watermark = Math.Max(Watermark, watermark);

    public byte Kind => WindowStateHeader.DiskRunningKind;

    /// <summary>
    /// Writes the changed entries to RocksDB and checkpoints it beside the checkpoint's folder; the snapshot itself is
    /// the header and that path (relative to the pipeline's state folder). The codecs are the ones the operator writes
    /// RocksDB with.
    /// </summary>
    public void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators)
    {
        var relative = _table.Checkpoint(_root, _name, checkpoint);
        new WindowStateHeader(Kind, Watermark, 0, _distinct).Write(writer);
        writer.WriteString(relative);
    }

    public void RestoreClock(long watermark, long clock) => RestoreWatermark(watermark);

    /// <summary>Reads an old partition's RocksDB checkpoint and writes each entry into the partition that owns its key now.</summary>
    public void RestoreEntries(ref StateReader reader, long count, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, IReadOnlyList<IWindowState<TKey, TAcc>> targets)
    {
        var partitions = targets.Cast<DiskRunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut>>().ToArray();
        DiskTable<TKey, TAcc>.Restore(
            _restoreRoot,
            ref reader,
            partitions.Select(p => p._table).ToArray(),
            key => KeyHash.Partition(KeyHash.Of(key), partitions.Length),
            (index, _) => partitions[index]._distinct++);
    }

    /// <summary>Closes the database and deletes it: it is scratch (what outlives the run is in the checkpoints).</summary>
    public void Dispose() => _table.Dispose();
}
