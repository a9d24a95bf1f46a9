// Totals are plain mutable fields updated per result (CA1051 does not apply here).
#pragma warning disable CA1051

using System.Runtime.InteropServices;
using Compiled.Connectors;
using Compiled.Runtime;

namespace Compiled.Benchmarks;

/// <summary>Selects the count of a window result (the second stage's maximum).</summary>
public readonly struct ResultCount : IValueSelector<KeyCount, long>
{
    public static long ValueOf(in KeyCount record) => record.Count;
}

/// <summary>A key's count in one window; <see cref="Time"/> is the window's last instant.</summary>
public readonly record struct KeyCount(int Key, [property: EventTime] long Time, long Count);

/// <summary>
/// Two keyed stages in sequence: events per key per second, then per second the largest of those counts (the busiest
/// key's count). The second stage keys the first one's results by their window.
/// </summary>
[Pipeline(Name = "bench-two-stages")]
public sealed partial class TwoStagePipeline
{
    public WindowTotals Totals;

    [Source] public CollectionSource<KeyedEvent> Events { get; set; } = new();

    [KeyBy] static int Key(KeyedEvent e) => e.Key;

    [Window] WindowSpec<KeyedEvent, Count<KeyedEvent>> PerSecond { get; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Transform] static KeyCount Counted(WindowResult<int, long> r) => new(r.Key, r.End - 1, r.Value);

    [KeyBy] static long Second(KeyCount c) => c.Time;

    [Window] WindowSpec<KeyCount, Max<KeyCount, ResultCount, long>> Busiest { get; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] void Collect(WindowResult<long, long> r) => Totals = Totals.Add(r.Start, 0, r.Value, 0);
}

/// <summary>
/// One stream in two branches: count and sum per key per second, and — for events with a value above 3 — the sum per
/// key group (key mod 10) per second.
/// </summary>
/// <remarks>
/// The sinks are static methods over static totals (one run at a time, parallelism 1): instance state after two
/// windows would live in two pipeline objects, one per loop (docs/windows.md), and the benchmark reads both totals.
/// </remarks>
[Pipeline(Name = "bench-branches")]
public sealed partial class TwoBranchPipeline
{
    public static WindowTotals Totals { get; set; }
    public static WindowTotals GroupTotals { get; set; }

    [Source] public CollectionSource<KeyedEvent> Events { get; set; } = new();

    [KeyBy] static int Key(KeyedEvent e) => e.Key;

    [Window] WindowSpec<KeyedEvent, CountAndSum> PerSecond { get; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] static void Collect(WindowResult<int, CountSum> r) => Totals = Totals.Add(r.Start, r.Key, r.Value.Count, r.Value.Sum);

    [Transform(Input = nameof(Events))] static bool Large(KeyedEvent e) => e.Value > 3;

    [KeyBy] static int Group(KeyedEvent e) => e.Key % 10;

    [Window] WindowSpec<KeyedEvent, CountAndSum> GroupPerSecond { get; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] static void CollectGroup(WindowResult<int, CountSum> r) => GroupTotals = GroupTotals.Add(r.Start, r.Key, r.Value.Count, r.Value.Sum);
}

/// <summary>The graph workloads, with hand-written loops doing the same work (the physical limit on one thread).</summary>
public sealed class GraphWorkloads
{
    private const long Size = 1_000;

    public GraphWorkloads(int records)
    {
        Events = new KeyedEvent[records];
        for (var i = 0; i < records; i++)
        {
            Events[i] = new KeyedEvent((int)((i * 2_654_435_761L) % 1_000), i / 100, (i % 7) + 1);
        }
    }

    public KeyedEvent[] Events { get; }

    /// <summary>By hand: the open second's counts per key in a Dictionary; at each new second, the largest of them.</summary>
    public WindowTotals HandTwoStages()
    {
        var totals = default(WindowTotals);
        var open = new Dictionary<int, long>();
        var window = long.MinValue;
        foreach (var e in Events)
        {
            var w = e.Time / Size;
            if (w != window)
            {
                totals = Emit(open, window, totals);
                window = w;
            }

            CollectionsMarshal.GetValueRefOrAddDefault(open, e.Key, out _)++;
        }

        return Emit(open, window, totals);

        static WindowTotals Emit(Dictionary<int, long> open, long window, WindowTotals totals)
        {
            if (open.Count > 0)
            {
                totals = totals.Add(window * Size, 0, open.Values.Max(), 0);
                open.Clear();
            }

            return totals;
        }
    }

    /// <summary>By hand: both branches in one pass, two Dictionaries of the open second.</summary>
    public (WindowTotals Keys, WindowTotals Groups) HandBranches()
    {
        var keys = default(WindowTotals);
        var groups = default(WindowTotals);
        var byKey = new Dictionary<int, CountSum>();
        var byGroup = new Dictionary<int, CountSum>();
        var window = long.MinValue;
        foreach (var e in Events)
        {
            var w = e.Time / Size;
            if (w != window)
            {
                keys = Emit(byKey, window, keys);
                groups = Emit(byGroup, window, groups);
                window = w;
            }

            ref var acc = ref CollectionsMarshal.GetValueRefOrAddDefault(byKey, e.Key, out _);
            acc.Count++;
            acc.Sum += e.Value;
            if (e.Value > 3)
            {
                ref var group = ref CollectionsMarshal.GetValueRefOrAddDefault(byGroup, e.Key % 10, out _);
                group.Count++;
                group.Sum += e.Value;
            }
        }

        return (Emit(byKey, window, keys), Emit(byGroup, window, groups));

        static WindowTotals Emit(Dictionary<int, CountSum> open, long window, WindowTotals totals)
        {
            foreach (var (key, acc) in open)
            {
                totals = totals.Add(window * Size, key, acc.Count, acc.Sum);
            }

            open.Clear();
            return totals;
        }
    }

    public async Task<WindowTotals> CompiledTwoStages(int parallelism)
    {
        var pipeline = new TwoStagePipeline { Events = new CollectionSource<KeyedEvent>(Events) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism });
        return pipeline.Totals;
    }

    public async Task<(WindowTotals Keys, WindowTotals Groups)> CompiledBranches(int parallelism)
    {
        TwoBranchPipeline.Totals = default;
        TwoBranchPipeline.GroupTotals = default;
        var pipeline = new TwoBranchPipeline { Events = new CollectionSource<KeyedEvent>(Events) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism });
        return (TwoBranchPipeline.Totals, TwoBranchPipeline.GroupTotals);
    }

    public async Task<WindowTotals> CompiledTumbling(int parallelism)
    {
        var pipeline = new KeyedTumblingPipeline { Events = new CollectionSource<KeyedEvent>(Events) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism });
        return pipeline.Totals;
    }
}

/// <summary>
/// '--graph-cpu [runs]': the graph workloads interleaved — hand loops and Compiled pipelines at parallelism 1, one
/// repetition of each in turn — printing medians of wall time and of the process's CPU time, and the ratios.
/// Results are checked: a sum over window results that differs from the hand loop's fails the run.
/// </summary>
internal static class GraphCpu
{
    public static async Task<int> RunAsync(int runs)
    {
        const int Records = 10_000_000;
        var work = new GraphWorkloads(Records);
        var two = work.HandTwoStages();
        var branches = work.HandBranches();
        var tumbling = await work.CompiledTumbling(1);
        var implementations = new (string Name, Func<Task> Run)[]
        {
            ("hand: two keyed stages", () => { Check(work.HandTwoStages(), two, "hand two stages"); return Task.CompletedTask; }),
            ("Compiled: two keyed stages, p1", async () => Check(await work.CompiledTwoStages(1), two, "Compiled two stages")),
            ("hand: two branches", () => { Check(work.HandBranches(), branches, "hand branches"); return Task.CompletedTask; }),
            ("Compiled: two branches, p1", async () => Check(await work.CompiledBranches(1), branches, "Compiled branches")),
            ("Compiled: keyed tumbling count, p1", async () => Check(await work.CompiledTumbling(1), tumbling, "Compiled tumbling")),
        };

        var process = System.Diagnostics.Process.GetCurrentProcess();
        var samples = implementations.Select(_ => new List<(double Wall, double Cpu)>()).ToArray();
        for (var r = 0; r < runs + 2; r++)
        {
            for (var k = 0; k < implementations.Length; k++)
            {
                GC.Collect();
                process.Refresh();
                var cpu = process.TotalProcessorTime;
                var wall = System.Diagnostics.Stopwatch.StartNew();
                await implementations[k].Run();
                var elapsed = wall.Elapsed.TotalSeconds;
                process.Refresh();
                if (r >= 2)
                {
                    samples[k].Add((elapsed, (process.TotalProcessorTime - cpu).TotalSeconds)); // the first two rounds warm up
                }
            }
        }

        var medians = samples.Select(s => (Wall: Median(s.Select(x => x.Wall)), Cpu: Median(s.Select(x => x.Cpu)))).ToArray();
        Console.WriteLine(FormattableString.Invariant($"{Records:N0} events, {runs} interleaved rounds, medians:"));
        for (var k = 0; k < implementations.Length; k++)
        {
            Console.WriteLine(FormattableString.Invariant($"  {implementations[k].Name,-36} wall {medians[k].Wall * 1000,8:F1} ms  CPU {medians[k].Cpu * 1000,8:F1} ms  {Records / medians[k].Cpu / 1e6,6:F1} M events per CPU-second"));
        }

        Console.WriteLine(FormattableString.Invariant($"two_stages_vs_hand={medians[0].Wall / medians[1].Wall:F2}"));
        Console.WriteLine(FormattableString.Invariant($"branches_vs_hand={medians[2].Wall / medians[3].Wall:F2}"));
        Console.WriteLine(FormattableString.Invariant($"tumbling_events_per_cpu_second={Records / medians[4].Cpu / 1e6:F1}M"));
        return 0;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    private static void Check<T>(T actual, T expected, string who)
        where T : IEquatable<T>
    {
        if (!actual.Equals(expected))
        {
            throw new InvalidOperationException($"{who}: {actual}, expected {expected}");
        }
    }
}
