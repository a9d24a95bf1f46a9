using System.Runtime.InteropServices;

namespace Compiled.Runtime;

/// <summary>
/// A running aggregate per key (Flink's keyed <c>reduce</c>): each record updates its key's accumulator — one lookup in
/// a dictionary keyed by the struct key, no boxing, nothing allocated once every key has been seen — and emits the new
/// result, covering all time (<see cref="long.MinValue"/> to <see cref="long.MaxValue"/>). Watermarks change nothing.
/// </summary>
internal sealed class RunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut> : WindowOperator<TKey, TIn, TOut>
    where TKey : notnull
    where TAgg : IAggregator<TIn, TAcc, TOut>
{
    private readonly Dictionary<TKey, TAcc> _state = [];

    public RunningAggregateOperator()
        : base(0)
    {
    }

    public override int StateEntries => _state.Count;

    public override void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch)
    {
        for (var i = 0; i < batch.Length; i++)
        {
            ref readonly var record = ref batch[i];
            ref var accumulator = ref CollectionsMarshal.GetValueRefOrAddDefault(_state, record.Key, out var seen);
            TAgg.Add(ref accumulator!, record.Record);
            Results.Add(new WindowResult<TKey, TOut>(record.Key, long.MinValue, long.MaxValue, TAgg.Result(accumulator), seen));
        }
    }

    public override void Advance(long watermark) => Watermark = Math.Max(Watermark, watermark);
}
