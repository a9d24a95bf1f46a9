using System.ComponentModel;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// The keyed stage of a join of two streams (generated code declares it): one hash exchange that both inputs' key
/// selectors write into — each record as an <see cref="Either{TLeft, TRight}"/> — the join operator in every keyed
/// partition, and the fused loop after it over the <see cref="Joined{TLeft, TRight}"/> results.
/// </summary>
/// <typeparam name="TKey">The key both inputs are keyed by.</typeparam>
/// <typeparam name="TLeft">The left records.</typeparam>
/// <typeparam name="TRight">The right records.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class JoinStage<TKey, TLeft, TRight> : KeyedStage<TKey, Either<TLeft, TRight>>
    where TKey : notnull
{
    private readonly JoinSpec<TLeft, TRight> _spec;
    private readonly Func<PartitionContext, FusedSegment<Joined<TLeft, TRight>>> _downstream;
    private readonly IStateCodec<TKey>? _keyCodec;
    private readonly IStateCodec<TLeft>? _leftCodec;
    private readonly IStateCodec<TRight>? _rightCodec;
    private readonly JoinEntryCodec<TLeft, TRight>? _entryCodec;
    private readonly Func<TRight, ChangeKind>? _change;

    /// <summary>Creates the stage (generated code).</summary>
    /// <param name="spec">The join declared with <c>[Join]</c>.</param>
    /// <param name="joinName">The join member's name, for messages.</param>
    /// <param name="keyByStage">The chain index of the left input's <c>[KeyBy]</c>.</param>
    /// <param name="joinStage">The chain index of the join.</param>
    /// <param name="exchangeSlot">The output slot both inputs' loops write into.</param>
    /// <param name="lateSlot">The output slot of the <c>[LateData]</c> sink (of <see cref="Either{TLeft, TRight}"/>), or -1.</param>
    /// <param name="downstream">Creates the fused loop after the join for a keyed partition.</param>
    /// <param name="keyCodec">How checkpoints write keys; null when the key type cannot be checkpointed.</param>
    /// <param name="leftCodec">How checkpoints write left records; null when they cannot be checkpointed.</param>
    /// <param name="rightCodec">How checkpoints write right records; null when they cannot be checkpointed.</param>
    /// <param name="change">For a table join: reads a right record's <see cref="ChangeKind"/> member (a delete removes the row); null: every right record is a row.</param>
    public JoinStage(JoinSpec<TLeft, TRight> spec, string joinName, int keyByStage, int joinStage, int exchangeSlot, int lateSlot, Func<PartitionContext, FusedSegment<Joined<TLeft, TRight>>> downstream, IStateCodec<TKey>? keyCodec = null, IStateCodec<TLeft>? leftCodec = null, IStateCodec<TRight>? rightCodec = null, Func<TRight, ChangeKind>? change = null)
        : base(joinName, keyByStage, joinStage, exchangeSlot, lateSlot)
    {
        _change = change;
        _spec = spec;
        _downstream = downstream;
        _keyCodec = keyCodec;
        _leftCodec = leftCodec;
        _rightCodec = rightCodec;
        _entryCodec = leftCodec is null || rightCodec is null ? null : new JoinEntryCodec<TLeft, TRight>(leftCodec, rightCodec);
    }

    internal override bool EventTime => true;

    internal override bool IsJoin => true;

    internal override TimeSpan OutOfOrderness => _spec.OutOfOrderness;

    internal override TimeSpan IdleTimeout => _spec.IdleTimeout;

    internal override TimeSpan Size => _spec.Time switch
    {
        JoinTime.Window => _spec.Window.Size,
        JoinTime.Interval => _spec.UpperBound - _spec.LowerBound,
        _ => TimeSpan.Zero,
    };

    internal override TimeSpan TickInterval => TickFor(_spec.IdleTimeout);

    private protected override (TimeSpan OutOfOrderness, TimeSpan IdleTimeout) PortTimes => (_spec.OutOfOrderness, _spec.IdleTimeout);

    internal override StateSchema? Schema => _keyCodec is null || _entryCodec is null || _spec is null
        ? null
        : new StateSchema(WindowName, _keyCodec.Schema, _entryCodec.Schema, Describe(_spec));

    internal override string NotCheckpointable => _keyCodec is null
        ? $"its key type '{typeof(TKey).Name}' has no checkpoint codec"
        : $"its record types '{typeof(TLeft).Name}' and '{typeof(TRight).Name}' need checkpoint codecs (mark them [Record])";

    private static string Describe(JoinSpec<TLeft, TRight> spec) => spec.Time switch
    {
        JoinTime.Window => $"window join {spec.Window}, {spec.Kind}",
        JoinTime.Interval => $"interval join [{TimeMath.Millis(spec.LowerBound)} ms, {TimeMath.Millis(spec.UpperBound)} ms], {spec.Kind}",
        _ => $"{(spec.Versioned ? "versioned" : "latest-row")} table join, {spec.Kind}",
    };

    internal override void Validate(string pipeline)
    {
        if (_spec is null)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': join '{WindowName}' is null; give the member a value (Join.Interval or Join.Windowed).");
        }

        if (_spec.OutOfOrderness < TimeSpan.Zero || _spec.IdleTimeout < TimeSpan.Zero)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': join '{WindowName}': out-of-orderness and idle timeout cannot be negative.");
        }
    }

    internal override KeyedInput CreateInput(RunContext run, Exchange exchange, int partition, PartitionContext context, WindowStatistics statistics)
    {
        if (run.Options.StateBackend == StateBackend.Disk)
        {
            throw DiskBackend.Unsupported(run.Pipeline, $"join '{WindowName}' keeps its state in memory");
        }

        var segment = _downstream(context);
        var leftOuter = _spec.Kind == JoinKind.LeftOuter;
        KeyedOperator<TKey, Either<TLeft, TRight>, Joined<TLeft, TRight>> join = _spec.Time switch
        {
            JoinTime.Window => new WindowJoinOperator<TKey, TLeft, TRight>(TimeMath.Millis(_spec.Window.Size), TimeMath.Millis(_spec.Window.Slide), leftOuter),
            JoinTime.Interval => new IntervalJoinOperator<TKey, TLeft, TRight>(TimeMath.Millis(_spec.LowerBound), TimeMath.Millis(_spec.UpperBound), leftOuter),
            _ => new TableJoinOperator<TKey, TLeft, TRight>(_spec.Versioned, leftOuter, _change),
        };
        if (LateSlot >= 0)
        {
            join.Late = context.Output<Either<TLeft, TRight>>(LateSlot);
        }
        return new KeyedInput<TKey, Either<TLeft, TRight>, Joined<TLeft, TRight>>(run, (Exchange<Keyed<TKey, Either<TLeft, TRight>>>)exchange, partition, context, segment, join, processingTime: false, _spec.IdleTimeout, TickInterval, statistics);
    }

    internal override void Snapshot(KeyedInput input, StateWriter writer, long checkpoint)
        => State(input).Snapshot(writer, checkpoint, _keyCodec!, _entryCodec!);

    internal override void Restore(IReadOnlyList<ReadOnlyMemory<byte>> snapshots, IReadOnlyList<KeyedInput> partitions)
        => WindowStateHeader.Restore(snapshots, _keyCodec!, _entryCodec!, partitions.Select(State).ToArray());

    private static IWindowState<TKey, JoinEntry<TLeft, TRight>> State(KeyedInput input)
        => (IWindowState<TKey, JoinEntry<TLeft, TRight>>)((KeyedInput<TKey, Either<TLeft, TRight>, Joined<TLeft, TRight>>)input).Windows;
}
