using System.Runtime.CompilerServices;

namespace Compiled.Runtime;

/// <summary>
/// Flink's window join: records of one key meet when they fall into the same window ([start, start + size), starts
/// at multiples of the slide). A window's pairs leave when the watermark reaches its last instant; a left-outer join
/// then lets each left record that met no right record in that window leave alone. A record is held until its last
/// window fired, and is late when every window it falls into already has.
/// </summary>
/// <remarks>
/// State is kept by time, not by key: time is cut into panes of gcd(size, slide), and each pane holds its left and its
/// right records, with their keys and hashes, in arrival order in chunked arrays — no object per key, no timer per
/// key. A window fires as a hash join of the panes it covers: one bucket index over their right records (built when
/// the window fires, reused from window to window), probed with each left record. A pane goes once its last window
/// fired. Results leave in batches of <see cref="KeyedOperator{TKey, TIn, TResult}.FiringBatch"/> (never splitting one
/// left record's pairs); the forwarded watermark moves once every due window fired, held back by the window's size so
/// that no pair is late behind the join.
/// </remarks>
internal sealed class WindowJoinOperator<TKey, TLeft, TRight>
    : KeyedOperator<TKey, Either<TLeft, TRight>, Joined<TLeft, TRight>>, IWindowState<TKey, JoinEntry<TLeft, TRight>>
    where TKey : notnull
{
    /// <summary>Emptied panes kept for reuse with their chunks: a tumbling join has one pane filling while the one before fires.</summary>
    private const int SparePanes = 2;

    private readonly long _size;
    private readonly long _slide;
    private readonly long _paneMs;
    private readonly bool _leftOuter;
    private readonly List<Pane> _panes = []; // ascending by pane index
    private readonly Stack<Pane> _spare = new();
    private Pane? _last; // the pane the last record went to: most records go to the newest pane
    private int _entries;

    // The window being fired: its panes, the right records' bucket index, and where the probe of its left records is.
    private bool _open;
    private long _end;
    private Pane[] _window = new Pane[1];
    private int[] _offsets = new int[2]; // the first right record (window-wide number) of each of the window's panes
    private int _windowPanes;
    private int[] _buckets = [];
    private int[] _next = [];
    private int _shift;
    private int _slot;
    private int _index;
    private long _firedThrough; // windows whose last instant is at or before it have fired

    /// <summary>Creates the operator; the forwarded watermark is held back by the window's length.</summary>
    public WindowJoinOperator(long size, long slide, bool leftOuter)
    {
        _size = size;
        _slide = slide;
        _paneMs = TimeMath.Gcd(size, slide);
        _leftOuter = leftOuter;
    }

    /// <summary>The inputs' watermark: records whose every window ends at or before it are late.</summary>
    private long InputWatermark { get; set; } = long.MinValue;

    public override int StateEntries => _entries;

    public byte Kind => 11;

    public override void Add(ReadOnlySpan<Keyed<TKey, Either<TLeft, TRight>>> batch)
    {
        FinishFiring();
        foreach (ref readonly var item in batch)
        {
            if (LastEnd(item.Timestamp) - 1 <= InputWatermark)
            {
                Dropped(item.Record);
                continue;
            }

            Hold(item.Key, item.Hash, item.Timestamp, item.Record.IsLeft, item.Record.Left, item.Record.Right);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Hold(TKey key, int hash, long time, bool isLeft, TLeft left, TRight right)
    {
        var index = TimeMath.FloorDiv(time, _paneMs);
        var pane = _last is { } last && last.Index == index ? last : PaneFor(index);
        if (isLeft)
        {
            pane.Left.Add(key, hash, time, left);
        }
        else
        {
            pane.Right.Add(key, hash, time, right);
        }

        _entries++;
    }

    /// <summary>The pane <paramref name="index"/>, created in its place in the ascending list when new.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Pane PaneFor(long index)
    {
        var at = _panes.Count;
        while (at > 0 && _panes[at - 1].Index >= index)
        {
            if (_panes[at - 1].Index == index)
            {
                return _last = _panes[at - 1];
            }

            at--;
        }

        var pane = _spare.Count > 0 ? _spare.Pop() : new Pane();
        pane.Index = index;
        _panes.Insert(at, pane);
        return _last = pane;
    }

    public override void Advance(long watermark)
    {
        if (watermark <= InputWatermark)
        {
            return;
        }

        FinishFiring();
        _firedThrough = InputWatermark;
        InputWatermark = watermark;
        Firing = true;
        ContinueFiring();
    }

    /// <summary>Fires the windows the watermark completed, earliest first, until <see cref="KeyedOperator{TKey, TIn, TResult}.FiringBatch"/> results wait.</summary>
    internal override void ContinueFiring()
    {
        if (!Firing)
        {
            return;
        }

        var limit = FiringBatch;
        while (true)
        {
            if (!_open)
            {
                if (_panes.Count == 0)
                {
                    break;
                }

                var end = NextEnd();
                if (end - 1 > InputWatermark)
                {
                    break;
                }

                Open(end);
            }

            if (!Probe(limit))
            {
                return;
            }

            Close();
        }

        Firing = false;
        var watermark = InputWatermark;
        Watermark = TimeMath.HeldBack(watermark, _size);
    }

    /// <summary>The end of the earliest window not fired yet that holds the oldest pane (window ends are k × slide + size).</summary>
    private long NextEnd()
    {
        var first = ((TimeMath.FloorDiv((_panes[0].Index * _paneMs) - _size, _slide) + 1) * _slide) + _size;
        if (_firedThrough <= long.MinValue / 2)
        {
            return first;
        }

        var after = ((TimeMath.FloorDiv(_firedThrough + 1 - _size, _slide) + 1) * _slide) + _size;
        return Math.Max(first, after);
    }

    /// <summary>Starts firing the window ending at <paramref name="end"/>: gathers its panes and indexes their right records by key hash.</summary>
    private void Open(long end)
    {
        var (from, to) = (TimeMath.FloorDiv(end - _size, _paneMs), TimeMath.FloorDiv(end, _paneMs)); // panes [from, to)
        _windowPanes = 0;
        var rights = 0;
        foreach (var pane in _panes)
        {
            if (pane.Index < from || pane.Index >= to)
            {
                continue;
            }

            if (_windowPanes == _window.Length)
            {
                Array.Resize(ref _window, _windowPanes * 2);
                Array.Resize(ref _offsets, (_windowPanes * 2) + 1);
            }

            _window[_windowPanes] = pane;
            _offsets[_windowPanes] = rights;
            rights += pane.Right.Count;
            _windowPanes++;
        }

        _offsets[_windowPanes] = rights;
        if (rights > 0)
        {
            Index(rights);
        }

        (_open, _end, _slot, _index) = (true, end, 0, 0);
    }

    /// <summary>The bucket index over the window's <paramref name="rights"/> right records: chains keep arrival order.</summary>
    private void Index(int rights)
    {
        var slots = 16;
        while (slots < rights)
        {
            slots <<= 1;
        }

        if (_buckets.Length < slots)
        {
            _buckets = new int[slots];
        }
        else
        {
            Array.Clear(_buckets, 0, slots);
        }

        if (_next.Length < rights)
        {
            _next = new int[Math.Max(rights, _next.Length * 2)];
        }

        _shift = 32 - System.Numerics.BitOperations.Log2((uint)slots);
        for (var slot = _windowPanes - 1; slot >= 0; slot--)
        {
            var side = _window[slot].Right;
            var offset = _offsets[slot];
            for (var i = side.Count - 1; i >= 0; i--)
            {
                ref var bucket = ref _buckets[Bucket(side[i].Hash)];
                _next[offset + i] = bucket - 1;
                bucket = offset + i + 1;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Bucket(int hash) => (int)(((uint)hash * 0x9E3779B1u) >> _shift); // the top bits: a partition's hashes share their low bits

    /// <summary>Pairs the open window's left records with its right ones; false when it paused with <paramref name="limit"/> results waiting.</summary>
    private bool Probe(int limit)
    {
        var rights = _offsets[_windowPanes];
        for (; _slot < _windowPanes; _slot++, _index = 0)
        {
            var lefts = _window[_slot].Left;
            for (; _index < lefts.Count; _index++)
            {
                if (Results.Count >= limit)
                {
                    return false;
                }

                ref var left = ref lefts[_index];
                var met = false;
                if (rights > 0)
                {
                    for (var g = _buckets[Bucket(left.Hash)] - 1; g >= 0; g = _next[g])
                    {
                        ref var right = ref RightAt(g);
                        if (right.Hash == left.Hash && EqualityComparer<TKey>.Default.Equals(right.Key, left.Key))
                        {
                            Results.Add(new Joined<TLeft, TRight>(left.Record, right.Record, true));
                            met = true;
                        }
                    }
                }

                if (!met && _leftOuter)
                {
                    Results.Add(new Joined<TLeft, TRight>(left.Record, default, false));
                }
            }
        }

        return true;
    }

    /// <summary>The right record numbered <paramref name="number"/> across the open window's panes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref HeldRecord<TKey, TRight> RightAt(int number)
    {
        var slot = 0;
        if (_windowPanes <= 8)
        {
            while (number >= _offsets[slot + 1])
            {
                slot++;
            }
        }
        else
        {
            // A sliding window of many panes (an hour every second: 3,600): the pane by binary search.
            slot = Array.BinarySearch(_offsets, 0, _windowPanes + 1, number);
            slot = slot >= 0 ? slot : ~slot - 1;
            while (_offsets[slot + 1] == _offsets[slot])
            {
                slot++; // empty panes share their offset with the next
            }
        }

        return ref _window[slot].Right[number - _offsets[slot]];
    }

    /// <summary>Ends the open window: the panes whose last window it was go.</summary>
    private void Close()
    {
        _open = false;
        _firedThrough = _end - 1;
        Array.Clear(_window, 0, _windowPanes);
        while (_panes.Count > 0 && PaneLastEnd(_panes[0].Index) <= _end)
        {
            Release(_panes[0]);
            _panes.RemoveAt(0);
        }
    }

    private void Release(Pane pane)
    {
        _entries -= pane.Left.Count + pane.Right.Count;
        if (_last == pane)
        {
            _last = null;
        }

        if (_spare.Count < SparePanes)
        {
            pane.Left.Clear();
            pane.Right.Clear();
            _spare.Push(pane);
        }
    }

    /// <summary>The end of the last window <paramref name="time"/> falls into.</summary>
    private long LastEnd(long time) => (TimeMath.FloorDiv(time, _slide) * _slide) + _size;

    /// <summary>The end of the last window pane <paramref name="index"/> falls into.</summary>
    private long PaneLastEnd(long index) => LastEnd(index * _paneMs);

    /// <summary>Header (watermarks: forwarded and input), then every held record with its key.</summary>
    public void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<JoinEntry<TLeft, TRight>> entries)
    {
        ThrowIfFiring();
        new WindowStateHeader(Kind, Watermark, InputWatermark, _entries, Reached).Write(writer);
        foreach (var pane in _panes)
        {
            for (var i = 0; i < pane.Left.Count; i++)
            {
                ref var held = ref pane.Left[i];
                keys.Write(writer, held.Key);
                entries.Write(writer, new JoinEntry<TLeft, TRight> { IsLeft = true, Time = held.Time, Left = held.Record });
            }

            for (var i = 0; i < pane.Right.Count; i++)
            {
                ref var held = ref pane.Right[i];
                keys.Write(writer, held.Key);
                entries.Write(writer, new JoinEntry<TLeft, TRight> { Time = held.Time, Right = held.Record });
            }
        }
    }

    public void RestoreClock(long watermark, long clock)
    {
        RestoreWatermark(watermark);
        InputWatermark = clock;
    }

    public void RestoreEntries(ref StateReader reader, long count, IStateCodec<TKey> keys, IStateCodec<JoinEntry<TLeft, TRight>> accumulators, IReadOnlyList<IWindowState<TKey, JoinEntry<TLeft, TRight>>> targets)
    {
        for (long i = 0; i < count; i++)
        {
            var key = keys.Read(ref reader);
            var entry = accumulators.Read(ref reader);
            var hash = KeyHash.Of(key);
            var target = (WindowJoinOperator<TKey, TLeft, TRight>)targets[KeyHash.Partition(hash, targets.Count)];
            target.Hold(key, hash, entry.Time, entry.IsLeft, entry.Left, entry.Right);
        }
    }

    /// <summary>The records of one pane of time, each side in arrival order.</summary>
    private sealed class Pane
    {
        public long Index;

        public HeldRecords<TKey, TLeft> Left { get; } = new();

        public HeldRecords<TKey, TRight> Right { get; } = new();
    }
}

/// <summary>A record a window join holds: its key and the key's hash, its event time, and the record.</summary>
internal struct HeldRecord<TKey, T>
{
    public TKey Key;
    public int Hash;
    public long Time;
    public T Record;
}

/// <summary>
/// Records in arrival order, in chunks of 1 Ki (small enough to stay off the large-object heap for most record
/// types): growing allocates one chunk and copies nothing; clearing keeps the chunks for the next pane.
/// </summary>
internal sealed class HeldRecords<TKey, T>
{
    private const int ChunkBits = 10;
    private const int ChunkMask = (1 << ChunkBits) - 1;

    private HeldRecord<TKey, T>[][] _chunks = [];
    private int _allocated; // chunks allocated (some may be kept from before a clear)

    public int Count { get; private set; }

    public ref HeldRecord<TKey, T> this[int index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref _chunks[index >> ChunkBits][index & ChunkMask];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(TKey key, int hash, long time, T record)
    {
        var count = Count;
        if ((count & ChunkMask) == 0 && (count >> ChunkBits) == _allocated)
        {
            Grow();
        }

        ref var held = ref this[count];
        held.Key = key;
        held.Hash = hash;
        held.Time = time;
        held.Record = record;
        Count = count + 1;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Grow()
    {
        if (_allocated == _chunks.Length)
        {
            Array.Resize(ref _chunks, Math.Max(4, _chunks.Length * 2));
        }

        _chunks[_allocated++] = new HeldRecord<TKey, T>[1 << ChunkBits];
    }

    /// <summary>Empties the list, keeping its chunks; records holding references are cleared so they can be collected.</summary>
    public void Clear()
    {
        if (RuntimeHelpers.IsReferenceOrContainsReferences<HeldRecord<TKey, T>>())
        {
            for (var c = 0; c < _allocated && c << ChunkBits < Count; c++)
            {
                Array.Clear(_chunks[c]);
            }
        }

        Count = 0;
    }
}
