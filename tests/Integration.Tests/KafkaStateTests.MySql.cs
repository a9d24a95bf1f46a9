using Compiled.Kafka;
using Compiled.MySql;
using Compiled.Runtime;
using Confluent.Kafka;
using MySqlConnector;

namespace Compiled.Integration.Tests;

/// <summary>Views per page per second from Kafka into MySQL.</summary>
[Pipeline(Name = "kafka-page-counts-mysql")]
public sealed partial class KafkaPageCountsToMySql
{
    [Source] public KafkaSource<PageView, PageView.JsonCodec> Views { get; set; } = new(new KafkaSourceOptions());

    [KeyBy] static string Page(PageView v) => v.Page;

    [Window] public WindowSpec<PageView, Count<PageView>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Transform] static PageCount Row(WindowResult<string, long> w) => new(w.Key, w.Start, w.Value);

    [Sink] public MySqlSink<PageCount> Table { get; set; } = new(new MySqlSinkOptions());
}

/// <summary>Exactly-once window results into MySQL (MariaDB): rows, offsets and window state in one transaction.</summary>
public sealed partial class KafkaStateTests
{
    [Fact]
    public async Task Exactly_once_window_results_in_mysql_survive_an_abort_with_no_row_lost_or_repeated()
    {
        const int partitions = 8;
        var topic = kafka.NewTopic("views-eo-mysql", partitions);
        var connection = await mysql.NewDatabaseAsync();
        var random = new Random(11);
        var time = 1_700_000_000_000L;
        var views = Enumerable.Range(0, 16_000).Select(_ => new PageView("page" + random.Next(0, 24), time += random.Next(0, 12))).ToArray();
        var half = views.Length / 2;
        kafka.Produce(topic, views[..half].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        var source = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = "eo-my-" + Guid.NewGuid().ToString("N"), StartFrom = KafkaStart.Earliest };
        MySqlSink<PageCount> Sink() => new(new MySqlSinkOptions { ConnectionString = connection, Table = "page_counts", ExactlyOnce = true }); // append: a repeat would be a second row

        // Run 1 is aborted once checkpoints with rows have committed: what it wrote after the last one is rolled back.
        var first = new KafkaPageCountsToMySql { Views = new(source), Table = Sink() };
        using (var abort = new CancellationTokenSource())
        {
            var run = ((ICompiledPipeline)first).CreateJob().RunAsync(Options(partitions), CancellationToken.None, abort.Token);
            await WaitUntil(() => MySqlScalar(connection, "SELECT count(*) FROM page_counts") > 0 && MySqlScalar(connection, "SELECT coalesce(max(checkpoint_id), 0) FROM compiled_checkpoints") >= 2, run, "committed checkpoints with rows");
            await abort.CancelAsync();
            await Assert.ThrowsAsync<PipelineAbortedException>(() => run.WaitAsync(Patience));
        }

        var committedBefore = MySqlScalar(connection, "SELECT count(*) FROM page_counts");
        var stateBytes = MySqlScalar(connection, "SELECT coalesce(sum(length(state)), 0) FROM compiled_state");
        kafka.Produce(topic, views[half..].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        using (var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build())
        {
            for (var p = 0; p < partitions; p++)
            {
                await producer.ProduceAsync(new TopicPartition(topic, p), new Message<string?, byte[]> { Key = null, Value = Json(new PageView("sentinel", time + 86_400_000)) });
            }
        }

        // Run 2, at another parallelism, restores the state and offsets committed with the rows and finishes every window.
        var expected = views.GroupBy(v => (v.Page, Start: v.Time - (v.Time % 1000))).ToDictionary(g => g.Key, g => (long)g.Count());
        var second = new KafkaPageCountsToMySql { Views = new(source), Table = Sink() };
        using (var stop = new CancellationTokenSource())
        {
            var run = second.RunAsync(Options(3), stop.Token);
            await WaitUntil(() => MySqlScalar(connection, "SELECT count(*) FROM page_counts") >= expected.Count, run, $"{expected.Count} rows");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        Assert.True(committedBefore > 0);
        Assert.True(stateBytes > 0, "the first run's checkpoints held window state");
        var rows = new List<KeyValuePair<(string, long), long>>();
        await using (var db = new MySqlConnection(connection))
        {
            await db.OpenAsync();
            await using var select = new MySqlCommand("SELECT page, window_start, views FROM page_counts", db);
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows.Add(KeyValuePair.Create((reader.GetString(0), reader.GetInt64(1)), reader.GetInt64(2)));
            }
        }

        Assert.Equal(expected.Count, rows.Count); // one row per window: none lost, none repeated
        Assert.Equal(expected.OrderBy(e => e.Key), rows.OrderBy(e => e.Key));
    }

    /// <summary>A number from the database; -1 while the sink has not created its tables yet.</summary>
    private static long MySqlScalar(string connection, string sql)
    {
        using var db = new MySqlConnection(connection);
        db.Open();
        try
        {
            using var query = new MySqlCommand(sql, db);
            return Convert.ToInt64(query.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (MySqlException ex) when (ex.ErrorCode == MySqlErrorCode.NoSuchTable)
        {
            return -1;
        }
    }
}
