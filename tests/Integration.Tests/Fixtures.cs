using Compiled.Kafka.Testing;
using Compiled.Postgres.Testing;
using Confluent.Kafka;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>
/// A PostgreSQL server for the whole test run: the one in <c>COMPILED_TEST_POSTGRES</c> (a connection string to a
/// database where the tests may create databases), or a throwaway server started here.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private PostgresServer? _server;
    private string _admin = "";
    private int _databases;

    public PostgresServer? Server => _server;

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("COMPILED_TEST_POSTGRES") is { Length: > 0 } existing)
        {
            _admin = existing;
            return;
        }

        _server = await PostgresServer.StartAsync();
        _admin = _server.ConnectionString;
    }

    /// <summary>A new, empty database for one test; returns its connection string.</summary>
    public async Task<string> NewDatabaseAsync()
    {
        var name = $"t{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}";
        // Not pooled: a test that restarts the server (retry tests) leaves dead connections in a pool.
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_admin) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using (var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection))
        {
            await command.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(_admin) { Database = name }.ConnectionString;
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

/// <summary>A Kafka-protocol cluster for the whole test run: <c>COMPILED_TEST_KAFKA</c> (bootstrap servers), or librdkafka's mock cluster with 3 brokers.</summary>
public sealed class KafkaFixture : IDisposable
{
    private readonly KafkaMockCluster? _mock;
    private int _topics;

    public KafkaFixture()
    {
        if (Environment.GetEnvironmentVariable("COMPILED_TEST_KAFKA") is { Length: > 0 } existing)
        {
            BootstrapServers = existing;
            return;
        }

        _mock = KafkaMockCluster.Start(brokers: 3);
        BootstrapServers = _mock.BootstrapServers;
    }

    public string BootstrapServers { get; }

    /// <summary>
    /// The session timeout of consumers a test kills or aborts: the group hands a dead member's partitions to the next
    /// only after it, so every restart waits that long (the default is 10 s). 6 s is a broker's default
    /// <c>group.min.session.timeout.ms</c>; 3 s was tried on the mock cluster and a live member's session timed out
    /// under CI load (an exactly-once run then stops by design), so it is not shorter.
    /// </summary>
    public TimeSpan KilledConsumerSessionTimeout => TimeSpan.FromSeconds(6);

    /// <summary><see cref="KilledConsumerSessionTimeout"/> as a setting's value.</summary>
    public string KilledConsumerSessionTimeoutSetting => $"{KilledConsumerSessionTimeout.TotalSeconds}s";

    /// <summary>The mock cluster, for fault injection (null against a real cluster).</summary>
    public KafkaMockCluster? Mock => _mock;

    /// <summary>
    /// A new topic with <paramref name="partitions"/> partitions (each mock partition keeps at most 5 MiB), named
    /// <paramref name="prefix"/> and a number, or <paramref name="prefix"/> alone with <paramref name="exactName"/>.
    /// </summary>
    public string NewTopic(string prefix, int partitions, bool exactName = false)
    {
        var topic = exactName ? prefix : $"{prefix}-{Environment.ProcessId}-{Interlocked.Increment(ref _topics)}";
        if (_mock is not null)
        {
            _mock.CreateTopic(topic, partitions);
        }
        else
        {
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = BootstrapServers }).Build();
            admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]).GetAwaiter().GetResult();
        }

        return topic;
    }

    /// <summary>Produces <paramref name="values"/> to <paramref name="topic"/> (keyed, so a key's records keep their order), and waits for every acknowledgement.</summary>
    public void Produce(string topic, IEnumerable<(string? Key, byte[]? Value)> values)
    {
        using var producer = new ProducerBuilder<string?, byte[]?>(new ProducerConfig { BootstrapServers = BootstrapServers, EnableIdempotence = true, LingerMs = 5 })
            .SetLogHandler((_, _) => { })
            .Build();
        Exception? failure = null;
        foreach (var (key, value) in values)
        {
            while (true)
            {
                try
                {
                    producer.Produce(topic, new Message<string?, byte[]?> { Key = key, Value = value }, report =>
                    {
                        if (report.Error.IsError)
                        {
                            failure ??= new KafkaException(report.Error);
                        }
                    });
                    break;
                }
                catch (ProduceException<string?, byte[]?> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(50));
                }
            }
        }

        producer.Flush(TimeSpan.FromSeconds(60));
        if (failure is not null)
        {
            throw failure;
        }
    }

    private static readonly TimeSpan ReadPatience = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The sum of <paramref name="topic"/>'s high watermarks: its messages, and the markers transactions leave (nothing is
    /// deleted here). It grows when a transaction commits records there.
    /// </summary>
    public long Offsets(string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = BootstrapServers, GroupId = "count-" + Guid.NewGuid().ToString("N") }).SetLogHandler((_, _) => { }).Build();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = BootstrapServers }).Build();
        var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
        return metadata.Topics[0].Partitions.Sum(p => consumer.QueryWatermarkOffsets(new TopicPartition(topic, p.PartitionId), TimeSpan.FromSeconds(10)).High.Value);
    }

    /// <summary>Produces <paramref name="value"/> once to each of the first <paramref name="partitions"/> partitions of <paramref name="topic"/> (a sentinel that moves every partition's watermark).</summary>
    public async Task ProduceToEveryPartitionAsync(string topic, int partitions, byte[] value)
    {
        using var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = BootstrapServers }).SetLogHandler((_, _) => { }).Build();
        for (var p = 0; p < partitions; p++)
        {
            await producer.ProduceAsync(new TopicPartition(topic, p), new Message<string?, byte[]> { Key = null, Value = value });
        }
    }

    /// <summary>Every message value of <paramref name="topic"/>, read to the end of each partition.</summary>
    public List<byte[]> ReadAll(string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig { BootstrapServers = BootstrapServers, GroupId = "read-" + Guid.NewGuid().ToString("N"), EnablePartitionEof = true, IsolationLevel = IsolationLevel.ReadCommitted }).SetLogHandler((_, _) => { }).Build();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = BootstrapServers }).Build();
        var partitions = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics[0].Partitions.Select(p => new TopicPartitionOffset(topic, p.PartitionId, Offset.Beginning)).ToList();
        consumer.Assign(partitions);
        var values = new List<byte[]>();
        var ended = 0;
        var deadline = DateTime.UtcNow + ReadPatience;
        while (ended < partitions.Count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"topic {topic} not read to its end within {ReadPatience}");
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is not { } consumed)
            {
                continue;
            }

            if (consumed.IsPartitionEOF)
            {
                ended++;
            }
            else
            {
                values.Add(consumed.Message.Value);
            }
        }

        return values;
    }

    public void Dispose() => _mock?.Dispose();
}

[CollectionDefinition(nameof(Infrastructure))]
public sealed class Infrastructure : ICollectionFixture<PostgresFixture>, ICollectionFixture<KafkaFixture>, ICollectionFixture<MariaDbFixture>
{
}

/// <summary>
/// tests/Crash.Tests (this file is shared with it): the tests that run pipeline binaries as child processes (SIGKILL
/// loops, consumer groups), with servers of their own. They spend most of their time waiting for Kafka sessions to
/// time out, so the CDC process test runs beside them in a collection of its own.
/// </summary>
[CollectionDefinition(nameof(ChildProcesses))]
public sealed class ChildProcesses : ICollectionFixture<PostgresFixture>, ICollectionFixture<KafkaFixture>, ICollectionFixture<MariaDbFixture>
{
}

/// <summary>tests/Crash.Tests: the CDC process test (PostgreSQL only), apart from the Kafka process tests.</summary>
[CollectionDefinition(nameof(CdcProcesses))]
public sealed class CdcProcesses : ICollectionFixture<PostgresFixture>
{
}
