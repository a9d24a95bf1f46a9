using System.Buffers;
using System.Globalization;
using Compiled.Kafka.Testing;
using Compiled.Postgres.Testing;
using Compiled.Runtime;
using Confluent.Kafka;
using Npgsql;

namespace ClickCounts;

/// <summary>
/// <c>--demo</c>: everything on this machine, in one command — librdkafka's mock cluster (the real Kafka protocol on
/// loopback TCP), a producer of ten minutes of synthetic clicks, and a throwaway PostgreSQL server (or the one
/// <c>--postgres</c> names). The pipeline runs until every minute's windows are in the table, then stops gracefully;
/// the demo prints the busiest pages and checks the table against a count of what it produced.
/// </summary>
internal static class Demo
{
    private const string Topic = "clicks";
    private const int TopicPartitions = 8;
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    private static readonly string[] Pages = ["/", "/search", "/cart", "/checkout", "/product/1", "/product/2", "/product/3", "/help", "/account", "/blog", "/blog/kafka", "/about"];

    public static bool Requested(string[] args, out string[] rest, out int clicks)
    {
        clicks = 50_000;
        var list = args.ToList();
        var demo = list.Remove("--demo");
        var at = list.IndexOf("--demo-clicks");
        if (at >= 0 && at + 1 < list.Count && int.TryParse(list[at + 1], CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            clicks = n;
            list.RemoveRange(at, 2);
        }

        rest = [.. list];
        return demo;
    }

    public static async Task<int> RunAsync(string[] args, int clicks, PipelineHostContext context)
    {
        using var kafka = KafkaMockCluster.Start(brokers: 3);
        kafka.CreateTopic(Topic, TopicPartitions);
        await Console.Error.WriteLineAsync($"demo: Kafka mock cluster at {kafka.BootstrapServers}, topic '{Topic}' with {TopicPartitions} partitions");

        PostgresServer? server = null;
        var connection = Value(args, "--postgres");
        try
        {
            if (connection is null)
            {
                server = await PostgresServer.StartAsync();
                connection = await server.CreateDatabaseAsync("clicks");
                await Console.Error.WriteLineAsync($"demo: throwaway PostgreSQL on port {server.Port} (removed at exit)");
            }

            // One reader per Kafka partition unless told otherwise: a reader's watermark follows the most advanced of
            // its partitions (see docs/state.md).
            var parallelism = args.Contains("-p") || args.Contains("--parallelism") ? [] : new[] { "--parallelism", TopicPartitions.ToString(CultureInfo.InvariantCulture) };
            string[] demoArgs = ["--bootstrap", kafka.BootstrapServers, .. args.Contains("--postgres") ? [] : new[] { "--postgres", connection }, .. parallelism, .. args];
            using var stop = new CancellationTokenSource();
            var run = PipelineHost.RunAsync(new ClicksPipeline(), demoArgs, context, stop.Token);
            var produced = await Task.Run(() => Produce(kafka.BootstrapServers, clicks));
            var expected = produced.GroupBy(c => (c.Page, Minute: Floor(c.At))).ToDictionary(g => g.Key, g => (long)g.Count());
            await Console.Error.WriteLineAsync($"demo: produced {produced.Count} clicks on {Pages.Length} pages over 10 minutes ({expected.Count} page-minutes), then a click per partition at 08:11 that closes the windows before it");

            // Stop once every page-minute is in the table: each checkpoint commits the windows that fired.
            while (!run.IsCompleted && await RowsAsync(connection) < expected.Count)
            {
                await Task.WhenAny(run, Task.Delay(200));
            }

            await stop.CancelAsync();
            var code = await run;
            return code == 0 ? await ShowAsync(connection, expected) : code;
        }
        finally
        {
            if (server is not null)
            {
                await server.DisposeAsync();
            }
        }
    }

    private static DateTimeOffset Floor(DateTimeOffset at) => new(at.UtcTicks - (at.UtcTicks % TimeSpan.TicksPerMinute), TimeSpan.Zero);

    private static string? Value(string[] args, string option)
    {
        var at = Array.IndexOf(args, option);
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
    }

    /// <summary>Ten minutes of clicks, a few seconds out of order, keyed by user; then one closing click per partition.</summary>
    private static List<Click> Produce(string bootstrap, int clicks)
    {
        using var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = bootstrap, EnableIdempotence = true, LingerMs = 5 })
            .SetLogHandler((_, _) => { })
            .Build();
        var random = new Random(2026);
        var buffer = new ArrayBufferWriter<byte>();
        var produced = new List<Click>(clicks);
        Exception? failure = null;

        void Send(TopicPartition? partition, string? key, Click click)
        {
            buffer.ResetWrittenCount();
            Click.JsonCodec.Encode(click, buffer);
            var message = new Message<string?, byte[]> { Key = key, Value = buffer.WrittenSpan.ToArray() };
            while (true)
            {
                try
                {
                    Action<DeliveryReport<string?, byte[]>> report = r => failure ??= r.Error.IsError ? new KafkaException(r.Error) : null;
                    if (partition is null)
                    {
                        producer.Produce(Topic, message, report);
                    }
                    else
                    {
                        producer.Produce(partition, message, report);
                    }

                    return;
                }
                catch (ProduceException<string?, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(20));
                }
            }
        }

        var span = TimeSpan.FromMinutes(10).Ticks;
        for (var i = 0; i < clicks; i++)
        {
            // Popular pages first (a skewed distribution), up to 3 s late.
            var page = Pages[(int)Math.Min(Pages.Length - 1, Math.Floor(-Math.Log(1 - random.NextDouble()) * 3))];
            var user = $"user-{random.Next(1, 2000):D4}";
            var at = Start.AddTicks(span * i / clicks).AddMilliseconds(-random.Next(0, 3000));
            var click = new Click(page, user, at);
            Send(null, user, click);
            produced.Add(click);
        }

        producer.Flush(TimeSpan.FromSeconds(60));
        for (var p = 0; p < TopicPartitions; p++)
        {
            Send(new TopicPartition(Topic, p), null, new Click("/closing", "demo", Start.AddMinutes(11)));
        }

        producer.Flush(TimeSpan.FromSeconds(60));
        return failure is null ? produced : throw failure;
    }

    private static async Task<long> RowsAsync(string connection)
    {
        try
        {
            await using var db = new NpgsqlConnection(connection);
            await db.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT count(*) FROM page_minutes", db);
            return (long)(await command.ExecuteScalarAsync() ?? 0L);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return 0; // the sink has not created it yet
        }
    }

    /// <summary>Prints the busiest page of each minute and compares the table with the count of what was produced.</summary>
    private static async Task<int> ShowAsync(string connection, Dictionary<(string Page, DateTimeOffset Minute), long> expected)
    {
        var table = new Dictionary<(string Page, DateTimeOffset Minute), long>();
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var select = new NpgsqlCommand("SELECT page, window_start, clicks FROM page_minutes", db);
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                table[(reader.GetString(0), reader.GetFieldValue<DateTimeOffset>(1))] = reader.GetInt64(2);
            }
        }

        Console.WriteLine("minute  busiest page   clicks  (pages counted)");
        foreach (var minute in table.GroupBy(e => e.Key.Minute).OrderBy(g => g.Key))
        {
            var top = minute.MaxBy(e => e.Value);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{minute.Key:HH:mm}   {top.Key.Page,-13}  {top.Value,6}  ({minute.Count()})"));
        }

        var wrong = expected.Where(e => !table.TryGetValue(e.Key, out var count) || count != e.Value).ToList();
        var extra = table.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        if (wrong.Count == 0 && extra.Count == 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"table page_minutes matches what was produced: {table.Count} page-minutes, {table.Values.Sum()} clicks"));
            return 0;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"table page_minutes does NOT match what was produced: {wrong.Count} page-minutes missing or wrong, {extra.Count} unexpected"));
        Console.WriteLine("(late clicks are dropped: with fewer readers than Kafka partitions, a reader's watermark follows its most advanced partition; see docs/state.md)");
        return 1;
    }
}
