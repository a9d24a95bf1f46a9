using System.Runtime.CompilerServices;

namespace Compiled.Runtime;

/// <summary>
/// Tumbling and sliding windows over panes. Time is cut into panes of gcd(size, slide); each record updates one
/// pane accumulator of its key — never one per overlapping window — and a window's result merges its panes when it
/// fires. State is a hash table keyed by (key, pane) specialised for <typeparamref name="TKey"/> (no boxing, entries
/// in one array, chained through indexes), plus a short sorted list of live panes with the entries of each, so that
/// firing and purging visit only what they emit or drop. Steady state allocates nothing: entries and pane lists are
/// recycled.
/// </summary>
internal sealed class PaneWindowOperator<TKey, TIn, TAgg, TAcc, TOut> : WindowOperator<TKey, TIn, TOut>, IWindowState<TKey, TAcc>
    where TKey : notnull
    where TAgg : IAggregator<TIn, TAcc, TOut>
{
    private struct Entry
    {
        public TKey Key;
        public long Pane;
        public int Hash;
        public int KeyHash;
        public int Next;
        public TAcc Acc;
    }

    private readonly long _paneMs;
    private readonly long _sizePanes;
    private readonly long _slidePanes;

    private Entry[] _entries = new Entry[64];
    private int[] _buckets = new int[64]; // entry index + 1; 0 = empty
    private int _shift = 32 - 6;
    private int _used;
    private int _free = -1;
    private int _live;

    // Live panes, sorted by index, with the entries of each.
    private long[] _panes = new long[8];
    private int[][] _paneEntries = new int[8][];
    private int[] _paneCounts = new int[8];
    private int _paneCount;
    private readonly Stack<int[]> _spareLists = new();

    private long _nextEnd = long.MinValue; // the first window end (in panes) not yet fired

    // A firing in progress (see ContinueFiring).
    private bool _firing;
    private long _fireEnd;
    private long _fireLastEnd;
    private int _fireFirst;
    private int _fireSlot;
    private int _fireIndex;

    public PaneWindowOperator(long sizeMs, long slideMs, long latenessMs)
        : base(latenessMs)
    {
        _paneMs = Gcd(sizeMs, slideMs);
        _sizePanes = sizeMs / _paneMs;
        _slidePanes = slideMs / _paneMs;
    }

    public override int StateEntries => _live;

    public override void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch)
    {
        FinishFiring();
        var paneMs = _paneMs;
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

            TAgg.Add(ref FindOrAdd(record.Key, record.Hash, pane), record.Record);
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
        // Window [e - size, e) (in panes) fires once e * paneMs - 1 <= watermark.
        _fireLastEnd = watermark >= long.MaxValue - 1 ? long.MaxValue / _paneMs : TimeMath.FloorDiv(watermark + 1, _paneMs);
        _fireEnd = _nextEnd;
        if (_fireEnd == long.MinValue && _paneCount > 0)
        {
            _fireEnd = FirstEndContaining(_panes[0]);
        }

        _fireSlot = -1;
        _firing = true;
        ContinueFiring();
    }

    internal override bool Firing => _firing;

    /// <summary>
    /// Fires the windows the watermark completed, from where the last batch stopped: window <c>_fireEnd</c>, pane slot
    /// <c>_fireSlot</c> (-1: the window has not started), entry <c>_fireIndex</c> of that pane. No record is added while
    /// a firing is paused (the partition emits the rest before it reads again), so the pane list does not move under it.
    /// </summary>
    internal override void ContinueFiring()
    {
        if (!_firing)
        {
            return;
        }

        var end = _fireEnd;
        while (_paneCount > 0 && end <= _fireLastEnd)
        {
            if (_fireSlot < 0)
            {
                var first = FirstPaneAtOrAfter(end - _sizePanes);
                if (first < 0)
                {
                    break;
                }

                var pane = _panes[first];
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
            end += _slidePanes;
        }

        // Every window ending at or before the last end has fired (or was empty); the next to fire ends after it.
        var lastEnd = _fireLastEnd;
        var afterLast = lastEnd >= long.MaxValue / 2 ? lastEnd : ((TimeMath.FloorDiv(lastEnd - _sizePanes, _slidePanes) + 1) * _slidePanes) + _sizePanes; // window ends are k * slide + size
        _nextEnd = afterLast; // windows after it may still receive records that are not late, even where none has state yet
        _firing = false;
        Purge(Watermark);
    }

    /// <summary>A record at or before the watermark: it updates the windows still within the lateness and re-fires those whose time has passed.</summary>
    private void AddLate(in Keyed<TKey, TIn> record, long pane)
    {
        var firstWindow = TimeMath.CeilDiv(pane - _sizePanes + 1, _slidePanes);
        var lastWindow = TimeMath.FloorDiv(pane, _slidePanes);
        if (IsLate(lastWindow * _slidePanes + _sizePanes))
        {
            Dropped(record.Record);
            return;
        }

        TAgg.Add(ref FindOrAdd(record.Key, record.Hash, pane), record.Record);
        for (var w = firstWindow; w <= lastWindow; w++)
        {
            var end = w * _slidePanes + _sizePanes;
            if (!IsLate(end) && end * _paneMs - 1 <= Watermark)
            {
                EmitKey(record.Key, record.Hash, end, isUpdate: true);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsLate(long endPane) => endPane * _paneMs - 1 + LatenessMs <= Watermark;

    private long FirstEndContaining(long pane) => (TimeMath.CeilDiv(pane - _sizePanes + 1, _slidePanes) * _slidePanes) + _sizePanes;

    /// <summary>
    /// Emits window [end - size, end) for every key with state in it, from the cursor on; false when
    /// <see cref="KeyedOperator{TKey, TIn, TResult}.FiringBatch"/> results are waiting and the window is not done.
    /// </summary>
    private bool Fire(long end)
    {
        var start = end - _sizePanes;
        var limit = FiringBatch;
        var results = Results;
        for (; _fireSlot < _paneCount && _panes[_fireSlot] < end; _fireSlot++, _fireIndex = 0)
        {
            var slot = _fireSlot;
            var ids = _paneEntries[slot];
            var count = _paneCounts[slot];
            while (_fireIndex < count)
            {
                if (results.Count >= limit)
                {
                    return false;
                }

                ref var entry = ref _entries[ids[_fireIndex++]];
                if (_sizePanes == 1)
                {
                    results.Add(new WindowResult<TKey, TOut>(entry.Key, start * _paneMs, end * _paneMs, TAgg.Result(entry.Acc), false));
                    continue;
                }

                // Emit each key once per window: from the first of its panes in the window.
                if (HasEarlierPane(entry.Key, entry.KeyHash, start, _fireFirst, slot))
                {
                    continue;
                }

                var acc = entry.Acc;
                for (var later = slot + 1; later < _paneCount && _panes[later] < end; later++)
                {
                    var found = Find(entry.Key, entry.KeyHash, _panes[later]);
                    if (found >= 0)
                    {
                        TAgg.Merge(ref acc, _entries[found].Acc);
                    }
                }

                results.Add(new WindowResult<TKey, TOut>(entry.Key, start * _paneMs, end * _paneMs, TAgg.Result(acc), false));
            }
        }

        return true;
    }

    private bool HasEarlierPane(TKey key, int hash, long start, int fromSlot, int beforeSlot)
    {
        for (var slot = fromSlot; slot < beforeSlot; slot++)
        {
            if (_panes[slot] >= start && Find(key, hash, _panes[slot]) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Emits window [end - size, end) for one key (a late firing).</summary>
    private void EmitKey(TKey key, int hash, long end, bool isUpdate)
    {
        var start = end - _sizePanes;
        var acc = default(TAcc)!;
        var any = false;
        for (var slot = FirstPaneAtOrAfter(start); slot >= 0 && slot < _paneCount && _panes[slot] < end; slot++)
        {
            var found = Find(key, hash, _panes[slot]);
            if (found < 0)
            {
                continue;
            }

            if (any)
            {
                TAgg.Merge(ref acc, _entries[found].Acc);
            }
            else
            {
                acc = _entries[found].Acc;
                any = true;
            }
        }

        if (any)
        {
            Results.Add(new WindowResult<TKey, TOut>(key, start * _paneMs, end * _paneMs, TAgg.Result(acc), isUpdate));
        }
    }

    /// <summary>Drops the panes whose last window is past the allowed lateness.</summary>
    private void Purge(long watermark)
    {
        var removed = 0;
        while (removed < _paneCount)
        {
            var pane = _panes[removed];
            var lastEnd = (TimeMath.FloorDiv(pane, _slidePanes) * _slidePanes) + _sizePanes;
            if (lastEnd * _paneMs - 1 + LatenessMs > watermark)
            {
                break;
            }

            var ids = _paneEntries[removed];
            for (var j = 0; j < _paneCounts[removed]; j++)
            {
                Remove(ids[j]);
            }

            _spareLists.Push(ids);
            _paneEntries[removed] = null!;
            removed++;
        }

        if (removed > 0)
        {
            Array.Copy(_panes, removed, _panes, 0, _paneCount - removed);
            Array.Copy(_paneEntries, removed, _paneEntries, 0, _paneCount - removed);
            Array.Copy(_paneCounts, removed, _paneCounts, 0, _paneCount - removed);
            _paneCount -= removed;
            Array.Clear(_paneEntries, _paneCount, removed);
        }
    }

    private int FirstPaneAtOrAfter(long pane)
    {
        for (var slot = 0; slot < _paneCount; slot++)
        {
            if (_panes[slot] >= pane)
            {
                return slot;
            }
        }

        return -1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Combine(int keyHash, long pane) => keyHash ^ (int)((ulong)pane * 0x9E3779B97F4A7C15UL >> 32);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Bucket(int hash) => (int)(((uint)hash * 0x9E3779B1u) >> _shift);

    private int Find(TKey key, int keyHash, long pane)
    {
        var hash = Combine(keyHash, pane);
        var entries = _entries;
        for (var i = _buckets[Bucket(hash)] - 1; i >= 0;)
        {
            ref var entry = ref entries[i];
            if (entry.Hash == hash && entry.Pane == pane && EqualityComparer<TKey>.Default.Equals(entry.Key, key))
            {
                return i;
            }

            i = entry.Next;
        }

        return -1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref TAcc FindOrAdd(TKey key, int keyHash, long pane)
    {
        var hash = Combine(keyHash, pane);
        var entries = _entries;
        for (var i = _buckets[Bucket(hash)] - 1; i >= 0;)
        {
            ref var entry = ref entries[i];
            if (entry.Hash == hash && entry.Pane == pane && EqualityComparer<TKey>.Default.Equals(entry.Key, key))
            {
                return ref entry.Acc;
            }

            i = entry.Next;
        }

        return ref Insert(key, keyHash, hash, pane);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ref TAcc Insert(TKey key, int keyHash, int hash, long pane)
    {
        if (_free < 0 && _used == _entries.Length)
        {
            Resize();
        }

        int index;
        if (_free >= 0)
        {
            index = _free;
            _free = _entries[index].Next;
        }
        else
        {
            index = _used++;
        }

        ref var bucket = ref _buckets[Bucket(hash)];
        ref var entry = ref _entries[index];
        entry.Key = key;
        entry.Pane = pane;
        entry.Hash = hash;
        entry.KeyHash = keyHash;
        entry.Acc = default!;
        entry.Next = bucket - 1;
        bucket = index + 1;
        _live++;
        AddToPane(pane, index);
        return ref entry.Acc;
    }

    private void Remove(int index)
    {
        ref var entry = ref _entries[index];
        ref var link = ref _buckets[Bucket(entry.Hash)];
        if (link - 1 == index)
        {
            link = entry.Next + 1;
        }
        else
        {
            var i = link - 1;
            while (_entries[i].Next != index)
            {
                i = _entries[i].Next;
            }

            _entries[i].Next = entry.Next;
        }

        if (RuntimeHelpers.IsReferenceOrContainsReferences<Entry>())
        {
            entry = default;
        }

        entry.Next = _free;
        _free = index;
        _live--;
    }

    private void Resize()
    {
        var size = _entries.Length * 2;
        Array.Resize(ref _entries, size);
        _buckets = new int[size];
        _shift--;
        for (var i = 0; i < _used; i++)
        {
            _entries[i].Next = -1;
        }

        // Every slot below _used is live here (a resize happens only when the free list is empty).
        for (var i = 0; i < _used; i++)
        {
            ref var bucket = ref _buckets[Bucket(_entries[i].Hash)];
            _entries[i].Next = bucket - 1;
            bucket = i + 1;
        }
    }

    private void AddToPane(long pane, int entry)
    {
        var slot = _paneCount - 1;
        while (slot >= 0 && _panes[slot] > pane)
        {
            slot--;
        }

        if (slot < 0 || _panes[slot] != pane)
        {
            slot++;
            InsertPane(slot, pane);
        }

        ref var list = ref _paneEntries[slot];
        ref var count = ref _paneCounts[slot];
        if (count == list.Length)
        {
            Array.Resize(ref list, list.Length * 2);
        }

        list[count++] = entry;
    }

    private void InsertPane(int slot, long pane)
    {
        if (_paneCount == _panes.Length)
        {
            Array.Resize(ref _panes, _paneCount * 2);
            Array.Resize(ref _paneEntries, _paneCount * 2);
            Array.Resize(ref _paneCounts, _paneCount * 2);
        }

        Array.Copy(_panes, slot, _panes, slot + 1, _paneCount - slot);
        Array.Copy(_paneEntries, slot, _paneEntries, slot + 1, _paneCount - slot);
        Array.Copy(_paneCounts, slot, _paneCounts, slot + 1, _paneCount - slot);
        _panes[slot] = pane;
        _paneEntries[slot] = _spareLists.Count > 0 ? _spareLists.Pop() : new int[16];
        _paneCounts[slot] = 0;
        _paneCount++;
    }

    public byte Kind => 1;

    /// <summary>Header, then per entry: key, pane, accumulator — pane by pane.</summary>
    public void Snapshot(StateWriter writer, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators)
    {
        ThrowIfFiring();
        new WindowStateHeader(Kind, Watermark, _nextEnd, _live).Write(writer);
        for (var slot = 0; slot < _paneCount; slot++)
        {
            var ids = _paneEntries[slot];
            for (var j = 0; j < _paneCounts[slot]; j++)
            {
                ref var entry = ref _entries[ids[j]];
                keys.Write(writer, entry.Key);
                writer.WriteInt64(entry.Pane);
                accumulators.Write(writer, entry.Acc);
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
            target.FindOrAdd(key, hash, pane) = accumulator;
        }
    }

    private static long Gcd(long a, long b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return a;
    }
}
