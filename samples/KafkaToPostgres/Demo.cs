using System.Buffers;
using System.Globalization;
using Compiled.Kafka.Testing;
using Compiled.Postgres.Testing;
using Compiled.Runtime;
using Confluent.Kafka;
using Npgsql;

namespace KafkaToPostgres;

/// <summary>
/// <c>--demo</c>: everything on this machine, in one command — librdkafka's mock cluster (the real Kafka protocol on
/// loopback TCP), a producer of synthetic orders, and a throwaway PostgreSQL server (or the one <c>--postgres</c>
/// names). The pipeline runs until every produced order is committed, then stops gracefully and shows the table.
/// </summary>
internal static class Demo
{
    private const string Topic = "orders";
    private const int TopicPartitions = 8;

    public static bool Requested(string[] args, out string[] rest, out int orders)
    {
        orders = 20_000;
        var list = args.ToList();
        var demo = list.Remove("--demo");
        var at = list.IndexOf("--demo-orders");
        if (at >= 0 && at + 1 < list.Count && int.TryParse(list[at + 1], CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            orders = n;
            list.RemoveRange(at, 2);
        }

        rest = [.. list];
        return demo;
    }

    public static async Task<int> RunAsync(string[] args, int orders, PipelineHostContext context)
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
                connection = await server.CreateDatabaseAsync("orders");
                await Console.Error.WriteLineAsync($"demo: throwaway PostgreSQL on port {server.Port} (removed at exit)");
            }

            string[] demoArgs = ["--bootstrap", kafka.BootstrapServers, .. args.Contains("--postgres") ? [] : new[] { "--postgres", connection }, .. args];
            using var stop = new CancellationTokenSource();
            var run = PipelineHost.RunAsync(new OrdersPipeline(), demoArgs, context, stop.Token);
            var produced = await Task.Run(() => Produce(kafka.BootstrapServers, orders));
            await Console.Error.WriteLineAsync($"demo: produced {produced.Messages} messages ({produced.Cancelled} cancelled orders, {produced.Malformed} malformed, {produced.UnknownCurrency} in an unknown currency)");

            // Stop once every message is committed: the exactly-once sink stores the next offset of each partition.
            while (!run.IsCompleted && await CommittedAsync(connection) < produced.Messages)
            {
                await Task.WhenAny(run, Task.Delay(200));
            }

            await stop.CancelAsync();
            var code = await run;
            if (code == 0)
            {
                await ShowAsync(connection);
            }

            return code;
        }
        finally
        {
            if (server is not null)
            {
                await server.DisposeAsync();
            }
        }
    }

    private static string? Value(string[] args, string option)
    {
        var at = Array.IndexOf(args, option);
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
    }

    private static (long Messages, long Cancelled, long Malformed, long UnknownCurrency) Produce(string bootstrap, int orders)
    {
        using var producer = new ProducerBuilder<string, byte[]>(new ProducerConfig { BootstrapServers = bootstrap, EnableIdempotence = true, LingerMs = 5 })
            .SetLogHandler((_, _) => { })
            .Build();
        var random = new Random(2026);
        string[] currencies = ["EUR", "EUR", "USD", "GBP"];
        string[] statuses = ["paid", "paid", "open", "shipped", "cancelled"];
        var start = new DateTimeOffset(2026, 11, 25, 8, 0, 0, TimeSpan.Zero);
        var buffer = new ArrayBufferWriter<byte>();
        long messages = 0, cancelled = 0, malformed = 0, unknown = 0;
        Exception? failure = null;

        void Send(string key, byte[] value)
        {
            while (true)
            {
                try
                {
                    producer.Produce(Topic, new Message<string, byte[]> { Key = key, Value = value }, report =>
                    {
                        if (report.Error.IsError)
                        {
                            failure ??= new KafkaException(report.Error);
                        }
                    });
                    messages++;
                    return;
                }
                catch (ProduceException<string, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(20));
                }
            }
        }

        for (var id = 1; id <= orders; id++)
        {
            var status = statuses[random.Next(statuses.Length)];
            var currency = id % 5000 == 17 ? "XXX" : currencies[random.Next(currencies.Length)];
            var order = new Order(id, $"customer-{random.Next(1, 500):D3}", Math.Round((decimal)(random.NextDouble() * 900) + 1m, 2), currency, status, start.AddSeconds(id));
            buffer.ResetWrittenCount();
            Order.JsonCodec.Encode(order, buffer);
            Send(id.ToString(CultureInfo.InvariantCulture), buffer.WrittenSpan.ToArray());
            cancelled += status == "cancelled" ? 1 : 0;
            unknown += currency == "XXX" ? 1 : 0;
            if (id % 7000 == 3)
            {
                Send("broken", "{\"id\": 12, \"customer\": \"truncated"u8.ToArray()); // a poison message: to the dead letters
                malformed++;
            }
        }

        producer.Flush(TimeSpan.FromSeconds(60));
        return failure is null ? (messages, cancelled, malformed, unknown) : throw failure;
    }

    private static async Task<long> CommittedAsync(string connection)
    {
        try
        {
            await using var db = new NpgsqlConnection(connection);
            await db.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT coalesce(sum(next_offset), 0)::bigint FROM compiled_offsets WHERE pipeline = 'orders-to-postgres'", db);
            return (long)(await command.ExecuteScalarAsync() ?? 0L);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return 0; // the sink has not created it yet
        }
    }

    private static async Task ShowAsync(string connection)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using (var summary = new NpgsqlCommand("SELECT count(*), sum(amount_eur), count(*) FILTER (WHERE size = 'large') FROM orders", db))
        await using (var reader = await summary.ExecuteReaderAsync())
        {
            await reader.ReadAsync();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"table orders: {reader.GetInt64(0)} rows, {reader.GetDecimal(1):N2} EUR in all, {reader.GetInt64(2)} large orders"));
        }

        await using var sample = new NpgsqlCommand("SELECT id, customer, amount, amount_eur, size, status, placed_at FROM orders ORDER BY id LIMIT 5", db);
        await using var rows = await sample.ExecuteReaderAsync();
        Console.WriteLine("  id  customer      amount  amount_eur  size    status   placed_at");
        while (await rows.ReadAsync())
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{rows.GetInt64(0),4}  {rows.GetString(1),-12}  {rows.GetDecimal(2),6}  {rows.GetDecimal(3),10}  {rows.GetString(4),-6}  {rows.GetString(5),-7}  {rows.GetFieldValue<DateTimeOffset>(6):u}"));
        }
    }
}
