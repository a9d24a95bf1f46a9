using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Compiled.Kafka;
using Compiled.Kafka.Testing;
using Confluent.Kafka;

namespace Compiled.Throughput;

[Pipeline(Name = "bench-kafka-kafka")]
public sealed partial class KafkaToKafka
{
    [Source] public KafkaSource<Sale, Sale.JsonCodec> Input { get; set; } = new(new KafkaSourceOptions());

    [Transform]
    public static Sale Discount(Sale sale) => sale with { Amount = sale.Amount * 0.9m };

    [Sink] public KafkaSink<Sale, Sale.JsonCodec> Output { get; set; } = new(new KafkaSinkOptions());
}

/// <summary>System.Text.Json's source-generated metadata for the hand-written typed baseline (what a user writes for AOT).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(Sale))]
internal sealed partial class SaleJson : JsonSerializerContext;

/// <summary>
/// Kafka → Kafka on librdkafka's mock cluster (in this process): Compiled next to Confluent.Kafka used by hand, once
/// passing the bytes through (what the client itself costs per message) and once as a user writes it with
/// System.Text.Json (decode, change a field, encode). Reports time and bytes allocated per message; with
/// <c>--kafka-alloc</c>, also which types the allocations were (sampled by the runtime every ~100 KB).
/// </summary>
internal static class KafkaScenario
{
    private const string Input = "kk-in";
    private const int Partitions = 16;

    public static async Task RunAsync(int records, int warmups, int repetitions, bool allocationTypes, List<(string, string)> results)
    {
        Console.WriteLine();
        Console.WriteLine("scenario: Kafka (mock cluster) -> Kafka, Compiled against Confluent.Kafka by hand");
        using var kafka = KafkaMockCluster.Start(brokers: 3);
        kafka.CreateTopic(Input, Partitions);
        var sales = Enumerable.Range(1, records).Select(PostgresScenario.Create).ToArray();
        var messageBytes = PostgresScenario.Produce(kafka.BootstrapServers, Input, sales);
        var recordBytes = (int)(messageBytes / records);

        var bytesThrough = new Measurement("Confluent by hand, bytes through", records, recordBytes);
        var typed = new Measurement("Confluent by hand, System.Text.Json", records, recordBytes);
        var compiled = new Measurement("Compiled KafkaSource -> KafkaSink, p1", records, recordBytes);
        var consumeByHand = new Measurement("Confluent by hand, consume + decode only", records, recordBytes);
        var consumeCompiled = new Measurement("Compiled KafkaSource -> count, p1", records, recordBytes);
        var run = 0;
        for (var rep = 0; rep < warmups + repetitions; rep++)
        {
            var measure = rep >= warmups;
            var profile = allocationTypes && rep == warmups;
            await Profiled(bytesThrough, profile, () => bytesThrough.RunTimedAsync(() => Task.Run(() => ByHand(kafka, records, ++run, typed: false)), measure));
            await Profiled(typed, profile, () => typed.RunTimedAsync(() => Task.Run(() => ByHand(kafka, records, ++run, typed: true)), measure));
            await Profiled(compiled, profile, () => compiled.RunTimedAsync(() => RunCompiled(kafka, records, ++run), measure));
            await consumeByHand.RunTimedAsync(() => Task.Run(() => ConsumeByHand(kafka, records, ++run)), measure);
            await consumeCompiled.RunTimedAsync(() => ConsumeCompiled(kafka, records, ++run), measure);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{records:N0} messages of {recordBytes} bytes of JSON on {Partitions} partitions, written to a new topic of {Partitions} partitions each run"));
        foreach (var m in new[] { bytesThrough, typed, compiled })
        {
            Console.WriteLine(m.Row(typed.MedianSeconds));
        }

        Console.WriteLine("consuming alone (the source side of Kafka -> anything):");
        foreach (var m in new[] { consumeByHand, consumeCompiled })
        {
            Console.WriteLine(m.Row(consumeByHand.MedianSeconds));
        }

        results.Add(("kafka_to_kafka_vs_hand_typed", (typed.MedianSeconds / compiled.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
        results.Add(("kafka_to_kafka_bytes_per_message", compiled.AllocatedBytesPerRecord.ToString("F0", CultureInfo.InvariantCulture)));
    }

    private static async Task Profiled(Measurement measurement, bool profile, Func<Task> body)
    {
        if (!profile)
        {
            await body();
            return;
        }

        using var listener = new AllocationListener();
        await body();
        Console.WriteLine($"  allocations of '{measurement.Name}' by type (sampled, ~100 KB per sample):");
        foreach (var (type, bytes) in listener.Top(12))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {bytes / (double)measurement.Records,8:F1} B/msg  {type}"));
        }
    }

    private static string Output(int run) => string.Create(CultureInfo.InvariantCulture, $"kk-out-{run}");

    /// <summary>
    /// The hand-written loop a user writes: consume, (decode, change, encode,) produce with a delivery handler that
    /// counts acknowledgements and keeps the first error, auto-committed offsets. Timed from the first message to the
    /// last acknowledgement.
    /// </summary>
    private static double? ByHand(KafkaMockCluster kafka, int records, int run, bool typed)
    {
        var output = Output(run);
        kafka.CreateTopic(output, Partitions);
        using var consumer = HandConsumer(kafka, run);
        using var producer = new ProducerBuilder<Null, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, EnableIdempotence = true, Acks = Acks.All, LingerMs = 5 })
            .SetLogHandler((_, _) => { })
            .Build();
        consumer.Subscribe(Input);
        long delivered = 0;
        Error? failure = null;
        void Delivered(DeliveryReport<Null, byte[]> report)
        {
            if (report.Error.IsError)
            {
                failure ??= report.Error;
            }

            Interlocked.Increment(ref delivered);
        }

        Stopwatch? clock = null;
        var consumed = 0;
        while (consumed < records)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (result is null)
            {
                continue;
            }

            clock ??= Stopwatch.StartNew();
            consumed++;
            var value = result.Message.Value;
            if (typed)
            {
                var sale = JsonSerializer.Deserialize(value, SaleJson.Default.Sale);
                sale = sale with { Amount = sale.Amount * 0.9m };
                value = JsonSerializer.SerializeToUtf8Bytes(sale, SaleJson.Default.Sale);
            }

            while (true)
            {
                try
                {
                    producer.Produce(output, new Message<Null, byte[]> { Value = value }, Delivered);
                    break;
                }
                catch (ProduceException<Null, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(10));
                }
            }
        }

        while (Interlocked.Read(ref delivered) < records)
        {
            producer.Flush(TimeSpan.FromMilliseconds(100));
        }

        var elapsed = clock!.Elapsed.TotalSeconds;
        if (failure is { } error)
        {
            throw new KafkaException(error);
        }

        consumer.Close();
        Check(kafka, output, records);
        return elapsed;
    }

    private static async Task<double?> RunCompiled(KafkaMockCluster kafka, int records, int run)
    {
        var output = Output(run);
        kafka.CreateTopic(output, Partitions);
        var source = Source(kafka, run);
        var pipeline = new KafkaToKafka { Input = source, Output = new KafkaSink<Sale, Sale.JsonCodec>(new KafkaSinkOptions { BootstrapServers = kafka.BootstrapServers, Topic = output }) };
        using var watermarks = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "kk-watch" }).SetLogHandler((_, _) => { }).Build();
        var elapsed = await PostgresScenario.RunUntil(pipeline.RunAsync, source, () => Written(watermarks, output) >= records, parallelism: 1);
        Check(kafka, output, records);
        return elapsed;
    }

    private static KafkaSource<Sale, Sale.JsonCodec> Source(KafkaMockCluster kafka, int run) => new(new KafkaSourceOptions
    {
        BootstrapServers = kafka.BootstrapServers,
        Topics = Input,
        GroupId = string.Create(CultureInfo.InvariantCulture, $"kk-{run}"),
        StartFrom = KafkaStart.Earliest,
        SessionTimeout = TimeSpan.FromSeconds(6),
    });

    /// <summary>The consumer a user's hand-written loop builds: a group of the run's own, from the earliest offset.</summary>
    private static IConsumer<Ignore, byte[]> HandConsumer(KafkaMockCluster kafka, int run) => new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig
    {
        BootstrapServers = kafka.BootstrapServers,
        GroupId = string.Create(CultureInfo.InvariantCulture, $"kk-{run}"),
        AutoOffsetReset = AutoOffsetReset.Earliest,
        SessionTimeoutMs = 6000,
    }).SetLogHandler((_, _) => { }).Build();

    /// <summary>Consuming alone, as a user writes it: consume, decode with System.Text.Json, count.</summary>
    private static double? ConsumeByHand(KafkaMockCluster kafka, int records, int run)
    {
        using var consumer = HandConsumer(kafka, run);
        consumer.Subscribe(Input);
        Stopwatch? clock = null;
        var consumed = 0;
        decimal total = 0;
        while (consumed < records)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is not { } result)
            {
                continue;
            }

            clock ??= Stopwatch.StartNew();
            consumed++;
            total += JsonSerializer.Deserialize(result.Message.Value, SaleJson.Default.Sale).Amount;
        }

        var elapsed = clock!.Elapsed.TotalSeconds;
        consumer.Close();
        return total > 0 ? elapsed : throw new InvalidOperationException("no amounts decoded");
    }

    private static async Task<double?> ConsumeCompiled(KafkaMockCluster kafka, int records, int run)
    {
        var source = Source(kafka, run);
        var pipeline = new KafkaToCount { Input = source };
        return await PostgresScenario.RunUntil(pipeline.RunAsync, source, () => pipeline.Count.Count >= records, parallelism: 1);
    }

    /// <summary>Messages in the topic: the sum of its partitions' high watermarks.</summary>
    private static long Written(IConsumer<Ignore, Ignore> client, string topic)
    {
        long sum = 0;
        for (var p = 0; p < Partitions; p++)
        {
            sum += client.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(5)).High.Value;
        }

        return sum;
    }

    private static void Check(KafkaMockCluster kafka, string topic, int records)
    {
        using var client = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "kk-check" }).SetLogHandler((_, _) => { }).Build();
        var written = Written(client, topic);
        if (written < records)
        {
            throw new InvalidOperationException($"{topic} holds {written} messages, expected {records}");
        }
    }

    /// <summary>The runtime's allocation samples (GCAllocationTick: one event per ~100 KB allocated, with the type).</summary>
    private sealed class AllocationListener : EventListener
    {
        private readonly Dictionary<string, long> _bytes = [];
        private readonly Lock _lock = new();

        public List<(string Type, long Bytes)> Top(int count)
        {
            lock (_lock)
            {
                return [.. _bytes.OrderByDescending(p => p.Value).Take(count).Select(p => (p.Key, p.Value))];
            }
        }

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null)
            {
                return;
            }

            var names = e.PayloadNames!;
            var type = names.IndexOf("TypeName") is var t and >= 0 ? e.Payload[t] as string ?? "?" : "?";
            var amount = names.IndexOf("AllocationAmount64") is var a and >= 0 ? Convert.ToInt64(e.Payload[a], CultureInfo.InvariantCulture) : 100_000;
            lock (_lock)
            {
                _bytes[type] = _bytes.GetValueOrDefault(type) + amount;
            }
        }
    }
}
