using System.Buffers.Binary;

namespace Compiled.Runtime;

/// <summary>A pane of a tumbling or sliding window and a key: the state key of a window on disk.</summary>
internal readonly record struct PaneKey<TKey>(long Pane, TKey Key);

/// <summary>
/// Writes a <see cref="PaneKey{TKey}"/> as the pane, 8 bytes big-endian with the sign bit flipped, then the key: in
/// RocksDB's byte order a pane's entries are contiguous and panes are in time order, so a pane is read with one
/// seek and dropped with one range delete.
/// </summary>
internal sealed class PaneKeyCodec<TKey>(IStateCodec<TKey> keys) : IStateCodec<PaneKey<TKey>>
{
    /// <summary>The bytes every entry of a pane starts with.</summary>
    public const int PrefixBytes = 8;

    public string Schema => "pane+" + keys.Schema;

    /// <summary>Writes the prefix of <paramref name="pane"/>'s entries.</summary>
    public static void WritePrefix(Span<byte> into, long pane) => BinaryPrimitives.WriteUInt64BigEndian(into, (ulong)(pane ^ long.MinValue));

    public void Write(StateWriter writer, in PaneKey<TKey> value)
    {
        Span<byte> prefix = stackalloc byte[PrefixBytes];
        WritePrefix(prefix, value.Pane);
        writer.WriteBytes(prefix);
        keys.Write(writer, value.Key);
    }

    public PaneKey<TKey> Read(ref StateReader reader)
    {
        var pane = (long)BinaryPrimitives.ReadUInt64BigEndian(reader.ReadBytes(PrefixBytes)) ^ long.MinValue;
        return new PaneKey<TKey>(pane, keys.Read(ref reader));
    }
}

/// <summary>
/// Tumbling and sliding windows whose state lives in RocksDB (<c>StateBackend=Disk</c>): one accumulator per pane and
/// key, as in memory (<see cref="PaneWindowOperator{TKey, TIn, TAgg, TAcc, TOut}"/>), in a
/// <see cref="DiskTable{TKey, TAcc}"/> keyed by pane then key. A window fires by reading its panes in key order — one
/// cursor per pane, merged like the runs of a merge sort, so a key's panes meet without a lookup — in batches of
/// <see cref="KeyedOperator{TKey, TIn, TResult}.FiringBatch"/>; a pane past the lateness goes with one range delete.
/// A window none of whose entries left memory fires from the in-memory table instead. Results are the in-memory
/// operator's, window for window (within a window, keys come in no particular order).
/// </summary>
internal sealed class DiskPaneWindowOperator<TKey, TIn, TAgg, TAcc, TOut> : WindowOperator<TKey, TIn, TOut>, IWindowState<TKey, TAcc>, IDisposable
    where TKey : notnull
    where TAgg : IAggregator<TIn, TAcc, TOut>
{
    /// <summary>A live pane and the entries (keys) it holds.</summary>
    private struct LivePane
    {
        public long Pane;
        public long Entries;
        public bool Evicted; // some of its entries are on disk only (evicted, or restored): it fires from RocksDB
    }

    private readonly PaneClock _clock;
    private readonly DiskTable<PaneKey<TKey>, TAcc> _table;
    private readonly IStateCodec<TKey> _keys;
    private readonly string _root;
    private readonly string _restoreRoot;
    private readonly string _name;
    private readonly List<LivePane> _panes = []; // sorted by pane
    private long _entries;
    private long _nextEnd = long.MinValue; // the first window end (in panes) not yet fired

    // A firing in progress (see ContinueFiring): the window ending at _fireEnd, read through one cursor per live pane.
    private long _fireEnd;
    private long _fireLastEnd;
    private bool _windowOpen;
    private bool _written; // changed entries written to RocksDB since the watermark last moved
    private bool _fromMemory; // the window being emitted has every entry in memory: it fires from the table, as in memory
    private Dictionary<PaneKey<TKey>, DiskTable<PaneKey<TKey>, TAcc>.Entry>.Enumerator _memory;
    private readonly List<RocksDbStore.Cursor> _cursors = [];
    private int[] _equal = new int[8];
    private byte[] _keyBuffer = new byte[256];
    private byte[] _valueBuffer = new byte[256];
    private readonly byte[] _prefix = new byte[PaneKeyCodec<TKey>.PrefixBytes];
    private readonly byte[] _prefixEnd = new byte[PaneKeyCodec<TKey>.PrefixBytes];

    /// <param name="root">The pipeline's state folder: the live database goes in <c>live/</c>, checkpoints beside <c>chk-N/</c>.</param>
    /// <param name="name">The window's name and partition, a folder name (<c>PerMinute-p0</c>).</param>
    /// <param name="sizeMs">The window's size.</param>
    /// <param name="slideMs">The window's slide (its size for a tumbling window).</param>
    /// <param name="latenessMs">The allowed lateness.</param>
    /// <param name="capacity">The most pane entries held in memory.</param>
    /// <param name="keys">How keys are written to RocksDB.</param>
    /// <param name="accumulators">How accumulators are written to RocksDB.</param>
    /// <param name="restoreFrom">The folder the restored checkpoint is in, when it is not <paramref name="root"/> (a savepoint's).</param>
    public DiskPaneWindowOperator(string root, string name, long sizeMs, long slideMs, long latenessMs, int capacity, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, string? restoreFrom = null)
        : base(latenessMs)
    {
        _clock = new PaneClock(sizeMs, slideMs);
        _root = root;
        _restoreRoot = restoreFrom ?? root;
        _name = name;
        _keys = keys;
        _table = new DiskTable<PaneKey<TKey>, TAcc>(Path.Combine(root, "live", name), capacity, new PaneKeyCodec<TKey>(keys), accumulators, key => MarkEvicted(key.Pane));
    }

    /// <summary>Keys × panes held, in memory or on disk (read by metrics from other threads: a count of a moment).</summary>
    public override int StateEntries => (int)Math.Min(Volatile.Read(ref _entries), int.MaxValue);

    private bool IsLate(long endPane) => _clock.IsLate(endPane, LatenessMs, Watermark);

    /// <summary>Reads the pane entries of <paramref name="batch"/> that are not in memory from RocksDB, in one MultiGet.</summary>
    public override ValueTask PrepareAsync(ReadOnlyMemory<Keyed<TKey, TIn>> batch, CancellationToken cancellationToken)
    {
        FinishFiring(); // a paused firing may be walking the table, which preparing adds to
        _table.BeginPrepare();
        foreach (ref readonly var record in batch.Span)
        {
            var pane = _clock.PaneOf(record.Timestamp);
            if (record.Timestamp > Watermark || !IsLate(_clock.LastEndContaining(pane)))
            {
                _table.Need(new PaneKey<TKey>(pane, record.Key));
            }
        }

        _table.Load();
        return ValueTask.CompletedTask;
    }

    public override void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch)
    {
        FinishFiring();
        for (var i = 0; i < batch.Length; i++)
        {
            ref readonly var record = ref batch[i];
            var pane = _clock.PaneOf(record.Timestamp);
            if (record.Timestamp <= Watermark)
            {
                AddLate(record, pane);
                continue;
            }

            Accumulate(pane, record);
        }

        _table.Trim();
    }

    private void Accumulate(long pane, in Keyed<TKey, TIn> record)
    {
        ref var entry = ref _table.Find(new PaneKey<TKey>(pane, record.Key));
        if (!entry.Exists)
        {
            Count(pane, 1, onDisk: false);
        }

        TAgg.Add(ref entry.Acc!, record.Record);
        entry.Exists = true;
        entry.Dirty = true;
        entry.Used = true;
    }

    /// <summary>Counts an entry added to <paramref name="pane"/> (or restored into it, on disk only), adding the pane to the live list if it is new.</summary>
    private void Count(long pane, long entries, bool onDisk)
    {
        var slot = SlotOf(pane);
        if (slot < 0)
        {
            slot = ~slot;
            _panes.Insert(slot, new LivePane { Pane = pane });
        }

        var live = _panes[slot];
        live.Entries += entries;
        live.Evicted |= onDisk;
        _panes[slot] = live;
        Volatile.Write(ref _entries, _entries + entries);
    }

    /// <summary>An entry of <paramref name="pane"/> left memory: the pane's windows fire from RocksDB.</summary>
    private void MarkEvicted(long pane)
    {
        var slot = SlotOf(pane);
        if (slot >= 0 && !_panes[slot].Evicted)
        {
            var live = _panes[slot];
            live.Evicted = true;
            _panes[slot] = live;
        }
    }

    /// <summary>The slot of <paramref name="pane"/> in the live list, or the complement of where it would go (most panes are near the end).</summary>
    private int SlotOf(long pane)
    {
        var slot = _panes.Count - 1;
        while (slot >= 0 && _panes[slot].Pane > pane)
        {
            slot--;
        }

        return slot >= 0 && _panes[slot].Pane == pane ? slot : ~(slot + 1);
    }

    /// <summary>A record at or before the watermark: it updates the windows still within the lateness and re-fires those whose time has passed.</summary>
    private void AddLate(in Keyed<TKey, TIn> record, long pane)
    {
        var (firstWindow, lastWindow) = _clock.WindowsOf(pane);
        if (IsLate(_clock.EndOf(lastWindow)))
        {
            Dropped(record.Record);
            return;
        }

        Accumulate(pane, record);
        for (var w = firstWindow; w <= lastWindow; w++)
        {
            var end = _clock.EndOf(w);
            if (!IsLate(end) && _clock.HasFired(end, Watermark))
            {
                EmitKey(record.Key, end);
            }
        }
    }

    /// <summary>Emits window [end - size, end) for one key (a late firing), merging its panes in time order.</summary>
    private void EmitKey(TKey key, long end)
    {
        var start = end - _clock.SizePanes;
        var acc = default(TAcc)!;
        var any = false;
        foreach (var live in _panes)
        {
            if (live.Pane < start || live.Pane >= end || !_table.TryRead(new PaneKey<TKey>(live.Pane, key), out var found))
            {
                continue;
            }

            if (any)
            {
                TAgg.Merge(ref acc, found);
            }
            else
            {
                acc = found;
                any = true;
            }
        }

        if (any)
        {
            Results.Add(new WindowResult<TKey, TOut>(key, start * _clock.PaneMs, end * _clock.PaneMs, TAgg.Result(acc), true));
        }
    }

    public override void Advance(long watermark)
    {
        if (watermark <= Watermark)
        {
            return;
        }

        FinishFiring();
        Watermark = watermark;
        _fireLastEnd = _clock.LastEndFiredBy(watermark);
        _fireEnd = _nextEnd;
        if (_fireEnd == long.MinValue && _panes.Count > 0)
        {
            _fireEnd = _clock.FirstEndContaining(_panes[0].Pane);
        }

        _written = false;
        Firing = true;
        ContinueFiring();
    }

    /// <summary>
    /// Fires the windows the watermark completed, from where the last batch stopped (window <c>_fireEnd</c>, its cursors
    /// where they are). No record is added while a firing is paused (the partition emits the rest before it reads
    /// again), so the panes do not change under it.
    /// </summary>
    internal override void ContinueFiring()
    {
        if (!Firing)
        {
            return;
        }

        var end = _fireEnd;
        while (_panes.Count > 0 && end <= _fireLastEnd)
        {
            if (!_windowOpen)
            {
                var first = FirstPaneAtOrAfter(end - _clock.SizePanes);
                if (first < 0)
                {
                    break;
                }

                var pane = _panes[first].Pane;
                if (pane >= end)
                {
                    end = _clock.FirstEndContaining(pane); // no live pane in this window: jump to the next one that has one
                    continue;
                }

                _fromMemory = true;
                for (var slot = first; slot < _panes.Count && _panes[slot].Pane < end; slot++)
                {
                    _fromMemory &= !_panes[slot].Evicted;
                }

                if (_fromMemory)
                {
                    _memory = _table.GetEnumerator();
                }
                else
                {
                    if (!_written)
                    {
                        _table.WriteChanged(); // the window is read from RocksDB: what memory changed goes there first
                        _written = true;
                    }

                    for (var slot = first; slot < _panes.Count && _panes[slot].Pane < end; slot++)
                    {
                        PaneKeyCodec<TKey>.WritePrefix(_prefix, _panes[slot].Pane);
                        _cursors.Add(_table.Store.Seek(_prefix));
                    }
                }

                _windowOpen = true;
            }

            if (!(_fromMemory ? FireFromMemory(end) : Fire(end)))
            {
                _fireEnd = end; // the batch is full: the rest of this window next time
                return;
            }

            CloseWindow();
            end += _clock.SlidePanes;
        }

        // Every window ending at or before the last end has fired (or was empty); the next to fire ends after it.
        _nextEnd = _clock.NextEndAfter(_fireLastEnd); // windows after it may still receive records that are not late, even where none has state yet
        Firing = false;
        Purge(Watermark);
    }

    /// <summary>
    /// Emits window [end - size, end) from its cursors: the smallest key among them, its accumulators merged in pane
    /// order; false when <see cref="KeyedOperator{TKey, TIn, TResult}.FiringBatch"/> results are waiting and the window is not done.
    /// </summary>
    private bool Fire(long end)
    {
        var start = (end - _clock.SizePanes) * _clock.PaneMs;
        var limit = FiringBatch;
        var cursors = _cursors;
        if (_equal.Length < cursors.Count)
        {
            _equal = new int[cursors.Count];
        }

        while (true)
        {
            var min = -1;
            for (var i = 0; i < cursors.Count; i++)
            {
                if (cursors[i].Valid && (min < 0 || cursors[i].Key.SequenceCompareTo(cursors[min].Key) < 0))
                {
                    min = i;
                }
            }

            if (min < 0)
            {
                return true;
            }

            if (Results.Count >= limit)
            {
                return false;
            }

            var key = DiskTable<TKey, TAcc>.Decode(_keys, cursors[min].Key, ref _keyBuffer);
            var acc = default(TAcc)!;
            var equal = 0;
            for (var i = min; i < cursors.Count; i++)
            {
                if (i != min && (!cursors[i].Valid || !cursors[i].Key.SequenceEqual(cursors[min].Key)))
                {
                    continue; // cursors before min hold larger keys; after it, equal ones are this key's later panes
                }

                var value = DiskTable<TKey, TAcc>.Decode(_table.Accumulators, cursors[i].Value, ref _valueBuffer);
                if (equal == 0)
                {
                    acc = value;
                }
                else
                {
                    TAgg.Merge(ref acc, value);
                }

                _equal[equal++] = i;
            }

            for (var i = 0; i < equal; i++)
            {
                cursors[_equal[i]].Next();
            }

            Results.Add(new WindowResult<TKey, TOut>(key, start, end * _clock.PaneMs, TAgg.Result(acc), false));
        }
    }

    /// <summary>
    /// Emits window [end - size, end) from the in-memory table, which holds every entry of its panes (none was evicted):
    /// each key from the first of its panes in the window, merged with its later ones — the in-memory operator's way.
    /// </summary>
    private bool FireFromMemory(long end)
    {
        var start = end - _clock.SizePanes;
        var limit = FiringBatch;
        while (Results.Count < limit)
        {
            if (!_memory.MoveNext())
            {
                return true;
            }

            var (at, entry) = _memory.Current;
            if (!entry.Exists || at.Pane < start || at.Pane >= end)
            {
                continue;
            }

            var acc = entry.Acc;
            if (_clock.SizePanes > 1)
            {
                var earlier = false;
                foreach (var live in _panes)
                {
                    if (live.Pane >= start && live.Pane < end && live.Pane != at.Pane)
                    {
                        ref var other = ref _table.InMemory(new PaneKey<TKey>(live.Pane, at.Key));
                        if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref other) || !other.Exists)
                        {
                            continue;
                        }

                        if (live.Pane < at.Pane)
                        {
                            earlier = true; // emitted from that pane
                            break;
                        }

                        TAgg.Merge(ref acc, other.Acc);
                    }
                }

                if (earlier)
                {
                    continue;
                }
            }

            Results.Add(new WindowResult<TKey, TOut>(at.Key, start * _clock.PaneMs, end * _clock.PaneMs, TAgg.Result(acc), false));
        }

        return false;
    }

    private void CloseWindow()
    {
        _memory = default;
        foreach (var cursor in _cursors)
        {
            cursor.Dispose();
        }

        _cursors.Clear();
        _windowOpen = false;
    }

    /// <summary>Drops the panes whose last window is past the allowed lateness: one range delete on disk, and their entries in memory.</summary>
    private void Purge(long watermark)
    {
        var removed = 0;
        var entries = 0L;
        while (removed < _panes.Count && _clock.IsLate(_clock.LastEndContaining(_panes[removed].Pane), LatenessMs, watermark))
        {
            entries += _panes[removed].Entries;
            removed++;
        }

        if (removed == 0)
        {
            return;
        }

        var last = _panes[removed - 1].Pane;
        PaneKeyCodec<TKey>.WritePrefix(_prefix, _panes[0].Pane);
        PaneKeyCodec<TKey>.WritePrefix(_prefixEnd, last + 1);
        _table.Store.DeleteRange(_prefix, _prefixEnd);
        _table.Store.Commit();
        _table.Forget(last, static (key, last) => key.Pane <= last);
        _panes.RemoveRange(0, removed);
        Volatile.Write(ref _entries, _entries - entries);
    }

    private int FirstPaneAtOrAfter(long pane)
    {
        for (var slot = 0; slot < _panes.Count; slot++)
        {
            if (_panes[slot].Pane >= pane)
            {
                return slot;
            }
        }

        return -1;
    }

    public byte Kind => WindowStateHeader.DiskPaneKind;

    /// <summary>Writes the changed entries and checkpoints RocksDB beside the checkpoint's folder; the snapshot is the header and that path.</summary>
    public void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators)
    {
        ThrowIfFiring();
        var relative = _table.Checkpoint(_root, _name, checkpoint);
        new WindowStateHeader(Kind, Watermark, _nextEnd, _entries, Reached).Write(writer);
        writer.WriteString(relative);
    }

    public void RestoreClock(long watermark, long clock)
    {
        RestoreWatermark(watermark);
        _nextEnd = clock;
    }

    /// <summary>Reads an old partition's RocksDB checkpoint and writes each entry into the partition that owns its key now.</summary>
    public void RestoreEntries(ref StateReader reader, long count, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, IReadOnlyList<IWindowState<TKey, TAcc>> targets)
    {
        var partitions = targets.Cast<DiskPaneWindowOperator<TKey, TIn, TAgg, TAcc, TOut>>().ToArray();
        DiskTable<PaneKey<TKey>, TAcc>.Restore(
            _restoreRoot,
            ref reader,
            partitions.Select(p => p._table).ToArray(),
            entry => KeyHash.Partition(KeyHash.Of(entry.Key), partitions.Length),
            (index, entry) => partitions[index].Count(entry.Pane, 1, onDisk: true));
    }

    /// <summary>Closes the database and deletes it: it is scratch (what outlives the run is in the checkpoints).</summary>
    public void Dispose()
    {
        CloseWindow();
        _table.Dispose();
    }
}
