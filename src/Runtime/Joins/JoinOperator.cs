namespace Compiled.Runtime;

/// <summary>One record a join holds: which side, its event time, whether it met anything yet, and the record.</summary>
internal struct JoinEntry<TLeft, TRight>
{
    public long Time;
    public bool IsLeft;
    public bool Matched;

    /// <summary>For a table join's right record: a delete (the key has no row from its time on).</summary>
    public bool Tombstone;
    public TLeft Left;
    public TRight Right;
}

/// <summary>Writes a <see cref="JoinEntry{TLeft, TRight}"/>: side, time, whether it met anything, then the record with its side's codec.</summary>
internal sealed class JoinEntryCodec<TLeft, TRight>(IStateCodec<TLeft> left, IStateCodec<TRight> right) : IStateCodec<JoinEntry<TLeft, TRight>>
{
    public string Schema { get; } = $"join entry ({left.Schema} | {right.Schema})";

    public void Write(StateWriter writer, in JoinEntry<TLeft, TRight> value)
    {
        writer.WriteByte((byte)((value.IsLeft ? 1 : 0) | (value.Matched ? 2 : 0) | (value.Tombstone ? 4 : 0)));
        writer.WriteInt64(value.Time);
        if (value.IsLeft)
        {
            left.Write(writer, value.Left);
        }
        else
        {
            right.Write(writer, value.Right);
        }
    }

    public JoinEntry<TLeft, TRight> Read(ref StateReader reader)
    {
        var flags = reader.ReadByte();
        var entry = new JoinEntry<TLeft, TRight> { IsLeft = (flags & 1) != 0, Matched = (flags & 2) != 0, Tombstone = (flags & 4) != 0, Time = reader.ReadInt64() };
        if (entry.IsLeft)
        {
            entry.Left = left.Read(ref reader);
        }
        else
        {
            entry.Right = right.Read(ref reader);
        }

        return entry;
    }
}

/// <summary>A record of one side a join holds: its event time, whether it met anything (left) or is a delete (a table's right), and the record.</summary>
internal struct Held<T>
{
    public long Time;

    /// <summary>A left record: it met a right one. A table join's right record: a delete (the key has no row from its time on).</summary>
    public bool Flag;
    public T Record;
}

/// <summary>
/// The records a join holds for one key: each side's in a list of its own, in arrival order, sized to its own record
/// type — an arriving record looks only at the other side's, and a held bid does not carry room for an auction.
/// </summary>
internal sealed class JoinKey<TLeft, TRight>
{
    public List<Held<TLeft>> Left { get; } = [];

    public List<Held<TRight>> Right { get; } = [];

    public int Count => Left.Count + Right.Count;

    /// <summary>The watermark move that last visited the key: a key queued more than once is visited once per move.</summary>
    public long VisitedIn { get; set; }

    /// <summary>Holds <paramref name="entry"/> on its side.</summary>
    public void Add(in JoinEntry<TLeft, TRight> entry)
    {
        if (entry.IsLeft)
        {
            Left.Add(new Held<TLeft> { Time = entry.Time, Flag = entry.Matched, Record = entry.Left });
        }
        else
        {
            Right.Add(new Held<TRight> { Time = entry.Time, Flag = entry.Tombstone, Record = entry.Right });
        }
    }
}

/// <summary>
/// The stream–table join of two keyed streams in one keyed partition (window and interval joins keep their records by
/// pane of time instead: <see cref="WindowJoinOperator{TKey, TLeft, TRight}"/>, <see cref="IntervalJoinOperator{TKey, TLeft, TRight}"/>):
/// left and right records of a key are held until no record
/// that could still meet them can arrive (the watermark decides), pairs leave as <see cref="Joined{TLeft, TRight}"/>,
/// and a left-outer join lets a left record that met nothing leave alone when it is dropped. Subclasses say when
/// records meet and when they are done. A record at or behind the watermark is late: counted, and not joined.
/// </summary>
/// <remarks>
/// A pair happens when its left record does (its event time is the left record's, as for lookups), so the watermark
/// this operator forwards is held back by <see cref="Holdback"/>: no pair it emits is late for a window behind it.
/// </remarks>
internal abstract class JoinOperator<TKey, TLeft, TRight> : KeyedOperator<TKey, Either<TLeft, TRight>, Joined<TLeft, TRight>>, IWindowState<TKey, JoinEntry<TLeft, TRight>>
    where TKey : notnull
{
    /// <summary>Keys' lists kept for reuse when keys come and go (one record per key is common: an order and its payment).</summary>
    private const int SpareLists = 16_384;

    private readonly Dictionary<TKey, JoinKey<TLeft, TRight>> _state = [];
    private readonly Stack<JoinKey<TLeft, TRight>> _spare = new();

    // When each key next needs the operator (a record done, a table version due), earliest first; a key may be queued
    // more than once, and is visited once per watermark move.
    private readonly PriorityQueue<TKey, long> _timers = new();
    private long _moves; // watermark moves so far: JoinKey.VisitedIn stamps the one that visited a key
    private long _previous; // the input watermark before the move being fired
    private int _entries;

    protected JoinOperator(bool leftOuter, long holdback)
    {
        LeftOuter = leftOuter;
        Holdback = holdback;
    }

    /// <summary>Whether a left record that met nothing leaves alone.</summary>
    protected bool LeftOuter { get; }

    /// <summary>How far (ms) the forwarded watermark stays behind the input watermark.</summary>
    protected long Holdback { get; }

    /// <summary>The inputs' watermark: records at or before it are late.</summary>
    protected long InputWatermark { get; private set; } = long.MinValue;

    public override int StateEntries => _entries;

    public abstract byte Kind { get; }

    public override void Add(ReadOnlySpan<Keyed<TKey, Either<TLeft, TRight>>> batch)
    {
        FinishFiring();
        foreach (ref readonly var item in batch)
        {
            var record = item.Record;
            if (IsLate(item.Timestamp, record.IsLeft))
            {
                Dropped(record);
                continue;
            }

            if (!_state.TryGetValue(item.Key, out var entries))
            {
                entries = _spare.Count > 0 ? _spare.Pop() : new JoinKey<TLeft, TRight>();
                _state.Add(item.Key, entries);
            }

            var entry = new JoinEntry<TLeft, TRight> { Time = item.Timestamp, IsLeft = record.IsLeft, Left = record.Left, Right = record.Right };
            var before = entries.Count;
            var keep = Arrive(entries, ref entry);
            _entries -= before - entries.Count; // a table join replaces rows
            if (keep)
            {
                entries.Add(entry);
                _entries++;
                Schedule(item.Key, WakeAt(entry.Time, entry.IsLeft, InputWatermark));
            }
            else if (entries.Count == 0)
            {
                Release(item.Key, entries);
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
        _previous = InputWatermark;
        InputWatermark = watermark;
        _moves++;
        Firing = true;
        ContinueFiring();
    }

    /// <summary>
    /// Visits the keys whose time the watermark reached, until <see cref="KeyedOperator{TKey, TIn, TResult}.FiringBatch"/>
    /// results wait (a key's visit is never split); the forwarded watermark moves once every due key is visited.
    /// </summary>
    internal override void ContinueFiring()
    {
        if (!Firing)
        {
            return;
        }

        var watermark = InputWatermark;
        var limit = FiringBatch;
        while (_timers.TryPeek(out var key, out var due) && due <= watermark)
        {
            if (Results.Count >= limit)
            {
                return;
            }

            _timers.Dequeue();
            if (_state.TryGetValue(key, out var entries) && entries.VisitedIn != _moves)
            {
                entries.VisitedIn = _moves;
                Visit(key, entries, _previous, watermark);
            }
        }

        Firing = false;
        Watermark = TimeMath.HeldBack(watermark, Holdback);
    }

    /// <summary>One key whose time came: fires what the move completes, drops the records that are done, and queues the key's next time.</summary>
    private void Visit(TKey key, JoinKey<TLeft, TRight> entries, long previous, long watermark)
    {
        var before = entries.Count;
        Fire(entries, previous, watermark);
        var next = long.MaxValue;
        Drop(entries.Left, isLeft: true, watermark, ref next);
        Drop(entries.Right, isLeft: false, watermark, ref next);
        _entries -= before - entries.Count;
        if (entries.Count == 0)
        {
            Release(key, entries);
        }
        else
        {
            Schedule(key, next);
        }
    }

    /// <summary>Drops a side's records the watermark is done with; lowers <paramref name="next"/> to the kept ones' next time.</summary>
    private void Drop<T>(List<Held<T>> side, bool isLeft, long watermark, ref long next)
    {
        var kept = 0;
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(side);
        for (var i = 0; i < span.Length; i++)
        {
            ref var held = ref span[i];
            if (DueAt(held.Time, isLeft) <= watermark)
            {
                continue; // a table join's left-outer records leave when they meet their row, never alone when dropped
            }

            next = Math.Min(next, WakeAt(held.Time, isLeft, watermark));
            span[kept++] = held;
        }

        side.RemoveRange(kept, side.Count - kept);
    }

    private void Schedule(TKey key, long at)
    {
        if (at != long.MaxValue)
        {
            _timers.Enqueue(key, at);
        }
    }

    private void Release(TKey key, JoinKey<TLeft, TRight> entries)
    {
        _state.Remove(key);
        if (_spare.Count < SpareLists)
        {
            entries.Left.Clear();
            entries.Right.Clear();
            entries.VisitedIn = 0;
            _spare.Push(entries);
        }
    }

    /// <summary>Whether a record of the side <paramref name="isLeft"/> says at <paramref name="time"/> is too late to meet anything.</summary>
    protected virtual bool IsLate(long time, bool isLeft) => time <= InputWatermark;

    /// <summary>
    /// Joins an arriving record with the held records of its key (adding the pairs to <see cref="KeyedOperator{TKey, TIn, TResult}.Results"/>
    /// and marking the records that met, the arriving one included); returns whether to hold the arriving record. It may
    /// remove held records of the key (a table's row replaced).
    /// </summary>
    protected abstract bool Arrive(JoinKey<TLeft, TRight> entries, ref JoinEntry<TLeft, TRight> arriving);

    /// <summary>Emits what the watermark's move from <paramref name="from"/> to <paramref name="to"/> completes for one key (a versioned table join's left records whose time came); before done records are dropped. It may remove held records.</summary>
    protected virtual void Fire(JoinKey<TLeft, TRight> entries, long from, long to)
    {
    }

    /// <summary>The input watermark at which a held record of the side <paramref name="isLeft"/> says, at <paramref name="time"/>, can no longer meet anything and is dropped.</summary>
    protected abstract long DueAt(long time, bool isLeft);

    /// <summary>The next input watermark after <paramref name="after"/> at which a held record needs the operator: when a window of it fires, or when it is done.</summary>
    protected virtual long WakeAt(long time, bool isLeft, long after) => DueAt(time, isLeft);

    /// <summary>Emits the pair of <paramref name="left"/> and <paramref name="right"/>.</summary>
    protected void Pair(in TLeft left, in TRight right) => Results.Add(new Joined<TLeft, TRight>(left, right, true));

    /// <summary>Header (watermarks: forwarded and input), then every held record with its key.</summary>
    public void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<JoinEntry<TLeft, TRight>> entries)
    {
        ThrowIfFiring();
        new WindowStateHeader(Kind, Watermark, InputWatermark, _entries, Reached).Write(writer);
        foreach (var (key, held) in _state)
        {
            foreach (var left in held.Left)
            {
                keys.Write(writer, key);
                entries.Write(writer, new JoinEntry<TLeft, TRight> { IsLeft = true, Time = left.Time, Matched = left.Flag, Left = left.Record });
            }

            foreach (var right in held.Right)
            {
                keys.Write(writer, key);
                entries.Write(writer, new JoinEntry<TLeft, TRight> { Time = right.Time, Tombstone = right.Flag, Right = right.Record });
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
            var target = (JoinOperator<TKey, TLeft, TRight>)targets[KeyHash.Partition(KeyHash.Of(key), targets.Count)];
            if (!target._state.TryGetValue(key, out var held))
            {
                held = new JoinKey<TLeft, TRight>();
                target._state.Add(key, held);
            }

            held.Add(entry);
            target._entries++;
            target.Schedule(key, target.WakeAt(entry.Time, entry.IsLeft, target.InputWatermark));
        }
    }
}

/// <summary>
/// A stream–table join: the right records are the changes of a table (each the new row of its key, or a delete), the
/// left records meet their key's row. <b>Versioned</b> (Flink's event-time temporal join): a left record is held until
/// the watermark reaches its time, then meets the row valid at that time — the last change at or before it — so a
/// change that arrives after the left record but is older still counts; each key keeps the versions the watermark has
/// not passed and the one valid at the watermark; a change behind the watermark still counts from then on if it is
/// newer than the row valid there. <b>Latest</b> (Kafka Streams' KStream–KTable join): a left record meets the row as
/// it is when it arrives, changes apply in arrival order, and each key keeps one row. Right records are never late;
/// left records at or behind the watermark are.
/// </summary>
internal sealed class TableJoinOperator<TKey, TLeft, TRight>(bool versioned, bool leftOuter, Func<TRight, ChangeKind>? change)
    : JoinOperator<TKey, TLeft, TRight>(leftOuter, 0)
    where TKey : notnull
{
    public override byte Kind => versioned ? (byte)12 : (byte)13;

    protected override bool IsLate(long time, bool isLeft) => isLeft && time <= InputWatermark;

    protected override bool Arrive(JoinKey<TLeft, TRight> entries, ref JoinEntry<TLeft, TRight> arriving)
    {
        var rows = entries.Right;
        if (arriving.IsLeft)
        {
            if (versioned)
            {
                return true; // met when the watermark reaches its time
            }

            Emit(arriving.Left, rows, Latest(rows, long.MaxValue));
            return false;
        }

        var kind = change?.Invoke(arriving.Right) ?? ChangeKind.Insert;
        if (kind == ChangeKind.UpdateBefore)
        {
            return false; // the row before an update: the update's after image replaces it
        }

        arriving.Tombstone = kind == ChangeKind.Delete;
        if (!versioned)
        {
            // The latest row as processed replaces the one before (Kafka Streams' KTable); a delete leaves none.
            rows.Clear();
            return !arriving.Tombstone;
        }

        if (arriving.Time > InputWatermark)
        {
            return true; // a version left records not yet met may need
        }

        // Behind the watermark: the left records of its time were met already; it counts from now on only if it is
        // newer than the version valid at the watermark.
        var valid = Latest(rows, InputWatermark);
        return valid < 0 || rows[valid].Time <= arriving.Time;
    }

    protected override void Fire(JoinKey<TLeft, TRight> entries, long from, long to)
    {
        if (!versioned)
        {
            return;
        }

        // Left records whose time the watermark reached, in time order so a key's results keep its records' order.
        var (lefts, rows) = (entries.Left, entries.Right);
        var due = 0;
        foreach (var entry in lefts)
        {
            due += entry.Time <= to ? 1 : 0;
        }

        if (due > 0)
        {
            SortByTime(lefts);
            foreach (var entry in lefts)
            {
                if (entry.Time <= to)
                {
                    Emit(entry.Record, rows, Latest(rows, entry.Time));
                }
            }
        }

        // Versions the watermark has passed, except the one valid at it — a delete too: it says that an older change
        // arriving late does not bring the row back.
        var valid = Latest(rows, to);
        if (valid >= 0)
        {
            var validTime = rows[valid].Time;
            rows.RemoveAll(e => e.Time < validTime);
        }
    }

    protected override long DueAt(long time, bool isLeft) => isLeft && versioned ? time : long.MaxValue;

    /// <summary>Versioned: a left record when its time comes; a version when the watermark passes it (the ones before it can go).</summary>
    protected override long WakeAt(long time, bool isLeft, long after)
        => !versioned ? long.MaxValue : isLeft || time > after ? time : long.MaxValue;

    /// <summary>A stable sort by time (insertion sort: a key holds few records), so changes of one time keep their arrival order.</summary>
    private static void SortByTime(List<Held<TLeft>> entries)
    {
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(entries);
        for (var i = 1; i < span.Length; i++)
        {
            var entry = span[i];
            var j = i - 1;
            while (j >= 0 && span[j].Time > entry.Time)
            {
                span[j + 1] = span[j];
                j--;
            }

            span[j + 1] = entry;
        }
    }

    /// <summary>The index in <paramref name="rows"/> (a key's row versions, in arrival order) of the newest version at or before <paramref name="time"/> (a delete included; of one time, the last to arrive), or -1.</summary>
    private static int Latest(List<Held<TRight>> rows, long time)
    {
        var found = -1;
        for (var i = 0; i < rows.Count; i++)
        {
            var entry = rows[i];
            if (entry.Time <= time && (found < 0 || entry.Time >= rows[found].Time))
            {
                found = i;
            }
        }

        return found;
    }

    private void Emit(in TLeft left, List<Held<TRight>> rows, int row)
    {
        if (row >= 0 && !rows[row].Flag)
        {
            Pair(left, rows[row].Record);
        }
        else if (LeftOuter)
        {
            Results.Add(new Joined<TLeft, TRight>(left, default, false));
        }
    }
}
