using System.Buffers.Binary;

namespace Compiled.Runtime;

/// <summary>An accumulator and when it was last updated (processing time, Unix ms; <see cref="long.MinValue"/>: restored, not yet seen).</summary>
internal struct Timed<TAcc>
{
    public TAcc Acc;
    public long Touched;
}

/// <summary>
/// Writes a <see cref="Timed{TAcc}"/>: with a state time-to-live, the time (8 bytes, first, so a sweep reads it without
/// decoding the accumulator) and then the accumulator; without one, the accumulator alone.
/// </summary>
internal sealed class TimedCodec<TAcc>(IStateCodec<TAcc> accumulators, bool timed) : IStateCodec<Timed<TAcc>>
{
    public string Schema => timed ? "timed+" + accumulators.Schema : accumulators.Schema;

    public void Write(StateWriter writer, in Timed<TAcc> value)
    {
        if (timed)
        {
            writer.WriteInt64(value.Touched);
        }

        accumulators.Write(writer, value.Acc);
    }

    public Timed<TAcc> Read(ref StateReader reader)
    {
        var touched = timed ? reader.ReadInt64() : 0;
        return new Timed<TAcc> { Touched = touched, Acc = accumulators.Read(ref reader) };
    }
}

/// <summary>
/// A running aggregate per key whose state lives in RocksDB (<c>StateBackend=Disk</c>), for key spaces larger than
/// memory: a <see cref="DiskTable{TKey, TAcc}"/> keyed by the window's key, its hottest keys in memory. With a state
/// time-to-live each value also holds its last update's time, and a sweep (at most every quarter of the time-to-live)
/// reads the database once and deletes the keys past it. Results are the in-memory operator's, record for record.
/// </summary>
internal sealed class DiskRunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut> : WindowOperator<TKey, TIn, TOut>, IWindowState<TKey, TAcc>, IDisposable
    where TKey : notnull
    where TAgg : IAggregator<TIn, TAcc, TOut>
{
    private readonly DiskTable<TKey, Timed<TAcc>> _table;
    private readonly string _root;
    private readonly string _restoreRoot;
    private readonly string _name;
    private readonly long _timeToLive;
    private long _nextSweep = long.MinValue;
    private byte[] _value = new byte[256];
    private long _distinct;

    /// <param name="root">The pipeline's state folder: the live database goes in <c>live/</c>, checkpoints beside <c>chk-N/</c>.</param>
    /// <param name="name">The window's name and partition, a folder name (<c>Total-p0</c>).</param>
    /// <param name="capacity">The most keys held in memory.</param>
    /// <param name="keys">How keys are written to RocksDB.</param>
    /// <param name="accumulators">How accumulators are written to RocksDB.</param>
    /// <param name="timeToLiveMs">The state time-to-live, milliseconds; 0 for none.</param>
    /// <param name="restoreFrom">The folder the restored checkpoint is in, when it is not <paramref name="root"/> (a savepoint's).</param>
    public DiskRunningAggregateOperator(string root, string name, int capacity, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, long timeToLiveMs = 0, string? restoreFrom = null)
        : base(0)
    {
        _root = root;
        _restoreRoot = restoreFrom ?? root;
        _name = name;
        _timeToLive = timeToLiveMs;
        _table = new DiskTable<TKey, Timed<TAcc>>(Path.Combine(root, "live", name), capacity, keys, new TimedCodec<TAcc>(accumulators, timeToLiveMs > 0));
    }

    /// <summary>Keys held, in memory or on disk.</summary>
    public override int StateEntries => (int)Math.Min(Volatile.Read(ref _distinct), int.MaxValue);

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
        var now = Now;
        for (var i = 0; i < batch.Length; i++)
        {
            ref readonly var record = ref batch[i];
            ref var entry = ref _table.Find(record.Key);
            var seen = entry.Exists;
            TAgg.Add(ref entry.Acc.Acc!, record.Record);
            entry.Acc.Touched = now;
            entry.Exists = true;
            entry.Dirty = true;
            entry.Used = true;
            if (!seen)
            {
                Volatile.Write(ref _distinct, _distinct + 1);
            }

            Results.Add(new WindowResult<TKey, TOut>(record.Key, long.MinValue, long.MaxValue, TAgg.Result(entry.Acc.Acc), seen));
        }

        _table.Trim();
    }

    public override void Advance(long watermark) => Watermark = Math.Max(Watermark, watermark);

    /// <summary>
    /// With a time-to-live: at most every quarter of it, writes what memory changed, then reads the database once and
    /// deletes the keys not updated within it (a restored key's time starts at its first sweep), and drops them from memory.
    /// </summary>
    public override void Expire(long now)
    {
        if (_timeToLive <= 0 || now < _nextSweep)
        {
            return;
        }

        _nextSweep = now + Math.Max(1, _timeToLive / 4);
        _table.WriteChanged(); // the database now holds every key's last update
        var store = _table.Store;
        var expired = 0L;
        using (var cursor = store.Seek([]))
        {
            for (; cursor.Valid; cursor.Next())
            {
                var value = cursor.Value;
                var touched = BinaryPrimitives.ReadInt64LittleEndian(value);
                if (touched == long.MinValue)
                {
                    if (_value.Length < value.Length)
                    {
                        _value = new byte[Math.Max(value.Length, _value.Length * 2)];
                    }

                    var copy = _value.AsSpan(0, value.Length);
                    value.CopyTo(copy);
                    BinaryPrimitives.WriteInt64LittleEndian(copy, now); // restored: its time-to-live starts now
                    store.Put(cursor.WholeKey, copy);
                }
                else if (now - touched >= _timeToLive)
                {
                    store.Delete(cursor.WholeKey);
                    expired++;
                }

                if (store.Pending >= DiskTable<TKey, TAcc>.WriteBatchEntries)
                {
                    store.Commit();
                }
            }
        }

        store.Commit();
        _table.Retain((now, _timeToLive), static ((long Now, long TimeToLive) clock, ref DiskTable<TKey, Timed<TAcc>>.Entry entry) =>
        {
            if (entry.Acc.Touched == long.MinValue)
            {
                entry.Acc.Touched = clock.Now; // as on disk
            }

            return !entry.Exists || clock.Now - entry.Acc.Touched < clock.TimeToLive;
        });
        ExpiredEntries += expired;
        Volatile.Write(ref _distinct, _distinct - expired);
    }

    public byte Kind => _timeToLive > 0 ? WindowStateHeader.DiskRunningTimedKind : WindowStateHeader.DiskRunningKind;

    /// <summary>
    /// Writes the changed entries to RocksDB and checkpoints it beside the checkpoint's folder; the snapshot itself is
    /// the header and that path (relative to the pipeline's state folder). The codecs are the ones the operator writes
    /// RocksDB with.
    /// </summary>
    public void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators)
    {
        var relative = _table.Checkpoint(_root, _name, checkpoint);
        new WindowStateHeader(Kind, Watermark, 0, _distinct, Reached).Write(writer);
        writer.WriteString(relative);
    }

    public void RestoreClock(long watermark, long clock) => RestoreWatermark(watermark);

    /// <summary>Reads an old partition's RocksDB checkpoint and writes each entry into the partition that owns its key now.</summary>
    public void RestoreEntries(ref StateReader reader, long count, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, IReadOnlyList<IWindowState<TKey, TAcc>> targets)
    {
        var partitions = targets.Cast<DiskRunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut>>().ToArray();
        DiskTable<TKey, Timed<TAcc>>.Restore(
            _restoreRoot,
            ref reader,
            partitions.Select(p => p._table).ToArray(),
            key => KeyHash.Partition(KeyHash.Of(key), partitions.Length),
            (index, _) => partitions[index]._distinct++,
            _timeToLive > 0 ? static value => BinaryPrimitives.WriteInt64LittleEndian(value, long.MinValue) : null); // a restored key's time-to-live starts again, as in memory
    }

    /// <summary>Closes the database and deletes it: it is scratch (what outlives the run is in the checkpoints).</summary>
    public void Dispose() => _table.Dispose();
}
