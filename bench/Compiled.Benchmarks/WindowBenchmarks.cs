// Accumulators and totals are plain mutable structs and fields updated per record (CA1051 does not apply here).
#pragma warning disable CA1051

using System.Reactive.Concurrency;
using System.Reactive.Linq;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Compiled.Connectors;
using Compiled.Runtime;
using Compiled.Runtime.CompilerServices;

namespace Compiled.Benchmarks;

/// <summary>One event: an int key, an event time (Unix ms) and a value.</summary>
public readonly record struct KeyedEvent(int Key, [property: EventTime] long Time, long Value);

/// <summary>Count and sum of <see cref="KeyedEvent.Value"/> per window.</summary>
public struct CountSum
{
    public long Count;
    public long Sum;
}

/// <summary>The count/sum aggregate of the benchmark.</summary>
public readonly struct CountAndSum : IAggregator<KeyedEvent, CountSum, CountSum>
{
    public static void Add(ref CountSum accumulator, in KeyedEvent input)
    {
        accumulator.Count++;
        accumulator.Sum += input.Value;
    }

    public static void Merge(ref CountSum accumulator, in CountSum other)
    {
        accumulator.Count += other.Count;
        accumulator.Sum += other.Sum;
    }

    public static CountSum Result(in CountSum accumulator) => accumulator;
}

/// <summary>What every implementation computes: the number of (key, window) results, and a checksum over them.</summary>
public readonly record struct WindowTotals(long Windows, long Checksum)
{
    public WindowTotals Add(long start, int key, long count, long sum) => new(Windows + 1, Checksum + (count * 31) + sum + key + (start / 1_000));

    public WindowTotals Verify(WindowTotals expected, string who)
        => this == expected ? this : throw new InvalidOperationException($"{who}: {this}, expected {expected}");
}

/// <summary>The keyed tumbling window as a Compiled pipeline: 1-second windows over an int key, count and sum.</summary>
[Pipeline(Name = "bench-windows")]
public sealed partial class KeyedTumblingPipeline
{
    public WindowTotals Totals;

    [Source] public CollectionSource<KeyedEvent> Events { get; set; } = new();

    [KeyBy] static int Key(KeyedEvent e) => e.Key;

    [Window] WindowSpec<KeyedEvent, CountAndSum> PerSecond { get; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] void Collect(WindowResult<int, CountSum> r) => Totals = Totals.Add(r.Start, r.Key, r.Value.Count, r.Value.Sum);
}

/// <summary>
/// Keyed tumbling-window count/sum over an int key: 10 M events, 1,000 keys, 100 events per millisecond in time order,
/// 1-second windows (100 windows × 1,000 keys = 100,000 results). Compiled's window (the operator alone, and the whole
/// pipeline through the exchange at parallelism 1) next to a hand-written Dictionary loop, System.Linq GroupBy and
/// System.Reactive GroupBy + window.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class WindowBenchmarks
{
    private const long Size = 1_000;
    private KeyedEvent[] _events = [];
    private Keyed<int, KeyedEvent>[] _keyed = [];
    private WindowTotals _expected;

    [Params(10_000_000)]
    public int Records { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _events = new KeyedEvent[Records];
        for (var i = 0; i < Records; i++)
        {
            var key = (int)((i * 2_654_435_761L) % 1_000);
            _events[i] = new KeyedEvent(key, i / 100, (i % 7) + 1);
        }

        _keyed = [.. _events.Select(e => new Keyed<int, KeyedEvent>(e.Key, e.Time, e))];
        _expected = DictionaryTotals();
    }

    /// <summary>
    /// By hand: the open window's counts in a Dictionary keyed by the int key, emitted and cleared when time reaches
    /// the next window. It relies on the input being in time order (no watermarks, no lateness, no late output).
    /// </summary>
    [Benchmark(Baseline = true, Description = "hand-written Dictionary loop")]
    public WindowTotals DictionaryLoop() => DictionaryTotals().Verify(_expected, "Dictionary loop");

    private WindowTotals DictionaryTotals()
    {
        var totals = default(WindowTotals);
        var open = new Dictionary<int, CountSum>();
        var window = long.MinValue;
        foreach (var e in _events)
        {
            var w = e.Time / Size;
            if (w != window)
            {
                totals = Emit(open, window, totals);
                window = w;
            }

            ref var acc = ref CollectionsMarshal.GetValueRefOrAddDefault(open, e.Key, out _);
            acc.Count++;
            acc.Sum += e.Value;
        }

        return Emit(open, window, totals);

        static WindowTotals Emit(Dictionary<int, CountSum> open, long window, WindowTotals totals)
        {
            foreach (var (key, acc) in open.OrderBy(p => p.Key))
            {
                totals = totals.Add(window * Size, key, acc.Count, acc.Sum);
            }

            open.Clear();
            return totals;
        }
    }

    [Benchmark(Description = "System.Linq GroupBy")]
    public WindowTotals LinqGroupBy()
    {
        var totals = default(WindowTotals);
        foreach (var g in _events.GroupBy(e => (e.Key, Window: e.Time / Size)))
        {
            long count = 0, sum = 0;
            foreach (var e in g)
            {
                count++;
                sum += e.Value;
            }

            totals = totals.Add(g.Key.Window * Size, g.Key.Key, count, sum);
        }

        return totals.Verify(_expected, "LINQ GroupBy");
    }

    /// <summary>Rx: group by key, then per key a window per second of event time, closed when the key's next window starts.</summary>
    [Benchmark(Description = "System.Reactive GroupBy + window")]
    public WindowTotals Reactive()
    {
        var totals = default(WindowTotals);
        using var subscription = _events.ToObservable(ImmediateScheduler.Instance)
            .GroupBy(e => e.Key)
            .SelectMany(byKey => byKey
                .GroupByUntil(e => e.Time / Size, window => byKey.Where(e => e.Time / Size != window.Key))
                .SelectMany(window => window.Aggregate(
                    (Key: byKey.Key, Window: window.Key, Count: 0L, Sum: 0L),
                    (acc, e) => (acc.Key, acc.Window, acc.Count + 1, acc.Sum + e.Value))))
            .Subscribe(r => totals = totals.Add(r.Window * Size, r.Key, r.Count, r.Sum));
        return totals.Verify(_expected, "System.Reactive");
    }

    /// <summary>Compiled's window operator alone: batches of 1,024 keyed events, a watermark after each.</summary>
    [Benchmark(Description = "Compiled: window operator")]
    public WindowTotals CompiledOperator()
    {
        var op = WindowOperator.Create<int, KeyedEvent, CountAndSum, CountSum, CountSum>(Window.Tumbling(TimeSpan.FromMilliseconds(Size)), TimeSpan.Zero);
        var totals = default(WindowTotals);
        for (var i = 0; i < _keyed.Length; i += 1_024)
        {
            var batch = _keyed.AsSpan(i, Math.Min(1_024, _keyed.Length - i));
            op.Add(batch);
            op.Advance(batch[^1].Timestamp - 1);
            totals = Drain(op, totals);
        }

        op.Advance(long.MaxValue);
        return Drain(op, totals).Verify(_expected, "Compiled operator");

        static WindowTotals Drain(WindowOperator<int, KeyedEvent, CountSum> op, WindowTotals totals)
        {
            foreach (var r in op.Results.Span)
            {
                totals = totals.Add(r.Start, r.Key, r.Value.Count, r.Value.Sum);
            }

            op.Results.Reset();
            return totals;
        }
    }

    /// <summary>The whole pipeline through the runtime at parallelism 1: source, key selector, exchange, window, sink.</summary>
    [Benchmark(Description = "Compiled: pipeline, parallelism 1")]
    public async Task<WindowTotals> CompiledPipeline()
    {
        var pipeline = new KeyedTumblingPipeline { Events = new CollectionSource<KeyedEvent>(_events) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });
        return pipeline.Totals.Verify(_expected, "Compiled pipeline");
    }
}
