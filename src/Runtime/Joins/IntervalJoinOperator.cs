using System.Runtime.CompilerServices;

namespace Compiled.Runtime;

/// <summary>
/// Flink's interval join: left <c>l</c> and right <c>r</c> of one key meet when <c>l + lower ≤ r ≤ l + upper</c>
/// (event times, ms). Pairs leave as soon as the second of them arrives; a left-outer join lets a left record that met
/// nothing leave alone once no right record can meet it. A record at or behind the watermark is late: counted, and
/// not joined.
/// </summary>
/// <remarks>
/// State is kept by time, as the window join's is: time is cut into panes of half the interval's width (at least
/// <see cref="MinimumPaneMs"/>), and each pane holds one side's records in arrival order with a bucket index by key
/// hash. An arriving record probes the panes of the other side its interval overlaps (at most three) — no object and
/// no timer per key. A pane goes whole once the watermark has passed the last instant any of its records could still
/// meet one: a left pane its end + upper, a right pane its end − lower; a left-outer join then emits the pane's
/// unmatched left records, <see cref="KeyedOperator{TKey, TIn, TResult}.FiringBatch"/> at a time. So, as in Flink
/// SQL's interval join (whose clean-up timers are coarsened to half the interval too), an unmatched left record
/// leaves up to one pane after the first watermark that could release it. A pair's event time is its left record's,
/// up to <c>upper</c> before the right record that completes it, so the forwarded watermark is held back by
/// <c>upper</c> — and in a left-outer join by one pane more, so that no record it emits is late behind it.
/// </remarks>
internal sealed class IntervalJoinOperator<TKey, TLeft, TRight>
    : KeyedOperator<TKey, Either<TLeft, TRight>, Joined<TLeft, TRight>>, IWindowState<TKey, JoinEntry<TLeft, TRight>>
    where TKey : notnull
{
    /// <summary>The shortest pane: an interval of a few milliseconds behind seconds of out-of-orderness would otherwise hold thousands of panes.</summary>
    internal const long MinimumPaneMs = 100;

    private readonly long _lower;
    private readonly long _upper;
    private readonly long _paneMs;
    private readonly long _holdback;
    private readonly bool _leftOuter;
    private readonly Panes<TLeft> _lefts = new();
    private readonly Panes<TRight> _rights = new();
    private int _entries;
    private int _emitted; // records of the oldest left pane looked at while emitting its unmatched ones

    public IntervalJoinOperator(long lower, long upper, bool leftOuter)
    {
        _lower = lower;
        _upper = upper;
        _leftOuter = leftOuter;
        _paneMs = PaneMs(lower, upper);
        _holdback = Math.Max(0, leftOuter ? Saturating(upper, _paneMs - 1) : upper);
    }

    /// <summary>The pane length for an interval [<paramref name="lower"/>, <paramref name="upper"/>]: half its width, at least <see cref="MinimumPaneMs"/>.</summary>
    internal static long PaneMs(long lower, long upper) => Math.Max(MinimumPaneMs, (upper / 2) - (lower / 2));

    /// <summary>The inputs' watermark: records at or before it are late.</summary>
    private long InputWatermark { get; set; } = long.MinValue;

    public override int StateEntries => _entries;

    public byte Kind => 10;

    public override void Add(ReadOnlySpan<Keyed<TKey, Either<TLeft, TRight>>> batch)
    {
        FinishFiring();
        foreach (ref readonly var item in batch)
        {
            var time = item.Timestamp;
            if (time <= InputWatermark)
            {
                Dropped(item.Record);
                continue;
            }

            if (item.Record.IsLeft)
            {
                var met = MeetRights(item.Key, item.Hash, time, item.Record.Left);
                _lefts.For(PaneOf(time)).Add(item.Key, item.Hash, time, item.Record.Left, met);
            }
            else
            {
                MeetLefts(item.Key, item.Hash, time, item.Record.Right);
                _rights.For(PaneOf(time)).Add(item.Key, item.Hash, time, item.Record.Right, matched: false);
            }

            _entries++;
        }
    }

    /// <summary>Pairs an arriving left record with the held right records in [l + lower, l + upper]; whether it met any.</summary>
    private bool MeetRights(TKey key, int hash, long time, TLeft left)
    {
        var (from, to) = (Saturating(time, _lower), Saturating(time, _upper));
        var last = PaneOf(to);
        var met = false;
        for (var p = _rights.FirstAtOrAfter(PaneOf(from)); p < _rights.Count && _rights[p].Index <= last; p++)
        {
            var pane = _rights[p];
            for (var i = pane.First(hash); i >= 0; i = pane.Previous(i))
            {
                ref var held = ref pane.Records[i];
                if (held.Hash == hash && held.Time >= from && held.Time <= to && EqualityComparer<TKey>.Default.Equals(held.Key, key))
                {
                    Results.Add(new Joined<TLeft, TRight>(left, held.Record, true));
                    met = true;
                }
            }
        }

        return met;
    }

    /// <summary>Pairs an arriving right record with the held left records in [r − upper, r − lower], marking them as met.</summary>
    private void MeetLefts(TKey key, int hash, long time, TRight right)
    {
        var (from, to) = (Saturating(time, -_upper), Saturating(time, -_lower));
        var last = PaneOf(to);
        for (var p = _lefts.FirstAtOrAfter(PaneOf(from)); p < _lefts.Count && _lefts[p].Index <= last; p++)
        {
            var pane = _lefts[p];
            for (var i = pane.First(hash); i >= 0; i = pane.Previous(i))
            {
                ref var held = ref pane.Records[i];
                if (held.Hash == hash && held.Time >= from && held.Time <= to && EqualityComparer<TKey>.Default.Equals(held.Key, key))
                {
                    pane.Matched[i] = true;
                    Results.Add(new Joined<TLeft, TRight>(held.Record, right, true));
                }
            }
        }
    }

    public override void Advance(long watermark)
    {
        if (watermark <= InputWatermark)
        {
            return;
        }

        FinishFiring();
        InputWatermark = watermark;
        Firing = true;
        ContinueFiring();
    }

    /// <summary>
    /// Drops the panes the watermark is done with, oldest first; a left-outer join emits a left pane's unmatched
    /// records as it goes, pausing when <see cref="KeyedOperator{TKey, TIn, TResult}.FiringBatch"/> results wait.
    /// </summary>
    internal override void ContinueFiring()
    {
        if (!Firing)
        {
            return;
        }

        var watermark = InputWatermark;
        while (_rights.Count > 0 && Saturating(LastInstant(_rights[0].Index), -_lower) <= watermark)
        {
            _entries -= _rights[0].Count;
            _rights.RemoveOldest();
        }

        var limit = FiringBatch;
        while (_lefts.Count > 0 && Saturating(LastInstant(_lefts[0].Index), _upper) <= watermark)
        {
            var pane = _lefts[0];
            if (_leftOuter)
            {
                for (; _emitted < pane.Count; _emitted++)
                {
                    if (Results.Count >= limit)
                    {
                        return;
                    }

                    if (!pane.Matched[_emitted])
                    {
                        Results.Add(new Joined<TLeft, TRight>(pane.Records[_emitted].Record, default, false));
                    }
                }
            }

            _emitted = 0;
            _entries -= pane.Count;
            _lefts.RemoveOldest();
        }

        Firing = false;
        Watermark = TimeMath.HeldBack(watermark, _holdback);
    }

    private long PaneOf(long time) => TimeMath.FloorDiv(time, _paneMs);

    private long LastInstant(long pane) => pane >= long.MaxValue / _paneMs ? long.MaxValue : ((pane + 1) * _paneMs) - 1;

    private static long Saturating(long time, long offset)
        => offset >= 0
            ? (time > long.MaxValue - offset ? long.MaxValue : time + offset)
            : (time < long.MinValue - offset ? long.MinValue : time + offset);

    /// <summary>Header (watermarks: forwarded and input), then every held record with its key; a left one says whether it met a right one.</summary>
    public void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<JoinEntry<TLeft, TRight>> entries)
    {
        ThrowIfFiring();
        new WindowStateHeader(Kind, Watermark, InputWatermark, _entries, Reached).Write(writer);
        for (var p = 0; p < _lefts.Count; p++)
        {
            var pane = _lefts[p];
            for (var i = 0; i < pane.Count; i++)
            {
                ref var held = ref pane.Records[i];
                keys.Write(writer, held.Key);
                entries.Write(writer, new JoinEntry<TLeft, TRight> { IsLeft = true, Time = held.Time, Matched = pane.Matched[i], Left = held.Record });
            }
        }

        for (var p = 0; p < _rights.Count; p++)
        {
            var pane = _rights[p];
            for (var i = 0; i < pane.Count; i++)
            {
                ref var held = ref pane.Records[i];
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
            var target = (IntervalJoinOperator<TKey, TLeft, TRight>)targets[KeyHash.Partition(hash, targets.Count)];
            if (entry.IsLeft)
            {
                target._lefts.For(target.PaneOf(entry.Time)).Add(key, hash, entry.Time, entry.Left, entry.Matched);
            }
            else
            {
                target._rights.For(target.PaneOf(entry.Time)).Add(key, hash, entry.Time, entry.Right, matched: false);
            }

            target._entries++;
        }
    }

    /// <summary>One side's panes, ascending by index; emptied panes are kept for reuse.</summary>
    private sealed class Panes<T>
    {
        private const int SparePanes = 4;

        private readonly List<Pane<T>> _panes = [];
        private readonly Stack<Pane<T>> _spare = new();
        private Pane<T>? _last; // the pane the last record went to: most records go to the newest pane

        public int Count => _panes.Count;

        public Pane<T> this[int index] => _panes[index];

        /// <summary>The position of the first pane whose index is at least <paramref name="index"/> (<see cref="Count"/> if none).</summary>
        public int FirstAtOrAfter(long index)
        {
            var (low, high) = (0, _panes.Count);
            while (low < high)
            {
                var middle = (low + high) >>> 1;
                if (_panes[middle].Index < index)
                {
                    low = middle + 1;
                }
                else
                {
                    high = middle;
                }
            }

            return low;
        }

        /// <summary>The pane <paramref name="index"/>, created in its place when new.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Pane<T> For(long index) => _last is { } last && last.Index == index ? last : Find(index);

        [MethodImpl(MethodImplOptions.NoInlining)]
        private Pane<T> Find(long index)
        {
            var at = FirstAtOrAfter(index);
            if (at < _panes.Count && _panes[at].Index == index)
            {
                return _last = _panes[at];
            }

            var pane = _spare.Count > 0 ? _spare.Pop() : new Pane<T>();
            pane.Index = index;
            _panes.Insert(at, pane);
            return _last = pane;
        }

        public void RemoveOldest()
        {
            var pane = _panes[0];
            _panes.RemoveAt(0);
            if (_last == pane)
            {
                _last = null;
            }

            if (_spare.Count < SparePanes)
            {
                pane.Clear();
                _spare.Push(pane);
            }
        }
    }

    /// <summary>One side's records of one pane of time, in arrival order, with chains of records by bucket of key hash.</summary>
    private sealed class Pane<T>
    {
        private int[] _buckets = new int[16]; // per bucket: its last record + 1 (0: none)
        private int[] _previous = new int[16]; // per record: the record before it in its bucket's chain + 1 (0: none)
        private int _shift = 28;

        public long Index;

        public HeldRecords<TKey, T> Records { get; } = new();

        /// <summary>Per left record: whether a right record met it.</summary>
        public bool[] Matched = new bool[16];

        public int Count => Records.Count;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int First(int hash) => _buckets[Bucket(hash)] - 1;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Previous(int record) => _previous[record] - 1;

        public void Add(TKey key, int hash, long time, T record, bool matched)
        {
            var at = Records.Count;
            Records.Add(key, hash, time, record);
            if (at == _previous.Length)
            {
                Array.Resize(ref _previous, at * 2);
                Array.Resize(ref Matched, at * 2);
            }

            Matched[at] = matched;
            if (at == _buckets.Length)
            {
                Rehash(_buckets.Length * 2); // links the new record too
            }
            else
            {
                Link(at);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private int Bucket(int hash) => (int)(((uint)hash * 0x9E3779B1u) >> _shift); // the top bits: a partition's hashes share their low bits

        private void Link(int record)
        {
            ref var bucket = ref _buckets[Bucket(Records[record].Hash)];
            _previous[record] = bucket;
            bucket = record + 1;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Rehash(int buckets)
        {
            _buckets = new int[buckets];
            _shift = 32 - System.Numerics.BitOperations.Log2((uint)buckets);
            for (var i = 0; i < Records.Count; i++)
            {
                Link(i);
            }
        }

        public void Clear()
        {
            Records.Clear();
            Array.Clear(_buckets);
        }
    }
}
