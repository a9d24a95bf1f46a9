using System.Diagnostics;
using System.Globalization;
using Compiled.Bench;
using Compiled.Connectors;
using Compiled.Runtime;

namespace Compiled.Throughput;

/// <summary>
/// What a pipeline does in the first second of a fresh process: many short runs of the order workload, one after
/// another, each a new pipeline over the same few thousand orders, beside the hand loop over the same orders
/// (interleaved). The long scenarios measure code the JIT has long since optimized; this one measures the code a
/// short job, or the first batches of a long one, actually runs. Run it in a process of its own (the mode exits after).
/// </summary>
internal static class ShortRuns
{
    public static async Task RunAsync(int orders, int runs, List<(string Name, string Value)> results)
    {
        var data = OrderWorkload.Create(orders);
        var expected = OrderWorkload.HandLoop(data);
        var pipeline = new double[runs];
        var hand = new double[runs];
        var started = Stopwatch.StartNew();
        for (var r = 0; r < runs; r++)
        {
            var clock = Stopwatch.StartNew();
            var handResult = OrderWorkload.HandLoop(data);
            hand[r] = clock.Elapsed.TotalMicroseconds;
            handResult.Verify(expected, "hand loop");

            FusedOrders.ResetShared();
            clock.Restart();
            var run = new FusedOrders { Orders = new CollectionSource<Order>(data) };
            await run.RunAsync(new PipelineOptions { Parallelism = 1 });
            pipeline[r] = clock.Elapsed.TotalMicroseconds;
            run.Result.Verify(expected, "runtime p1");
        }

        var total = started.Elapsed;
        Add(results, $"short runs: {runs:N0} pipelines of {orders:N0} orders in a fresh process, {total.TotalMilliseconds:F0} ms in all", "");
        foreach (var (name, times) in new[] { ("hand loop", hand), ("runtime p1 (a new pipeline each run)", pipeline) })
        {
            var first = times.Take(100).Sum() / 1000;
            var sorted = times.Order().ToArray();
            Add(results, $"  {name}", string.Create(CultureInfo.InvariantCulture, $"median {sorted[sorted.Length / 2]:F0} µs, p10 {sorted[sorted.Length / 10]:F0} µs, p90 {sorted[sorted.Length * 9 / 10]:F0} µs; first 100 runs {first:F1} ms"));
        }
    }

    private static void Add(List<(string Name, string Value)> results, string name, string value)
    {
        results.Add((name, value));
        Console.WriteLine($"{name}{(value.Length > 0 ? ": " + value : "")}");
    }
}
