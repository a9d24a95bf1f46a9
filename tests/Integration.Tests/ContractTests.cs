using System.Globalization;
using System.Text;
using Compiled.Http;
using Compiled.Kafka;
using Compiled.Postgres;
using Compiled.Testing;
using Confluent.Kafka;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>The connector contract kit against the Kafka, PostgreSQL and HTTP connectors, on real components.</summary>
[Collection(nameof(Infrastructure))]
public sealed class ContractTests(KafkaFixture kafka, PostgresFixture postgres)
{
    private static Order Record(int i) => new(i, "customer " + (i % 37), i / 4m, i % 3 == 0 ? "paid" : "new");

    private static byte[] Json(Order order)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        Order.JsonCodec.Encode(order, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    private static void AssertHolds(ContractReport report, params string[] checks)
    {
        Assert.True(report.Ok, report.ToString());
        Assert.Equal(checks, report.Passed);
    }

    [Fact]
    public async Task KafkaSource_keeps_the_contract()
    {
        var topic = kafka.NewTopic("contract-source", 4);
        var records = Enumerable.Range(0, 3_000).Select(Record).ToArray();
        kafka.Produce(topic, records.Select(r => ((string?)r.Id.ToString(CultureInfo.InvariantCulture), (byte[]?)Json(r))));
        var report = await ConnectorContract.CheckSourceAsync(new SourceContract<Order>
        {
            CreateSource = group => new KafkaSource<Order, Order.JsonCodec>(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = group, StartFrom = KafkaStart.Earliest, SessionTimeout = kafka.KilledConsumerSessionTimeout }),
            Records = records,
            Bounded = false,

            // At-least-once: on the mock cluster, commits are refused while the group rebalances (members joining one
            // after another at the start of a run), and a partition's new owner reads again what its first owner read
            // since its last commit. Nothing may be missing; repeats are not counted against it (see docs/connectors.md).
            RepeatsAllowed = true,
        });

        AssertHolds(report, "every record once", "resumes where it stopped", "a run after an aborted one");
    }

    [Fact]
    public async Task KafkaSink_keeps_the_contract()
    {
        var report = await ConnectorContract.CheckSinkAsync(new SinkContract<Order>
        {
            CreateSink = topic => new KafkaSink<Order, Order.JsonCodec>(kafka.BootstrapServers, topic),
            ReadBack = (topic, _) => Task.FromResult<IReadOnlyList<Order>>(ReadTopic(topic)),
            Record = Record,
        });

        AssertHolds(report, "every record once", "durable at a checkpoint", "a run after an aborted one");
    }

    /// <summary>Every record a topic holds now: each partition read from its start to its high watermark.</summary>
    private List<Order> ReadTopic(string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "read-" + Guid.NewGuid().ToString("N"), EnableAutoCommit = false })
            .SetLogHandler((_, _) => { })
            .Build();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build();
        var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.FirstOrDefault(t => t.Topic == topic);
        var records = new List<Order>();
        if (metadata is null || metadata.Error.IsError)
        {
            return records;
        }

        foreach (var partition in metadata.Partitions)
        {
            var tp = new TopicPartition(topic, partition.PartitionId);
            var end = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10)).High.Value;
            if (end == 0)
            {
                continue;
            }

            consumer.Assign(new TopicPartitionOffset(tp, Offset.Beginning));
            while (true)
            {
                var message = consumer.Consume(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException($"{tp} did not deliver up to offset {end}");
                Assert.True(Order.JsonCodec.TryDecode(message.Message.Value, out var order, out var error), error.ToString());
                records.Add(order);
                if (message.Offset.Value >= end - 1)
                {
                    break;
                }
            }
        }

        return records;
    }

    [Fact]
    public async Task PostgresSink_keeps_the_contract()
    {
        var connection = await postgres.NewDatabaseAsync();
        var report = await ConnectorContract.CheckSinkAsync(new SinkContract<Order>
        {
            CreateSink = table => new PostgresSink<Order>(new PostgresSinkOptions { ConnectionString = connection, Table = table.Replace('-', '_'), FlushRows = 100, FlushInterval = TimeSpan.FromMilliseconds(20) }),
            ReadBack = (table, token) => ReadTableAsync(connection, table.Replace('-', '_'), token),
            Record = Record,
            Schema = ConnectorContract.SchemaOf<Order>(new OrdersToPostgres()),
            CreateBroken = table => new PostgresSink<Order>(new PostgresSinkOptions { ConnectionString = connection + ";Password=wrong", Table = table.Replace('-', '_') }),
        });

        AssertHolds(report, "every record once", "durable at a checkpoint", "a run after an aborted one", "failures name the connector");
    }

    private static async Task<IReadOnlyList<Order>> ReadTableAsync(string connection, string table, CancellationToken cancellationToken)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync(cancellationToken);
        await using (var exists = new NpgsqlCommand($"SELECT to_regclass('\"{table}\"') IS NOT NULL", db))
        {
            if (await exists.ExecuteScalarAsync(cancellationToken) is not true)
            {
                return [];
            }
        }

        await using var command = new NpgsqlCommand($"SELECT id, customer, amount, status FROM \"{table}\"", db);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<Order>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new Order(reader.GetInt64(0), reader.GetString(1), reader.GetDecimal(2), reader.GetString(3)));
        }

        return rows;
    }

    [Fact]
    public async Task HttpSink_keeps_the_contract()
    {
        var servers = new System.Collections.Concurrent.ConcurrentDictionary<string, FlakyWebhook>();
        try
        {
            var report = await ConnectorContract.CheckSinkAsync(new SinkContract<Order>
            {
                CreateSink = id => new HttpSink<Order, Order.JsonCodec>(new HttpSinkOptions { Url = servers.GetOrAdd(id, _ => new FlakyWebhook(transientFailures: 2, hold: TimeSpan.Zero)).Url, MaxRecordsPerRequest = 64, InitialBackoff = TimeSpan.FromMilliseconds(1) }),
                ReadBack = (id, _) => Task.FromResult<IReadOnlyList<Order>>(servers.TryGetValue(id, out var server) ? [.. server.Accepted.Select(line => Decode(line))] : []),
                Record = Record,
                CreateBroken = _ => new HttpSink<Order, Order.JsonCodec>(new HttpSinkOptions { Url = "http://127.0.0.1:1/", MaxAttempts = 2, InitialBackoff = TimeSpan.FromMilliseconds(1) }),
            });

            AssertHolds(report, "every record once", "durable at a checkpoint", "a run after an aborted one", "failures name the connector");
        }
        finally
        {
            foreach (var server in servers.Values)
            {
                await server.DisposeAsync();
            }
        }
    }

    private static Order Decode(string line)
    {
        Assert.True(Order.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(line), out var order, out var error), error.ToString());
        return order;
    }
}
