using System.Text;
using System.Text.Json;
using Compiled.Connectors;
using Compiled.Kafka;
using Compiled.Postgres;
using Compiled.Runtime;
using Confluent.Kafka;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>The Kafka connectors against librdkafka's mock cluster (real protocol, loopback TCP).</summary>
[Collection(nameof(Infrastructure))]
public sealed class KafkaTests(KafkaFixture kafka, PostgresFixture postgres) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-kafka-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    internal static byte[] Json(Order order) => Encoding.UTF8.GetBytes(
        $$"""{"id":{{order.Id}},"customer":"{{order.Customer}}","amount":{{order.Amount.ToString(System.Globalization.CultureInfo.InvariantCulture)}},"status":"{{order.Status}}"}""");

    internal static Order OrderOf(long id) => new(id, $"customer-{id % 97}", 10m + (id % 1000) / 4m, id % 3 == 0 ? "open" : "paid");

    private KafkaSourceOptions Source(string topic, string group) => new()
    {
        BootstrapServers = kafka.BootstrapServers,
        Topics = topic,
        GroupId = group,
        SessionTimeout = TimeSpan.FromSeconds(6),
    };

    [Fact]
    public async Task Poison_messages_are_dead_lettered_with_topic_partition_and_offset_and_committed_offsets_are_honoured()
    {
        var topic = kafka.NewTopic("poison", 4);
        var group = "poison-" + Guid.NewGuid().ToString("N");
        byte[]?[] bad = [Encoding.UTF8.GetBytes("{not json"), Encoding.UTF8.GetBytes("""{"id":"seven","customer":"x","amount":1,"status":"paid"}"""), Encoding.UTF8.GetBytes("""{"customer":"no id"}"""), [0xff, 0xfe, 0x00], null];
        var negative = new[] { new Order(-1, "refund", -5m, "paid"), new Order(-2, "refund", -7m, "paid") };
        var good = Enumerable.Range(1, 1000).Select(i => OrderOf(i)).ToArray();
        // The bad ones first, with keys spread over partitions: by the time every good record arrived, each bad one was read.
        kafka.Produce(topic, bad.Select((b, i) => ((string?)$"k{i}", b))
            .Concat(negative.Select(o => ((string?)$"k{o.Id}", (byte[]?)Json(o))))
            .Concat(good.Select(o => ((string?)$"k{o.Id}", (byte[]?)Json(o)))));

        var deadLetters = Path.Combine(_work, "dead.jsonl");
        var pipeline = new KafkaOrders { Orders = new KafkaSource<Order, Order.JsonCodec>(Source(topic, group)), Output = new CountingSink<Order>() };
        using var stop = new CancellationTokenSource();
        // One group member: no rebalance, so every commit is accepted and the second run's start is exact (with
        // several members the mock coordinator may refuse a commit during a rebalance: see the rebalance test).
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = deadLetters, CheckpointInterval = TimeSpan.FromMilliseconds(200) }, stop.Token);
        await pipeline.Output.WhenCount(good.Length).WaitAsync(Patience);
        await stop.CancelAsync();
        var result = await run;

        Assert.Equal(good.Select(o => o.Id).Order(), pipeline.Output.Items.Select(o => o.Id).Order());
        Assert.Equal(bad.Length, result.Malformed);
        Assert.Equal(negative.Length, result.OperatorFailures);
        var letters = File.ReadAllLines(deadLetters).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(bad.Length + negative.Length, letters.Count);
        Assert.All(letters, l =>
        {
            Assert.StartsWith(topic + "[", l.GetProperty("file").GetString(), StringComparison.Ordinal);
            Assert.True(l.GetProperty("offset").GetInt64() >= 0);
        });
        Assert.Contains(letters, l => l.GetProperty("errorType").GetString() == "NoValue");
        Assert.Equal(2, letters.Count(l => l.GetProperty("kind").GetString() == "operator"));

        // A second run in the same group reads only what arrived since: the first run's offsets were committed.
        var more = Enumerable.Range(2001, 10).Select(i => OrderOf(i)).ToArray();
        kafka.Produce(topic, more.Select(o => ((string?)$"k{o.Id}", (byte[]?)Json(o))));
        var again = new KafkaOrders { Orders = new KafkaSource<Order, Order.JsonCodec>(Source(topic, group)), Output = new CountingSink<Order>() };
        using var stopAgain = new CancellationTokenSource();
        var second = again.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = deadLetters }, stopAgain.Token);
        await again.Output.WhenCount(more.Length).WaitAsync(Patience);
        await stopAgain.CancelAsync();
        await second;
        Assert.Equal(more.Select(o => o.Id).Order(), again.Output.Items.Select(o => o.Id).Order());
    }

    [Fact]
    public async Task Keys_partitions_offsets_timestamps_and_headers_reach_the_records_through_the_metadata_callback()
    {
        var topic = kafka.NewTopic("traced", 3);
        var before = DateTime.UtcNow.AddMinutes(-1);
        using (var producer = new ProducerBuilder<string, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build())
        {
            for (var i = 1; i <= 300; i++)
            {
                var headers = i % 2 == 0 ? new Headers { { "trace", Encoding.UTF8.GetBytes($"t{i}") } } : null;
                await producer.ProduceAsync(topic, new Message<string, byte[]> { Key = $"key-{i}", Value = Json(OrderOf(i)), Headers = headers });
            }
        }

        var source = new KafkaSource<TracedOrder, TracedOrder.JsonCodec>(Source(topic, "traced-" + Guid.NewGuid().ToString("N")), (ref TracedOrder order, KafkaMessage message) =>
        {
            var trace = message.Headers is { } headers && headers.TryGetLastBytes("trace", out var bytes) ? Encoding.UTF8.GetString(bytes) : null;
            order = order with
            {
                Key = message.HasKey ? Encoding.UTF8.GetString(message.Key) : null,
                Partition = message.Partition,
                Offset = message.Offset,
                Time = message.Timestamp,
                Trace = trace,
            };
        });
        var pipeline = new KafkaTraced { Orders = source, Output = new CountingSink<TracedOrder>() };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2 }, stop.Token);
        // At-least-once: the second member's join revokes partitions, and what the first read of them but did not commit
        // is read again. Wait for every record, not for a count that repeats could reach first.
        await WaitUntil(() => pipeline.Output.Items.Select(o => o.Id).Distinct().Count() == 300, run, "every record");
        await stop.CancelAsync();
        await run;

        // A record read twice carries the same metadata both times (the same message: key, partition, offset, ...).
        var byId = pipeline.Output.Items.GroupBy(o => o.Id).ToList();
        Assert.All(byId, g => Assert.Single(g.Distinct()));
        var orders = byId.Select(g => g.First()).OrderBy(o => o.Id).ToList();
        Assert.Equal(Enumerable.Range(1, 300).Select(i => $"key-{i}"), orders.Select(o => o.Key));
        Assert.Equal(Enumerable.Range(1, 300).Select(i => i % 2 == 0 ? $"t{i}" : null), orders.Select(o => o.Trace));
        Assert.All(orders, o => Assert.InRange(o.Time!.Value, before, DateTime.UtcNow.AddMinutes(1)));
        Assert.Equal(3, orders.Select(o => o.Partition).Distinct().Count());
        foreach (var partition in orders.GroupBy(o => o.Partition))
        {
            // A partition's offsets are 0, 1, 2, … in the order its messages were produced (same key, same partition).
            Assert.Equal(Enumerable.Range(0, partition.Count()).Select(i => (long?)i), partition.Select(o => o.Offset));
        }
    }

    [Fact]
    public async Task Rebalances_inside_a_run_lose_no_records()
    {
        // Four members join one by one (a pipeline at parallelism 4): every join revokes and reassigns partitions
        // while records flow. Each revocation commits what was read, and the next owner starts right after it (or,
        // when the coordinator refuses that commit, at the previous one: repeats are at-least-once, losses a bug).
        const int count = 20_000;
        var topic = kafka.NewTopic("rebalance", 8);
        kafka.Produce(topic, Enumerable.Range(1, count).Select(i => ((string?)$"k{i}", (byte[]?)Json(OrderOf(i)))));
        var options = Source(topic, "rebalance-" + Guid.NewGuid().ToString("N"));
        options.StartFrom = KafkaStart.Earliest;
        var pipeline = new KafkaOrders { Orders = new KafkaSource<Order, Order.JsonCodec>(options), Output = new CountingSink<Order>() };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 4, BatchSize = 128, CheckpointInterval = TimeSpan.FromMilliseconds(100) }, stop.Token);
        await WaitUntil(() => pipeline.Output.Items.Select(o => o.Id).Distinct().Count() == count, run, "every record");
        await stop.CancelAsync();
        await run;

        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), pipeline.Output.Items.Select(o => o.Id).Distinct().Order());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Kafka_to_kafka_delivers_every_selected_record(bool transactional)
    {
        var input = kafka.NewTopic("k2k-in", 4);
        var output = kafka.NewTopic("k2k-out", 4);
        var orders = Enumerable.Range(1, 600).Select(i => OrderOf(i)).ToArray();
        kafka.Produce(input, orders.Select(o => ((string?)o.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), (byte[]?)Json(o))));
        var paid = orders.Where(o => o.Status == "paid").Select(o => o.Id).Order().ToList();

        var pipeline = new KafkaToKafka
        {
            Orders = new KafkaSource<Order, Order.JsonCodec>(Source(input, "k2k-" + Guid.NewGuid().ToString("N"))),
            Paid = new KafkaSink<Order, Order.JsonCodec>(new KafkaSinkOptions { BootstrapServers = kafka.BootstrapServers, Topic = output, Transactional = transactional }, key: o => o.Customer),
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2, CheckpointInterval = TimeSpan.FromMilliseconds(200) }, stop.Token);

        var received = ConsumeIds(output, paid, "read-" + Guid.NewGuid().ToString("N"));
        await stop.CancelAsync();
        var result = await run;

        // Every selected record arrives. Repeats are allowed: at-least-once, and the mock cluster does not enforce
        // transactions (docs/delivery.md), so exactly-once cannot be observed here.
        Assert.Equal(paid, received.Distinct().Order());
        Assert.Equal(transactional ? DeliveryGuarantee.ExactlyOnce : DeliveryGuarantee.AtLeastOnce, result.Delivery);
    }

    /// <summary>
    /// The sink reuses one array per value length (Confluent.Kafka copies at Produce) and the source asks Confluent.Kafka
    /// not to name the topic when it reads one: records of equal length with different bytes, keys and values longer
    /// than the reused arrays, non-ASCII text, two input topics — every message arrives byte for byte, and dead letters
    /// name the topic they came from.
    /// </summary>
    [Fact]
    public async Task Kafka_to_kafka_writes_every_key_and_value_byte_for_byte_from_two_topics()
    {
        var first = kafka.NewTopic("bytes-a", 3);
        var second = kafka.NewTopic("bytes-b", 2);
        var output = kafka.NewTopic("bytes-out", 4);
        var random = new Random(20261204);
        string Text(int length) => string.Create(length, random, (span, r) =>
        {
            const string letters = "abcdefghijklmnopqrstuvwxyzé€ж\"\\ ";
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = letters[r.Next(letters.Length)];
            }
        });
        int[] lengths = [0, 1, 5, 5, 5, 17, 17, 300, 1000, 1024, 1025, 3000];
        var orders = Enumerable.Range(1, 1200).Select(i => new Order(i, Text(lengths[i % lengths.Length]), i / 8m, "paid")).ToArray();
        static byte[] Encode(Order order)
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            Order.JsonCodec.Encode(order, buffer);
            return buffer.WrittenSpan.ToArray();
        }

        kafka.Produce(first, orders.Where(o => o.Id % 2 == 0).Select(o => ((string?)null, (byte[]?)Encode(o))).Append((null, Encoding.UTF8.GetBytes("{bad a"))));
        kafka.Produce(second, orders.Where(o => o.Id % 2 == 1).Select(o => ((string?)null, (byte[]?)Encode(o))).Append((null, Encoding.UTF8.GetBytes("{bad b"))));

        var deadLetters = Path.Combine(_work, "bytes-dead.jsonl");
        var pipeline = new KafkaToKafka
        {
            Orders = new KafkaSource<Order, Order.JsonCodec>(Source($"{first},{second}", "bytes-" + Guid.NewGuid().ToString("N"))),
            Paid = new KafkaSink<Order, Order.JsonCodec>(new KafkaSinkOptions { BootstrapServers = kafka.BootstrapServers, Topic = output }, key: o => o.Customer),
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 64, DeadLetterPath = deadLetters, CheckpointInterval = TimeSpan.FromMilliseconds(200) }, stop.Token);
        var received = new Dictionary<long, (byte[]? Key, byte[] Value)>();
        using (var consumer = new ConsumerBuilder<byte[]?, byte[]>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "bytes-read-" + Guid.NewGuid().ToString("N"), AutoOffsetReset = AutoOffsetReset.Earliest, SessionTimeoutMs = 6000 })
            .SetLogHandler((_, _) => { }).Build())
        {
            consumer.Subscribe(output);
            var deadline = DateTime.UtcNow + Patience;
            while (received.Count < orders.Length && DateTime.UtcNow < deadline && !run.IsCompleted)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } message)
                {
                    var id = JsonDocument.Parse(message.Message.Value).RootElement.GetProperty("id").GetInt64();
                    received[id] = (message.Message.Key, message.Message.Value); // a repeat (at-least-once) carries the same bytes
                }
            }

            consumer.Close();
        }

        await stop.CancelAsync();
        var result = await run;
        Assert.Equal(orders.Length, received.Count);
        foreach (var order in orders)
        {
            var (key, value) = received[order.Id];
            Assert.Equal(Encode(order), value);
            Assert.Equal(Encoding.UTF8.GetBytes(order.Customer), key ?? []);
        }

        // Each bad message at least once (at-least-once may read one twice), named by its own topic.
        Assert.True(result.Malformed >= 2, $"{result.Malformed} malformed");
        var files = File.ReadAllLines(deadLetters).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("file").GetString()!).ToList();
        Assert.All(files, f => Assert.Matches(@"^bytes-[ab]-.*\[[0-9]+\]$", f));
        Assert.Equal([first, second], files.Select(f => f[..f.LastIndexOf('[')]).Distinct().Order());
    }

    [Fact]
    public async Task A_source_subscribed_by_pattern_names_each_message_by_its_own_topic()
    {
        // One entry in Topics, but a pattern (librdkafka reads "^…" as a regex): the source must not take it for the
        // one topic's name, which it supplies itself when it asks Confluent.Kafka for no topic names.
        var first = kafka.NewTopic("rx-a", 2);
        var second = kafka.NewTopic("rx-b", 2);
        var orders = Enumerable.Range(1, 200).Select(i => OrderOf(i)).ToArray();
        kafka.Produce(first, orders.Where(o => o.Id % 2 == 0).Select(o => ((string?)null, (byte[]?)Json(o))).Append((null, Encoding.UTF8.GetBytes("{bad a"))));
        kafka.Produce(second, orders.Where(o => o.Id % 2 == 1).Select(o => ((string?)null, (byte[]?)Json(o))).Append((null, Encoding.UTF8.GetBytes("{bad b"))));
        var deadLetters = Path.Combine(_work, "pattern-dead.jsonl");
        var options = Source($"^rx-[ab]-{Environment.ProcessId}-.*", "rx-" + Guid.NewGuid().ToString("N"));
        options.StartFrom = KafkaStart.Earliest;
        var pipeline = new KafkaOrders { Orders = new KafkaSource<Order, Order.JsonCodec>(options), Output = new CountingSink<Order>() };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = deadLetters }, stop.Token);
        await pipeline.Output.WhenCount(orders.Length).WaitAsync(Patience);
        await WaitUntil(() => File.Exists(deadLetters) && File.ReadAllLines(deadLetters).Length >= 2, run, "both bad messages dead-lettered");
        await stop.CancelAsync();
        await run;

        Assert.Equal(orders.Select(o => o.Id).Order(), pipeline.Output.Items.Select(o => o.Id).Distinct().Order());
        var files = File.ReadAllLines(deadLetters).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("file").GetString()!).ToList();
        Assert.Equal([first, second], files.Select(f => f[..f.LastIndexOf('[')]).Distinct().Order());
    }

    [Fact]
    public async Task Delivery_failures_surface_and_fail_the_run()
    {
        var pipeline = new CollectionToKafka
        {
            Input = new CollectionSource<Order>(OrderOf(1), OrderOf(2)),
            Output = new KafkaSink<Order, Order.JsonCodec>(new KafkaSinkOptions { BootstrapServers = "127.0.0.1:9", Topic = "nowhere", Properties = "message.timeout.ms=1500" }),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("Output", error.Message, StringComparison.Ordinal);
        Assert.Contains("timed out", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Exactly_once_to_postgres_survives_a_database_restart_and_a_broker_outage_mid_run()
    {
        Assert.True(postgres.Server is not null && kafka.Mock is not null, "this test restarts the throwaway PostgreSQL server and takes a mock broker down");
        const int count = 20_000;
        const int firstPart = count * 2 / 3;
        var topic = kafka.NewTopic("eo", 8);
        kafka.Produce(topic, Enumerable.Range(1, firstPart).Select(i => ((string?)$"k{i}", (byte[]?)Json(OrderOf(i)))));
        var connection = await postgres.NewDatabaseAsync();
        // Rows stream into each partition's open transaction every 100 rows: the restart breaks open transactions
        // holding rows, whose retry must write each row once.
        var sink = new PostgresSink<Order>(new PostgresSinkOptions { ConnectionString = connection, Table = "orders", ExactlyOnce = true, StreamRows = 100 });
        var group = "eo-" + Guid.NewGuid().ToString("N");
        kafka.Mock!.SetGroupCoordinator(group, 2); // the outage below takes partition leaders away, not the group's coordinator
        // A fetch in flight to the broker that goes down is given up after socket.timeout.ms (librdkafka's default: a
        // minute); ten seconds keeps the test short without changing what it shows.
        var options = Source(topic, group);
        options.Properties = "socket.timeout.ms=10000";
        var source = new KafkaSource<Order, Order.JsonCodec>(options);
        var pipeline = new KafkaToPostgres { Orders = source, Table = sink };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 256, CheckpointInterval = TimeSpan.FromMilliseconds(100), GracePeriod = TimeSpan.FromSeconds(30) }, stop.Token);

        await WaitForRows(connection, count / 10, run);
        await postgres.Server!.RestartAsync();
        await WaitForRows(connection, firstPart, run);

        // A broker goes down while the last third is produced: the partitions the other brokers lead keep flowing
        // into the table during the outage; the rest waits (in the producer and the consumers) until it comes back.
        // (Were it the group's coordinator for longer than the session timeout, the exactly-once run would stop
        // without committing — by design, docs/delivery.md — and resume exactly when restarted.)
        var committed = sink.RowsCommitted;
        kafka.Mock!.SetBrokerDown(1);
        Task producing;
        try
        {
            producing = Task.Run(() => kafka.Produce(topic, Enumerable.Range(firstPart + 1, count - firstPart).Select(i => ((string?)$"k{i}", (byte[]?)Json(OrderOf(i))))));
            // librdkafka notices a silent broker by request timeouts (about a minute): this phase may take that long.
            await WaitUntil(() => sink.RowsCommitted >= committed + 500, run, "rows committed during the broker outage", TimeSpan.FromMinutes(5));
        }
        finally
        {
            kafka.Mock.SetBrokerUp(1); // the cluster is shared by every test
        }

        await producing;
        await WaitForRows(connection, count, run);
        await stop.CancelAsync();
        var result = await run;

        var rows = await PostgresSinkTests.ReadOrders(connection);
        Assert.Equal(count, rows.Count); // append mode: a duplicate would be a second row
        Assert.Equal(Enumerable.Range(1, count).Select(i => OrderOf(i)), rows);
        Assert.Equal(DeliveryGuarantee.ExactlyOnce, result.Delivery);
        Assert.True(sink.Retries > 0, "the restart should have broken at least one write, which was retried");
    }

    /// <summary>Reads <paramref name="topic"/> until every id in <paramref name="expected"/> was seen (or the patience runs out); returns every id read.</summary>
    private List<long> ConsumeIds(string topic, IReadOnlyCollection<long> expected, string group)
    {
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig
        {
            BootstrapServers = kafka.BootstrapServers,
            GroupId = group,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            SessionTimeoutMs = 6000,
        }).SetLogHandler((_, _) => { }).Build();
        consumer.Subscribe(topic);
        var ids = new List<long>();
        var missing = expected.ToHashSet();
        var deadline = DateTime.UtcNow + Patience;
        while (missing.Count > 0 && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } result)
            {
                var id = JsonDocument.Parse(result.Message.Value).RootElement.GetProperty("id").GetInt64();
                ids.Add(id);
                missing.Remove(id);
            }
        }

        consumer.Close();
        return ids;
    }

    [Fact]
    public async Task Tombstones_on_a_changelog_topic_delete_the_rows_a_stream_table_join_sees_when_a_tombstone_callback_is_given()
    {
        // A compacted topic of rates keyed by currency: every currency gets a rate at t0, the even ones a tombstone at
        // t0+100, currency 0 a new rate at t0+200. Trades at t0+50, t0+150 and t0+250 meet the rate valid then.
        const long t0 = 1_700_000_000_000;
        const int currencies = 20;
        var trades = kafka.NewTopic("fx-trades", 2);
        var rates = kafka.NewTopic("fx-rates", 2);
        var expected = new List<(long Trade, long Rate)>();
        using (var producer = new ProducerBuilder<string?, byte[]?>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build())
        {
            void Send(string topic, string? key, byte[]? value, long time) =>
                producer.Produce(topic, new Message<string?, byte[]?> { Key = key, Value = value, Timestamp = new Timestamp(time, TimestampType.CreateTime) });
            static byte[] RateJson(int c, long value, long time) => Encoding.UTF8.GetBytes($$"""{"currency":"c{{c}}","value":{{value}},"time":{{time}}}""");
            static byte[] TradeJson(long id, int c, long time) => Encoding.UTF8.GetBytes($$"""{"id":{{id}},"currency":"c{{c}}","amount":1,"time":{{time}}}""");
            for (var c = 0; c < currencies; c++)
            {
                Send(rates, $"c{c}", RateJson(c, c + 1, t0), t0);
                if (c % 2 == 0)
                {
                    Send(rates, $"c{c}", null, t0 + 100);
                }

                if (c == 0)
                {
                    Send(rates, "c0", RateJson(0, 100, t0 + 200), t0 + 200);
                }

                Send(trades, $"c{c}", TradeJson(1000 + c, c, t0 + 50), t0 + 50);
                Send(trades, $"c{c}", TradeJson(2000 + c, c, t0 + 150), t0 + 150);
                Send(trades, $"c{c}", TradeJson(3000 + c, c, t0 + 250), t0 + 250);
                expected.Add((1000 + c, c + 1));
                expected.Add((2000 + c, c % 2 == 0 ? -1 : c + 1));
                expected.Add((3000 + c, c == 0 ? 100 : c % 2 == 0 ? -1 : c + 1));
            }

            // A tombstone without a key deletes nothing: dead-lettered, the callback never sees it.
            Send(rates, null, null, t0 + 100);

            // Far later in both topics, so the watermark passes every trade above (each other partition goes idle at its end).
            Send(rates, "late", RateJson(99, 99, t0 + 60_000), t0 + 60_000);
            Send(trades, "late", TradeJson(0, 99, t0 + 60_000), t0 + 60_000);
            producer.Flush();
        }

        var tombstones = 0;
        var pipeline = new KafkaTradesAtRate
        {
            Trades = new KafkaSource<FxTrade, FxTrade.JsonCodec>(Source(trades, "fx-trades-" + Guid.NewGuid().ToString("N"))),
            Rates = new KafkaSource<FxRate, FxRate.JsonCodec>(Source(rates, "fx-rates-" + Guid.NewGuid().ToString("N")), tombstone: message =>
            {
                Interlocked.Increment(ref tombstones);
                return new FxRate(Encoding.UTF8.GetString(message.Key), 0, new DateTimeOffset(message.Timestamp!.Value).ToUnixTimeMilliseconds(), ChangeKind.Delete);
            }),
            Output = new CountingSink<(long Trade, long Rate)>(),
        };
        var deadLetters = Path.Combine(_work, "dead.jsonl");
        using var stop = new CancellationTokenSource();
        // One member per group: no rebalance, so nothing is read twice.
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = deadLetters, StateDirectory = Path.Combine(_work, "state") }, stop.Token);
        await WaitUntil(() => pipeline.Output.Items.Count(p => p.Trade != 0) >= expected.Count, run, "every trade priced");
        await stop.CancelAsync();
        var result = await run;

        Assert.Equal(expected.Order(), pipeline.Output.Items.Where(p => p.Trade != 0).Order());
        Assert.Equal(currencies / 2, tombstones);
        Assert.EndsWith("; tombstones become records)", pipeline.Rates.Describe(), StringComparison.Ordinal); // --explain says so
        Assert.DoesNotContain("tombstones", pipeline.Trades.Describe(), StringComparison.Ordinal);
        Assert.Equal(1, result.Malformed);
        var letter = JsonDocument.Parse(Assert.Single(File.ReadAllLines(deadLetters))).RootElement;
        Assert.Equal("NoValue", letter.GetProperty("errorType").GetString());
        Assert.Contains("neither a value nor a key", letter.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    /// <summary>Waits until <paramref name="condition"/> holds (polled); fails fast if the run ends first.</summary>
    private static async Task WaitUntil(Func<bool> condition, Task run, string what, TimeSpan? patience = null)
    {
        var deadline = DateTime.UtcNow + (patience ?? Patience);
        while (!condition())
        {
            if (run.IsCompleted)
            {
                await run;
                Assert.Fail($"the run ended before {what}");
            }

            Assert.True(DateTime.UtcNow < deadline, $"not within {patience ?? Patience}: {what}");
            await Task.Delay(20);
        }
    }

    /// <summary>Waits until the table has at least <paramref name="rows"/> rows; fails fast if the run ends first.</summary>
    internal static async Task<long> WaitForRows(string connection, long rows, Task run, string table = "orders")
    {
        // The pipeline commits on its own schedule; a database is observed by polling it.
        var deadline = DateTime.UtcNow + Patience;
        long count = 0;
        while (DateTime.UtcNow < deadline)
        {
            if (run.IsCompleted)
            {
                await run; // surfaces the run's failure
                Assert.Fail($"the run ended with {count} rows, before reaching {rows}");
            }

            try
            {
                await using var db = new NpgsqlConnection(connection);
                await db.OpenAsync();
                await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table}", db);
                count = (long)(await command.ExecuteScalarAsync() ?? 0L);
                if (count >= rows)
                {
                    return count;
                }
            }
            catch (NpgsqlException)
            {
                // the table does not exist yet, or the server is restarting
            }

            await Task.Delay(50);
        }

        Assert.Fail($"only {count} of {rows} rows arrived within {Patience}");
        return count;
    }

    [Fact]
    public async Task Eight_partitions_on_two_cores_make_progress_without_blocking_pool_threads_and_stop_within_the_grace_period()
    {
        // librdkafka's Consume blocks for up to the poll timeout. Run on thread-pool threads, eight of them would hold
        // the pool (minimum threads left at the default) while the run's own continuations wait for threads to be
        // injected. Each reader polls on a thread of its own: the metadata callback, called inside the poll, sees it.
        var topic = kafka.NewTopic("eight", 8);
        var orders = Enumerable.Range(1, 4_000).Select(i => OrderOf(i)).ToArray();
        kafka.Produce(topic, orders.Select(o => ((string?)$"k{o.Id}", (byte[]?)Json(o))));
        var pollThreads = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        var source = new KafkaSource<Order, Order.JsonCodec>(Source(topic, "eight-" + Guid.NewGuid().ToString("N")), (ref Order _, KafkaMessage _) =>
            pollThreads[Thread.CurrentThread.Name ?? "?"] = Thread.CurrentThread.IsThreadPoolThread);
        var pipeline = new KafkaOrders { Orders = source, Output = new CountingSink<Order>() };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 8, GracePeriod = TimeSpan.FromSeconds(10) }, stop.Token);
        await pipeline.Output.WhenCount(orders.Length).WaitAsync(Patience);

        // At-least-once: while eight members join the group one after another, a partition may move before its first
        // commit, and its new owner reads a few of its records again — so wait for every id, not for a count.
        var deadline = DateTime.UtcNow + Patience;
        while (pipeline.Output.Items.Select(o => o.Id).Distinct().Count() < orders.Length)
        {
            Assert.True(DateTime.UtcNow < deadline, "not every order arrived");
            await Task.Delay(20); // polling the sink, with a deadline
        }

        await stop.CancelAsync();
        var result = await run; // a run that cannot drain within the grace period throws PipelineAbortedException

        Assert.Equal(PipelineOutcome.Stopped, result.Outcome);
        Assert.Equal(orders.Select(o => o.Id).Order(), pipeline.Output.Items.Select(o => o.Id).Distinct().Order());
        Assert.NotEmpty(pollThreads);
        Assert.All(pollThreads, thread => Assert.False(thread.Value, $"polled on thread-pool thread '{thread.Key}'"));
        Assert.All(pollThreads.Keys, name => Assert.StartsWith("kafka ", name, StringComparison.Ordinal));
    }
}
