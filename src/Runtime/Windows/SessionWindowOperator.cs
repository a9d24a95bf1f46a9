using System.Runtime.InteropServices;

namespace Compiled.Runtime;

/// <summary>
/// Session windows: per key, a sorted chain of disjoint sessions; a record opens [t, t + gap) and merges every
/// session it touches. Fire and clean-up times live in one timer heap; a session whose end moved is rescheduled
/// when its old timer comes due, so extending a session costs no heap operation.
/// </summary>
internal sealed class SessionWindowOperator<TKey, TIn, TAgg, TAcc, TOut> : WindowOperator<TKey, TIn, TOut>, IWindowState<TKey, TAcc>
    where TKey : notnull
    where TAgg : IAggregator<TIn, TAcc, TOut>
{
    private struct Session
    {
        public TKey Key;
        public long Start;
        public long End;
        public TAcc Acc;
        public int Next;
        public int Version;
        public bool FirePending;
        public bool CleanupPending;
    }

    private readonly long _gap;
    private readonly Dictionary<TKey, int> _heads = [];
    private readonly PriorityQueue<(int Id, int Version, bool Cleanup), long> _timers = new();
    private Session[] _sessions = new Session[64];
    private int _used;
    private int _free = -1;
    private int _live;

    public SessionWindowOperator(long gapMs, long latenessMs)
        : base(latenessMs)
    {
        _gap = gapMs;
    }

    public override int StateEntries => _live;

    public override void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch)
    {
        FinishFiring();
        for (var i = 0; i < batch.Length; i++)
        {
            Add(batch[i]);
        }
    }

    private void Add(in Keyed<TKey, TIn> record)
    {
        var start = record.Timestamp;
        var end = start + _gap;
        ref var head = ref CollectionsMarshal.GetValueRefOrAddDefault(_heads, record.Key, out var exists);
        if (!exists)
        {
            head = -1;
        }

        // The sessions it touches are consecutive in the key's sorted chain.
        var mergedStart = start;
        var mergedEnd = end;
        var first = -1;
        var touched = 0;
        var previous = -1;
        for (var id = head; id >= 0; id = _sessions[id].Next)
        {
            ref var session = ref _sessions[id];
            if (session.Start > end)
            {
                break;
            }

            if (session.End >= start)
            {
                if (first < 0)
                {
                    first = id;
                }

                touched++;
                mergedStart = Math.Min(mergedStart, session.Start);
                mergedEnd = Math.Max(mergedEnd, session.End);
            }
            else
            {
                previous = id;
            }
        }

        if (mergedEnd - 1 + LatenessMs <= Watermark)
        {
            if (!exists)
            {
                _heads.Remove(record.Key);
            }

            Dropped(record.Record);
            return;
        }

        int target;
        if (touched == 0)
        {
            target = Allocate(record.Key);
            ref var created = ref _sessions[target];
            created.Start = start;
            created.End = end;
            LinkAfter(target, previous, ref head);
        }
        else
        {
            // Keep the first touched session and fold the others into it.
            target = first;
            ref var kept = ref _sessions[target];
            for (var n = 1; n < touched; n++)
            {
                var other = kept.Next;
                TAgg.Merge(ref kept.Acc, _sessions[other].Acc);
                kept.Next = _sessions[other].Next;
                Free(other);
            }

            kept.Start = mergedStart;
            kept.End = mergedEnd;
            if (touched > 1)
            {
                // The merged session is a new window: its timers start afresh.
                kept.Version++;
                kept.FirePending = false;
                kept.CleanupPending = false;
            }
        }

        ref var s = ref _sessions[target];
        TAgg.Add(ref s.Acc, record.Record);
        if (s.End - 1 <= Watermark)
        {
            Results.Add(new WindowResult<TKey, TOut>(s.Key, s.Start, s.End, TAgg.Result(s.Acc), true));
            ScheduleCleanup(target, ref s);
        }
        else if (!s.FirePending)
        {
            s.FirePending = true;
            _timers.Enqueue((target, s.Version, false), s.End - 1);
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
        ContinueFiring();
    }

    /// <summary>Runs the timers due at the watermark until <see cref="KeyedOperator{TKey, TIn, TResult}.FiringBatch"/> results wait (then <see cref="KeyedOperator{TKey, TIn, TResult}.Firing"/> stays set).</summary>
    internal override void ContinueFiring()
    {
        var watermark = Watermark;
        var limit = FiringBatch;
        Firing = false;
        while (_timers.TryPeek(out var timer, out var due) && due <= watermark)
        {
            if (Results.Count >= limit)
            {
                Firing = true;
                return;
            }

            _timers.Dequeue();
            ref var s = ref _sessions[timer.Id];
            if (s.Version != timer.Version)
            {
                continue; // merged away or freed
            }

            if (!timer.Cleanup)
            {
                s.FirePending = false;
                if (s.End - 1 > watermark)
                {
                    s.FirePending = true; // extended since: fire at its new end
                    _timers.Enqueue(timer, s.End - 1);
                    continue;
                }

                Results.Add(new WindowResult<TKey, TOut>(s.Key, s.Start, s.End, TAgg.Result(s.Acc), false));
                ScheduleCleanup(timer.Id, ref s);
            }
            else
            {
                s.CleanupPending = false;
                var cleanup = s.End - 1 + LatenessMs;
                if (cleanup > watermark || s.FirePending)
                {
                    s.CleanupPending = true;
                    _timers.Enqueue(timer, Math.Max(cleanup, s.End - 1));
                    continue;
                }

                Unlink(timer.Id);
            }
        }
    }

    public byte Kind => 2;

    /// <summary>Header, then per session: key, start, end, pending timers (bit 0 fire, bit 1 clean-up), accumulator.</summary>
    public void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators)
    {
        ThrowIfFiring();
        new WindowStateHeader(Kind, Watermark, 0, _live, Reached, SplitState).Write(writer);
        foreach (var head in _heads.Values)
        {
            for (var id = head; id >= 0; id = _sessions[id].Next)
            {
                ref var session = ref _sessions[id];
                keys.Write(writer, session.Key);
                writer.WriteInt64(session.Start);
                writer.WriteInt64(session.End);
                writer.WriteByte((byte)((session.FirePending ? 1 : 0) | (session.CleanupPending ? 2 : 0)));
                accumulators.Write(writer, session.Acc);
            }
        }
    }

    public void RestoreClock(long watermark, long clock) => RestoreWatermark(watermark);

    public void RestoreEntries(ref StateReader reader, long count, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, IReadOnlyList<IWindowState<TKey, TAcc>> targets)
    {
        for (long i = 0; i < count; i++)
        {
            var key = keys.Read(ref reader);
            var start = reader.ReadInt64();
            var end = reader.ReadInt64();
            var pending = reader.ReadByte();
            var accumulator = accumulators.Read(ref reader);
            var target = (SessionWindowOperator<TKey, TIn, TAgg, TAcc, TOut>)targets[KeyHash.Partition(KeyHash.Of(key), targets.Count)];
            target.Restore(key, start, end, pending, accumulator);
        }
    }

    /// <summary>Puts a checkpointed session back in its key's chain (sorted by start) and re-arms its timers.</summary>
    private void Restore(TKey key, long start, long end, byte pending, TAcc accumulator)
    {
        var id = Allocate(key);
        ref var head = ref CollectionsMarshal.GetValueRefOrAddDefault(_heads, key, out var exists);
        if (!exists)
        {
            head = -1;
        }

        var previous = -1;
        for (var other = head; other >= 0 && _sessions[other].Start < start; other = _sessions[other].Next)
        {
            previous = other;
        }

        ref var session = ref _sessions[id];
        session.Start = start;
        session.End = end;
        session.Acc = accumulator;
        LinkAfter(id, previous, ref head);

        if ((pending & 1) != 0)
        {
            session.FirePending = true;
            _timers.Enqueue((id, session.Version, false), end - 1);
        }

        if ((pending & 2) != 0)
        {
            session.CleanupPending = true;
            _timers.Enqueue((id, session.Version, true), end - 1 + LatenessMs);
        }
    }

    /// <summary>Puts session <paramref name="id"/> into its key's chain after <paramref name="previous"/> (-1: at the head).</summary>
    private void LinkAfter(int id, int previous, ref int head)
    {
        if (previous < 0)
        {
            _sessions[id].Next = head;
            head = id;
        }
        else
        {
            _sessions[id].Next = _sessions[previous].Next;
            _sessions[previous].Next = id;
        }
    }

    private void ScheduleCleanup(int id, ref Session s)
    {
        if (s.End - 1 + LatenessMs <= Watermark)
        {
            Unlink(id);
        }
        else if (!s.CleanupPending)
        {
            s.CleanupPending = true;
            _timers.Enqueue((id, s.Version, true), s.End - 1 + LatenessMs);
        }
    }

    private int Allocate(TKey key)
    {
        int id;
        if (_free >= 0)
        {
            id = _free;
            _free = _sessions[id].Next;
        }
        else
        {
            if (_used == _sessions.Length)
            {
                Array.Resize(ref _sessions, _used * 2);
            }

            id = _used++;
        }

        ref var s = ref _sessions[id];
        var version = s.Version + 1;
        s = default;
        s.Key = key;
        s.Version = version;
        _live++;
        return id;
    }

    private void Free(int id)
    {
        ref var s = ref _sessions[id];
        var version = s.Version + 1;
        s = default;
        s.Version = version;
        s.Next = _free;
        _free = id;
        _live--;
    }

    /// <summary>Removes a session from its key's chain and frees it.</summary>
    private void Unlink(int id)
    {
        var key = _sessions[id].Key;
        ref var head = ref CollectionsMarshal.GetValueRefOrNullRef(_heads, key);
        if (head == id)
        {
            head = _sessions[id].Next;
            if (head < 0)
            {
                _heads.Remove(key);
            }
        }
        else
        {
            var i = head;
            while (_sessions[i].Next != id)
            {
                i = _sessions[i].Next;
            }

            _sessions[i].Next = _sessions[id].Next;
        }

        Free(id);
    }
}
