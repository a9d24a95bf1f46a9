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
    private struct Entry
    {
        public TAcc Acc;
        public long Touched; // processing time of the last update, Unix ms; long.MinValue: restored, not yet seen
    }

    private readonly Dictionary<TKey, Entry> _state = [];
    private readonly long _timeToLive;
    private long _nextSweep = long.MinValue;

    public RunningAggregateOperator(long timeToLiveMs = 0)
        : base(0)
    {
        _timeToLive = timeToLiveMs;
    }

    public override int StateEntries => _state.Count;

    public override void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch)
    {
        var now = Now;
        for (var i = 0; i < batch.Length; i++)
        {
            ref readonly var record = ref batch[i];
            ref var entry = ref CollectionsMarshal.GetValueRefOrAddDefault(_state, record.Key, out var seen);
            TAgg.Add(ref entry.Acc!, record.Record);
            entry.Touched = now;
            Results.Add(new WindowResult<TKey, TOut>(record.Key, long.MinValue, long.MaxValue, TAgg.Result(entry.Acc), seen));
        }
    }

    public override void Advance(long watermark) => Watermark = Math.Max(Watermark, watermark);

    /// <summary>With a time-to-live: at most every quarter of it, drops the keys not updated within it.</summary>
    public override void Expire(long now)
    {
        if (_timeToLive <= 0 || now < _nextSweep)
        {
            return;
        }

        _nextSweep = now + Math.Max(1, _timeToLive / 4);
        foreach (var (key, entry) in _state)
        {
            if (entry.Touched == long.MinValue)
            {
                CollectionsMarshal.GetValueRefOrNullRef(_state, key).Touched = now; // restored: its time-to-live starts now
            }
            else if (now - entry.Touched >= _timeToLive)
            {
                _state.Remove(key);
                ExpiredEntries++;
            }
        }
    }

    public byte Kind => 3;

    /// <summary>Header, then per key: key, accumulator.</summary>
    public void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators)
    {
        new WindowStateHeader(Kind, Watermark, 0, _state.Count, Reached, SplitState).Write(writer);
        foreach (var (key, entry) in _state)
        {
            keys.Write(writer, key);
            accumulators.Write(writer, entry.Acc);
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
            target._state[key] = new Entry { Acc = accumulator, Touched = long.MinValue };
        }
    }
}
