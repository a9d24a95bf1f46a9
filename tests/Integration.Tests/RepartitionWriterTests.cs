using System.Text;
using Compiled.Kafka;
using Confluent.Kafka;

namespace Compiled.Integration.Tests;

/// <summary>
/// The writing half of a repartition hop (issue 15, being built) against the mock cluster: it re-keys a topic keyed
/// otherwise, and a restart from an earlier commit writes messages again, which the keyed side's origin ledger drops.
/// </summary>
[Collection(nameof(Infrastructure))]
public sealed class RepartitionWriterTests(KafkaFixture kafka)
{
    private const int Targets = 3;
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Every_message_reaches_its_keys_partition_once_through_the_ledger_though_a_restart_writes_some_again()
    {
        const long t0 = 1_700_000_000_000;
        var source = kafka.NewTopic("rp-trades", 4);
        var target = kafka.NewTopic("rp-trades-by-currency", Targets);
        var group = "rp-" + Guid.NewGuid().ToString("N");

        // Trades keyed by their id, so every currency is spread over every source partition; three that the keyed side
        // will dead-letter: two that do not decode, one whose key selector throws.
        var sent = new Dictionary<(int Partition, long Offset), byte[]>();
        var trades = new Dictionary<(int Partition, long Offset), FxTrade>();
        using var producer = new ProducerBuilder<string, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build();
        async Task SendAsync(string key, byte[] value, FxTrade? trade)
        {
            var delivered = await producer.ProduceAsync(source, new Message<string, byte[]> { Key = key, Value = value, Headers = [new Header("trace", Encoding.UTF8.GetBytes(key))] });
            sent[(delivered.Partition.Value, delivered.Offset.Value)] = value;
            if (trade is { } t)
            {
                trades[(delivered.Partition.Value, delivered.Offset.Value)] = t;
            }
        }

        async Task SendTradesAsync(int from, int to)
        {
            for (var i = from; i < to; i++)
            {
                var trade = new FxTrade(i, i == 1_777 ? "boom" : $"c{i % 7}", 1, t0 + (i * 10) + (i % 5 * 3));
                await SendAsync($"t{i}", Encoding.UTF8.GetBytes($$"""{"id":{{trade.Id}},"currency":"{{trade.Currency}}","amount":1,"time":{{trade.Time}}}"""), trade);
            }
        }

        var options = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = source, SessionTimeout = TimeSpan.FromSeconds(6) };
        var key = new CurrencyKey();

        // The first writer commits once, after the first 1,000 trades, writes the rest — all of it acknowledged — and
        // crashes before its next commit.
        await SendTradesAsync(0, 1_000);
        var first = new KafkaRepartitionWriter<FxTrade, FxTrade.JsonCodec>(options, group, target, Targets, key, Timeout.InfiniteTimeSpan);
        using var stopFirst = new CancellationTokenSource();
        using var crash = new CancellationTokenSource();
        var firstRun = first.RunAsync(stopFirst.Token, crash.Token);
        await WaitUntilAsync(() => first.Forwarded == 1_000, firstRun);
        first.RequestCommit();
        await WaitUntilAsync(() => first.Commits == 1, firstRun);
        await SendTradesAsync(1_000, 2_000);
        await SendAsync("bad-1", Encoding.UTF8.GetBytes("{not json"), null);
        await SendAsync("bad-2", Encoding.UTF8.GetBytes("""{"id":"seven"}"""), null);
        await WaitUntilAsync(() => first.Acknowledged == sent.Count, firstRun);
        await crash.CancelAsync();
        await firstRun;
        Assert.Equal(1, first.Commits);

        // The next writer starts at the commit and writes the last 1,002 messages a second time.
        var second = new KafkaRepartitionWriter<FxTrade, FxTrade.JsonCodec>(options, group, target, Targets, key, TimeSpan.FromMilliseconds(100));
        using var stopSecond = new CancellationTokenSource();
        var secondRun = second.RunAsync(stopSecond.Token);
        await WaitUntilAsync(() => second.Forwarded >= sent.Count - 1_000, secondRun);
        await stopSecond.CancelAsync();
        await secondRun; // the last marks and the commit
        Assert.Equal(sent.Count - 1_000, second.Forwarded);

        // Read the hop's topic back as the keyed side will: a ledger per partition.
        var ledgers = Enumerable.Range(0, Targets).Select(_ => new OriginLedger()).ToArray();
        var admitted = new Dictionary<(int Partition, long Offset), int>();
        var repeats = 0;
        var marks = new Dictionary<(int Target, int Origin), long>();
        foreach (var message in ReadAll(target))
        {
            var partition = message.Partition.Value;
            if (RepartitionHeaders.TryReadMark(message.Message.Headers, out var markOrigin, out var eventTime, out var origins, out _, out _))
            {
                Assert.Null(message.Message.Value);
                Assert.Equal(4, origins);
                marks[(partition, markOrigin)] = eventTime;
                continue;
            }

            Assert.True(RepartitionHeaders.TryReadOrigin(message.Message.Headers, out var origin, out var offset));
            if (!ledgers[partition].Admit(source, origin, offset))
            {
                repeats++;
                continue;
            }

            Assert.True(admitted.TryAdd((origin, offset), partition));
            Assert.Equal(sent[(origin, offset)], message.Message.Value);
            Assert.Equal(Encoding.UTF8.GetString(message.Message.Headers.GetLastBytes("trace")), Encoding.UTF8.GetString(message.Message.Key!));
        }

        Assert.Equal(sent.Keys.Order(), admitted.Keys.Order());
        Assert.Equal(sent.Count - 1_000, repeats); // the first writer had every one of them acknowledged
        foreach (var ((origin, offset), partition) in admitted)
        {
            var expected = trades.TryGetValue((origin, offset), out var trade) && trade.Currency != "boom"
                ? key.PartitionOf(trade, Targets, out _)
                : origin % Targets; // not keyed: the keyed side dead-letters it wherever it lands
            Assert.Equal(expected, partition);
        }

        // Each partition of the hop heard every source partition's largest event time (the second writer's last mark).
        foreach (var origin in sent.Keys.Select(k => k.Partition).Distinct())
        {
            var largest = trades.Where(t => t.Key.Partition == origin && t.Value.Currency != "boom").Max(t => t.Value.Time);
            for (var partition = 0; partition < Targets; partition++)
            {
                Assert.Equal(largest, marks[(partition, origin)]);
            }
        }

        // A writer that stops commits once, before it leaves the group: the revoke on its way out commits nothing (a
        // commit inside the consumer's Close can wait forever, and a stopping copy then never exits).
        await SendTradesAsync(2_000, 2_010);
        var third = new KafkaRepartitionWriter<FxTrade, FxTrade.JsonCodec>(options, group, target, Targets, key, Timeout.InfiniteTimeSpan);
        using var stopThird = new CancellationTokenSource();
        var thirdRun = third.RunAsync(stopThird.Token);
        await WaitUntilAsync(() => third.Acknowledged == 10, thirdRun);
        await stopThird.CancelAsync();
        await thirdRun;
        Assert.Equal(1, third.Commits);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, Task run)
    {
        using var patience = new CancellationTokenSource(Patience);
        while (!condition())
        {
            if (run.IsCompleted)
            {
                await run; // a writer that failed says why
                Assert.Fail("the writer stopped before the condition held");
            }

            await Task.Delay(20, patience.Token); // polls a condition; the deadline fails the test
        }
    }

    private List<ConsumeResult<byte[]?, byte[]?>> ReadAll(string topic)
    {
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = kafka.BootstrapServers,
            GroupId = "read-" + Guid.NewGuid().ToString("N"),
            EnablePartitionEof = true,
        }).SetLogHandler((_, _) => { }).Build();
        consumer.Assign(Enumerable.Range(0, Targets).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var ended = new HashSet<int>();
        var messages = new List<ConsumeResult<byte[]?, byte[]?>>();
        var deadline = DateTime.UtcNow + Patience;
        while (ended.Count < Targets)
        {
            Assert.True(DateTime.UtcNow < deadline, "the hop's topic was not read to its end in time");
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is not { } consumed)
            {
                continue;
            }

            if (consumed.IsPartitionEOF)
            {
                ended.Add(consumed.Partition.Value);
            }
            else
            {
                messages.Add(consumed);
            }
        }

        return messages;
    }

    /// <summary>Trades keyed by currency, partitioned by a hash of its characters; the currency "boom" makes it throw.</summary>
    private sealed class CurrencyKey : IRepartitionKey<FxTrade>
    {
        public bool HasEventTime => true;

        public int PartitionOf(in FxTrade record, int partitions, out long eventTime)
        {
            if (record.Currency == "boom")
            {
                throw new InvalidOperationException("no such currency");
            }

            eventTime = record.Time;
            var hash = 17u;
            foreach (var c in record.Currency)
            {
                hash = (hash * 31) + c;
            }

            return (int)(hash % (uint)partitions);
        }
    }
}
