using System.Buffers;
using System.Globalization;
using Compiled.Kafka.Testing;
using Compiled.Postgres.Testing;
using Compiled.Runtime;
using Confluent.Kafka;
using Npgsql;
using NpgsqlTypes;

namespace OrderEnrichment;

/// <summary>
/// <c>--demo</c>: everything on this machine, in one command — librdkafka's mock cluster (the real Kafka protocol on
/// loopback TCP) with an orders topic and an exchange-rates changelog topic, a throwaway PostgreSQL server holding the
/// CRM's customers and the output table, and ten minutes of orders while the rates change. The pipeline runs until
/// every order is in the table, then stops gracefully; the demo prints a few rows and checks the whole table against a
/// SQL JOIN of the same inputs, computed by PostgreSQL.
/// </summary>
internal static class Demo
{
    private const int OrderPartitions = 8;
    private const int RatePartitions = 4;
    private const int Customers = 200;
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    private static readonly string[] Currencies = ["EUR", "USD", "GBP", "CHF"];

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

    public static async Task<int> RunAsync(string[] args, int count, PipelineHostContext context)
    {
        using var kafka = KafkaMockCluster.Start(brokers: 3);
        kafka.CreateTopic("orders", OrderPartitions);
        kafka.CreateTopic("rates", RatePartitions);
        await Console.Error.WriteLineAsync($"demo: Kafka mock cluster at {kafka.BootstrapServers}, topics 'orders' ({OrderPartitions} partitions) and 'rates' ({RatePartitions})");

        await using var server = await PostgresServer.StartAsync();
        var connection = await server.CreateDatabaseAsync("shop");
        await Console.Error.WriteLineAsync($"demo: throwaway PostgreSQL on port {server.Port} (removed at exit), with a customers table of {Customers - Customers / 10} customers");
        await CreateCustomersAsync(connection);

        var random = new Random(2026);
        var rates = Rates(random);
        var orders = Orders(random, count);
        using (var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, EnableIdempotence = true, LingerMs = 5 }).SetLogHandler((_, _) => { }).Build())
        {
            // The orders go first: the join still prices each at the rate of its time, whatever arrives when.
            Produce(producer, "orders", orders.Select(o => ((string?)o.Customer, Encode<Order, Order.JsonCodec>(o))));
            Produce(producer, "rates", rates.Select(r => ((string?)r.Currency, Encode<Rate, Rate.JsonCodec>(r))));

            // One record per partition of both topics at 08:11 moves the watermark past every order (it waits for the slowest partition).
            for (var p = 0; p < OrderPartitions; p++)
            {
                producer.Produce(new TopicPartition("orders", p), new Message<string?, byte[]> { Value = Encode<Order, Order.JsonCodec>(new Order(-p - 1, "closing", 0, "EUR", Start.AddMinutes(11))) });
            }

            for (var p = 0; p < RatePartitions; p++)
            {
                producer.Produce(new TopicPartition("rates", p), new Message<string?, byte[]> { Value = Encode<Rate, Rate.JsonCodec>(new Rate("XXX", 1, Start.AddMinutes(11))) });
            }

            producer.Flush(TimeSpan.FromSeconds(60));
        }

        await Console.Error.WriteLineAsync($"demo: produced {orders.Count} orders over 10 minutes and {rates.Count} rate changes of {Currencies.Length} currencies");

        string[] demoArgs = ["--bootstrap", kafka.BootstrapServers, "--rates-bootstrap", kafka.BootstrapServers, "--postgres", connection, "--crm", connection, .. args];
        using var stop = new CancellationTokenSource();
        var run = PipelineHost.RunAsync(new OrderEnrichmentPipeline(), demoArgs, context, stop.Token);
        while (!run.IsCompleted && await RowsAsync(connection) < orders.Count)
        {
            await Task.WhenAny(run, Task.Delay(200));
        }

        await stop.CancelAsync();
        var code = await run;
        return code == 0 ? await CheckAsync(connection, orders, rates) : code;
    }

    /// <summary>Customers 0–199 but every tenth: an order of a missing one is kept, with "unknown" as its name.</summary>
    private static async Task CreateCustomersAsync(string connection)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using (var create = new NpgsqlCommand("CREATE TABLE customers (id text PRIMARY KEY, name text NOT NULL, country text NOT NULL)", db))
        {
            await create.ExecuteNonQueryAsync();
        }

        string[] countries = ["DE", "FR", "GB", "CH", "US", "NL"];
        await using var copy = await db.BeginBinaryImportAsync("COPY customers (id, name, country) FROM STDIN (FORMAT BINARY)");
        for (var i = 0; i < Customers; i++)
        {
            if (i % 10 == 0)
            {
                continue;
            }

            await copy.StartRowAsync();
            await copy.WriteAsync(CustomerId(i), NpgsqlDbType.Text);
            await copy.WriteAsync($"Customer {i}", NpgsqlDbType.Text);
            await copy.WriteAsync(countries[i % countries.Length], NpgsqlDbType.Text);
        }

        await copy.CompleteAsync();
    }

    private static string CustomerId(int i) => string.Create(CultureInfo.InvariantCulture, $"c{i:D3}");

    /// <summary>A rate per currency from 07:59, then a change every 20–60 s until 08:10; the euro stays 1.</summary>
    private static List<Rate> Rates(Random random)
    {
        var rates = new List<Rate>();
        foreach (var currency in Currencies)
        {
            var value = currency switch { "EUR" => 1m, "USD" => 0.92m, "GBP" => 1.17m, _ => 1.06m };
            for (var at = Start.AddMinutes(-1); at < Start.AddMinutes(10); at = at.AddSeconds(random.Next(20, 61)))
            {
                rates.Add(new Rate(currency, value, at));
                if (currency != "EUR")
                {
                    value = decimal.Round(value * (1 + (random.Next(-50, 51) / 10_000m)), 4);
                }
            }
        }

        return rates;
    }

    /// <summary>Ten minutes of orders, up to 3 s out of order.</summary>
    private static List<Order> Orders(Random random, int count)
    {
        var span = TimeSpan.FromMinutes(10).Ticks;
        return [.. Enumerable.Range(1, count).Select(i => new Order(
            i,
            CustomerId(random.Next(0, Customers)),
            random.Next(100, 100_000) / 100m,
            Currencies[random.Next(Currencies.Length)],
            Start.AddTicks(span * i / count).AddMilliseconds(-random.Next(0, 3000))))];
    }

    private static byte[] Encode<T, TCodec>(T record)
        where TCodec : Compiled.IRecordCodec<T>
    {
        var buffer = new ArrayBufferWriter<byte>();
        TCodec.Encode(record, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    private static void Produce(IProducer<string?, byte[]> producer, string topic, IEnumerable<(string? Key, byte[] Value)> messages)
    {
        Exception? failure = null;
        foreach (var (key, value) in messages)
        {
            while (true)
            {
                try
                {
                    producer.Produce(topic, new Message<string?, byte[]> { Key = key, Value = value }, r => failure ??= r.Error.IsError ? new KafkaException(r.Error) : null);
                    break;
                }
                catch (ProduceException<string?, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(20));
                }
            }
        }

        producer.Flush(TimeSpan.FromSeconds(60));
        if (failure is not null)
        {
            throw failure;
        }
    }

    private static async Task<long> RowsAsync(string connection)
    {
        try
        {
            await using var db = new NpgsqlConnection(connection);
            await db.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT count(*) FROM enriched_orders", db);
            return (long)(await command.ExecuteScalarAsync() ?? 0L);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return 0; // the sink has not created it yet
        }
    }

    /// <summary>
    /// Loads what was produced into two tables and lets PostgreSQL compute the same enrichment with a SQL JOIN (the rate
    /// valid at each order's time, the customer if there is one); the pipeline's table must equal it row for row.
    /// </summary>
    private static async Task<int> CheckAsync(string connection, List<Order> orders, List<Rate> rates)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using (var create = new NpgsqlCommand("CREATE TABLE demo_orders (id bigint, customer text, amount numeric, currency text, placed_at timestamptz); CREATE TABLE demo_rates (currency text, euro numeric, valid_from timestamptz)", db))
        {
            await create.ExecuteNonQueryAsync();
        }

        await using (var copy = await db.BeginBinaryImportAsync("COPY demo_orders FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var o in orders)
            {
                await copy.WriteRowAsync(default, o.Id, o.Customer, o.Amount, o.Currency, o.PlacedAt);
            }

            await copy.CompleteAsync();
        }

        await using (var copy = await db.BeginBinaryImportAsync("COPY demo_rates FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var r in rates)
            {
                await copy.WriteRowAsync(default, r.Currency, r.Euro, r.ValidFrom);
            }

            await copy.CompleteAsync();
        }

        const string expected = """
            SELECT o.id, o.customer, coalesce(c.name, 'unknown') AS name, coalesce(c.country, '??') AS country, o.amount, o.currency,
                   r.euro AS rate, round(o.amount * r.euro, 4) AS amount_eur, o.placed_at
            FROM demo_orders o
            JOIN LATERAL (SELECT euro FROM demo_rates WHERE currency = o.currency AND valid_from <= o.placed_at ORDER BY valid_from DESC LIMIT 1) r ON true
            LEFT JOIN customers c ON c.id = o.customer
            """;
        const string actual = "SELECT id, customer, name, country, amount, currency, rate, amount_eur, placed_at FROM enriched_orders";
        var missing = await CountAsync(db, $"SELECT count(*) FROM (({expected}) EXCEPT ALL ({actual})) d");
        var extra = await CountAsync(db, $"SELECT count(*) FROM (({actual}) EXCEPT ALL ({expected})) d");
        var rows = await CountAsync(db, "SELECT count(*) FROM enriched_orders");

        Console.WriteLine("id      customer  name          country  amount     currency  rate    amount_eur");
        await using (var sample = new NpgsqlCommand("SELECT id, customer, name, country, amount, currency, rate, amount_eur FROM enriched_orders ORDER BY id LIMIT 5", db))
        await using (var reader = await sample.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{reader.GetInt64(0),-7} {reader.GetString(1),-9} {reader.GetString(2),-13} {reader.GetString(3),-8} {reader.GetDecimal(4),-10} {reader.GetString(5),-9} {reader.GetDecimal(6),-7} {reader.GetDecimal(7)}"));
            }
        }

        if (missing == 0 && extra == 0)
        {
            var unknown = await CountAsync(db, "SELECT count(*) FROM enriched_orders WHERE name = 'unknown'");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"table enriched_orders matches a SQL JOIN of the inputs: {rows} orders, each at the rate of its time, {unknown} of unknown customers"));
            return 0;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"table enriched_orders does NOT match a SQL JOIN of the inputs: {missing} rows missing or wrong, {extra} unexpected"));
        return 1;
    }

    private static async Task<long> CountAsync(NpgsqlConnection db, string sql)
    {
        await using var command = new NpgsqlCommand(sql, db);
        return (long)(await command.ExecuteScalarAsync() ?? 0L);
    }
}
