using System.Globalization;
using Compiled.Samples.Tests;

namespace Compiled.Integration.Tests;

/// <summary>Exactly-once Kafka → Parquet lake through a pipeline binary killed with SIGKILL again and again.</summary>
public sealed partial class ProcessTests
{
    [Fact]
    public async Task Exactly_once_to_a_parquet_lake_survives_repeated_sigkill()
    {
        const int chunk = 20_000;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var topic = kafka.NewTopic("crash-lake", 16); // at most 14 chunks: under the mock cluster's 5 MiB per partition
        var group = "crash-lake-" + Guid.NewGuid().ToString("N");
        var lake = Path.Combine(_work, "lake");

        // As for MySQL: each round produces a chunk, starts a copy and kills it (SIGKILL) a random moment after its
        // first files of the round are committed; at least six kills must land mid-stream (with files in progress).
        log.WriteLine($"seed {seed}");
        var midStream = 0;
        var count = 0;
        for (var round = 0; round < 14 && midStream < 6; round++)
        {
            Produce(topic, count + 1, count + chunk);
            count += chunk;
            var before = LakeRows(lake);
            await using var child = StartLakeApp(topic, group);
            await WaitUntil(child, () => Task.FromResult(LakeRows(lake) > before), $"files of round {round}");
            await Task.Delay(random.Next(0, 200)); // randomises where the kill lands; nothing waits on it
            child.Kill();
            await child.WaitAsync(Patience);
            var rowsAtKill = LakeRows(lake);
            midStream += rowsAtKill < count ? 1 : 0;
            log.WriteLine($"killed at {rowsAtKill} of {count} rows, {Directory.GetFiles(lake, "*.inprogress", SearchOption.AllDirectories).Length} files in progress");
        }

        Assert.True(midStream >= 6, $"only {midStream} kills landed before the last row was committed");
        await using (var last = StartLakeApp(topic, group))
        {
            await WaitUntil(last, () => Task.FromResult(LakeRows(lake) >= count), "every row in the lake");
            Assert.Equal(0, await last.TerminateAsync(Patience));
        }

        // Every final file is whole (DuckDB reads them all), and every order is there once, with its own values.
        var rows = LakeQuery(lake, "SELECT id, customer, amount, currency FROM read_parquet('{0}/**/*.parquet') ORDER BY id");
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), rows.Select(r => Convert.ToInt64(r[0], CultureInfo.InvariantCulture)));
        foreach (var row in rows)
        {
            var (_, customer, amount, currency) = OrderOf(Convert.ToInt64(row[0], CultureInfo.InvariantCulture));
            Assert.Equal((customer, amount, currency), ((string)row[1]!, (decimal)row[2]!, (string)row[3]!));
        }
    }

    private static string KafkaToLakeDll => Path.Combine(Repository.Root, "tests", "Apps", "KafkaToLake", "bin", Repository.Configuration, "net10.0", "KafkaToLake.dll");

    private Child StartLakeApp(string topic, string group)
        => Child.Start(
        [
            KafkaToLakeDll, "--bootstrap", kafka.BootstrapServers,
            "--set", $"Orders.Topics={topic}", "--set", $"Orders.GroupId={group}", "--set", $"Orders.SessionTimeout={kafka.KilledConsumerSessionTimeoutSetting}",
            "--set", "CheckpointInterval=100ms", "-p", "4", "--batch-size", "512", "--log-level", "Information",
        ], _work);

    /// <summary>Rows in the lake's final files (what a reader of <c>**/*.parquet</c> sees); 0 before there are any.</summary>
    private static long LakeRows(string lake)
        => !Directory.Exists(lake) || Directory.GetFiles(lake, "*.parquet", SearchOption.AllDirectories).Length == 0
            ? 0
            : Convert.ToInt64(LakeQuery(lake, "SELECT count(*) FROM read_parquet('{0}/**/*.parquet')")[0][0], CultureInfo.InvariantCulture);

    private static List<object?[]> LakeQuery(string lake, string sql) => Lake.Query(string.Format(CultureInfo.InvariantCulture, sql, lake));
}
