using System.ComponentModel;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// An asynchronous transform as generated code declares it: a forward exchange in front of it (partition p of the
/// loop before feeds partition p of the transform; inline on the same worker unless a clock is needed) or, with
/// <see cref="AsyncSettings.Spread"/>, a rebalance (each batch to the next partition in turn), the transform's
/// partitions, and the fused loop after it.
/// </summary>
/// <typeparam name="TIn">The records the method takes.</typeparam>
/// <typeparam name="TOut">The records that leave it.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class AsyncStage<TIn, TOut> : PassThroughStage<int, TIn>
{
    private readonly Func<PartitionContext, AsyncPartition<TIn, TOut>> _create;

    /// <summary>Creates the stage (generated code).</summary>
    /// <param name="settings">The transform's settings, from its <see cref="AsyncOptionsAttribute"/>.</param>
    /// <param name="name">The method's name, for messages, metrics and settings.</param>
    /// <param name="hasEventTime">Whether the records have an event time: watermarks then pass through to the windows after it.</param>
    /// <param name="inputStage">The chain index of the stage the transform reads.</param>
    /// <param name="asyncStage">The chain index of the transform.</param>
    /// <param name="exchangeSlot">The output slot the loop before writes into.</param>
    /// <param name="create">Creates a partition: the fused loop after the transform and the call to the method.</param>
    public AsyncStage(AsyncSettings settings, string name, bool hasEventTime, int inputStage, int asyncStage, int exchangeSlot, Func<PartitionContext, AsyncPartition<TIn, TOut>> create)
        : base(name, hasEventTime, inputStage, asyncStage, exchangeSlot)
    {
        Settings = settings;
        _create = create;
    }

    /// <summary>The transform's settings (a configurable part of the job, like a connector).</summary>
    internal AsyncSettings Settings { get; }

    internal AsyncStatistics Statistics { get; } = new();

    internal override AsyncStatistics? AsyncStatistics => Statistics;

    internal override object? Configurable => Settings;

    internal override ExchangeRouting? Routing => Settings.Spread ? ExchangeRouting.Rebalance : ExchangeRouting.Forward;

    internal override string NotCheckpointable => "an asynchronous transform keeps no state";

    internal override void Validate(string pipeline)
    {
        var s = Settings;
        if (s.MaxInFlight < 1 || s.MaxAttempts < 1 || s.RetryBackoff < TimeSpan.Zero || s.Timeout is { } t && t <= TimeSpan.Zero)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': asynchronous transform '{WindowName}': MaxInFlight and MaxAttempts must be at least 1, Timeout positive (or none) and RetryBackoff not negative.");
        }
    }

    internal override KeyedInput CreateInput(RunContext run, Exchange exchange, int partition, PartitionContext context, WindowStatistics statistics)
    {
        // Timeouts and retry waits protect against a real service, so they run on the wall clock, also under the test
        // driver: its clock moves only between pushes, while a push waits for its batch's calls.
        var created = _create(context);
        var op = context.Own(created.CreateOperator(Settings, TimeProvider.System, Statistics, context, WindowStage));
        return new KeyedInput<int, TIn, TOut>(run, (Exchange<Keyed<int, TIn>>)exchange, partition, context, created.Loop, op, processingTime: false, Downstream.IdleTimeout, TickInterval, statistics);
    }
}

/// <summary>One partition of an asynchronous transform, as generated code creates it: the loop after it and the call to the user's method.</summary>
/// <typeparam name="TIn">The records the method takes.</typeparam>
/// <typeparam name="TOut">The records that leave it.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class AsyncPartition<TIn, TOut>
{
    private readonly Func<AsyncSettings, TimeProvider, AsyncStatistics, PartitionContext, int, KeyedOperator<int, TIn, TOut>> _operator;

    internal AsyncPartition(FusedSegment<TOut> loop, Func<AsyncSettings, TimeProvider, AsyncStatistics, PartitionContext, int, KeyedOperator<int, TIn, TOut>> create)
    {
        Loop = loop;
        _operator = create;
    }

    internal FusedSegment<TOut> Loop { get; }

    internal KeyedOperator<int, TIn, TOut> CreateOperator(AsyncSettings settings, TimeProvider time, AsyncStatistics statistics, PartitionContext context, int stage)
        => _operator(settings, time, statistics, context, stage);
}

/// <summary>Creates the partitions of asynchronous transforms (generated code).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class AsyncPartition
{
    /// <summary>A transform whose method returns <c>ValueTask&lt;TOut&gt;</c>: one record out per record in.</summary>
    public static AsyncPartition<TIn, TOut> Map<TIn, TOut>(FusedSegment<TOut> loop, Func<TIn, CancellationToken, ValueTask<TOut>> call)
        => new(loop, (settings, time, statistics, context, stage) => new AsyncOperator<TIn, TOut, TOut, SingleResult<TOut>>(call, settings, time, statistics, context, stage));

    /// <summary>A transform whose method returns <c>ValueTask&lt;IEnumerable&lt;TOut&gt;&gt;</c>: each element leaves as a record.</summary>
    public static AsyncPartition<TIn, TOut> FlatMap<TIn, TOut>(FusedSegment<TOut> loop, Func<TIn, CancellationToken, ValueTask<IEnumerable<TOut>>> call)
        => new(loop, (settings, time, statistics, context, stage) => new AsyncOperator<TIn, IEnumerable<TOut>, TOut, ManyResults<TOut>>(call, settings, time, statistics, context, stage));
}
