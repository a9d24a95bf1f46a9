namespace Compiled.Runtime;

/// <summary>
/// One partition of a lookup join. Before a batch is added (<see cref="PrepareAsync"/>) it finds the batch's keys the
/// cache lacks (or holds past their time-to-live), asks the reader for all of them in one call, and caches what came
/// back — keys without rows too, so a missing key is not asked for again with every record. <see cref="Add"/> then
/// joins every record from the cache without waiting.
/// </summary>
/// <remarks>
/// The cache is a hash table from key to a slot of an array of entries (the rows of a key), bounded by
/// <see cref="ILookup{TKey, TRow}.CacheSize"/> keys: when it is full the keys fetched longest ago leave first (a queue
/// in fetch order, which is also expiry order). A batch may push it past its bound by the keys it needs itself; the
/// next batch trims it. <see cref="PrepareAsync"/> notes each record's slot (an integer: no reference is copied per
/// record; the complement of the slot when the key has no row), and the loop after the lookup reads the entries in
/// place (<see cref="LookupMatches{TLeft, TRow}"/>) — or, when it has no fast path or a record throws, <see cref="Add"/>
/// writes the joined records out for it.
/// </remarks>
internal sealed class LookupOperator<TKey, TIn, TRow> : KeyedOperator<TKey, TIn, Joined<TIn, TRow>>, ILookupResults<TKey, TRow>, IAsyncDisposable
    where TKey : notnull
{
    private readonly ILookupReader<TKey, TRow> _reader;
    private readonly bool _leftOuter;
    private readonly int _capacity;
    private readonly long _timeToLive;
    private readonly Func<long> _clock;
    private readonly LookupStatistics _statistics;
    private readonly ILookupSegment<TKey, TIn, TRow>? _fused;
    private readonly Dictionary<TKey, int> _index = []; // key -> slot in _entries, or its complement when the key has no row
    private readonly Queue<(TKey Key, long Fetched)> _order = new();
    private readonly Dictionary<TKey, LookupEntry<TRow>> _fetched = []; // this batch's keys: what the reader returned for each
    private LookupEntry<TRow>[] _entries = new LookupEntry<TRow>[64];
    private int[] _free = new int[64]; // slots given back by keys that left the cache
    private int _freeCount;
    private int _used; // slots ever handed out
    private TKey[] _missing = new TKey[64];
    private int _missingCount;
    private int[] _slots = new int[64]; // the batch's slots, by position: found by PrepareAsync, read by Add
    private int[] _pending = new int[64]; // positions of the batch whose key was fetched
    private int _pendingCount;

    private readonly string _pipeline;
    private readonly string _name;
    private readonly int _partition;

    public LookupOperator(ILookupReader<TKey, TRow> reader, JoinKind join, int cacheSize, TimeSpan timeToLive, Func<long> clock, LookupStatistics statistics, (string Pipeline, string Name, int Partition) where, ILookupSegment<TKey, TIn, TRow>? fused = null)
    {
        (_pipeline, _name, _partition) = where;
        _reader = reader;
        _fused = fused;
        _leftOuter = join == JoinKind.LeftOuter;
        _capacity = cacheSize;
        _timeToLive = timeToLive > TimeSpan.Zero ? Math.Max(1, TimeMath.Millis(timeToLive)) : 0; // under 1 ms is 1 ms, not "never"
        _clock = clock;
        _statistics = statistics;
    }

    /// <summary>Keys in the cache now.</summary>
    public override int StateEntries => _index.Count;

    public override async ValueTask PrepareAsync(ReadOnlyMemory<Keyed<TKey, TIn>> batch, CancellationToken cancellationToken)
    {
        var now = _clock();
        Trim(now);
        _missingCount = 0;
        _pendingCount = 0;
        if (_slots.Length < batch.Length)
        {
            _slots = new int[Math.Max(batch.Length, _slots.Length * 2)];
        }

        // After Trim every cached key is within its time-to-live (keys leave in fetch order, which is expiry order).
        var items = batch.Span;
        var slots = _slots;
        var unmatched = 0;
        for (var i = 0; i < items.Length; i++)
        {
            ref readonly var item = ref items[i];
            if (_index.TryGetValue(item.Key, out var slot))
            {
                slots[i] = slot;
                unmatched += (int)((uint)slot >> 31); // a key without a row: its slot's complement
                continue;
            }

            if (_pendingCount == _pending.Length)
            {
                Array.Resize(ref _pending, _pending.Length * 2);
            }

            _pending[_pendingCount++] = i;
            if (_fetched.TryAdd(item.Key, default))
            {
                if (_missingCount == _missing.Length)
                {
                    Array.Resize(ref _missing, _missing.Length * 2);
                }

                _missing[_missingCount++] = item.Key;
            }
        }

        _statistics.AddHits(items.Length - _pendingCount);
        if (_missingCount == 0)
        {
            _statistics.AddUnmatched(unmatched);
            return;
        }

        try
        {
            await _reader.LookupAsync(_missing.AsMemory(0, _missingCount), this, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not PipelineException && !(ex is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            // A cancellation the run did not ask for is the lookup's failure too, and is named as such.
            throw new ConnectorException(_pipeline, _name, _partition, "look up rows", ex);
        }

        var rows = 0L;
        for (var i = 0; i < _missingCount; i++)
        {
            var key = _missing[i];
            var entry = _fetched[key] with { Fetched = now };
            rows += entry.Count;
            var slot = _index.TryGetValue(key, out var cached) ? Slot(cached) : _freeCount > 0 ? _free[--_freeCount] : NewSlot();
            _index[key] = entry.Count == 0 ? ~slot : slot;
            _entries[slot] = entry; // a stale entry of the key is replaced in its slot
            _order.Enqueue((key, now));
        }

        _statistics.Fetched(_missingCount, rows);
        items = batch.Span;
        for (var k = 0; k < _pendingCount; k++)
        {
            var i = _pending[k];
            var slot = _index[items[i].Key];
            slots[i] = slot;
            unmatched += (int)((uint)slot >> 31);
        }

        _statistics.AddUnmatched(unmatched);
        _fetched.Clear();
        Array.Clear(_missing, 0, _missingCount);
    }

    /// <summary>The slot of an index entry (a key without a row holds its slot's complement).</summary>
    private static int Slot(int indexed) => indexed < 0 ? ~indexed : indexed;

    private int NewSlot()
    {
        if (_used == _entries.Length)
        {
            Array.Resize(ref _entries, _entries.Length * 2);
        }

        return _used++;
    }

    /// <summary>A row the reader found for one of the keys asked for.</summary>
    void ILookupResults<TKey, TRow>.Add(TKey key, TRow row)
    {
        if (key is null || row is null)
        {
            throw new NonRetryableException($"The lookup reported a row with a null {(key is null ? "key" : "row")}: report each row found, under the key it was asked for.");
        }

        if (!_fetched.TryGetValue(key, out var entry))
        {
            // A reader's mistake no restart fixes (exit code 2): rows reported under keys spelled as the table holds them.
            throw new NonRetryableException($"The lookup returned a row for key '{key}', which was not asked for: a lookup reports each row under the key asked for (one of the keys it was given), not the key read back from the row, which a case-insensitive column spells differently.");
        }

        _fetched[key] = entry.With(row);
    }

    /// <summary>
    /// Joins the batch prepared by <see cref="PrepareAsync"/>: the loop after the lookup reads each record's rows in
    /// place when it has a fast path; otherwise (or when a record throws there) the joined records are written to
    /// <see cref="KeyedOperator{TKey, TIn, TResult}.Results"/> for it, and the error policy finds the one at fault.
    /// </summary>
    public override void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch)
    {
        var slots = _slots;
        var entries = _entries;
        if (_fused is { } fused && fused.TryRunLookup(batch, new LookupMatches<TIn, TRow>(slots, entries, _leftOuter)))
        {
            return;
        }

        var results = Results;
        for (var i = 0; i < batch.Length; i++)
        {
            ref readonly var item = ref batch[i];
            var slot = slots[i];
            if (slot < 0)
            {
                if (_leftOuter)
                {
                    results.Add(new Joined<TIn, TRow>(item.Record, default, false));
                }

                continue;
            }

            ref readonly var entry = ref entries[slot];
            switch (entry.Count)
            {
                case 1:
                    results.Add(new Joined<TIn, TRow>(item.Record, entry.First, true));
                    break;
                default:
                    results.Add(new Joined<TIn, TRow>(item.Record, entry.First, true));
                    for (var m = 0; m < entry.Count - 1; m++)
                    {
                        results.Add(new Joined<TIn, TRow>(item.Record, entry.More![m], true));
                    }

                    break;
            }
        }
    }

    /// <summary>A lookup holds nothing back: its watermark is its inputs'.</summary>
    public override void Advance(long watermark)
    {
        if (watermark > Watermark)
        {
            Watermark = watermark;
        }
    }

    /// <summary>Drops the keys fetched longest ago while the cache is over its bound, and keys past their time-to-live.</summary>
    private void Trim(long now)
    {
        while (_order.TryPeek(out var oldest) && (_index.Count > _capacity || (_timeToLive > 0 && now - oldest.Fetched >= _timeToLive)))
        {
            _order.Dequeue();
            // Unless the key was fetched again since: a later queue entry stands for it then.
            if (_index.TryGetValue(oldest.Key, out var indexed) && _entries[Slot(indexed)].Fetched == oldest.Fetched)
            {
                var slot = Slot(indexed);
                _index.Remove(oldest.Key);
                _entries[slot] = default;
                if (_freeCount == _free.Length)
                {
                    Array.Resize(ref _free, _free.Length * 2);
                }

                _free[_freeCount++] = slot;
            }
        }

        if (_index.Count == 0 && _order.Count > 0)
        {
            _order.Clear();
        }
    }

    public ValueTask DisposeAsync() => _reader.DisposeAsync();
}

/// <summary>What a lookup join did, over all its partitions: read by the summary and the metrics.</summary>
internal sealed class LookupStatistics
{
    private long _hits;
    private long _misses;
    private long _rows;
    private long _calls;
    private long _unmatched;

    /// <summary>Records whose key was in the cache.</summary>
    public long CacheHits => Volatile.Read(ref _hits);

    /// <summary>Distinct keys fetched (each key once per batch that lacked it).</summary>
    public long KeysFetched => Volatile.Read(ref _misses);

    /// <summary>Rows the reader returned.</summary>
    public long RowsFetched => Volatile.Read(ref _rows);

    /// <summary>Calls to the reader (one per batch with keys to fetch).</summary>
    public long Fetches => Volatile.Read(ref _calls);

    /// <summary>Records whose key had no row (dropped by an inner join, passed alone by a left-outer one).</summary>
    public long Unmatched => Volatile.Read(ref _unmatched);

    public void AddHits(long count) => Interlocked.Add(ref _hits, count);

    public void Fetched(long keys, long rows)
    {
        Interlocked.Add(ref _misses, keys);
        Interlocked.Add(ref _rows, rows);
        Interlocked.Increment(ref _calls);
    }

    public void AddUnmatched(long count) => Interlocked.Add(ref _unmatched, count);
}
