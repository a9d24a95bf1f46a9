using System.Globalization;
using Compiled.Bench;
using Compiled.Connectors;
using Compiled.Kafka;
using Compiled.Kafka.Testing;
using Compiled.Postgres;
using Compiled.Postgres.Testing;
using Compiled.Runtime;
using Confluent.Kafka;
using Npgsql;
using NpgsqlTypes;

namespace Compiled.Throughput;

/// <summary>A sale as it arrives in Kafka (JSON) and as the table keeps it.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Sale([property: Key] long Id, string Customer, decimal Amount, int Quantity, DateTimeOffset At);

[Pipeline(Name = "bench-memory-postgres")]
public sealed partial class MemoryToPostgres
{
    [Source] public CollectionSource<Sale> Input { get; set; } = new();

    [Sink] public PostgresSink<Sale> Table { get; set; } = new(new PostgresSinkOptions());
}

[Pipeline(Name = "bench-kafka-postgres")]
public sealed partial class KafkaToPostgres
{
    [Source] public KafkaSource<Sale, Sale.JsonCodec> Input { get; set; } = new(new KafkaSourceOptions());

    [Sink] public PostgresSink<Sale> Table { get; set; } = new(new PostgresSinkOptions());
}

[Pipeline(Name = "bench-kafka-count")]
public sealed partial class KafkaToCount
{
    [Source] public KafkaSource<Sale, Sale.JsonCodec> Input { get; set; } = new(new KafkaSourceOptions());

    [Sink] public CountSink<Sale> Count { get; set; } = new();
}

/// <summary>
/// Kafka (librdkafka's mock cluster, in this process) → PostgreSQL (a throwaway local server), next to raw Npgsql
/// binary COPY of the same rows from memory, and the upsert next to a hand-written unnest upsert.
/// </summary>
internal static class PostgresScenario
{
    private const string Topic = "sales";
    private const int TopicPartitions = 16; // each mock partition keeps at most 5 MiB
    private const int UpsertBatch = PostgresSinkOptions.DefaultFlushRows;
    private const string Columns = "id, customer, amount, quantity, at";

    /// <summary>The pipelines' checkpoint interval (the default, 1 s; <c>--checkpoint-ms</c> changes it).</summary>
    public static TimeSpan CheckpointInterval { get; set; } = PipelineOptions.DefaultCheckpointInterval;

    public static async Task RunAsync(int records, int warmups, int repetitions, List<(string, string)> results)
    {
        Console.WriteLine();
        Console.WriteLine("scenario: Kafka (mock cluster) -> PostgreSQL, and the PostgreSQL sink against raw Npgsql");
        if (PostgresServer.FindBinaries() is null)
        {
            Console.WriteLine("  skipped: PostgreSQL server binaries not found (apt-get install postgresql-15)");
            return;
        }

        await using var server = await PostgresServer.StartAsync();
        var connection = await server.CreateDatabaseAsync("bench");
        using var kafka = KafkaMockCluster.Start(brokers: 3);
        kafka.CreateTopic(Topic, TopicPartitions);
        var sales = Enumerable.Range(1, records).Select(Create).ToArray();
        var messageBytes = Produce(kafka.BootstrapServers, Topic, sales);
        var recordBytes = (int)(messageBytes / records);
        await ExecuteAsync(connection, $"CREATE TABLE sales (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, quantity integer NOT NULL, at timestamptz NOT NULL)");

        // At-least-once may write a record twice without any failure (a commit the group refuses during a rebalance,
        // docs/delivery.md), so its run appends to a table without a key and is checked by distinct ids.
        await ExecuteAsync(connection, $"CREATE TABLE sales_at_least_once (id bigint NOT NULL, customer text NOT NULL, amount numeric NOT NULL, quantity integer NOT NULL, at timestamptz NOT NULL)");

        var copy = new Measurement("raw Npgsql binary COPY (memory, 1 connection)", records, recordBytes);
        var sinkAppend = new Measurement("PostgresSink append (memory source, p1)", records, recordBytes);
        var kafkaCount = new Measurement("KafkaSource -> count only (p2)", records, recordBytes);
        var kafkaAppend = new Measurement("Kafka -> PostgresSink append, at-least-once p2", records, recordBytes);
        var kafkaExactly = new Measurement("Kafka -> PostgresSink append, exactly-once p2", records, recordBytes);
        var kafkaExactlyStreamed = new Measurement("  the same, rows streamed (StreamRows 8192)", records, recordBytes);
        var handUpsert = new Measurement("hand-written unnest upsert (memory, 1 connection)", records, recordBytes);
        var sinkUpsert = new Measurement("PostgresSink upsert (memory source, p1)", records, recordBytes);
        var run = 0;
        var repeated = 0L;
        for (var rep = 0; rep < warmups + repetitions; rep++)
        {
            var measure = rep >= warmups;
            await ResetAsync(connection);
            await copy.RunAsync(() => Task.Run(() => RawCopy(connection, sales)), measure);
            await VerifyAsync(connection, records, copy.Name);

            await ResetAsync(connection);
            await sinkAppend.RunAsync(() => RunMemory(connection, sales, PostgresWriteMode.Append), measure);
            await VerifyAsync(connection, records, sinkAppend.Name);

            await kafkaCount.RunTimedAsync(() => RunKafkaCount(kafka.BootstrapServers, records, ++run), measure);

            await ResetAsync(connection);
            await kafkaAppend.RunTimedAsync(() => RunKafka(kafka.BootstrapServers, connection, records, exactlyOnce: false, ++run), measure);
            repeated += await VerifyAsync(connection, records, kafkaAppend.Name, AtLeastOnceTable);

            await ResetAsync(connection);
            await kafkaExactly.RunTimedAsync(() => RunKafka(kafka.BootstrapServers, connection, records, exactlyOnce: true, ++run), measure);
            await VerifyAsync(connection, records, kafkaExactly.Name);

            // Rows streamed into the open transaction as they arrive (off by default: it measured no gain here).
            await ResetAsync(connection);
            await kafkaExactlyStreamed.RunTimedAsync(() => RunKafka(kafka.BootstrapServers, connection, records, exactlyOnce: true, ++run, streamRows: 8192), measure);
            await VerifyAsync(connection, records, kafkaExactlyStreamed.Name);

            await ResetAsync(connection);
            await handUpsert.RunAsync(() => Task.Run(() => HandUpsert(connection, sales)), measure);
            await VerifyAsync(connection, records, handUpsert.Name);

            await ResetAsync(connection);
            await sinkUpsert.RunAsync(() => RunMemory(connection, sales, PostgresWriteMode.Upsert), measure);
            await VerifyAsync(connection, records, sinkUpsert.Name);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{records:N0} rows of 5 columns; Kafka messages {recordBytes} bytes of JSON on {TopicPartitions} partitions; PostgreSQL {server.Port} with fsync=off"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"at-least-once runs wrote {repeated:N0} records twice in all (no failure was injected)"));
        foreach (var m in new[] { copy, sinkAppend, kafkaCount, kafkaAppend, kafkaExactly, kafkaExactlyStreamed })
        {
            Console.WriteLine(m.Row(copy.MedianSeconds));
        }

        foreach (var m in new[] { handUpsert, sinkUpsert })
        {
            Console.WriteLine(m.Row(handUpsert.MedianSeconds));
        }

        static string Ratio(double value) => value.ToString("F3", CultureInfo.InvariantCulture);
        results.Add(("pg_copy_rows_per_second", copy.RecordsPerSecond.ToString("F0", CultureInfo.InvariantCulture)));
        results.Add(("pg_sink_append_vs_copy", Ratio(copy.MedianSeconds / sinkAppend.MedianSeconds)));
        results.Add(("kafka_source_records_per_second", kafkaCount.RecordsPerSecond.ToString("F0", CultureInfo.InvariantCulture)));
        results.Add(("kafka_to_pg_append_vs_copy", Ratio(copy.MedianSeconds / kafkaAppend.MedianSeconds)));
        results.Add(("kafka_to_pg_exactly_once_vs_copy", Ratio(copy.MedianSeconds / kafkaExactly.MedianSeconds)));
        results.Add(("kafka_to_pg_exactly_once_streamed_vs_copy", Ratio(copy.MedianSeconds / kafkaExactlyStreamed.MedianSeconds)));
        results.Add(("pg_sink_upsert_vs_hand_unnest", Ratio(handUpsert.MedianSeconds / sinkUpsert.MedianSeconds)));
    }

    internal static Sale Create(int i) => new(
        i,
        string.Create(CultureInfo.InvariantCulture, $"customer-{i % 1009:D4}"),
        Math.Round(1m + (i % 100_000) / 100m, 2),
        1 + (i % 7),
        new DateTimeOffset(2026, 11, 25, 0, 0, 0, TimeSpan.Zero).AddMilliseconds(i));

    internal static long Produce(string bootstrap, string topic, Sale[] sales)
    {
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = bootstrap, LingerMs = 20, EnableIdempotence = true })
            .SetLogHandler((_, _) => { })
            .Build();
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        long bytes = 0;
        foreach (var sale in sales)
        {
            buffer.ResetWrittenCount();
            Sale.JsonCodec.Encode(sale, buffer);
            bytes += buffer.WrittenCount;
            var message = new Message<byte[], byte[]> { Key = BitConverter.GetBytes(sale.Id), Value = buffer.WrittenSpan.ToArray() };
            while (true)
            {
                try
                {
                    producer.Produce(topic, message);
                    break;
                }
                catch (ProduceException<byte[], byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(10));
                }
            }
        }

        if (producer.Flush(TimeSpan.FromMinutes(2)) != 0)
        {
            throw new InvalidOperationException("the benchmark's messages were not all acknowledged");
        }

        return bytes;
    }

    private static void RawCopy(string connection, Sale[] sales)
    {
        using var db = new NpgsqlConnection(connection);
        db.Open();
        using var importer = db.BeginBinaryImport($"COPY sales ({Columns}) FROM STDIN (FORMAT BINARY)");
        foreach (var sale in sales)
        {
            importer.StartRow();
            importer.Write(sale.Id, NpgsqlDbType.Bigint);
            importer.Write(sale.Customer, NpgsqlDbType.Text);
            importer.Write(sale.Amount, NpgsqlDbType.Numeric);
            importer.Write(sale.Quantity, NpgsqlDbType.Integer);
            importer.Write(sale.At, NpgsqlDbType.TimestampTz);
        }

        importer.Complete();
    }

    private static void HandUpsert(string connection, Sale[] sales)
    {
        using var db = new NpgsqlConnection(connection);
        db.Open();
        var sql = $"""
            INSERT INTO sales ({Columns})
            SELECT * FROM unnest(@id, @customer, @amount, @quantity, @at)
            ON CONFLICT (id) DO UPDATE SET customer = excluded.customer, amount = excluded.amount, quantity = excluded.quantity, at = excluded.at
            """;
        for (var start = 0; start < sales.Length; start += UpsertBatch)
        {
            var batch = sales.AsSpan(start, Math.Min(UpsertBatch, sales.Length - start));
            var ids = new long[batch.Length];
            var customers = new string[batch.Length];
            var amounts = new decimal[batch.Length];
            var quantities = new int[batch.Length];
            var times = new DateTimeOffset[batch.Length];
            for (var i = 0; i < batch.Length; i++)
            {
                ids[i] = batch[i].Id;
                customers[i] = batch[i].Customer;
                amounts[i] = batch[i].Amount;
                quantities[i] = batch[i].Quantity;
                times[i] = batch[i].At;
            }

            using var transaction = db.BeginTransaction();
            using var command = new NpgsqlCommand(sql, db, transaction);
            command.Parameters.Add(new NpgsqlParameter<long[]>("id", ids));
            command.Parameters.Add(new NpgsqlParameter<string[]>("customer", customers));
            command.Parameters.Add(new NpgsqlParameter<decimal[]>("amount", amounts));
            command.Parameters.Add(new NpgsqlParameter<int[]>("quantity", quantities));
            command.Parameters.Add(new NpgsqlParameter<DateTimeOffset[]>("at", times));
            command.ExecuteNonQuery();
            transaction.Commit();
        }
    }

    private const string AtLeastOnceTable = "sales_at_least_once";

    private static PostgresSinkOptions Sink(string connection, PostgresWriteMode mode, bool exactlyOnce = false, string table = "sales")
        => new() { ConnectionString = connection, Table = table, Mode = mode, TableMode = TableMode.MustExist, ExactlyOnce = exactlyOnce };

    private static async Task RunMemory(string connection, Sale[] sales, PostgresWriteMode mode)
    {
        var pipeline = new MemoryToPostgres { Input = new CollectionSource<Sale>(sales), Table = new PostgresSink<Sale>(Sink(connection, mode)) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });
    }

    private static KafkaSourceOptions Source(string bootstrap, int run) => new()
    {
        BootstrapServers = bootstrap,
        Topics = Topic,
        GroupId = string.Create(CultureInfo.InvariantCulture, $"bench-{run}"),
        StartFrom = KafkaStart.Earliest,
        SessionTimeout = TimeSpan.FromSeconds(6),
    };

    private static async Task<double?> RunKafkaCount(string bootstrap, int records, int run)
    {
        var source = new KafkaSource<Sale, Sale.JsonCodec>(Source(bootstrap, run));
        var pipeline = new KafkaToCount { Input = source };
        return await RunUntil(pipeline.RunAsync, source, () => pipeline.Count.Count >= records);
    }

    private static async Task<double?> RunKafka(string bootstrap, string connection, int records, bool exactlyOnce, int run, int streamRows = PostgresSinkOptions.DefaultStreamRows)
    {
        var options = Sink(connection, PostgresWriteMode.Append, exactlyOnce, exactlyOnce ? "sales" : AtLeastOnceTable);
        options.StreamRows = streamRows;
        var sink = new PostgresSink<Sale>(options);
        var source = new KafkaSource<Sale, Sale.JsonCodec>(Source(bootstrap, run));
        var pipeline = new KafkaToPostgres { Input = source, Table = sink };
        if (exactlyOnce)
        {
            return await RunUntil(pipeline.RunAsync, source, () => sink.RowsCommitted >= records);
        }

        // At-least-once: the rows committed count repeats too, so the run ends once the table holds every id.
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var distinct = new NpgsqlCommand($"SELECT count(DISTINCT id) FROM {AtLeastOnceTable}", db);
        return await RunUntil(pipeline.RunAsync, source, () => sink.RowsCommitted >= records && (long)distinct.ExecuteScalar()! >= records);
    }

    /// <summary>
    /// Runs an unbounded Kafka pipeline until <paramref name="done"/> (polled every 2 ms), then stops it gracefully.
    /// Returns the seconds from the first record consumed to done: joining the consumer group (seconds on the mock
    /// cluster, whose group coordinator waits for members) is start-up, not throughput.
    /// </summary>
    internal static async Task<double?> RunUntil(Func<PipelineOptions?, CancellationToken, Task<PipelineResult>> run, KafkaSource<Sale, Sale.JsonCodec> source, Func<bool> done, int parallelism = 2)
    {
        using var stop = new CancellationTokenSource();
        var running = run(new PipelineOptions { Parallelism = parallelism, CheckpointInterval = CheckpointInterval }, stop.Token);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double? first = null;
        while (!done() && !running.IsCompleted)
        {
            if (first is null && source.Progress.Done > 0)
            {
                first = clock.Elapsed.TotalSeconds;
            }

            await Task.Delay(2);
        }

        var elapsed = clock.Elapsed.TotalSeconds - (first ?? 0);
        await stop.CancelAsync();
        await running;
        return elapsed;
    }

    private static async Task ResetAsync(string connection)
        => await ExecuteAsync(connection, $"TRUNCATE sales, {AtLeastOnceTable}; DROP TABLE IF EXISTS {PostgresSink<Sale>.OffsetsTable}");

    /// <summary>
    /// Checks the table holds every record with its values: once each in <c>sales</c> (keyed); in the at-least-once
    /// table, whose rows may repeat, each id at least once with its values. Returns the rows written more than once.
    /// </summary>
    private static async Task<long> VerifyAsync(string connection, int records, string name, string table = "sales")
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT count(*), count(DISTINCT id), (SELECT sum(amount) FROM (SELECT DISTINCT id, amount FROM {table}) d) FROM {table}", db);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        var expectedSum = Enumerable.Range(1, records).Sum(i => Math.Round(1m + (i % 100_000) / 100m, 2));
        var repeats = table == "sales" ? 0 : reader.GetInt64(0) - records;
        if (reader.GetInt64(0) - repeats != records || reader.GetInt64(1) != records || reader.GetDecimal(2) != expectedSum)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"{name}: the table has {reader.GetInt64(0)} rows ({reader.GetInt64(1)} distinct ids, sum {reader.GetDecimal(2)}); expected {records} ids, sum {expectedSum}"));
        }

        return repeats;
    }

    private static async Task ExecuteAsync(string connection, string sql)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(sql, db);
        await command.ExecuteNonQueryAsync();
    }
}
