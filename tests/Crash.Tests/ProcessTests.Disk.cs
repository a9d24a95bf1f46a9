using System.Globalization;
using System.Text;
using System.Text.Json;
using Compiled.Samples.Tests;

namespace Compiled.Integration.Tests;

/// <summary>
/// State larger than memory (tests/Apps/DiskCounts): a running count over 50 M distinct keys with the heap capped at
/// 256 MiB completes on the disk backend with every count right and fails with a clear error in memory; and a
/// running count on disk behind Kafka, killed with SIGKILL and restarted, ends with every key's count exact.
/// </summary>
public sealed partial class ProcessTests
{
    private static readonly TimeSpan LargeStatePatience = TimeSpan.FromMinutes(15);

    private static string DiskCountsDll => Path.Combine(Repository.Root, "tests", "Apps", "DiskCounts", "bin", Repository.Configuration, "net10.0", "DiskCounts.dll");

    private static Dictionary<string, string> CappedHeap(int keys) => new()
    {
        ["DOTNET_GCHeapHardLimit"] = "0x10000000", // 256 MiB
        ["DISK_COUNTS_KEYS"] = keys.ToString(CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task A_running_count_over_50_million_keys_completes_on_disk_within_a_256_MiB_heap_with_every_count_right()
    {
        const int keys = 50_000_000;
        const int repeated = keys / 20; // 2.5 M keys, scattered over all, are hit twice: their second hit must find the first on disk
        var result = await Processes.DotnetAsync(
            [DiskCountsDll, "--set", $"Hits.Count={keys + repeated}", "--set", "StateBackend=Disk", "--parallelism", "2", "--state-dir", Path.Combine(_work, "state")],
            _work, LargeStatePatience, CappedHeap(keys));
        log.WriteLine(result.Error);
        log.WriteLine(result.Output);
        Assert.True(result.ExitCode == 0, result.ToString());

        // Every key's first result is 1 and not an update; every second hit finds the first and says 2. A key whose
        // state was lost on the way to disk would start at 1 again (one first too many); one counted twice would say 3.
        Assert.Contains($"tally firsts={keys} updates={repeated} wrong=0", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_count_in_memory_within_a_256_MiB_heap_fails_with_an_error_that_says_it_ran_out_of_memory()
    {
        const int keys = 50_000_000;
        var result = await Processes.DotnetAsync(
            [DiskCountsDll, "--set", $"Hits.Count={keys}", "--parallelism", "2", "--state-dir", Path.Combine(_work, "state")],
            _work, LargeStatePatience, CappedHeap(keys));
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("Pipeline 'disk-counts' ran out of memory in partition", result.Error, StringComparison.Ordinal);
        Assert.Contains("its keyed state held", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_running_count_on_disk_behind_kafka_survives_sigkill_and_ends_with_every_count_exact()
    {
        const int hits = 120_000;
        const int keys = 20_000;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        log.WriteLine($"seed {seed}");
        var topic = kafka.NewTopic("hits", 4);
        var group = "hits-" + Guid.NewGuid().ToString("N");
        var output = Path.Combine(_work, "out");
        var produced = Enumerable.Range(0, hits).Select(_ => random.Next(keys)).ToArray();
        var expected = produced.GroupBy(k => k).ToDictionary(g => g.Key, g => (long)g.Count());
        kafka.Produce(topic, produced.Select(k => ((string?)k.ToString(CultureInfo.InvariantCulture), (byte[]?)Encoding.UTF8.GetBytes($$"""{"key":{{k}}}"""))));

        // A cache of 500 keys per partition: nearly all state is in RocksDB, and checkpoints carry it.
        string[] arguments = [DiskCountsDll, "--set", $"Hits.BootstrapServers={kafka.BootstrapServers}", "--set", $"Hits.Topics={topic}", "--set", $"Hits.GroupId={group}",
            "--set", $"Hits.SessionTimeout={kafka.KilledConsumerSessionTimeoutSetting}", "--set", $"Output.Directory={output}", "--set", "CheckpointInterval=200ms",
            "--set", "StateBackend=Disk", "--set", "StateCacheKeys=500", "--batch-size", "256", "--log-level", "Information"];
        var environment = new Dictionary<string, string> { ["DISK_COUNTS_PIPELINE"] = "kafka" };
        int[] parallelisms = [2, 3, 1];
        for (var kill = 0; kill < parallelisms.Length; kill++)
        {
            var threshold = (kill + 1) * hits / 5 + random.Next(0, hits / 10);
            await using var child = Child.Start([.. arguments, "-p", parallelisms[kill].ToString(CultureInfo.InvariantCulture)], _work, environment);
            await WaitUntil(child, () => Task.FromResult(Counts(output).Count >= threshold), $"{threshold} counts in complete files");
            await Task.Delay(random.Next(0, 300)); // a random crash point, not a synchronisation
            child.Kill();
            await child.WaitAsync(Patience);
        }

        await using (var last = Child.Start([.. arguments, "-p", "2"], _work, environment))
        {
            // The files may already hold every final count (the copy killed last had written them): stop the last copy
            // only once it runs (it joined the group), not while it starts and cannot yet stop gracefully.
            await WaitUntil(last, () => Task.FromResult(Assigned(last.Error) > 0), "the last copy joined the group");
            await WaitUntil(last, () => Task.FromResult(Finals(Counts(output)).Count == expected.Count && Finals(Counts(output)).All(f => f.Value >= expected[f.Key])), "every key at its count in a complete file");
            Assert.Equal(0, await last.TerminateAsync(Patience));
        }

        // Results after the last checkpoint are written again after a crash (at-least-once), with the same counts. The
        // state is exact: each key's last count is its number of hits, and no count is ever beyond it.
        var counts = Counts(output);
        Assert.All(counts, c => Assert.InRange(c.Count, 1, expected[c.Key]));
        Assert.Equal(expected.OrderBy(e => e.Key), Finals(counts).OrderBy(e => e.Key));
        log.WriteLine($"{counts.Count - hits} counts were written twice (allowed at-least-once)");
    }

    private static Dictionary<int, long> Finals(List<(int Key, long Count)> counts)
        => counts.GroupBy(c => c.Key).ToDictionary(g => g.Key, g => g.Max(c => c.Count));

    /// <summary>The counts in complete files (a file in progress has another extension).</summary>
    private static List<(int Key, long Count)> Counts(string directory)
    {
        var counts = new List<(int, long)>();
        if (!Directory.Exists(directory))
        {
            return counts;
        }

        foreach (var file in Directory.GetFiles(directory, "*.jsonl"))
        {
            foreach (var line in File.ReadLines(file))
            {
                var row = JsonDocument.Parse(line).RootElement;
                counts.Add((row.GetProperty("key").GetInt32(), row.GetProperty("count").GetInt64()));
            }
        }

        return counts;
    }
}
