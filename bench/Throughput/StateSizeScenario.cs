using System.Diagnostics;
using System.Globalization;
using Compiled.Runtime;
using Compiled.Runtime.CompilerServices;

namespace Compiled.Throughput;

/// <summary>
/// What keyed state costs per key (issue #23): a count over int keys held by a hand-written
/// <see cref="Dictionary{TKey, TValue}"/> and by each window kind's operator, one partition, measured as the live heap
/// (<see cref="GC.GetTotalMemory(bool)"/> after full collections) with the state held, minus the heap without it, per key;
/// and the process's peak working set while it grows. Each (kind, key count) runs in a child process of its own, so
/// that one measurement's garbage and peak never count in another's. The keys arrive in batches of 1,024 as a keyed
/// partition receives them.
/// </summary>
internal static class StateSizeScenario
{
    private static readonly string[] Kinds = ["dictionary", "running", "tumbling", "sliding", "session"];

    public static async Task RunAsync(IReadOnlyList<int> keyCounts, List<(string, string)> results)
    {
        Console.WriteLine("scenario: state size, a count per int key, one partition (each figure a process of its own)");
        foreach (var keys in keyCounts)
        {
            foreach (var kind in Kinds)
            {
                var (bytesPerKey, seconds, peakMb) = await MeasureInChildAsync(kind, keys);
                var label = $"state_{kind}_{keys / 1_000_000}m";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {kind,-10} {keys,12:N0} keys: {bytesPerKey,6:F1} B/key live, {keys / seconds / 1e6,6:F2} M keys/s, peak working set {peakMb:F0} MB"));
                results.Add(($"{label}_bytes_per_key", bytesPerKey.ToString("F1", CultureInfo.InvariantCulture)));
                results.Add(($"{label}_mkeys_per_s", (keys / seconds / 1e6).ToString("F2", CultureInfo.InvariantCulture)));
                results.Add(($"{label}_peak_mb", peakMb.ToString("F0", CultureInfo.InvariantCulture)));
            }
        }
    }

    private static async Task<(double BytesPerKey, double Seconds, double PeakMb)> MeasureInChildAsync(string kind, int keys)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            start.ArgumentList.Add(Environment.GetCommandLineArgs()[0]); // run through the dotnet host: the entry assembly comes first
        }

        start.ArgumentList.Add("--state-size-child");
        start.ArgumentList.Add(kind);
        start.ArgumentList.Add(keys.ToString(CultureInfo.InvariantCulture));
        using var child = Process.Start(start)!;
        var output = await child.StandardOutput.ReadToEndAsync();
        await child.WaitForExitAsync();
        var line = output.Split('\n').Last(l => l.StartsWith("state-size ", StringComparison.Ordinal)).Split(' ');
        return (double.Parse(line[1], CultureInfo.InvariantCulture), double.Parse(line[2], CultureInfo.InvariantCulture), double.Parse(line[3], CultureInfo.InvariantCulture));
    }

    /// <summary>The child: builds one state, prints "state-size bytesPerKey seconds peakMb".</summary>
    public static int RunChild(string kind, int keys)
    {
        var baseline = LiveHeap();
        var clock = Stopwatch.StartNew();
        var held = Build(kind, keys);
        var seconds = clock.Elapsed.TotalSeconds;
        var live = LiveHeap() - baseline;
        GC.KeepAlive(held);
        using var process = Process.GetCurrentProcess();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"state-size {live / (double)keys:F2} {seconds:F3} {process.PeakWorkingSet64 / 1e6:F0}"));
        return 0;
    }

    private static long LiveHeap()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static object Build(string kind, int keys)
    {
        if (kind == "dictionary")
        {
            var counts = new Dictionary<int, long>();
            for (var key = 0; key < keys; key++)
            {
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }

            return counts;
        }

        KeyedOperator<int, int, WindowResult<int, long>> op = kind switch
        {
            "running" => WindowOperator.Create<int, int, Count<int>, long, long>(Window.Running(), TimeSpan.Zero),
            "tumbling" => WindowOperator.Create<int, int, Count<int>, long, long>(Window.Tumbling(TimeSpan.FromSeconds(1)), TimeSpan.Zero),
            "sliding" => WindowOperator.Create<int, int, Count<int>, long, long>(Window.Sliding(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1)), TimeSpan.Zero),
            "session" => WindowOperator.Create<int, int, Count<int>, long, long>(Window.Session(TimeSpan.FromSeconds(1)), TimeSpan.Zero),
            _ => throw new ArgumentException($"unknown state kind '{kind}'", nameof(kind)),
        };

        // Tumbling, running and session: every key at a time within one second. Sliding: the keys spread over the
        // ten one-second panes of a 10 s window, one (key, pane) entry each.
        var batch = new Keyed<int, int>[1024];
        for (var first = 0; first < keys; first += batch.Length)
        {
            var count = Math.Min(batch.Length, keys - first);
            for (var i = 0; i < count; i++)
            {
                var key = first + i;
                batch[i] = new Keyed<int, int>(key, kind == "sliding" ? key % 10 * 1000 : key % 1000, key);
            }

            op.Add(batch.AsSpan(0, count));
            op.Results.Reset(); // what a running count emits per record goes on to the loop after it, as in a run
        }

        return op;
    }
}
