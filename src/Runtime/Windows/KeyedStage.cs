using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Compiled.Runtime;

/// <summary>
/// The keyed half of a pipeline: a hash exchange and, behind it, one keyed window partition per degree of
/// parallelism, each running the window operator and the fused loop after it. Generated jobs create it; the
/// runtime drives it. To the loop before the exchange it is an output port like any sink's.
/// </summary>
public abstract class KeyedStage
{
    private protected KeyedStage(int keyByStage, int lateSlot)
    {
        KeyByStage = keyByStage;
        LateSlot = lateSlot;
    }

    /// <summary>The chain index of the <c>[KeyBy]</c> stage: sinks after it belong to the keyed partitions.</summary>
    internal int KeyByStage { get; }

    /// <summary>The output slot of the late-data sink, or -1.</summary>
    internal int LateSlot { get; }

    /// <summary>Records that arrived too late for every window, over all partitions.</summary>
    public long LateRecords => Interlocked.Read(ref LateCount);

    private protected long LateCount;

    /// <summary>Whether the sink of <paramref name="slot"/> is written by the keyed partitions (it comes after the exchange).</summary>
    internal bool OwnsSlot(int slot, int stage) => slot == LateSlot || stage > KeyByStage;

    /// <summary>Checks the configuration before the run starts.</summary>
    internal abstract void Validate(string pipeline);

    /// <summary>Starts the keyed partitions. With <paramref name="synchronous"/> (the test driver) no tasks run: exchanges hand batches over on the caller's thread.</summary>
    internal abstract void Start(KeyedRun run, bool synchronous);

    /// <summary>The exchange's input from upstream partition <paramref name="partition"/>: the port its loop writes keyed records into.</summary>
    internal abstract IOutputPort CreateInput(int partition, CancellationToken abort);

    /// <summary>Completes when every keyed partition has drained and completed its sinks (or failed).</summary>
    internal abstract Task Completion { get; }

    /// <summary>Stops the keyed partitions without draining (the run failed or was aborted).</summary>
    internal abstract void Abort();

    /// <summary>Moves the virtual clock (test driver): idle inputs and processing-time windows see it.</summary>
    internal abstract void Tick();

    /// <summary>Forces upstream partition <paramref name="input"/>'s watermark to <paramref name="watermark"/> (test driver).</summary>
    internal abstract void AdvanceWatermark(int input, long watermark);
}

/// <summary>What keyed partitions need from the run: the plan, the sinks, options, dead letters, the clock.</summary>
internal sealed record KeyedRun(
    int Inputs,
    PipelineDescriptor Descriptor,
    IReadOnlyList<ISinkSlot> Slots,
    PipelineOptions Options,
    DeadLetterChannel DeadLetters,
    Func<long> Clock,
    CancellationToken Abort)
{
    /// <summary>Called once when a keyed partition fails, so the run stops reading instead of waiting for its next send to notice.</summary>
    public Action Failed { get; init; } = static () => { };
}

/// <summary>The keyed stage of a window with key <typeparamref name="TKey"/> aggregating <typeparamref name="TIn"/> with <typeparamref name="TAgg"/>.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "The token source has no timer; it is only ever cancelled, and lives as long as the job.")]
public sealed class KeyedStage<TKey, TIn, TAgg, TAcc, TOut> : KeyedStage
    where TKey : notnull
    where TAgg : IAggregator<TIn, TAcc, TOut>
{
    private readonly WindowSpec<TIn, TAgg> _spec;
    private readonly bool _hasEventTime;
    private readonly string _windowName;
    private readonly Func<PartitionContext, FusedSegment<WindowResult<TKey, TOut>>> _downstream;
    private readonly ConcurrentQueue<Batch> _spare = new();
    private readonly CancellationTokenSource _failed = new();
    private KeyedRun? _run;
    private KeyedPartition[] _partitions = [];
    private Channel<Batch>[] _inboxes = [];
    private Task _completion = Task.CompletedTask;
    private Exception? _failure;
    private bool _synchronous;
    private bool _inline;

    /// <summary>Creates the stage (generated code).</summary>
    /// <param name="spec">The window declared with <c>[Window]</c>.</param>
    /// <param name="windowName">The window member's name, for messages.</param>
    /// <param name="hasEventTime">Whether the record type has an <c>[EventTime]</c> member the loop reads.</param>
    /// <param name="keyByStage">The chain index of the <c>[KeyBy]</c> stage.</param>
    /// <param name="lateSlot">The output slot of the <c>[LateData]</c> sink, or -1.</param>
    /// <param name="downstream">Creates the fused loop after the window for a keyed partition.</param>
    public KeyedStage(WindowSpec<TIn, TAgg> spec, string windowName, bool hasEventTime, int keyByStage, int lateSlot, Func<PartitionContext, FusedSegment<WindowResult<TKey, TOut>>> downstream)
        : base(keyByStage, lateSlot)
    {
        _spec = spec;
        _windowName = windowName;
        _hasEventTime = hasEventTime;
        _downstream = downstream;
    }

    internal override Task Completion => _completion;

    internal override void Validate(string pipeline)
    {
        if (_spec is null)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': window '{_windowName}' is null; give the member a value.");
        }

        if (_spec.Time == TimeMode.Event && !_hasEventTime && _spec.Window.Kind != WindowKind.Running)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': window '{_windowName}' runs on event time, but '{typeof(TIn).Name}' has no [EventTime] member; mark one (long Unix milliseconds, DateTime or DateTimeOffset) or set Time = TimeMode.Processing.");
        }

        if (_spec.OutOfOrderness < TimeSpan.Zero || _spec.AllowedLateness < TimeSpan.Zero || _spec.IdleTimeout < TimeSpan.Zero)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': window '{_windowName}': out-of-orderness, allowed lateness and idle timeout cannot be negative.");
        }
    }

    internal override void Start(KeyedRun run, bool synchronous)
    {
        _run = run;
        _synchronous = synchronous;
        var count = run.Options.Parallelism;
        _partitions = new KeyedPartition[count];
        for (var d = 0; d < count; d++)
        {
            try
            {
                _partitions[d] = new KeyedPartition(this, run, d);
            }
            catch (Exception)
            {
                foreach (var created in _partitions.Take(d))
                {
                    created.AbortAsync().AsTask().GetAwaiter().GetResult();
                }

                throw;
            }
        }

        // One input and one keyed partition, and nothing that needs a clock tick: the exchange is a forward edge, so the
        // keyed partition runs on the upstream partition's worker (no channel, no second worker). The test driver
        // always runs it so.
        _inline = synchronous || (count == 1 && run.Inputs == 1 && TickInterval() == TimeSpan.Zero);
        if (_inline)
        {
            return;
        }

        var capacity = Math.Max(2, run.Options.SinkQueueCapacity) * count;
        _inboxes = new Channel<Batch>[count];
        for (var d = 0; d < count; d++)
        {
            _inboxes[d] = Channel.CreateBounded<Batch>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        }

        _completion = Task.WhenAll(_partitions.Select(p => Task.Run(() => RunPartitionAsync(p), CancellationToken.None)));
    }

    internal override IOutputPort CreateInput(int partition, CancellationToken abort) => new ExchangeInput(this, partition, abort);

    internal override void Abort() => TryCancel();

    internal override void Tick()
    {
        foreach (var partition in _partitions)
        {
            partition.Tick();
            Wait(partition.FlushAsync(CancellationToken.None));
        }
    }

    private static void Wait(ValueTask pending)
    {
        if (!pending.IsCompletedSuccessfully)
        {
            pending.AsTask().GetAwaiter().GetResult(); // a sink that really is asynchronous: the test driver waits for it
        }
    }

    internal override void AdvanceWatermark(int input, long watermark)
    {
        foreach (var partition in _partitions)
        {
            var batch = Rent();
            batch.Input = input;
            batch.Watermark = watermark;
            partition.Handle(batch);
            Wait(partition.FlushAsync(CancellationToken.None));
        }
    }

    private void TryCancel()
    {
        try
        {
            _failed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private Batch Rent()
    {
        if (!_spare.TryDequeue(out var batch))
        {
            batch = new Batch();
        }

        batch.Count = 0;
        batch.End = false;
        batch.Watermark = long.MinValue;
        return batch;
    }

    private void Return(Batch batch) => _spare.Enqueue(batch);

    private async Task RunPartitionAsync(KeyedPartition partition)
    {
        var run = _run!;
        var reader = _inboxes[partition.Index].Reader;
        var tick = TickInterval();
        try
        {
            while (!partition.Finished)
            {
                _failed.Token.ThrowIfCancellationRequested(); // another keyed partition failed, or the run was aborted
                if (reader.TryRead(out var batch))
                {
                    partition.Handle(batch);
                    await partition.FlushAsync(run.Abort).ConfigureAwait(false);
                    continue;
                }

                if (tick <= TimeSpan.Zero)
                {
                    await reader.WaitToReadAsync(_failed.Token).ConfigureAwait(false);
                    continue;
                }

                using var wait = CancellationTokenSource.CreateLinkedTokenSource(_failed.Token);
                wait.CancelAfter(tick);
                try
                {
                    await reader.WaitToReadAsync(wait.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!_failed.IsCancellationRequested)
                {
                    partition.Tick();
                    await partition.FlushAsync(run.Abort).ConfigureAwait(false);
                }
            }

            await partition.CompleteAsync(run.Abort).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            if (Interlocked.CompareExchange(ref _failure, ex, null) is null && ex is not OperationCanceledException)
            {
                run.Failed();
            }

            TryCancel();
            await partition.AbortAsync().ConfigureAwait(false);
            throw;
        }
    }

    private TimeSpan TickInterval()
    {
        if (_spec.Time == TimeMode.Processing)
        {
            return TimeSpan.FromMilliseconds(50);
        }

        return _spec.IdleTimeout > TimeSpan.Zero
            ? TimeSpan.FromMilliseconds(Math.Clamp(_spec.IdleTimeout.TotalMilliseconds / 4, 10, 1000))
            : TimeSpan.Zero;
    }

    private async ValueTask SendAsync(int target, Batch batch, CancellationToken cancellationToken)
    {
        if (_inline)
        {
            var partition = _partitions[target];
            partition.Handle(batch);
            await partition.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (partition.Finished)
            {
                await partition.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        ThrowIfFailed();
        try
        {
            await _inboxes[target].Writer.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_failure is not null)
        {
            ThrowIfFailed();
        }
    }

    private void ThrowIfFailed()
    {
        if (_failure is { } failure)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    /// <summary>A batch crossing the exchange: records for one keyed partition from one input, with that input's watermark.</summary>
    private sealed class Batch
    {
        public Keyed<TKey, TIn>[] Items = new Keyed<TKey, TIn>[64];
        public int Count;
        public int Input;
        public long Watermark = long.MinValue;
        public bool End;

        public void Add(in Keyed<TKey, TIn> item)
        {
            if (Count == Items.Length)
            {
                Array.Resize(ref Items, Count * 2);
            }

            Items[Count++] = item;
        }
    }

    /// <summary>One upstream partition's side of the exchange: routes its keyed records by hash and computes its watermark.</summary>
    private sealed class ExchangeInput : IOutputPort, IBufferedPort<Keyed<TKey, TIn>>
    {
        private readonly KeyedStage<TKey, TIn, TAgg, TAcc, TOut> _stage;
        private readonly int _input;
        private readonly CancellationTokenSource _cancel;
        private readonly long _outOfOrderMs;
        private readonly bool _eventTime;
        private readonly long[] _sent;
        private long _maxTimestamp = long.MinValue;
        private readonly Batch?[] _batches;

        public ExchangeInput(KeyedStage<TKey, TIn, TAgg, TAcc, TOut> stage, int input, CancellationToken abort)
        {
            _stage = stage;
            _input = input;
            _cancel = CancellationTokenSource.CreateLinkedTokenSource(abort, stage._failed.Token);
            _outOfOrderMs = TimeMath.Millis(stage._spec.OutOfOrderness);
            _eventTime = stage._spec.Time == TimeMode.Event;
            _sent = new long[stage._partitions.Length];
            _batches = new Batch?[stage._partitions.Length];
            Array.Fill(_sent, long.MinValue);
        }

        public Compiled.RecordBuffer<Keyed<TKey, TIn>> Buffer { get; } = new();

        public int Queued => 0;

        public int Capacity => 0;

        private long Watermark => _maxTimestamp == long.MinValue ? long.MinValue : _maxTimestamp - _outOfOrderMs - 1;

        public async ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            var records = Buffer.Span;
            if (_eventTime)
            {
                var max = _maxTimestamp;
                foreach (ref readonly var record in records)
                {
                    max = Math.Max(max, record.Timestamp);
                }

                _maxTimestamp = max;
            }

            var targets = _stage._partitions.Length;
            var watermark = _eventTime ? Watermark : long.MinValue;
            if (records.Length == 0 && watermark <= MinSent())
            {
                return;
            }

            var batches = _batches;
            if (targets == 1)
            {
                if (records.Length > 0)
                {
                    // One keyed partition: hand over the loop's array itself and give the loop a recycled one.
                    var batch = _stage.Rent();
                    batch.Items = Buffer.Exchange(batch.Items, out batch.Count);
                    batches[0] = batch;
                }
            }
            else
            {
                foreach (ref readonly var record in records)
                {
                    (batches[KeyHash.Partition(record.Hash, targets)] ??= _stage.Rent()).Add(record);
                }

                Buffer.Reset();
            }

            for (var d = 0; d < targets; d++)
            {
                if (batches[d] is null && watermark <= _sent[d])
                {
                    continue;
                }

                var batch = batches[d] ?? _stage.Rent();
                batches[d] = null;
                batch.Input = _input;
                batch.Watermark = watermark;
                _sent[d] = Math.Max(_sent[d], watermark);
                await _stage.SendAsync(d, batch, _cancel.Token).ConfigureAwait(false);
            }
        }

        private long MinSent()
        {
            var min = long.MaxValue;
            foreach (var sent in _sent)
            {
                min = Math.Min(min, sent);
            }

            return min;
        }

        public ValueTask DrainAsync(Checkpoint? checkpoint, CancellationToken cancellationToken) => FlushAsync(cancellationToken);

        public async ValueTask CompleteAsync(CancellationToken cancellationToken)
        {
            await FlushAsync(cancellationToken).ConfigureAwait(false);
            for (var d = 0; d < _stage._partitions.Length; d++)
            {
                var end = _stage.Rent();
                end.Input = _input;
                end.End = true;
                await _stage.SendAsync(d, end, _cancel.Token).ConfigureAwait(false);
            }

            if (!_stage._inline)
            {
                // The partition's reader commits after its ports complete: wait until the windows fed by what it read
                // have fired into their sinks and those have completed (or failed, which fails this partition too).
                try
                {
                    await _stage._completion.WaitAsync(_cancel.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (_stage._failure is not null)
                {
                    _stage.ThrowIfFailed(); // a keyed partition failed: report its error, not the cancellation it caused
                }
            }

            _cancel.Dispose();
        }

        public async ValueTask AbortAsync()
        {
            // This upstream partition failed: it will never send its end, so the keyed partitions (and the other
            // upstream partitions waiting for them to complete) must stop rather than wait for it.
            Buffer.Reset();
            _stage.TryCancel();
            _cancel.Dispose();
            if (_stage._inline && !_stage._synchronous)
            {
                // Inline, the keyed partition has no worker of its own to abort its ports: this partition does it.
                foreach (var partition in _stage._partitions)
                {
                    await partition.AbortAsync().ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>One keyed partition: the window operator, the loop after it, and its sinks' ports.</summary>
    private sealed class KeyedPartition
    {
        private readonly KeyedStage<TKey, TIn, TAgg, TAcc, TOut> _stage;
        private readonly KeyedRun _run;
        private readonly PartitionContext _context;
        private readonly FusedSegment<WindowResult<TKey, TOut>> _segment;
        private readonly WindowOperator<TKey, TIn, TOut> _operator;
        private readonly WatermarkValve _valve;
        private readonly bool _processingTime;
        private long _reportedLate;

        public KeyedPartition(KeyedStage<TKey, TIn, TAgg, TAcc, TOut> stage, KeyedRun run, int index)
        {
            _stage = stage;
            _run = run;
            Index = index;
            var slots = run.Slots;
            var ports = new IOutputPort?[slots.Count];
            for (var s = 0; s < slots.Count; s++)
            {
                if (stage.OwnsSlot(s, slots[s].Stage))
                {
                    try
                    {
                        ports[s] = slots[s].CreatePort(run.Descriptor.Name, index, run.Options, run.Abort, forceInline: stage._synchronous);
                    }
                    catch (Exception ex)
                    {
                        throw new ConnectorException(run.Descriptor.Name, slots[s].Name, index, "create its writer", ex);
                    }
                }
            }

            _context = new PartitionContext(index, run.Options.Parallelism, run.Descriptor, ports, run.DeadLetters);
            _segment = stage._downstream(_context);
            _operator = WindowOperator.Create<TKey, TIn, TAgg, TAcc, TOut>(stage._spec.Window, stage._spec.AllowedLateness);
            if (stage.LateSlot >= 0)
            {
                _operator.Late = _context.Output<TIn>(stage.LateSlot);
            }

            _processingTime = stage._spec.Time == TimeMode.Processing;
            _valve = new WatermarkValve(run.Inputs, stage._spec.IdleTimeout, run.Clock());
        }

        public int Index { get; }

        public bool Finished => _valve.AllEnded;

        public void Handle(Batch batch)
        {
            var now = _run.Clock();
            if (batch.End)
            {
                _valve.End(batch.Input);
            }
            else
            {
                var items = batch.Items.AsSpan(0, batch.Count);
                if (_processingTime)
                {
                    foreach (ref var item in items)
                    {
                        item = item with { Timestamp = now };
                    }
                }

                _operator.Add(items);
                _valve.Update(batch.Input, batch.Watermark, now, batch.Count > 0);
            }

            batch.Items.AsSpan(0, batch.Count).Clear();
            _stage.Return(batch);
            Advance(now);
        }

        public void Tick() => Advance(_run.Clock());

        private void Advance(long now)
        {
            var watermark = _processingTime
                ? (_valve.AllEnded ? long.MaxValue : now - 1)
                : _valve.Combine(now);
            _operator.Advance(watermark);
            Emit();
        }

        private void Emit()
        {
            var results = _operator.Results;
            if (results.Count > 0)
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

            var late = _operator.LateRecords;
            if (late != _reportedLate)
            {
                Interlocked.Add(ref _stage.LateCount, late - _reportedLate);
                _reportedLate = late;
            }
        }

        public async ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            foreach (var port in _context.Ports)
            {
                await port.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            if (_run.DeadLetters.HasPending)
            {
                await _run.DeadLetters.FlushAsync(_run.Options, cancellationToken).ConfigureAwait(false);
            }
        }

        public async ValueTask CompleteAsync(CancellationToken cancellationToken)
        {
            _operator.Advance(long.MaxValue);
            Emit();
            foreach (var port in _context.Ports)
            {
                await port.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }

            if (_run.DeadLetters.HasPending)
            {
                await _run.DeadLetters.FlushAsync(_run.Options, cancellationToken).ConfigureAwait(false);
            }

            await _context.DisposeOwnedAsync().ConfigureAwait(false);
        }

        public async ValueTask AbortAsync()
        {
            foreach (var port in _context.Ports)
            {
                try
                {
                    await port.AbortAsync().ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // the run's first failure is what gets reported
                }
            }

            try
            {
                await _context.DisposeOwnedAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                // as above
            }
        }
    }
}
