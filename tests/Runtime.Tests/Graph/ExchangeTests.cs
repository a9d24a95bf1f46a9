namespace Compiled.Runtime.Tests.Graph;

/// <summary>How an exchange port routes a producer's records and watermarks to the consumer partitions.</summary>
public sealed class ExchangeTests
{
    private sealed class Recorder(Exchange<Keyed<int, long>> exchange) : IExchangeConsumer<Keyed<int, long>>
    {
        public List<(int Input, ExchangeSignal Signal, long Watermark, long[] Records, bool Active)> Received { get; } = [];

        public ValueTask ReceiveAsync(ExchangeBatch<Keyed<int, long>> batch, CancellationToken cancellationToken)
        {
            Received.Add((batch.Input, batch.Signal, batch.Watermark, batch.Items.AsSpan(0, batch.Count).ToArray().Select(k => k.Record).ToArray(), batch.Active));
            exchange.Return(batch);
            return ValueTask.CompletedTask;
        }
    }

    private static (Exchange<Keyed<int, long>> Exchange, Recorder[] Consumers) Inline(ExchangeRouting routing, int producers, int consumers)
    {
        var exchange = new Exchange<Keyed<int, long>>("w", routing, producers, consumers, inline: true, queueCapacity: 4);
        var recorders = Enumerable.Range(0, consumers).Select(_ => new Recorder(exchange)).ToArray();
        for (var c = 0; c < consumers; c++)
        {
            exchange.Attach(c, recorders[c]);
        }

        return (exchange, recorders);
    }

    private static async Task Write(ExchangePort<Keyed<int, long>> port, params (int Key, long Time)[] records)
    {
        foreach (var (key, time) in records)
        {
            port.Buffer.Add(new Keyed<int, long>(key, time, time));
        }

        await port.FlushAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Hash_routing_sends_each_key_to_one_consumer_and_the_watermark_to_all()
    {
        var (exchange, consumers) = Inline(ExchangeRouting.Hash, producers: 2, consumers: 3);
        var port = new ExchangePort<Keyed<int, long>>(exchange, producer: 1, eventTime: true, forwarded: false, TimeSpan.FromMilliseconds(10), CancellationToken.None);
        var records = Enumerable.Range(0, 60).Select(i => (Key: i % 7, Time: 100L + i)).ToArray();
        await Write(port, records);

        for (var c = 0; c < 3; c++)
        {
            var batch = Assert.Single(consumers[c].Received);
            Assert.Equal(1, batch.Input); // tagged with the producer
            Assert.Equal(159 - 10 - 1, batch.Watermark); // largest time − out-of-orderness − 1 ms, to every consumer
            Assert.All(batch.Records, time => Assert.Equal(c, KeyHash.Partition(KeyHash.Of((int)((time - 100) % 7)), 3)));
        }

        Assert.Equal(records.Select(r => r.Time).Order(), consumers.SelectMany(c => c.Received.Single().Records).Order());
    }

    [Fact]
    public async Task Broadcast_routing_sends_every_record_to_every_consumer()
    {
        var (exchange, consumers) = Inline(ExchangeRouting.Broadcast, producers: 1, consumers: 3);
        var port = new ExchangePort<Keyed<int, long>>(exchange, producer: 0, eventTime: true, forwarded: false, TimeSpan.Zero, CancellationToken.None);
        await Write(port, (1, 10), (2, 20), (3, 30));
        Assert.All(consumers, c => Assert.Equal([10L, 20L, 30L], c.Received.Single().Records));
    }

    [Fact]
    public async Task Forward_routing_feeds_the_consumer_of_the_same_index_as_its_only_input()
    {
        var (exchange, consumers) = Inline(ExchangeRouting.Forward, producers: 2, consumers: 2);
        var port = new ExchangePort<Keyed<int, long>>(exchange, producer: 1, eventTime: true, forwarded: false, TimeSpan.Zero, CancellationToken.None);
        await Write(port, (5, 10), (6, 20));
        Assert.Empty(consumers[0].Received);
        var batch = Assert.Single(consumers[1].Received);
        Assert.Equal(0, batch.Input); // a forward consumer has one input
        Assert.Equal([10L, 20L], batch.Records);
        Assert.Equal(1, exchange.InputsOf(1));
    }

    [Fact]
    public async Task A_forwarded_watermark_is_sent_when_it_moves_even_without_records_and_an_idle_producer_says_so_once()
    {
        var (exchange, consumers) = Inline(ExchangeRouting.Hash, producers: 1, consumers: 2);
        var port = new ExchangePort<Keyed<int, long>>(exchange, producer: 0, eventTime: true, forwarded: true, TimeSpan.Zero, CancellationToken.None);
        port.ForwardWatermark(500);
        await port.FlushAsync(CancellationToken.None);
        await port.FlushAsync(CancellationToken.None); // unchanged: nothing sent
        Assert.All(consumers, c => Assert.Equal((0, ExchangeSignal.Data, 500L), c.Received.Select(r => (r.Input, r.Signal, r.Watermark)).Single()));

        port.DeclareIdle();
        await port.FlushAsync(CancellationToken.None);
        port.DeclareIdle();
        await port.FlushAsync(CancellationToken.None); // still idle: said once
        Assert.All(consumers, c => Assert.Equal(1, c.Received.Count(r => r.Signal == ExchangeSignal.Idle)));

        await port.CompleteAsync(CancellationToken.None);
        Assert.All(consumers, c => Assert.Equal(ExchangeSignal.End, c.Received[^1].Signal));
    }

    [Fact]
    public async Task A_producer_back_from_idle_tells_every_consumer_also_those_its_records_do_not_go_to()
    {
        var (exchange, consumers) = Inline(ExchangeRouting.Hash, producers: 1, consumers: 2);
        var port = new ExchangePort<Keyed<int, long>>(exchange, producer: 0, eventTime: true, forwarded: false, TimeSpan.Zero, CancellationToken.None);
        port.DeclareIdle();
        await port.FlushAsync(CancellationToken.None);
        Assert.All(consumers, c => Assert.Equal(ExchangeSignal.Idle, c.Received.Single().Signal));

        // One record, for consumer 0 only: consumer 1 gets no record but hears that the producer is active again, so
        // its watermark waits for the producer before the producer's records for it arrive.
        var key = Enumerable.Range(0, 100).First(k => KeyHash.Partition(KeyHash.Of(k), 2) == 0);
        await Write(port, (key, 500));
        Assert.Equal([500L], consumers[0].Received[^1].Records);
        Assert.True(consumers[0].Received[^1].Active);
        Assert.Empty(consumers[1].Received[^1].Records);
        Assert.True(consumers[1].Received[^1].Active);

        await Write(port, (key, 600)); // active already: nothing more to say
        Assert.False(consumers[0].Received[^1].Active);
        Assert.False(consumers[1].Received[^1].Active);
    }

    [Fact]
    public async Task With_splits_the_watermark_is_the_slowest_active_split_and_an_idle_split_holds_nothing_back()
    {
        var (exchange, consumers) = Inline(ExchangeRouting.Forward, producers: 1, consumers: 1);
        var port = new ExchangePort<Keyed<int, long>>(exchange, producer: 0, eventTime: true, forwarded: false, TimeSpan.FromMilliseconds(10), CancellationToken.None);
        var splits = new SourceSplits();
        splits.Add(0);
        splits.Add(1);
        port.ReadSplits(splits);

        // Split 0 is minutes ahead; split 1 has not delivered yet: it holds the watermark back from the start.
        Append(port, 0, 1_000, 1_100);
        await port.FlushAsync(CancellationToken.None);
        Assert.Equal(long.MinValue, consumers[0].Received[^1].Watermark);

        Append(port, 1, 100, 150);
        Append(port, 0, 1_200);
        await port.FlushAsync(CancellationToken.None);
        Assert.Equal(150 - 1 - 10, consumers[0].Received[^1].Watermark);

        // Split 1 read to its end: idle, so split 0 alone sets the watermark; with both idle, the largest of theirs.
        splits.SetIdle(1, idle: true);
        await port.FlushAsync(CancellationToken.None);
        Assert.Equal(1_200 - 1 - 10, consumers[0].Received[^1].Watermark);
        splits.Append(1); // split 1 has a record again: active, and ahead now
        Append(port, 1, 1_500);
        await port.FlushAsync(CancellationToken.None);
        Assert.Equal(1_200 - 1 - 10, consumers[0].Received[^1].Watermark);
        splits.SetIdle(0, idle: true);
        splits.SetIdle(1, idle: true);
        await port.FlushAsync(CancellationToken.None);
        Assert.Equal(1_500 - 1 - 10, consumers[0].Received[^1].Watermark);

        // A removed split (a revoked partition) no longer counts.
        splits.Remove(1);
        splits.SetIdle(0, idle: false);
        Append(port, 0, 2_000);
        await port.FlushAsync(CancellationToken.None);
        Assert.Equal(2_000 - 1 - 10, consumers[0].Received[^1].Watermark);
        Assert.Equal([1_000L, 1_100, 100, 150, 1_200, 1_500, 2_000], consumers[0].Received.SelectMany(r => r.Records));

        static void Append(ExchangePort<Keyed<int, long>> port, int split, params long[] times)
        {
            foreach (var time in times)
            {
                port.Buffer.Add(new Keyed<int, long>(1, time, time));
            }

            port.EndRun(split);
        }
    }
}
