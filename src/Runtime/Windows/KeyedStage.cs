using System.ComponentModel;
using Microsoft.Extensions.Logging;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// A keyed stage of a pipeline, as generated code declares it: the hash exchange in front of a window, the window, and
/// the fused loop after it. The run creates the exchange and one keyed partition per degree of parallelism from it.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract class KeyedStage
{
    private protected KeyedStage(string windowName, int keyByStage, int windowStage, int exchangeSlot, int lateSlot)
    {
        WindowName = windowName;
        KeyByStage = keyByStage;
        WindowStage = windowStage;
        ExchangeSlot = exchangeSlot;
        LateSlot = lateSlot;
    }

    /// <summary>The window member's name.</summary>
    internal string WindowName { get; }

    /// <summary>The chain index of the <c>[KeyBy]</c> stage in front of the exchange.</summary>
    internal int KeyByStage { get; }

    /// <summary>The chain index of the <c>[Window]</c> stage.</summary>
    internal int WindowStage { get; }

    /// <summary>The output slot the loop before the exchange writes keyed records into.</summary>
    internal int ExchangeSlot { get; }

    /// <summary>The output slot of the window's late-data sink, or -1.</summary>
    internal int LateSlot { get; }

    /// <summary>How often a keyed partition must look at the clock without input (processing time, idle timeouts); zero: never.</summary>
    internal abstract TimeSpan TickInterval { get; }

    /// <summary>The tick that notices a silence of <paramref name="timeout"/> in time: a quarter of it, between 10 ms and 1 s; zero for none.</summary>
    private protected static TimeSpan TickFor(TimeSpan timeout)
        => timeout > TimeSpan.Zero ? TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 4, 10, 1000)) : TimeSpan.Zero;

    /// <summary>Whether the window runs on event time (producers then send watermarks).</summary>
    internal abstract bool EventTime { get; }

    /// <summary>The window's length (the size of a tumbling or sliding window, a session's gap), for status messages.</summary>
    internal abstract TimeSpan Size { get; }

    /// <summary>Checks the configuration before the run starts.</summary>
    internal abstract void Validate(string pipeline);

    /// <summary>How far behind the largest event time its producers' watermarks stay (a window's out-of-orderness).</summary>
    internal virtual TimeSpan OutOfOrderness => TimeSpan.Zero;

    /// <summary>How long an input may stay silent before it stops holding the watermark back (a window's idle timeout).</summary>
    internal virtual TimeSpan IdleTimeout => TimeSpan.Zero;

    /// <summary>
    /// For a stage that passes event time through (a lookup join): the largest out-of-orderness and idle timeout of the
    /// windows in the pipeline, which its producers' watermarks must allow for, as the windows behind it see the
    /// watermark it forwards. Set by the run before ports are created.
    /// </summary>
    internal (TimeSpan OutOfOrderness, TimeSpan IdleTimeout) Downstream { get; set; }

    /// <summary>Whether the stage is a join of two streams rather than a window (for what the run says of it).</summary>
    internal virtual bool IsJoin => false;

    /// <summary>What the stage is called in messages.</summary>
    internal string Noun => IsJoin ? "join" : "window";

    /// <summary>The table a lookup join reads (null for windows): a connector, with its settings.</summary>
    internal virtual object? Lookup => null;

    /// <summary>What a lookup join did (null for windows).</summary>
    internal virtual LookupStatistics? LookupStatistics => null;

    /// <summary>What an asynchronous transform did (null for other stages).</summary>
    internal virtual AsyncStatistics? AsyncStatistics => null;

    /// <summary>Settings of the stage itself that the run exposes like a connector's (an asynchronous transform's), or null.</summary>
    internal virtual object? Configurable => null;

    /// <summary>
    /// How records reach the stage when not by key: <see cref="ExchangeRouting.Forward"/> (an asynchronous transform:
    /// partition p of the loop before feeds partition p, at the same parallelism) or
    /// <see cref="ExchangeRouting.Rebalance"/> (batches spread over every partition in turn); null: by key hash.
    /// </summary>
    internal virtual ExchangeRouting? Routing => null;

    /// <summary>Whether the stage keeps state that checkpoints must hold (a window); a lookup join's cache is not state.</summary>
    internal virtual bool HasState => true;

    /// <summary>Opens what the stage reads besides its exchange (a lookup's table), once, before any partition exists.</summary>
    internal virtual ValueTask OpenAsync(string pipeline, int partitions, ILogger logger, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Closes what <see cref="OpenAsync"/> opened, after every partition was disposed.</summary>
    internal virtual ValueTask CloseAsync() => ValueTask.CompletedTask;

    /// <summary>Creates the exchange in front of the window.</summary>
    internal abstract Exchange CreateExchange(ExchangeRouting routing, int producers, int consumers, bool inline, int queueCapacity);

    /// <summary>Creates producer partition <paramref name="producer"/>'s port into <paramref name="exchange"/>; <paramref name="forwarded"/> when the producer is itself a keyed partition (it forwards its watermark).</summary>
    internal abstract IOutputPort CreatePort(Exchange exchange, int producer, bool forwarded, RunClock clock, CancellationToken abort);

    /// <summary>
    /// Distributed runs: makes <paramref name="port"/> (one of <see cref="CreatePort"/>'s) report a sampled key that comes
    /// from two splits, with the two splits — the input is then not partitioned by the key, as it was declared to be.
    /// </summary>
    internal abstract void CheckKeysBySplit(IOutputPort port, Action<string, int, int> reportOnce);

    /// <summary>Creates keyed partition <paramref name="partition"/>: the window operator and the loop after it, reading <paramref name="exchange"/>.</summary>
    internal abstract KeyedInput CreateInput(RunContext run, Exchange exchange, int partition, PartitionContext context, WindowStatistics statistics);

    /// <summary>
    /// The window's state schema (key codec, accumulator codec and aggregator, window kind and sizes), which a
    /// checkpoint records and a restore compares; null when the key or accumulator type has no checkpoint codec.
    /// </summary>
    internal abstract StateSchema? Schema { get; }

    /// <summary>
    /// An <see cref="IRepartitionKey{T}"/> of the source's record type when this is a window whose <c>[KeyBy]</c> reads
    /// the source's records directly and its key type has a checkpoint codec; null otherwise.
    /// </summary>
    internal virtual object? RepartitionKey => null;

    /// <summary>Why the window's state cannot be checkpointed (when <see cref="Schema"/> is null).</summary>
    internal abstract string NotCheckpointable { get; }

    /// <summary>Writes the state of keyed partition <paramref name="input"/> (a partition this stage created) for checkpoint <paramref name="checkpoint"/>.</summary>
    internal abstract void Snapshot(KeyedInput input, StateWriter writer, long checkpoint);

    /// <summary>Restores the snapshots of every partition of a checkpoint into <paramref name="partitions"/> (any number of them).</summary>
    internal abstract void Restore(IReadOnlyList<ReadOnlyMemory<byte>> snapshots, IReadOnlyList<KeyedInput> partitions);
}

/// <summary>What a checkpoint records of a window's state, compared part by part when it is restored.</summary>
/// <param name="Window">The window member's name.</param>
/// <param name="Key">The key codec's schema.</param>
/// <param name="Accumulator">The aggregator and the accumulator codec's schema.</param>
/// <param name="Spec">The window kind, size, slide and allowed lateness.</param>
internal sealed record StateSchema(string Window, string Key, string Accumulator, string Spec)
{
    /// <summary>What differs between the schema a checkpoint holds and this build's, in words; null when they match.</summary>
    public string? Difference(StateSchema current)
    {
        var changes = new List<string>();
        if (Key != current.Key)
        {
            changes.Add($"its key changed from {Key} to {current.Key}");
        }

        if (Accumulator != current.Accumulator)
        {
            changes.Add($"its aggregate changed from {Accumulator} to {current.Accumulator}");
        }

        if (Spec != current.Spec)
        {
            changes.Add($"the window changed from {Spec} to {current.Spec}");
        }

        return changes.Count == 0 ? null : string.Join("; ", changes);
    }
}

/// <summary>
/// A keyed stage over records of <typeparamref name="TIn"/> keyed by <typeparamref name="TKey"/>: the hash exchange in
/// front of it and the producers' ports into it, whose watermarks allow for <see cref="PortTimes"/>.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract class KeyedStage<TKey, TIn> : KeyedStage
    where TKey : notnull
{
    private protected KeyedStage(string name, int keyByStage, int stage, int exchangeSlot, int lateSlot)
        : base(name, keyByStage, stage, exchangeSlot, lateSlot)
    {
    }

    /// <summary>The out-of-orderness the producers' watermarks allow for, and how long a silent split may hold them back.</summary>
    private protected abstract (TimeSpan OutOfOrderness, TimeSpan IdleTimeout) PortTimes { get; }

    internal sealed override Exchange CreateExchange(ExchangeRouting routing, int producers, int consumers, bool inline, int queueCapacity)
        => new Exchange<Keyed<TKey, TIn>>(WindowName, routing, producers, consumers, inline, queueCapacity);

    internal sealed override IOutputPort CreatePort(Exchange exchange, int producer, bool forwarded, RunClock clock, CancellationToken abort)
        => new ExchangePort<Keyed<TKey, TIn>>((Exchange<Keyed<TKey, TIn>>)exchange, producer, EventTime, forwarded, PortTimes.OutOfOrderness, abort)
        {
            SplitIdleTimeout = PortTimes.IdleTimeout,
            Clock = clock,
        };

    internal sealed override void CheckKeysBySplit(IOutputPort port, Action<string, int, int> reportOnce)
    {
        // One table per port (a port is used by one worker): the first split each sampled key came from, up to a bound.
        var first = new Dictionary<TKey, int>();
        ((ExchangePort<Keyed<TKey, TIn>>)port).SplitCheck = (record, split) =>
        {
            if (first.TryGetValue(record.Key, out var earlier))
            {
                if (earlier != split)
                {
                    reportOnce(record.Key.ToString() ?? "", earlier, split);
                }
            }
            else if (first.Count < 100_000)
            {
                first[record.Key] = split;
            }
        };
    }
}

/// <summary>
/// A keyed stage that holds no state and passes event time through (a lookup join, an asynchronous transform): its
/// watermark is its inputs', its producers allow for what the windows behind it allow for, it notices idle inputs on
/// the clock when a window behind it has an idle timeout, and checkpoints record nothing of it.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract class PassThroughStage<TKey, TIn> : KeyedStage<TKey, TIn>
    where TKey : notnull
{
    private readonly bool _hasEventTime;

    private protected PassThroughStage(string name, bool hasEventTime, int keyByStage, int stage, int exchangeSlot)
        : base(name, keyByStage, stage, exchangeSlot, -1)
    {
        _hasEventTime = hasEventTime;
    }

    internal sealed override TimeSpan TickInterval => TickFor(Downstream.IdleTimeout);

    internal sealed override bool EventTime => _hasEventTime;

    internal sealed override TimeSpan Size => TimeSpan.Zero;

    internal sealed override bool HasState => false;

    internal sealed override StateSchema? Schema => null;

    /// <summary>Its producers' watermarks allow for what the windows behind it allow for: they see only the watermark it forwards.</summary>
    private protected sealed override (TimeSpan OutOfOrderness, TimeSpan IdleTimeout) PortTimes => Downstream;

    internal sealed override void Snapshot(KeyedInput input, StateWriter writer, long checkpoint)
    {
        // Nothing: a lookup's cache is rebuilt from its table; an asynchronous transform's calls all complete before the barrier behind them.
    }

    internal sealed override void Restore(IReadOnlyList<ReadOnlyMemory<byte>> snapshots, IReadOnlyList<KeyedInput> partitions)
    {
    }
}

/// <summary>The keyed stage of a window with key <typeparamref name="TKey"/> aggregating <typeparamref name="TIn"/> with <typeparamref name="TAgg"/>.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class KeyedStage<TKey, TIn, TAgg, TAcc, TOut> : KeyedStage<TKey, TIn>
    where TKey : notnull
    where TAgg : IAggregator<TIn, TAcc, TOut>
{
    private readonly WindowSpec<TIn, TAgg> _spec;
    private readonly bool _hasEventTime;
    private readonly Func<PartitionContext, FusedSegment<WindowResult<TKey, TOut>>> _downstream;
    private readonly IStateCodec<TKey>? _keyCodec;
    private readonly IStateCodec<TAcc>? _accumulatorCodec;

    /// <summary>Creates the stage (generated code).</summary>
    /// <param name="spec">The window declared with <c>[Window]</c>.</param>
    /// <param name="windowName">The window member's name, for messages.</param>
    /// <param name="hasEventTime">Whether the window's input records have an event time the loop before it reads.</param>
    /// <param name="keyByStage">The chain index of the <c>[KeyBy]</c> stage.</param>
    /// <param name="windowStage">The chain index of the <c>[Window]</c> stage.</param>
    /// <param name="exchangeSlot">The output slot the loop before the exchange writes into.</param>
    /// <param name="lateSlot">The output slot of the <c>[LateData]</c> sink, or -1.</param>
    /// <param name="downstream">Creates the fused loop after the window for a keyed partition.</param>
    /// <param name="keyCodec">How checkpoints write keys; null when the key type cannot be checkpointed.</param>
    /// <param name="accumulatorCodec">How checkpoints write accumulators; null when the accumulator type cannot be checkpointed.</param>
    /// <param name="sourceKey">
    /// When the <c>[KeyBy]</c> reads the source's records directly: the record as the loop before the exchange writes it
    /// (its key, its event time), for a repartition hop that must key source records outside the loop; else null.
    /// </param>
    public KeyedStage(WindowSpec<TIn, TAgg> spec, string windowName, bool hasEventTime, int keyByStage, int windowStage, int exchangeSlot, int lateSlot, Func<PartitionContext, FusedSegment<WindowResult<TKey, TOut>>> downstream, IStateCodec<TKey>? keyCodec = null, IStateCodec<TAcc>? accumulatorCodec = null, Func<TIn, Keyed<TKey, TIn>>? sourceKey = null)
        : base(windowName, keyByStage, windowStage, exchangeSlot, lateSlot)
    {
        _spec = spec;
        _hasEventTime = hasEventTime;
        _downstream = downstream;
        _keyCodec = keyCodec;
        _accumulatorCodec = accumulatorCodec;
        SourceKey = sourceKey;
    }

    /// <summary>The <c>[KeyBy]</c> applied to a source record, when it reads the source's records directly (see the constructor).</summary>
    internal Func<TIn, Keyed<TKey, TIn>>? SourceKey { get; }

    internal override object? RepartitionKey => SourceKey is { } key && _keyCodec is { } codec
        ? new SourceKeyPartitioner<TKey, TIn>(key, codec, _hasEventTime)
        : null;

    internal override StateSchema? Schema => _keyCodec is null || _accumulatorCodec is null || _spec is null
        ? null
        : new StateSchema(WindowName, _keyCodec.Schema, $"{typeof(TAgg).Name} over {_accumulatorCodec.Schema}", Describe(_spec));

    internal override string NotCheckpointable => _keyCodec is null
        ? $"its key type '{typeof(TKey).Name}' has no checkpoint codec"
        : $"its accumulator type '{typeof(TAcc).Name}' has no checkpoint codec";

    private static string Describe(WindowSpec<TIn, TAgg> spec)
    {
        var window = spec.Window;
        var shape = window.Kind switch
        {
            WindowKind.Running => "running",
            WindowKind.Session => $"session gap {TimeMath.Millis(window.Size)} ms",
            WindowKind.Sliding => $"sliding {TimeMath.Millis(window.Size)} ms every {TimeMath.Millis(window.Slide)} ms",
            _ => $"tumbling {TimeMath.Millis(window.Size)} ms",
        };
        return $"{shape}, lateness {TimeMath.Millis(spec.AllowedLateness)} ms, {spec.Time} time";
    }

    internal override void Snapshot(KeyedInput input, StateWriter writer, long checkpoint)
        => State(input).Snapshot(writer, checkpoint, _keyCodec!, _accumulatorCodec!);

    internal override void Restore(IReadOnlyList<ReadOnlyMemory<byte>> snapshots, IReadOnlyList<KeyedInput> partitions)
    {
        WindowStateHeader.Restore(snapshots, _keyCodec!, _accumulatorCodec!, partitions.Select(State).ToArray());
    }

    private static IWindowState<TKey, TAcc> State(KeyedInput input)
        => (IWindowState<TKey, TAcc>)((KeyedInput<TKey, TIn, WindowResult<TKey, TOut>>)input).Windows;

    internal override bool EventTime => _spec.Time == TimeMode.Event && _spec.Window.Kind != WindowKind.Running;

    internal override TimeSpan OutOfOrderness => _spec.OutOfOrderness;

    internal override TimeSpan IdleTimeout => _spec.IdleTimeout;

    internal override TimeSpan Size => _spec.Window.Kind == WindowKind.Running ? TimeSpan.Zero : _spec.Window.Size;

    internal override TimeSpan TickInterval
    {
        get
        {
            if (_spec.Time == TimeMode.Processing)
            {
                return TimeSpan.FromMilliseconds(50);
            }

            // Idle inputs and a state time-to-live are noticed on the clock even when no record arrives.
            var every = new[] { _spec.IdleTimeout, _spec.StateTimeToLive }.Where(t => t > TimeSpan.Zero).DefaultIfEmpty(TimeSpan.Zero).Min();
            return TickFor(every);
        }
    }

    internal override void Validate(string pipeline)
    {
        if (_spec is null)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': window '{WindowName}' is null; give the member a value.");
        }

        if (_spec.Time == TimeMode.Event && !_hasEventTime && _spec.Window.Kind != WindowKind.Running)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': window '{WindowName}' runs on event time, but '{typeof(TIn).Name}' has no [EventTime] member; mark one (long Unix milliseconds, DateTime or DateTimeOffset) or set Time = TimeMode.Processing.");
        }

        if (_spec.OutOfOrderness < TimeSpan.Zero || _spec.AllowedLateness < TimeSpan.Zero || _spec.IdleTimeout < TimeSpan.Zero || _spec.StateTimeToLive < TimeSpan.Zero)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': window '{WindowName}': out-of-orderness, allowed lateness, idle timeout and state time-to-live cannot be negative.");
        }

        if (_spec.StateTimeToLive > TimeSpan.Zero && _spec.Window.Kind != WindowKind.Running)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': window '{WindowName}': StateTimeToLive applies to running aggregates (Window.Running()); a {_spec.Window.Kind.ToString().ToLowerInvariant()} window drops its state when it fires.");
        }
    }

    private protected override (TimeSpan OutOfOrderness, TimeSpan IdleTimeout) PortTimes => (_spec.OutOfOrderness, _spec.IdleTimeout);

    /// <summary>The operator of a window whose state lives in RocksDB (<c>StateBackend=Disk</c>); session windows are refused.</summary>
    private WindowOperator<TKey, TIn, TOut> CreateOnDisk(RunContext run, int partition)
    {
        var pipeline = run.Pipeline;
        if (_spec.Window.Kind == WindowKind.Session)
        {
            throw DiskBackend.Unsupported(pipeline, $"window '{WindowName}' is a session window");
        }

        if (_keyCodec is null || _accumulatorCodec is null)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': StateBackend=Disk writes the state of window '{WindowName}' with its checkpoint codecs, but {NotCheckpointable}. Use a string, a number or another type without references, a value tuple of those, or a partial [Record] type. See docs/state.md.");
        }

        var root = DiskBackend.Root(run.Options, pipeline);
        var name = $"{WindowName}-p{partition}";
        var window = _spec.Window;
        return window.Kind == WindowKind.Running
            ? DiskBackend.Open<WindowOperator<TKey, TIn, TOut>>(pipeline, () => new DiskRunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut>(root, name, run.Options.StateCacheKeys, _keyCodec, _accumulatorCodec, TimeMath.Millis(_spec.StateTimeToLive), run.Options.RestoreFrom))
            : DiskBackend.Open<WindowOperator<TKey, TIn, TOut>>(pipeline, () => new DiskPaneWindowOperator<TKey, TIn, TAgg, TAcc, TOut>(
                root, name, TimeMath.Millis(window.Size), TimeMath.Millis(window.Slide), TimeMath.Millis(_spec.AllowedLateness), run.Options.StateCacheKeys, _keyCodec, _accumulatorCodec, run.Options.RestoreFrom));
    }

    internal override KeyedInput CreateInput(RunContext run, Exchange exchange, int partition, PartitionContext context, WindowStatistics statistics)
    {
        var segment = _downstream(context);
        var windows = run.Options.StateBackend == StateBackend.Disk
            ? CreateOnDisk(run, partition)
            : WindowOperator.Create<TKey, TIn, TAgg, TAcc, TOut>(_spec.Window, _spec.AllowedLateness, _spec.StateTimeToLive);
        if (LateSlot >= 0)
        {
            windows.Late = context.Output<TIn>(LateSlot);
        }

        return new KeyedInput<TKey, TIn, WindowResult<TKey, TOut>>(run, (Exchange<Keyed<TKey, TIn>>)exchange, partition, context, segment, windows, _spec.Time == TimeMode.Processing, _spec.IdleTimeout, TickInterval, statistics);
    }
}
