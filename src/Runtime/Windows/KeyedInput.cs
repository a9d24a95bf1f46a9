namespace Compiled.Runtime;

/// <summary>A keyed partition as a worker's input: what arrives through its exchange goes into its window.</summary>
internal abstract class KeyedInput : IWorkerInput
{
    public abstract string Name { get; }

    /// <summary>Records received through the exchange (for the console; the run's records read are its source partitions').</summary>
    public long RecordsRead => Volatile.Read(ref ReceivedRecords);

    /// <summary>Added to by the partition's worker only.</summary>
    private protected long ReceivedRecords;

    public abstract bool Ended { get; }

    public bool CommitsPositions => false;

    /// <summary>Connects the input to the worker that runs it: inline deliveries and clock ticks flush through it.</summary>
    public abstract void Bind(Worker worker);

    public abstract ValueTask<bool> ReadAsync(CancellationToken stop, CancellationToken abort);

    public abstract void Process();

    public abstract void Finish();

    public abstract bool ProcessMore();

    public Checkpoint CreateCheckpoint(string pipeline, int partition, long number)
        => throw new NotSupportedException("Keyed partitions take part in the sources' checkpoints; they have none of their own.");

    /// <summary>The keyed stage that created the partition, and its index among the pipeline's windows (set by the run).</summary>
    public KeyedStage? Stage { get; set; }

    /// <summary>The index of <see cref="Stage"/> among the pipeline's windows.</summary>
    public int StageIndex { get; set; }

    /// <summary>The checkpoint whose barrier has arrived from every input (0: none): the worker snapshots the state now.</summary>
    public abstract long AlignedBarrier { get; }

    /// <summary>The worker has snapshotted the state and forwarded the barrier: inputs held back flow again.</summary>
    public abstract void ReleaseAlignment();

    /// <summary>
    /// The partition has snapshotted the stop's final checkpoint: from here on it only waits for its inputs to end —
    /// anything it fired now would be missing from the checkpoint's state and fire again in the next run.
    /// </summary>
    public abstract void Freeze();

    /// <summary>Keys × windows held in the partition's state.</summary>
    public abstract int StateEntries { get; }

    public ValueTask CommitAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public abstract ValueTask DisposeAsync();
}

/// <summary>
/// One keyed partition: combines the watermarks of its inputs (<see cref="WatermarkValve"/>), adds the records it
/// receives to its window operator, fires what the watermark completes, runs the loop after the window over the results,
/// and forwards its watermark to the exchanges that loop writes into (a window after a window).
/// </summary>
internal sealed class KeyedInput<TKey, TIn, TResult> : KeyedInput, IExchangeConsumer<Keyed<TKey, TIn>>
    where TKey : notnull
{
    private readonly RunContext _run;
    private readonly Exchange<Keyed<TKey, TIn>> _exchange;
    private readonly int _partition;
    private readonly FusedSegment<TResult> _segment;
    private readonly KeyedOperator<TKey, TIn, TResult> _windows;
    private readonly WatermarkValve _valve;
    private readonly bool _processingTime;
    private readonly TimeSpan _tick;
    private readonly IExchangePort[] _forwards;
    private readonly WindowStatistics _statistics;
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly Queue<ExchangeBatch<Keyed<TKey, TIn>>>?[] _held;
    private readonly bool[] _arrived;
    private bool _frozen;
    private long _aligning;
    private long _aligned;
    private ExchangeBatch<Keyed<TKey, TIn>>? _current;
    private Worker? _worker;
    private ITimer? _timer;
    private long _reportedLate;
    private long _reportedExpired;
    private (long Now, bool Fired, bool Finishing)? _paused; // a firing paused with results still to emit

    public KeyedInput(
        RunContext run,
        Exchange<Keyed<TKey, TIn>> exchange,
        int partition,
        PartitionContext context,
        FusedSegment<TResult> segment,
        KeyedOperator<TKey, TIn, TResult> windows,
        bool processingTime,
        TimeSpan idleTimeout,
        TimeSpan tick,
        WindowStatistics statistics)
    {
        _run = run;
        _exchange = exchange;
        _partition = partition;
        _segment = segment;
        _windows = windows;
        _processingTime = processingTime;
        _tick = tick;
        _statistics = statistics;
        _valve = new WatermarkValve(exchange.InputsOf(partition), idleTimeout, run.Clock.Now);
        _held = new Queue<ExchangeBatch<Keyed<TKey, TIn>>>?[exchange.InputsOf(partition)];
        _arrived = new bool[_held.Length];
        _forwards = context.Ports.OfType<IExchangePort>().ToArray();
        _tags = [new("pipeline", run.Pipeline), new("window", exchange.Name)];
        windows.FiringBatch = run.Options.BatchSize; // a firing reaches the sinks a batch at a time (ProcessMore)
        if (exchange.Inline)
        {
            exchange.Attach(partition, this);
        }
    }

    public override string Name => _exchange.Name;

    public override bool Ended => _valve.AllEnded;

    /// <summary>The window or lookup operator (tests, metrics, checkpoints).</summary>
    public KeyedOperator<TKey, TIn, TResult> Windows => _windows;

    public override void Bind(Worker worker)
    {
        _worker = worker;
        if (_tick > TimeSpan.Zero)
        {
            // A threaded partition gets ticks through its channel, so its worker is the only thread touching its state;
            // an inline one (the test driver) handles them where the clock moves.
            _timer = _exchange.Inline
                ? _run.Clock.Provider.CreateTimer(static state => ((KeyedInput<TKey, TIn, TResult>)state!).TickInline(), this, _tick, _tick)
                : _run.Clock.Provider.CreateTimer(static state => ((KeyedInput<TKey, TIn, TResult>)state!).PostTick(), this, _tick, _tick);
        }
    }

    private void PostTick() => _exchange.PostTick(_partition);

    private void TickInline()
    {
        var tick = _exchange.Rent(0);
        tick.Signal = ExchangeSignal.Tick;
        var pending = ReceiveAsync(tick, _run.Abort);
        if (!pending.IsCompletedSuccessfully)
        {
            pending.AsTask().GetAwaiter().GetResult(); // a sink that really is asynchronous: the clock's caller waits for it
        }
    }

    public override async ValueTask<bool> ReadAsync(CancellationToken stop, CancellationToken abort)
    {
        if (_valve.AllEnded)
        {
            return false;
        }

        if (TryTakeHeld(out _current))
        {
            await PrepareAsync(_current!, abort).ConfigureAwait(false);
            return true;
        }

        var inbox = _exchange.Inbox(_partition);
        while (true)
        {
            while (!inbox.TryRead(out _current))
            {
                if (!await inbox.WaitToReadAsync(abort).ConfigureAwait(false))
                {
                    return false;
                }
            }

            if (!Blocked(_current))
            {
                await PrepareAsync(_current, abort).ConfigureAwait(false);
                return true;
            }

            // The input is past the barrier being aligned: what it sends belongs to the next checkpoint.
            (_held[_current.Input] ??= new()).Enqueue(_current);
            _current = null;
        }
    }

    /// <summary>Lets the operator wait for what a batch of records needs (a lookup's rows, a window's state on disk) before it is handled.</summary>
    private ValueTask PrepareAsync(ExchangeBatch<Keyed<TKey, TIn>> batch, CancellationToken abort)
    {
        if (batch.Signal != ExchangeSignal.Data || _frozen || batch.Count == 0)
        {
            return ValueTask.CompletedTask;
        }

        if (_processingTime)
        {
            // On processing time a record's time is when the window receives it; stamped here, before the operator
            // prepares, so that a window on disk reads ahead the panes the records go to. Every data batch is prepared.
            var now = _run.Clock.Now;
            foreach (ref var item in batch.Items.AsSpan(0, batch.Count))
            {
                item = item with { Timestamp = now };
            }
        }

        return _windows.PrepareAsync(batch.Items.AsMemory(0, batch.Count), abort);
    }

    public override long AlignedBarrier => _aligned;

    public override void Freeze() => _frozen = true;

    public override int StateEntries => _windows.StateEntries;

    public override void ReleaseAlignment()
    {
        _aligning = 0;
        _aligned = 0;
        Array.Clear(_arrived);
    }

    private bool Blocked(ExchangeBatch<Keyed<TKey, TIn>> batch) => _aligning != 0 && batch.Signal != ExchangeSignal.Tick && _arrived[batch.Input];

    /// <summary>A batch held back during the last alignment from an input that is not blocked now.</summary>
    private bool TryTakeHeld(out ExchangeBatch<Keyed<TKey, TIn>>? batch)
    {
        for (var input = 0; input < _held.Length; input++)
        {
            if (_held[input] is { Count: > 0 } queue && !(_aligning != 0 && _arrived[input]))
            {
                batch = queue.Dequeue();
                return true;
            }
        }

        batch = null;
        return false;
    }

    /// <summary>Barrier <paramref name="id"/> from <paramref name="input"/>: aligned once every input that has not ended sent it.</summary>
    private void Barrier(int input, long id)
    {
        if (_aligning == 0)
        {
            _aligning = id;
        }
        else if (_aligning != id)
        {
            throw new InvalidOperationException($"Window '{_exchange.Name}' partition {_partition}: barrier {id} arrived while aligning {_aligning}.");
        }

        _arrived[input] = true;
        CheckAligned();
    }

    private void CheckAligned()
    {
        if (_aligning == 0 || _aligned != 0)
        {
            return;
        }

        for (var input = 0; input < _arrived.Length; input++)
        {
            if (!_arrived[input] && !_valve.HasEnded(input))
            {
                return;
            }
        }

        _aligned = _aligning;
    }

    public override void Process()
    {
        var batch = _current!;
        _current = null;
        Handle(batch);
    }

    /// <summary>Inline: a producer (or the test driver's clock) hands over a batch on its own thread.</summary>
    public async ValueTask ReceiveAsync(ExchangeBatch<Keyed<TKey, TIn>> batch, CancellationToken cancellationToken)
    {
        await PrepareAsync(batch, cancellationToken).ConfigureAwait(false);
        Handle(batch);
        await _worker!.AfterInlineStepAsync(cancellationToken).ConfigureAwait(false);
    }

    private void Handle(ExchangeBatch<Keyed<TKey, TIn>> batch)
    {
        var now = _run.Clock.Now;
        if (_frozen)
        {
            if (batch.Signal == ExchangeSignal.End)
            {
                _valve.End(batch.Input);
            }

            _exchange.Return(batch);
            return;
        }

        switch (batch.Signal)
        {
            case ExchangeSignal.End:
                _valve.End(batch.Input);
                CheckAligned();
                break;
            case ExchangeSignal.Barrier:
                _windows.Reached = Math.Max(_windows.Reached, batch.Reached); // before the snapshot: it is taken once aligned
                if (batch.SplitState is { } splitState)
                {
                    _windows.SplitState = splitState; // the state of this partition's split, at the same cut
                }

                Barrier(batch.Input, batch.Barrier);
                break;
            case ExchangeSignal.Idle:
                _valve.Update(batch.Input, batch.Watermark, now, hadRecords: false); // what it reached before falling quiet
                _valve.DeclareIdle(batch.Input);
                break;
            case ExchangeSignal.Data:
                var items = batch.Items.AsSpan(0, batch.Count); // on processing time, stamped while it was prepared
                _windows.Now = now;
                Volatile.Write(ref ReceivedRecords, ReceivedRecords + items.Length);
                _windows.Add(items);
                _valve.Update(batch.Input, batch.Watermark, now, batch.Count > 0 || batch.Active);
                break;
        }

        _exchange.Return(batch);
        Advance(now);
    }

    private void Advance(long now)
    {
        var watermark = _processingTime
            ? (_valve.AllEnded ? long.MaxValue : now - 1)
            : _valve.Combine(now, _windows.Reached);
        _windows.Advance(watermark);
        AfterFiring(now, Emit(), finishing: false);
    }

    /// <summary>
    /// What follows a firing, once its last batch is emitted: state past its time-to-live goes, and the watermark moves on
    /// to the windows behind this one — only now, so that none of the results is late there. A firing that paused with
    /// more to emit comes back here from <see cref="ProcessMore"/>.
    /// </summary>
    private void AfterFiring(long now, bool fired, bool finishing)
    {
        if (_windows.Firing)
        {
            _paused = (now, fired, finishing);
            return;
        }

        _paused = null;
        if (finishing)
        {
            foreach (var port in _forwards)
            {
                port.ForwardWatermark(long.MaxValue);
            }

            _statistics.Update(_partition, long.MaxValue, 0, -1, fired, now);
            return;
        }

        _windows.Expire(now);
        fired |= Emit();
        foreach (var port in _forwards)
        {
            port.ForwardWatermark(_windows.Watermark);
        }

        _statistics.Update(_partition, _windows.Watermark, _valve.IdleCount(now), _valve.Slowest(now), fired, now);
    }

    /// <summary>Emits the next batch of a paused firing; false when none is paused.</summary>
    public override bool ProcessMore()
    {
        if (_paused is not { } paused)
        {
            return false;
        }

        _windows.ContinueFiring();
        AfterFiring(paused.Now, Emit() | paused.Fired, paused.Finishing);
        return true;
    }

    /// <summary>Runs the loop after the window over what it emitted; true if it emitted anything.</summary>
    private bool Emit()
    {
        var results = _windows.Results;
        var fired = results.Count > 0;
        if (fired)
        {
            try
            {
                _segment.Process(results.Span);
            }
            finally
            {
                results.Reset(); // under fail-fast the loop throws; the results must not be emitted twice
            }
        }

        var late = _windows.LateRecords;
        if (late != _reportedLate)
        {
            _statistics.AddLate(late - _reportedLate);
            CompiledMeter.RecordsLate.Add(late - _reportedLate, _tags);
            _reportedLate = late;
        }

        var expired = _windows.ExpiredEntries;
        if (expired != _reportedExpired)
        {
            _statistics.AddExpired(expired - _reportedExpired);
            CompiledMeter.StateExpired.Add(expired - _reportedExpired, _tags);
            _reportedExpired = expired;
        }

        return fired;
    }

    public override void Finish()
    {
        if (_frozen || _run.Checkpoints is { Stopping: true })
        {
            // Stopped with a final checkpoint: what the windows hold is in it and fires in the next run, not now.
            _statistics.Update(_partition, _windows.Watermark, 0, -1, false, _run.Clock.Now);
            return;
        }

        _windows.Advance(long.MaxValue);
        AfterFiring(_run.Clock.Now, Emit(), finishing: true);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_timer is { } timer)
        {
            _timer = null;
            await timer.DisposeAsync().ConfigureAwait(false);
        }

        if (_current is { } current)
        {
            _current = null;
            _exchange.Return(current);
        }

        foreach (var queue in _held)
        {
            while (queue is not null && queue.TryDequeue(out var held))
            {
                _exchange.Return(held);
            }
        }

        (_windows as IDisposable)?.Dispose(); // a window on disk closes its database
    }
}
