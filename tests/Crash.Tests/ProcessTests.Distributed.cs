using System.Text.RegularExpressions;
using Compiled.Samples.Tests;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>
/// The ClickCounts sample run distributed (Clicks.Distributed): copies in one consumer group, each copy a process of its
/// own at parallelism 1, over clicks keyed by page (Clicks.PartitionedByKey) or by user (then every copy writes its
/// share to the repartition topic keyed by page, and keys its windows by that topic's partitions). One is killed with
/// SIGKILL, one is added, one is frozen with SIGSTOP past its session timeout and then resumed. The table — append
/// mode, no key, where a repeat would be a second row — must equal a count of the clicks produced, window by window:
/// each partition's state, offset and rows move together, the frozen copy, whose partitions were claimed by the others
/// meanwhile, commits nothing for them, and records its writing half wrote again are dropped by their ledgers.
/// </summary>
public sealed partial class ProcessTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Click_counts_distributed_over_processes_survive_a_sigkill_a_copy_added_and_a_copy_frozen_past_its_session(bool repartition)
    {
        const int clicks = 80_000;
        const int phases = 4;
        const int partitions = 8;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        log.WriteLine($"seed {seed}");
        var topic = kafka.NewTopic("clicks-dist", partitions);
        var group = "clicks-dist-" + Guid.NewGuid().ToString("N");
        var connection = await postgres.NewDatabaseAsync();
        await CreatePageMinutesAsync(connection);

        // Twenty minutes of clicks, up to 3 s out of order, keyed by page (the topic is partitioned by the pipeline's
        // key) or by user (every page in every partition).
        var produced = new List<(string Page, DateTimeOffset At)>(clicks);
        var values = new List<(string?, byte[]?)>(clicks);
        var span = TimeSpan.FromMinutes(20).Ticks;
        for (var i = 0; i < clicks; i++)
        {
            var page = $"/page/{random.Next(30)}";
            var user = $"user-{random.Next(5000)}";
            var at = ClicksStart.AddTicks(span * i / clicks).AddMilliseconds(-random.Next(0, 3000));
            produced.Add((page, at));
            values.Add((repartition ? user : page, ClickJson(page, user, at)));
        }

        if (repartition)
        {
            // Named as docs/deployment.md says; created here because the mock cluster cannot create topics through the
            // admin API (a controller call), as an operator who does not let applications create topics would.
            kafka.NewTopic($"{group}-PerMinute-repartition", partitions, exactName: true);
        }

        void Phase(int phase) => kafka.Produce(topic, values.Skip(phase * clicks / phases).Take(clicks / phases));
        Task<long> Committed() => ScalarAsync(connection, "SELECT coalesce(min(checkpoint_id), 0) FROM compiled_partitions", null);

        Phase(0);
        await using var a = StartDistributedClickCounts(connection, topic, group, repartition);
        await using var b = StartDistributedClickCounts(connection, topic, group, repartition);
        await using var c = StartDistributedClickCounts(connection, topic, group, repartition);
        await WaitUntil(a, async () => await Committed() >= 2 && (await EpochsAsync(connection)).Count == partitions && Shares(a) && Shares(b) && Shares(c), "checkpoints of every partition, with a share for each copy");

        // SIGKILL one copy: its partitions go to the others once its session expires, with the state it committed.
        Phase(1);
        var epochs = await EpochsAsync(connection);
        b.Kill();
        await b.WaitAsync(Patience);
        await WaitUntil(a, async () => (await EpochsAsync(connection)).All(p => p.Value > epochs.GetValueOrDefault(p.Key)), "the killed copy's partitions claimed again");

        // A copy joins mid-run.
        await using var d = StartDistributedClickCounts(connection, topic, group, repartition);
        await WaitUntil(d, () => Task.FromResult(Shares(d)), "a share for the added copy");

        // Freeze one copy past its session timeout: the others claim its partitions while it cannot know. Every
        // partition claimed again after the freeze is the sign (a rebalance still finishing when it froze claims only
        // some): only the group's removing the frozen copy does that.
        // The copy to freeze must hold partitions when it freezes: one frozen between giving its partitions back in the
        // rebalance the added copy caused and being assigned new ones holds nothing to lose, and merely joins again.
        // Once every copy runs an assignment of its own the group is stable (nothing else joins or leaves).
        await WaitUntil(c, () => Task.FromResult(Running(a) && Running(c) && Running(d)), "every copy running an assignment after the added copy joined");
        Phase(2);
        var before = await EpochsAsync(connection);
        c.Signal(Signals.Stop);
        await WaitUntil(a, async () => (await EpochsAsync(connection)).All(p => p.Value > before.GetValueOrDefault(p.Key)), "the frozen copy's partitions claimed by the others");
        Phase(3);
        await WaitUntil(a, async () => await ScalarAsync(connection, "SELECT coalesce(sum(next_offset), 0)::bigint FROM compiled_partitions", null) >= clicks, "every click committed without the frozen copy");
        var frozen = c.Error.Length;
        c.Signal(Signals.Cont);
        int Learned() => Math.Max(c.Error.IndexOf("were lost", frozen, StringComparison.Ordinal), c.Error.IndexOf("another copy claimed", frozen, StringComparison.Ordinal));
        await WaitUntil(c, () => Task.FromResult(Learned() >= 0), "the resumed copy learning its partitions were gone");

        // Between its resumption and learning it, the copy committed no checkpoint (each commit logs one at Debug):
        // every partition it held had been claimed by another, so a commit would have written rows and state twice.
        var resumed = c.Error[frozen..Learned()];
        Assert.DoesNotMatch(@"checkpoint \d+ complete", resumed);

        // A click per partition an hour later closes every window.
        await ProduceClosingClicksAsync(topic, partitions);

        var expected = produced.GroupBy(x => (x.Page, Minute: x.At.UtcTicks - (x.At.UtcTicks % TimeSpan.TicksPerMinute))).ToDictionary(g => g.Key, g => (long)g.Count());
        await WaitUntil(a, async () => await CountAsync(connection, "page_minutes") >= expected.Count, $"{expected.Count} rows");
        foreach (var copy in new[] { a, c, d })
        {
            Assert.Equal(0, await copy.TerminateAsync(Patience));
        }

        await AssertPageMinutesAsync(connection, expected);
        if (repartition)
        {
            // And a single process (not distributed, in a group of its own) over the same topic writes the same table.
            var single = await postgres.NewDatabaseAsync();
            await CreatePageMinutesAsync(single);
            await using var alone = Child.Start(
            [
                Repository.SampleDll("ClickCounts"), "--bootstrap", kafka.BootstrapServers, "--postgres", single,
                "--set", $"Clicks.Topics={topic}", "--set", $"Clicks.GroupId={group}-single", "--set", "Table.Mode=Append", "-p", "2",
            ], _work);
            await WaitUntil(alone, async () => await CountAsync(single, "page_minutes") >= expected.Count, $"{expected.Count} rows from the single process");
            Assert.Equal(0, await alone.TerminateAsync(Patience));
            await AssertPageMinutesAsync(single, expected);
        }
    }

    private static async Task CreatePageMinutesAsync(string connection)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var create = new NpgsqlCommand("CREATE TABLE page_minutes (page text NOT NULL, window_start timestamptz NOT NULL, clicks bigint NOT NULL)", db);
        await create.ExecuteNonQueryAsync();
    }

    /// <summary>Each partition's epoch in compiled_partitions.</summary>
    private static async Task<Dictionary<int, long>> EpochsAsync(string connection)
    {
        var epochs = new Dictionary<int, long>();
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var select = new NpgsqlCommand("SELECT partition, epoch FROM compiled_partitions", db);
        await using var reader = await select.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            epochs[reader.GetInt32(0)] = reader.GetInt64(1);
        }

        return epochs;
    }

    /// <summary>Whether the copy was assigned partitions (its log says so).</summary>
    private static bool Shares(Child child) => child.Error.Contains("the group assigned this copy " + "clicks-dist", StringComparison.Ordinal);

    private static readonly string[] ReleaseWords = ["took the partitions back", "were lost", "another copy claimed", "assigned this copy no partitions"];

    /// <summary>
    /// Whether the copy runs an assignment now: its last word on the group is an assignment of partitions (not their
    /// release, nor an empty assignment), and a checkpoint completed after it.
    /// </summary>
    private static bool Running(Child child)
    {
        var log = child.Error;
        var assigned = log.LastIndexOf("the group assigned this copy " + "clicks-dist", StringComparison.Ordinal);
        var released = ReleaseWords.Max(word => log.LastIndexOf(word, StringComparison.Ordinal));
        return assigned > released && Regex.IsMatch(log[assigned..], @"checkpoint \d+ complete");
    }

    private Child StartDistributedClickCounts(string connection, string topic, string group, bool repartition)
        => Child.Start(
        [
            Repository.SampleDll("ClickCounts"), "--bootstrap", kafka.BootstrapServers, "--postgres", connection,
            "--set", $"Clicks.Topics={topic}", "--set", $"Clicks.GroupId={group}", "--set", $"Clicks.SessionTimeout={kafka.KilledConsumerSessionTimeoutSetting}",
            "--set", "Clicks.Distributed=true", "--set", $"Clicks.PartitionedByKey={(repartition ? "false" : "true")}",
            "--set", "Table.Mode=Append", "--set", "CheckpointInterval=200ms", "-p", "1", "--log-level", "Debug",
        ], _work);
}
