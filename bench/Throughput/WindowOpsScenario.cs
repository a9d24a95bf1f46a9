using System.Diagnostics;
using System.Globalization;
using Compiled.Runtime;
using Compiled.Runtime.CompilerServices;

namespace Compiled.Throughput;

/// <summary>
/// One window operator alone, one partition, as a keyed partition drives it: batches of 1,024 keyed records (keys
/// drawn at random from 1 k, 100 k or 2 M), event time advancing evenly over 20 s, the watermark moved after every
/// batch and the results dropped. A tumbling 1 s count and a sliding 10 s / 1 s count (ten panes per window). Reports
/// the median of 5 runs in M records/s. For before/after comparisons of the operators' state layout.
/// </summary>
internal static class WindowOpsScenario
{
    public static void Run(List<(string, string)> results)
    {
        Console.WriteLine("scenario: window operators alone (count per key, batches of 1,024, watermark after each)");
        const int Records = 8 * 1024 * 1024;
        foreach (var (name, window, keys) in new (string, Window, int)[]
        {
            ("tumbling_1k", Window.Tumbling(TimeSpan.FromSeconds(1)), 1_000),
            ("tumbling_100k", Window.Tumbling(TimeSpan.FromSeconds(1)), 100_000),
            ("tumbling_2m", Window.Tumbling(TimeSpan.FromSeconds(1)), 2_000_000),
            ("sliding_1k", Window.Sliding(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1)), 1_000),
            ("sliding_100k", Window.Sliding(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1)), 100_000),
        })
        {
            Once(window, keys, Records / 4); // warm-up: tiered compilation
            var rates = Enumerable.Range(0, 5).Select(_ => Once(window, keys, Records)).Order().ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-14} {rates[2],7:F1} M records/s (min {rates[0]:F1}, max {rates[^1]:F1})"));
            results.Add(($"window_ops_{name}_mrps", rates[2].ToString("F1", CultureInfo.InvariantCulture)));
        }
    }

    private static double Once(Window window, int keys, int records)
    {
        var op = WindowOperator.Create<int, int, Count<int>, long, long>(window, TimeSpan.Zero);
        var batch = new Keyed<int, int>[1024];
        var random = new Random(42);
        var keyOf = new int[records];
        for (var i = 0; i < records; i++)
        {
            keyOf[i] = random.Next(keys);
        }

        var perMs = records / 20_000.0; // records per millisecond of event time: 20 s in all
        var clock = Stopwatch.StartNew();
        var n = 0;
        for (var first = 0; first < records; first += batch.Length)
        {
            for (var i = 0; i < batch.Length; i++, n++)
            {
                var key = keyOf[first + i];
                batch[i] = new Keyed<int, int>(key, (long)(n / perMs), key);
            }

            op.Add(batch);
            op.Advance((long)(n / perMs) - 1);
            op.Results.Reset();
        }

        op.Advance(long.MaxValue);
        op.Results.Reset();
        return records / clock.Elapsed.TotalSeconds / 1e6;
    }
}
