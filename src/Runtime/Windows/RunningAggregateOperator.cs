using System.Runtime.InteropServices;

namespace Compiled.Runtime;

/// <summary>
/// A running aggregate per key (Flink's keyed <c>reduce</c>): each record updates its key's accumulator — one lookup in
/// a dictionary keyed by the struct key, no boxing, nothing allocated once every key has been seen — and emits the new
/// result, covering all time (<see cref="long.MinValue"/> to <see cref="long.MaxValue"/>). Watermarks change nothing.
/// </summary>
internal sealed class RunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut> : WindowOperator<TKey, TIn, TOut>, IWindowState<TKey, TAcc>
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

    public byte Kind => 3;

    /// <summary>Header, then per key: key, accumulator.</summary>
    public void Snapshot(StateWriter writer, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators)
    {
        new WindowStateHeader(Kind, Watermark, 0, _state.Count).Write(writer);
        foreach (var (key, accumulator) in _state)
        {
            keys.Write(writer, key);
            accumulators.Write(writer, accumulator);
        }
    }

    public void RestoreClock(long watermark, long clock) => RestoreWatermark(watermark);

    public void RestoreEntries(ref StateReader reader, long count, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, IReadOnlyList<IWindowState<TKey, TAcc>> targets)
    {
        for (long i = 0; i < count; i++)
        {
            var key = keys.Read(ref reader);
            var accumulator = accumulators.Read(ref reader);
            var target = (RunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut>)targets[KeyHash.Partition(KeyHash.Of(key), targets.Count)];
            target._state[key] = accumulator;
        }
    }
}
