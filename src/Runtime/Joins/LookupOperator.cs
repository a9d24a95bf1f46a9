namespace Compiled.Runtime;

/// <summary>
/// One partition of a lookup join. Before a batch is added (<see cref="PrepareAsync"/>) it finds the batch's keys the
/// cache lacks (or holds past their time-to-live), asks the reader for all of them in one call, and caches what came
/// back — keys without rows too, so a missing key is not asked for again with every record. <see cref="Add"/> then
/// joins every record from the cache without waiting.
/// </summary>
/// <remarks>
/// The cache is a hash table from key to the rows of that key, bounded by <see cref="ILookup{TKey, TRow}.CacheSize"/>
/// keys: when it is full the keys fetched longest ago leave first (a queue in fetch order, which is also expiry order).
/// A batch may push it past its bound by the keys it needs itself; the next batch trims it.
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
    private readonly Dictionary<TKey, Entry> _cache = [];
    private readonly Queue<(TKey Key, long Fetched)> _order = new();
    private readonly Dictionary<TKey, Entry> _fetched = []; // this batch's keys: what the reader returned for each
    private TKey[] _missing = new TKey[64];
    private int _missingCount;

    public LookupOperator(ILookupReader<TKey, TRow> reader, JoinKind join, int cacheSize, TimeSpan timeToLive, Func<long> clock, LookupStatistics statistics)
    {
        _reader = reader;
        _leftOuter = join == JoinKind.LeftOuter;
        _capacity = cacheSize;
        _timeToLive = TimeMath.Millis(timeToLive);
        _clock = clock;
        _statistics = statistics;
    }

    /// <summary>Keys in the cache now.</summary>
    public override int StateEntries => _cache.Count;

    public override async ValueTask PrepareAsync(ReadOnlyMemory<Keyed<TKey, TIn>> batch, CancellationToken cancellationToken)
    {
        var now = _clock();
        Trim(now);
        _fetched.Clear();
        _missingCount = 0;
        var hits = 0L;
        foreach (ref readonly var item in batch.Span)
        {
            if (_cache.TryGetValue(item.Key, out var cached) && Fresh(cached, now))
            {
                hits++;
            }
            else if (_fetched.TryAdd(item.Key, default))
            {
                if (_missingCount == _missing.Length)
                {
                    Array.Resize(ref _missing, _missing.Length * 2);
                }

                _missing[_missingCount++] = item.Key;
            }
        }

        _statistics.AddHits(hits);
        if (_missingCount == 0)
        {
            return;
        }

        await _reader.LookupAsync(_missing.AsMemory(0, _missingCount), this, cancellationToken).ConfigureAwait(false);
        _statistics.Fetched(_missingCount, _fetched.Values.Sum(e => (long)e.Count));
        for (var i = 0; i < _missingCount; i++)
        {
            var key = _missing[i];
            var entry = _fetched[key] with { Fetched = now };
            _cache[key] = entry;
            _order.Enqueue((key, now));
        }

        Array.Clear(_missing, 0, _missingCount);
    }

    /// <summary>A row the reader found for one of the keys asked for.</summary>
    void ILookupResults<TKey, TRow>.Add(TKey key, TRow row)
    {
        if (!_fetched.TryGetValue(key, out var entry))
        {
            throw new InvalidOperationException($"The lookup reader returned a row for key '{key}', which was not asked for.");
        }

        _fetched[key] = entry.With(row);
    }

    public override void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch)
    {
        var results = Results;
        var unmatched = 0L;
        foreach (ref readonly var item in batch)
        {
            var entry = _fetched.TryGetValue(item.Key, out var fresh) ? fresh : _cache[item.Key];
            switch (entry.Count)
            {
                case 0:
                    unmatched++;
                    if (_leftOuter)
                    {
                        results.Add(new Joined<TIn, TRow>(item.Record, default, false));
                    }

                    break;
                case 1:
                    results.Add(new Joined<TIn, TRow>(item.Record, entry.First, true));
                    break;
                default:
                    results.Add(new Joined<TIn, TRow>(item.Record, entry.First, true));
                    for (var i = 0; i < entry.Count - 1; i++)
                    {
                        results.Add(new Joined<TIn, TRow>(item.Record, entry.More![i], true));
                    }

                    break;
            }
        }

        _statistics.AddUnmatched(unmatched);
    }

    /// <summary>A lookup holds nothing back: its watermark is its inputs'.</summary>
    public override void Advance(long watermark)
    {
        if (watermark > Watermark)
        {
            Watermark = watermark;
        }
    }

    private bool Fresh(in Entry entry, long now) => _timeToLive <= 0 || now - entry.Fetched < _timeToLive;

    /// <summary>Drops the keys fetched longest ago while the cache is over its bound, and keys past their time-to-live.</summary>
    private void Trim(long now)
    {
        while (_order.TryPeek(out var oldest) && (_cache.Count > _capacity || (_timeToLive > 0 && now - oldest.Fetched >= _timeToLive)))
        {
            _order.Dequeue();
            if (_cache.TryGetValue(oldest.Key, out var entry) && entry.Fetched == oldest.Fetched)
            {
                _cache.Remove(oldest.Key); // else the key was fetched again since; a later queue entry stands for it
            }
        }

        if (_cache.Count == 0 && _order.Count > 0)
        {
            _order.Clear();
        }
    }

    public ValueTask DisposeAsync() => _reader.DisposeAsync();

    /// <summary>The rows of one key: none, one, or one and more.</summary>
    private readonly record struct Entry(int Count, TRow First, TRow[]? More, long Fetched)
    {
        public Entry With(TRow row)
        {
            if (Count == 0)
            {
                return this with { Count = 1, First = row };
            }

            var more = More;
            if (more is null || Count - 1 == more.Length)
            {
                Array.Resize(ref more, Math.Max(2, (Count - 1) * 2));
            }

            more[Count - 1] = row;
            return this with { Count = Count + 1, More = more };
        }
    }
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
