using System.Buffers;

namespace Compiled.Runtime;

/// <summary>What a partition's worker tells the exchanges its loop writes into, besides records.</summary>
internal interface IExchangePort
{
    /// <summary>The worker's own watermark (a keyed partition's combined watermark): the port sends it on, not one computed from records.</summary>
    void ForwardWatermark(long watermark);

    /// <summary>The worker's source partition has nothing to read for now (no split, no file, no Kafka partition).</summary>
    void DeclareIdle();

    /// <summary>Raises the port's watermark to at least <paramref name="watermark"/>, as if the input had promised no earlier record (test driver).</summary>
    void RaiseWatermark(long watermark);

    /// <summary>
    /// The source reader's batch came with its splits (<see cref="SourceSplits"/>): from now on the port's watermark is
    /// the minimum over the splits' own, as <see cref="EndRun"/> attributes records to them.
    /// </summary>
    void ReadSplits(SourceSplits splits);

    /// <summary>The records the loop appended since the last call came from a run of split <paramref name="split"/>'s records.</summary>
    void EndRun(int split);

    /// <summary>Sends what is buffered, then checkpoint barrier <paramref name="checkpoint"/> to every consumer partition.</summary>
    ValueTask SendBarrierAsync(long checkpoint, CancellationToken cancellationToken);

    /// <summary>The reader keeps state per split: a by-split exchange's barriers carry each split's to its keyed partition.</summary>
    void ReadSplitStates(ISplitStateReader reader);

    /// <summary>
    /// Sends what is buffered, then the end of this producer's input to every consumer partition, without waiting for
    /// them (<see cref="IOutputPort.CompleteAsync"/> waits, and sends the end first if this was not called).
    /// </summary>
    ValueTask EndAsync(CancellationToken cancellationToken);
}

/// <summary>
/// One producer partition's side of an exchange: the buffer its loop appends keyed records to, and after each batch
/// the routing of those records to the consumer partitions, each batch carrying the producer's watermark.
/// </summary>
/// <remarks>
/// The watermark is either derived from the records (the largest event time seen − out-of-orderness − 1 ms: the loop
/// reads a source; when the reader reads several splits at once, the minimum of that over its splits, see
/// <see cref="SourceSplits"/>) or forwarded (the producer is a keyed partition whose combined watermark is known; the next window's
/// out-of-orderness is subtracted from it). Watermarks are sent only when they move, and with every batch of records.
/// </remarks>
internal sealed class ExchangePort<T> : IOutputPort, IBufferedPort<T>, IExchangePort
    where T : IExchangeRecord
{
    private readonly Exchange<T> _exchange;
    private readonly int _producer;
    private readonly int _input;
    private readonly int[] _targets;
    private readonly ExchangeBatch<T>?[] _batches;
    private readonly long[] _sent;
    private readonly bool _eventTime;
    private readonly bool _forwarded;
    private readonly long _outOfOrderMs;
    private readonly CancellationToken _abort;
    private long _maxTimestamp = long.MinValue;
    private long _upstream = long.MinValue;
    private long _floor = long.MinValue;
    private SourceSplits? _splits;
    private Dictionary<int, long>? _splitMax;
    private Dictionary<int, long>? _splitActive;
    private readonly HashSet<int> _present = [];
    private int _mark;
    private readonly List<(int End, int Split)> _runs = [];
    private int _runEnd;
    private bool _idlePending;
    private bool _idle;
    private bool _ended;
    private int _turn;
    private ISplitStateReader? _splitStates;

    public ExchangePort(Exchange<T> exchange, int producer, bool eventTime, bool forwarded, TimeSpan outOfOrderness, CancellationToken abort)
    {
        _exchange = exchange;
        _producer = producer;
        _eventTime = eventTime;
        _forwarded = forwarded;
        _outOfOrderMs = TimeMath.Millis(outOfOrderness);
        _abort = abort;
        _input = exchange.Routing == ExchangeRouting.Forward ? 0 : producer;
        _targets = exchange.Routing == ExchangeRouting.Forward ? [producer] : Enumerable.Range(0, exchange.Consumers).ToArray();
        _batches = new ExchangeBatch<T>?[exchange.Consumers];
        _sent = new long[exchange.Consumers];
        Array.Fill(_sent, long.MinValue);
    }

    public Compiled.RecordBuffer<T> Buffer { get; } = new();

    public int Queued => 0;

    public int Capacity => 0;

    /// <summary>The exchange this port writes into.</summary>
    public Exchange Exchange => _exchange;

    public void ForwardWatermark(long watermark) => _upstream = Math.Max(_upstream, watermark);

    public void DeclareIdle()
    {
        if (!_idle)
        {
            _idle = true;
            _idlePending = true;
        }
    }

    public void RaiseWatermark(long watermark) => _floor = Math.Max(_floor, watermark);

    /// <summary>
    /// By-split routing (distributed runs): called with a sample of the records (each run's first, then one in 64) and
    /// their split, to notice a key that comes from two splits — an input declared partitioned by the key that is not.
    /// </summary>
    public Action<T, int>? SplitCheck { get; set; }

    /// <summary>
    /// With a clock: a split that has handed on nothing for this long (processing time) stops holding the watermark
    /// back until its next records, as an input of a keyed partition does (the window's <c>IdleTimeout</c>; zero: never).
    /// </summary>
    public TimeSpan SplitIdleTimeout { get; init; }

    /// <summary>The run's clock, for <see cref="SplitIdleTimeout"/>.</summary>
    public RunClock? Clock { get; init; }

    private long Now => Clock?.Now ?? 0;

    public void ReadSplits(SourceSplits splits)
    {
        _splits = splits;
        _splitMax ??= [];
        if (SplitIdleTimeout > TimeSpan.Zero && Clock is not null)
        {
            // A split counts as active from when the port hears of it — again when it comes back (a partition
            // assigned anew), however long it was away.
            _splitActive ??= [];
            var now = Now;
            for (var i = 0; i < splits.Count; i++)
            {
                if (!_present.Contains(splits[i]))
                {
                    _splitActive[splits[i]] = now;
                }
            }

            _present.Clear();
            for (var i = 0; i < splits.Count; i++)
            {
                _present.Add(splits[i]);
            }
        }
    }

    public void EndRun(int split)
    {
        if (_exchange.Routing == ExchangeRouting.BySplit && Buffer.Span.Length > _runEnd)
        {
            _runs.Add((Buffer.Span.Length, split));
            _runEnd = Buffer.Span.Length;
        }

        if (!_eventTime || _forwarded || _splitMax is null)
        {
            return;
        }

        var records = Buffer.Span;
        var max = _splitMax.GetValueOrDefault(split, long.MinValue);
        foreach (ref readonly var record in records[_mark..])
        {
            max = Math.Max(max, record.Timestamp);
        }

        _splitMax[split] = max;
        _maxTimestamp = Math.Max(_maxTimestamp, max);
        _mark = records.Length;
        if (_splitActive is not null)
        {
            _splitActive[split] = Now;
        }
    }

    private long Watermark()
    {
        if (!_eventTime)
        {
            return long.MinValue; // processing time: the consumer stamps records and reads its own clock
        }

        var basis = _forwarded ? _upstream : _splits is { Count: > 0 } splits ? SplitsMax(splits) : _maxTimestamp;
        if (!_forwarded && basis != long.MinValue)
        {
            basis--;
        }

        var watermark = TimeMath.HeldBack(basis, _outOfOrderMs); // saturates: an event time near the minimum does not wrap around
        return Math.Max(watermark, _floor);
    }

    /// <summary>
    /// The watermark this port would send with every split idle: what it has read so far, not held back by any split.
    /// Checkpoints keep it (<see cref="KeyedOperator{TKey, TIn, TResult}.Reached"/>), so that a restarted run whose
    /// inputs have nothing new still fires the windows it completes. A forwarded watermark has none: the keyed
    /// partition before it fires by its own.
    /// </summary>
    private long Reached()
        => !_eventTime || _forwarded || _maxTimestamp is long.MinValue ? long.MinValue : TimeMath.HeldBack(_maxTimestamp - 1, _outOfOrderMs);

    /// <summary>The largest event time every active split has reached (the smallest of their largest), or with every split idle the largest of all.</summary>
    private long SplitsMax(SourceSplits splits)
    {
        var active = long.MaxValue;
        var idle = long.MinValue;
        var anyActive = false;
        var now = _splitActive is null ? 0 : Now;
        var idleMs = TimeMath.Millis(SplitIdleTimeout);
        for (var i = 0; i < splits.Count; i++)
        {
            var max = splits.ReachedAt(i) ?? _splitMax!.GetValueOrDefault(splits[i], long.MinValue);
            if (splits.IsIdleAt(i) || (_splitActive is not null && now - _splitActive.GetValueOrDefault(splits[i], now) >= idleMs))
            {
                idle = Math.Max(idle, max);
            }
            else
            {
                anyActive = true;
                active = Math.Min(active, max);
            }
        }

        return anyActive ? active : idle;
    }

    private static bool AllIdle(SourceSplits splits)
    {
        for (var i = 0; i < splits.Count; i++)
        {
            if (!splits.IsIdleAt(i))
            {
                return false;
            }
        }

        return true;
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var records = Buffer.Span;
        if (_eventTime && !_forwarded && _mark < records.Length)
        {
            // Records not attributed to a split (a reader without splits): the reader's largest event time.
            var max = _maxTimestamp;
            foreach (ref readonly var record in records[_mark..])
            {
                max = Math.Max(max, record.Timestamp);
            }

            _maxTimestamp = max;
        }

        _mark = 0;
        if (!_forwarded && _splits is { Count: > 0 } splits && AllIdle(splits))
        {
            // Every split read to its end (a reader whose Kafka partitions were all resumed at their end): the reader
            // holds nothing back until its next record, as a reader with no split at all does — else, having never
            // seen a record, it would hold every keyed partition at the smallest watermark for good.
            DeclareIdle();
        }

        var watermark = Watermark();
        if (records.Length == 0 && !_idlePending && watermark <= MinSent())
        {
            return;
        }

        var waking = false;
        if (records.Length > 0)
        {
            // Back from idle: every consumer hears it, not only those these records go to — else a consumer whose
            // keys come later would still leave this producer out of its watermark, and find those records late.
            waking = _idle;
            _idle = false;
            _idlePending = false;
            Route(records);
        }

        foreach (var target in _targets)
        {
            if (_batches[target] is null && watermark <= _sent[target] && !_idlePending && !waking)
            {
                continue;
            }

            var batch = _batches[target] ?? _exchange.Rent(_input);
            _batches[target] = null;
            batch.Input = _input;
            batch.Watermark = watermark;
            batch.Active = waking;
            if (batch.Count == 0 && _idlePending)
            {
                batch.Signal = ExchangeSignal.Idle;
            }

            _sent[target] = Math.Max(_sent[target], watermark);
            await _exchange.SendAsync(target, batch, Linked(cancellationToken)).ConfigureAwait(false);
        }

        _idlePending = false;
    }

    private void Route(ReadOnlySpan<T> records)
    {
        var batches = _batches;
        if (_targets.Length == 1 || _exchange.Routing == ExchangeRouting.Rebalance)
        {
            // One consumer to feed (or the next in turn): hand over the loop's array itself and give the loop a recycled one.
            var batch = _exchange.Rent(_input);
            batch.Items = Buffer.Exchange(batch.Items, out batch.Count);
            batches[_targets.Length == 1 ? _targets[0] : _targets[_turn++ % _targets.Length]] = batch;
            _runs.Clear();
            _runEnd = 0;
            return;
        }

        if (_exchange.Routing == ExchangeRouting.BySplit)
        {
            // Every record came in a run of one split (EndRun); the split's number is its keyed partition.
            var start = 0;
            foreach (var (end, split) in _runs)
            {
                if ((uint)split >= (uint)batches.Length)
                {
                    throw new InvalidOperationException($"A record came from split {split}, which has no keyed partition (there are {batches.Length}).");
                }

                var batch = batches[split] ??= _exchange.Rent(_input);
                foreach (ref readonly var record in records[start..end])
                {
                    batch.Add(record);
                }

                if (SplitCheck is { } check)
                {
                    // A sample (a run's first record, then one in 64): a key seen in two splits shows the input is not partitioned by it.
                    for (var i = start; i < end; i += 64)
                    {
                        check(records[i], split);
                    }
                }

                start = end;
            }

            if (start != records.Length)
            {
                throw new InvalidOperationException("Records reached a by-split exchange without the split they came from.");
            }

            _runs.Clear();
            _runEnd = 0;
        }
        else if (_exchange.Routing == ExchangeRouting.Broadcast)
        {
            foreach (var target in _targets)
            {
                var batch = batches[target] ??= _exchange.Rent(_input);
                foreach (ref readonly var record in records)
                {
                    batch.Add(record);
                }
            }
        }
        else
        {
            var consumers = _exchange.Consumers;
            foreach (ref readonly var record in records)
            {
                (batches[KeyHash.Partition(record.Hash, consumers)] ??= _exchange.Rent(_input)).Add(record);
            }
        }

        Buffer.Reset();
    }

    private long MinSent()
    {
        var min = long.MaxValue;
        foreach (var target in _targets)
        {
            min = Math.Min(min, _sent[target]);
        }

        return min;
    }

    private CancellationToken Linked(CancellationToken cancellationToken) => cancellationToken.CanBeCanceled ? cancellationToken : _abort;

    public ValueTask DrainAsync(Checkpoint? checkpoint, CancellationToken cancellationToken) => FlushAsync(cancellationToken);

    public async ValueTask SendBarrierAsync(long checkpoint, CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken).ConfigureAwait(false);
        foreach (var target in _targets)
        {
            var barrier = _exchange.Rent(_input);
            barrier.Signal = ExchangeSignal.Barrier;
            barrier.Barrier = checkpoint;
            barrier.Reached = Reached();
            barrier.SplitState = SplitStateOf(target);
            await _exchange.SendAsync(target, barrier, Linked(cancellationToken)).ConfigureAwait(false);
        }
    }

    public void ReadSplitStates(ISplitStateReader reader) => _splitStates = reader;

    /// <summary>The state of split <paramref name="target"/> when this producer reads it and the exchange routes by split; else null.</summary>
    private byte[]? SplitStateOf(int target)
    {
        if (_splitStates is null || _exchange.Routing != ExchangeRouting.BySplit || _splits is not { } splits || !splits.Contains(target))
        {
            return null;
        }

        var state = new ArrayBufferWriter<byte>();
        _splitStates.WriteSplitState(target, state);
        return state.WrittenCount == 0 ? null : state.WrittenSpan.ToArray();
    }

    public async ValueTask EndAsync(CancellationToken cancellationToken)
    {
        if (_ended)
        {
            return;
        }

        await FlushAsync(cancellationToken).ConfigureAwait(false);
        foreach (var target in _targets)
        {
            var end = _exchange.Rent(_input);
            end.Signal = ExchangeSignal.End;
            await _exchange.SendAsync(target, end, Linked(cancellationToken)).ConfigureAwait(false);
        }

        _ended = true;
    }

    public async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        await EndAsync(cancellationToken).ConfigureAwait(false);
        if (!_exchange.Inline)
        {
            // The producer commits its input after its ports complete: wait until the windows fed by what it read have
            // fired into their sinks and those have completed (a consumer that fails fails the run, which cancels this).
            await _exchange.Completion.WaitAsync(Linked(cancellationToken)).ConfigureAwait(false);
        }
    }

    public ValueTask AbortAsync()
    {
        // The run is failing or aborting: the consumers are aborted by the run, not told to finish.
        Buffer.Reset();
        _mark = 0;
        foreach (var target in _targets)
        {
            if (_batches[target] is { } batch)
            {
                _batches[target] = null;
                _exchange.Return(batch);
            }
        }

        return ValueTask.CompletedTask;
    }
}
