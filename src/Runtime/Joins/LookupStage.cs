using System.ComponentModel;
using Microsoft.Extensions.Logging;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// The keyed stage of a lookup join, as generated code declares it: the hash exchange in front of the lookup (records
/// of one key reach one partition, so each partition's cache holds its own keys), the lookup per partition, and the
/// fused loop over the joined records after it.
/// </summary>
/// <typeparam name="TKey">The key the <c>[KeyBy]</c> stage computes and the row's <c>[Key]</c> member holds.</typeparam>
/// <typeparam name="TIn">The records looked up.</typeparam>
/// <typeparam name="TRow">The table's rows.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class LookupStage<TKey, TIn, TRow> : PassThroughStage<TKey, TIn>, IDescribedLookup
    where TKey : notnull
{
    private readonly ILookup<TKey, TRow>? _lookup;
    private readonly Func<PartitionContext, FusedSegment<Joined<TIn, TRow>>> _downstream;
    private readonly RecordSchema<TRow>? _schema;
    private bool _opened;

    /// <summary>Creates the stage (generated code).</summary>
    /// <param name="lookup">The table declared with <c>[Lookup]</c>.</param>
    /// <param name="lookupName">The lookup member's name, for messages and settings.</param>
    /// <param name="hasEventTime">Whether the records have an event time: watermarks then pass through the lookup to the windows after it.</param>
    /// <param name="keyByStage">The chain index of the <c>[KeyBy]</c> stage.</param>
    /// <param name="lookupStage">The chain index of the <c>[Lookup]</c> stage.</param>
    /// <param name="exchangeSlot">The output slot the loop before the exchange writes into.</param>
    /// <param name="downstream">Creates the fused loop after the lookup for a partition.</param>
    /// <param name="schema">The row type's schema: its columns and how to build a row.</param>
    public LookupStage(ILookup<TKey, TRow>? lookup, string lookupName, bool hasEventTime, int keyByStage, int lookupStage, int exchangeSlot, Func<PartitionContext, FusedSegment<Joined<TIn, TRow>>> downstream, RecordSchema<TRow>? schema)
        : base(lookupName, hasEventTime, keyByStage, lookupStage, exchangeSlot)
    {
        _lookup = lookup;
        _downstream = downstream;
        _schema = schema;
    }

    /// <summary>What the lookup did over all partitions (summary, tests).</summary>
    internal LookupStatistics Statistics { get; } = new();

    internal override LookupStatistics? LookupStatistics => Statistics;

    internal override object? Lookup => _lookup;

    string IDescribedLookup.Describe() => _lookup is null ? "(null)" : _lookup.Describe() + (IsLocal ? "; routing Local: each partition looks up its own records" : "");

    bool IDescribedLookup.IsLocal => IsLocal;

    private bool IsLocal => _lookup?.Routing == LookupRouting.Local;

    /// <summary>A local lookup reads the loop before it partition by partition, on its worker when nothing needs a clock.</summary>
    internal override ExchangeRouting? Routing => IsLocal ? ExchangeRouting.Forward : null;

    internal override string NotCheckpointable => "a lookup join keeps no state";

    internal override void Validate(string pipeline)
    {
        if (_lookup is null)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': lookup '{WindowName}' is null; give the member a value.");
        }

        if (_lookup.CacheSize < 0 || _lookup.TimeToLive < TimeSpan.Zero)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': lookup '{WindowName}': CacheSize and TimeToLive cannot be negative.");
        }

        if (_schema is null || !_schema.CanCreate)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': lookup '{WindowName}': rows of type '{typeof(TRow).Name}' cannot be built from their columns.");
        }
    }

    internal override async ValueTask OpenAsync(string pipeline, int partitions, ILogger logger, CancellationToken cancellationToken)
    {
        var context = new LookupContext<TRow>(pipeline, WindowName, partitions, _schema) { Warn = message => Log.LookupWarning(logger, pipeline, WindowName, message) };
        await _lookup!.OpenAsync(context, cancellationToken).ConfigureAwait(false);
        _opened = true;
    }

    internal override ValueTask CloseAsync() => _opened ? _lookup!.CloseAsync(CancellationToken.None) : ValueTask.CompletedTask;

    internal override KeyedInput CreateInput(RunContext run, Exchange exchange, int partition, PartitionContext context, WindowStatistics statistics)
    {
        var segment = _downstream(context);
        var lookup = context.Own(new LookupOperator<TKey, TIn, TRow>(_lookup!.CreateReader(partition), _lookup.Join, _lookup.CacheSize, _lookup.TimeToLive, () => run.Clock.Now, Statistics, (run.Pipeline, WindowName, partition), segment as ILookupSegment<TKey, TIn, TRow>));
        return new KeyedInput<TKey, TIn, Joined<TIn, TRow>>(run, (Exchange<Keyed<TKey, TIn>>)exchange, partition, context, segment, lookup, processingTime: false, Downstream.IdleTimeout, TickInterval, statistics);
    }
}

/// <summary>A lookup stage's table, in words, and how records reach it (for plans and logs).</summary>
internal interface IDescribedLookup
{
    string Describe();

    /// <summary>Whether each partition of the loop before looks up its own records (<see cref="LookupRouting.Local"/>).</summary>
    bool IsLocal { get; }
}
