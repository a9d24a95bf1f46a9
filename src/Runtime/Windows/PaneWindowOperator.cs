using System.Runtime.CompilerServices;

namespace Compiled.Runtime;

/// <summary>
/// Tumbling and sliding windows over panes. Time is cut into panes of gcd(size, slide); each record updates one
/// pane accumulator of its key — never one per overlapping window — and a window's result merges its panes when it
/// fires. State is a short sorted list of live panes, each with a hash table of its keys' accumulators
/// (<see cref="PaneTable{TKey, TAcc}"/>), so that firing visits only what it emits and purging drops a pane's table
/// whole. Steady state allocates nothing: the tables of purged panes are kept for the next ones.
/// </summary>
internal sealed class PaneWindowOperator<TKey, TIn, TAgg, TAcc, TOut> : WindowOperator<TKey, TIn, TOut>, IWindowState<TKey, TAcc>
    where TKey : notnull
    where TAgg : IAggregator<TIn, TAcc, TOut>
{
    private readonly PaneClock _clock;

    // Live panes, sorted by index, each with its table.
    private PaneTable<TKey, TAcc>[] _tables = new PaneTable<TKey, TAcc>[8];
    private int _paneCount;
    private readonly Stack<PaneTable<TKey, TAcc>> _spares = new(); // tables of purged panes, for the next panes
    private PaneTable<TKey, TAcc>? _last; // the table the last record went to: consecutive records tend to share a pane

    private long _nextEnd = long.MinValue; // the first window end (in panes) not yet fired

    // A firing in progress (see ContinueFiring).
    private long _fireEnd;
    private long _fireLastEnd;
    private int _fireFirst;
    private int _fireSlot;
    private int _fireIndex;

    public PaneWindowOperator(long sizeMs, long slideMs, long latenessMs)
        : base(latenessMs)
    {
        _clock = new PaneClock(sizeMs, slideMs);
    }

    /// <summary>Keys × panes held (read by metrics from other threads: a count of a moment, never a failure).</summary>
    public override int StateEntries
    {
        get
        {
            var tables = _tables;
            var live = 0;
            for (var slot = 0; slot < Math.Min(_paneCount, tables.Length); slot++)
            {
                live += tables[slot]?.Count ?? 0;
            }

            return live;
        }
    }

    public override void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch)
    {
        FinishFiring();
        var paneMs = _clock.PaneMs;
        var watermark = Watermark;
        for (var i = 0; i < batch.Length; i++)
        {
            ref readonly var record = ref batch[i];
            var timestamp = record.Timestamp;
            var pane = TimeMath.FloorDiv(timestamp, paneMs);
            if (timestamp <= watermark)
            {
                AddLate(record, pane);
                continue;
            }

            var table = _last;
            if (table is null || table.Pane != pane)
            {
                _last = table = TableOf(pane);
            }

            TAgg.Add(ref table.FindOrAdd(record.Key, record.Hash), record.Record);
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
        if (_fireEnd == long.MinValue && _paneCount > 0)
        {
            _fireEnd = FirstEndContaining(_tables[0].Pane);
        }

        _fireSlot = -1;
        Firing = true;
        ContinueFiring();
    }

    /// <summary>
    /// Fires the windows the watermark completed, from where the last batch stopped: window <c>_fireEnd</c>, pane slot
    /// <c>_fireSlot</c> (-1: the window has not started), entry <c>_fireIndex</c> of that pane. No record is added while
    /// a firing is paused (the partition emits the rest before it reads again), so the pane list does not move under it.
    /// </summary>
    internal override void ContinueFiring()
    {
        if (!Firing)
        {
            return;
        }

        var end = _fireEnd;
        while (_paneCount > 0 && end <= _fireLastEnd)
        {
            if (_fireSlot < 0)
            {
                var first = FirstPaneAtOrAfter(end - _clock.SizePanes);
                if (first < 0)
                {
                    break;
                }

                var pane = _tables[first].Pane;
                if (pane >= end)
                {
                    end = FirstEndContaining(pane); // no live pane in this window: jump to the next one that has one
                    continue;
                }

                _fireFirst = first;
                _fireSlot = first;
                _fireIndex = 0;
            }

            if (!Fire(end))
            {
                _fireEnd = end; // the batch is full: the rest of this window next time
                return;
            }

            _fireSlot = -1;
            end += _clock.SlidePanes;
        }

        // Every window ending at or before the last end has fired (or was empty); the next to fire ends after it.
        _nextEnd = _clock.NextEndAfter(_fireLastEnd); // windows after it may still receive records that are not late, even where none has state yet
        Firing = false;
        Purge(Watermark);
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

        var table = TableOf(pane);
        TAgg.Add(ref table.FindOrAdd(record.Key, record.Hash), record.Record);
        for (var w = firstWindow; w <= lastWindow; w++)
        {
            var end = _clock.EndOf(w);
            if (!IsLate(end) && _clock.HasFired(end, Watermark))
            {
                EmitKey(record.Key, record.Hash, end, isUpdate: true);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsLate(long endPane) => _clock.IsLate(endPane, LatenessMs, Watermark);

    private long FirstEndContaining(long pane) => _clock.FirstEndContaining(pane);

    /// <summary>
    /// Emits window [end - size, end) for every key with state in it, from the cursor on; false when
    /// <see cref="KeyedOperator{TKey, TIn, TResult}.FiringBatch"/> results are waiting and the window is not done.
    /// </summary>
    private bool Fire(long end)
    {
        var start = end - _clock.SizePanes;
        var limit = FiringBatch;
        var results = Results;
        for (; _fireSlot < _paneCount && _tables[_fireSlot].Pane < end; _fireSlot++, _fireIndex = 0)
        {
            var slot = _fireSlot;
            var table = _tables[slot];
            var count = table.Count;
            while (_fireIndex < count)
            {
                if (results.Count >= limit)
                {
                    return false;
                }

                var index = _fireIndex++;
                if (_clock.SizePanes == 1)
                {
                    results.Add(new WindowResult<TKey, TOut>(table.KeyAt(index), start * _clock.PaneMs, end * _clock.PaneMs, TAgg.Result(table.AccAt(index)), false));
                    continue;
                }

                // Emit each key once per window: from the first of its panes in the window.
                var key = table.KeyAt(index);
                var hash = table.HashAt(index);
                if (HasEarlierPane(key, hash, start, _fireFirst, slot))
                {
                    continue;
                }

                var acc = table.AccAt(index);
                for (var later = slot + 1; later < _paneCount && _tables[later].Pane < end; later++)
                {
                    var found = _tables[later].Find(key, hash);
                    if (found >= 0)
                    {
                        TAgg.Merge(ref acc, _tables[later].AccAt(found));
                    }
                }

                results.Add(new WindowResult<TKey, TOut>(key, start * _clock.PaneMs, end * _clock.PaneMs, TAgg.Result(acc), false));
            }
        }

        return true;
    }

    private bool HasEarlierPane(TKey key, int hash, long start, int fromSlot, int beforeSlot)
    {
        for (var slot = fromSlot; slot < beforeSlot; slot++)
        {
            if (_tables[slot].Pane >= start && _tables[slot].Find(key, hash) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Emits window [end - size, end) for one key (a late firing).</summary>
    private void EmitKey(TKey key, int hash, long end, bool isUpdate)
    {
        var start = end - _clock.SizePanes;
        var acc = default(TAcc)!;
        var any = false;
        for (var slot = FirstPaneAtOrAfter(start); slot >= 0 && slot < _paneCount && _tables[slot].Pane < end; slot++)
        {
            var table = _tables[slot];
            var found = table.Find(key, hash);
            if (found < 0)
            {
                continue;
            }

            if (any)
            {
                TAgg.Merge(ref acc, table.AccAt(found));
            }
            else
            {
                acc = table.AccAt(found);
                any = true;
            }
        }

        if (any)
        {
            Results.Add(new WindowResult<TKey, TOut>(key, start * _clock.PaneMs, end * _clock.PaneMs, TAgg.Result(acc), isUpdate));
        }
    }

    /// <summary>Drops the panes whose last window is past the allowed lateness.</summary>
    private void Purge(long watermark)
    {
        var removed = 0;
        while (removed < _paneCount)
        {
            var table = _tables[removed];
            if (!_clock.IsLate(_clock.LastEndContaining(table.Pane), LatenessMs, watermark))
            {
                break;
            }

            table.Clear();
            _spares.Push(table); // as many as were ever live at once: the next panes are likely to hold as many keys

            removed++;
        }

        if (removed > 0)
        {
            Array.Copy(_tables, removed, _tables, 0, _paneCount - removed);
            _paneCount -= removed;
            Array.Clear(_tables, _paneCount, removed);
            _last = null;
        }
    }

    private int FirstPaneAtOrAfter(long pane)
    {
        for (var slot = 0; slot < _paneCount; slot++)
        {
            if (_tables[slot].Pane >= pane)
            {
                return slot;
            }
        }

        return -1;
    }

    /// <summary>The table of <paramref name="pane"/>, added to the sorted pane list if the pane has none yet.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private PaneTable<TKey, TAcc> TableOf(long pane)
    {
        var slot = _paneCount - 1;
        while (slot >= 0 && _tables[slot].Pane > pane)
        {
            slot--;
        }

        if (slot >= 0 && _tables[slot].Pane == pane)
        {
            return _tables[slot];
        }

        slot++;
        if (_paneCount == _tables.Length)
        {
            Array.Resize(ref _tables, _paneCount * 2);
        }

        Array.Copy(_tables, slot, _tables, slot + 1, _paneCount - slot);
        var table = _spares.Count > 0 ? _spares.Pop() : new PaneTable<TKey, TAcc>();
        table.Pane = pane;
        _tables[slot] = table;
        _paneCount++;
        return table;
    }

    public byte Kind => 1;

    /// <summary>Header, then per entry: key, pane, accumulator — pane by pane.</summary>
    public void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators)
    {
        ThrowIfFiring();
        new WindowStateHeader(Kind, Watermark, _nextEnd, StateEntries, Reached, SplitState).Write(writer);
        for (var slot = 0; slot < _paneCount; slot++)
        {
            var table = _tables[slot];
            for (var j = 0; j < table.Count; j++)
            {
                keys.Write(writer, table.KeyAt(j));
                writer.WriteInt64(table.Pane);
                accumulators.Write(writer, table.AccAt(j));
            }
        }
    }

    public void RestoreClock(long watermark, long clock)
    {
        RestoreWatermark(watermark);
        _nextEnd = clock;
    }

    public void RestoreEntries(ref StateReader reader, long count, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, IReadOnlyList<IWindowState<TKey, TAcc>> targets)
    {
        for (long i = 0; i < count; i++)
        {
            var key = keys.Read(ref reader);
            var pane = reader.ReadInt64();
            var accumulator = accumulators.Read(ref reader);
            var hash = KeyHash.Of(key);
            var target = (PaneWindowOperator<TKey, TIn, TAgg, TAcc, TOut>)targets[KeyHash.Partition(hash, targets.Count)];
            var table = target.TableOf(pane);
            table.FindOrAdd(key, hash) = accumulator;
        }
    }
}
