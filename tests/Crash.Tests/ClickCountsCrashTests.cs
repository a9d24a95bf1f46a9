using System.Globalization;
using System.Text;
using Compiled.Samples.Tests;
using Confluent.Kafka;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>
/// The ClickCounts sample (Kafka clicks → per-page counts per minute → PostgreSQL, exactly-once) as a child process,
/// killed with SIGKILL again and again while clicks arrive: window state, offsets and rows are committed together, so
/// the final table — in append mode, with no key, where a repeat would be a second row — equals a count of the clicks
/// produced, window by window. Each copy runs at a parallelism of its own: the state is re-hashed on restore, and
/// a reader of several Kafka partitions keeps a watermark per partition, so a backlog read at 1, 2 or 3 loses nothing to lateness.
/// </summary>
public sealed partial class ProcessTests
{
    private static readonly DateTimeOffset ClicksStart = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);

    private static byte[] ClickJson(string page, string user, DateTimeOffset at)
        => Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $$"""{"page":"{{page}}","user":"{{user}}","at":"{{at:O}}"}"""));

    [Fact]
    public async Task Click_counts_exactly_once_survive_sigkill_at_ten_random_points_and_restarts_at_other_parallelisms()
    {
        const int clicks = 200_000;
        const int phases = 10;
        const int partitions = 8;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        log.WriteLine($"seed {seed}");
        var topic = kafka.NewTopic("clicks", partitions);
        var connection = await postgres.NewDatabaseAsync();
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE page_minutes (page text NOT NULL, window_start timestamptz NOT NULL, clicks bigint NOT NULL)", db);
            await create.ExecuteNonQueryAsync();
        }

        // Twenty minutes of clicks, up to 3 s out of order (the sample allows 5 s), keyed by user over 8 partitions,
        // produced in phases while copies of the sample are killed.
        var produced = new List<(string Page, DateTimeOffset At)>(clicks);
        var span = TimeSpan.FromMinutes(20).Ticks;
        var pages = Enumerable.Range(0, 30).Select(i => $"/page/{i}").ToArray();
        var values = new List<(string?, byte[]?)>(clicks);
        for (var i = 0; i < clicks; i++)
        {
            var page = pages[random.Next(pages.Length)];
            var user = $"user-{random.Next(5000)}";
            var at = ClicksStart.AddTicks(span * i / clicks).AddMilliseconds(-random.Next(0, 3000));
            produced.Add((page, at));
            values.Add((user, ClickJson(page, user, at)));
        }

        int[] parallelisms = [1, 2, 3, 5, 8];
        var checkpoints = 0L;
        for (var phase = 0; phase < phases; phase++)
        {
            kafka.Produce(topic, values.Skip(phase * clicks / phases).Take(clicks / phases));
            var parallelism = phase == 0 ? partitions : parallelisms[random.Next(parallelisms.Length)];
            await using var child = StartClickCounts(connection, topic, parallelism);
            var target = checkpoints + random.Next(1, 4);
            await WaitUntil(child, async () => await ClickCheckpointAsync(connection) >= target, $"checkpoint {target}");
            await Task.Delay(random.Next(0, 300)); // anywhere: while reading, firing, or committing the next checkpoint
            child.Kill();
            await child.WaitAsync(Patience);
            checkpoints = await ClickCheckpointAsync(connection);
            log.WriteLine($"phase {phase} at parallelism {parallelism}: killed after checkpoint {checkpoints}, {await CountAsync(connection, "page_minutes")} rows");
        }

        // A click per partition an hour later closes every window; the last copy finishes and stops gracefully.
        await ProduceClosingClicksAsync(topic, partitions);

        var expected = produced.GroupBy(c => (c.Page, Minute: c.At.UtcTicks - (c.At.UtcTicks % TimeSpan.TicksPerMinute))).ToDictionary(g => g.Key, g => (long)g.Count());
        await using (var last = StartClickCounts(connection, topic, parallelisms[random.Next(parallelisms.Length)]))
        {
            await WaitUntil(last, async () => await CountAsync(connection, "page_minutes") >= expected.Count, $"{expected.Count} rows");
            Assert.Equal(0, await last.TerminateAsync(Patience));
        }

        await AssertPageMinutesAsync(connection, expected);
    }

    /// <summary>A click per partition an hour after the others: every window closes.</summary>
    private async Task ProduceClosingClicksAsync(string topic, int partitions)
    {
        using var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build();
        for (var p = 0; p < partitions; p++)
        {
            await producer.ProduceAsync(new TopicPartition(topic, p), new Message<string?, byte[]> { Value = ClickJson("/closing", "test", ClicksStart.AddHours(1)) });
        }
    }

    /// <summary>The table page_minutes holds exactly <paramref name="expected"/>: each page-minute once, with its count.</summary>
    private static async Task AssertPageMinutesAsync(string connection, Dictionary<(string Page, long Minute), long> expected)
    {
        var rows = new List<KeyValuePair<(string, long), long>>();
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var select = new NpgsqlCommand("SELECT page, window_start, clicks FROM page_minutes", db);
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows.Add(KeyValuePair.Create((reader.GetString(0), reader.GetFieldValue<DateTimeOffset>(1).UtcTicks), reader.GetInt64(2)));
            }
        }

        Assert.Equal(expected.Count, rows.Count); // append mode, no key: a window written twice would be a second row
        Assert.Equal(expected.OrderBy(e => e.Key), rows.OrderBy(e => e.Key));
    }

    private Child StartClickCounts(string connection, string topic, int parallelism)
        => Child.Start(
        [
            Repository.SampleDll("ClickCounts"), "--bootstrap", kafka.BootstrapServers, "--postgres", connection,
            "--set", $"Clicks.Topics={topic}", "--set", $"Clicks.SessionTimeout={kafka.KilledConsumerSessionTimeoutSetting}", "--set", "Table.Mode=Append", "--set", "CheckpointInterval=200ms",
            "-p", parallelism.ToString(CultureInfo.InvariantCulture), "--log-level", "Information",
        ], _work);

    private static Task<long> ClickCheckpointAsync(string connection)
        => ScalarAsync(connection, "SELECT coalesce(max(checkpoint_id), 0) FROM compiled_checkpoints WHERE pipeline = 'click-counts'", null);
}
