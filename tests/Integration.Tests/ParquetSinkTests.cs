using System.Globalization;
using Compiled.Connectors;
using Compiled.Kafka;
using Compiled.Parquet;
using Compiled.Runtime;

namespace Compiled.Integration.Tests;

[Pipeline(Name = "pq-everything")]
public sealed partial class EverythingToParquet
{
    [Source] public CollectionSource<Everything> Input { get; set; } = new();

    [Sink] public ParquetSink<Everything> Lake { get; set; } = new(new ParquetSinkOptions());
}

/// <summary>A sale with the time it happened, for partitioned lakes.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Sale(long Id, string Country, decimal Amount, DateTimeOffset At);

[Pipeline(Name = "pq-sales")]
public sealed partial class SalesToParquet
{
    [Source] public CollectionSource<Sale> Input { get; set; } = new();

    [Sink] public ParquetSink<Sale> Lake { get; set; } = new(new ParquetSinkOptions());
}

[Pipeline(Name = "pq-kafka-sales")]
public sealed partial class KafkaSalesToParquet
{
    [Source] public KafkaSource<Sale, Sale.JsonCodec> Input { get; set; } = new(new KafkaSourceOptions());

    [Sink] public ParquetSink<Sale> Lake { get; set; } = new(new ParquetSinkOptions());
}

/// <summary>The Parquet sink, read back by an independent reader: DuckDB.</summary>
[Collection(nameof(Infrastructure))]
public sealed class ParquetSinkTests(KafkaFixture kafka, Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);
    private static readonly DateTimeOffset Start = new(2026, 11, 30, 22, 0, 0, TimeSpan.Zero);
    private readonly string _lake = Directory.CreateTempSubdirectory("compiled-lake-").FullName;

    public void Dispose() => Directory.Delete(_lake, recursive: true);

    private static Sale SaleOf(long id) => new(id, (id % 3) switch { 0 => "DE", 1 => "FR", _ => "US/CA" }, id / 8m, Start.AddMinutes(id * 7));

    [Fact]
    public async Task Every_field_type_reads_back_equal_in_duckdb()
    {
        var records = Enumerable.Range(1, 5000).Select(i => PostgresSinkTests.Sample(i)).ToArray();
        var pipeline = new EverythingToParquet
        {
            Input = new CollectionSource<Everything>(records),
            Lake = new ParquetSink<Everything>(new ParquetSinkOptions { Directory = _lake, RowGroupRows = 700 }),
        };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 500 });
        Assert.Equal(5000, pipeline.Lake.RowsCommitted);
        Assert.Empty(Directory.GetFiles(_lake, "*.inprogress", SearchOption.AllDirectories));

        var rows = Lake.Query(
            "SELECT id, count, small, tiny, unsigned, huge, flag, ratio, single, money, text, maybe, letter, \"local\", \"at\", guid, \"day\", \"time\", span, colour, missing " +
            $"FROM read_parquet('{_lake}/**/*.parquet') ORDER BY id");
        Assert.Equal(records.Length, rows.Count);

        // DateTimeOffset is an instant (UTC-adjusted timestamp); DateTime a local timestamp; decimals keep their type.
        // TimeOnly is a TIME that Parquet.Net marks UTC-adjusted, which DuckDB reads as TIME WITH TIME ZONE (+00).
        var types = Lake.Query($"SELECT typeof(\"at\"), typeof(\"local\"), typeof(money), typeof(\"day\"), typeof(\"time\"), typeof(guid) FROM read_parquet('{_lake}/**/*.parquet') LIMIT 1")[0];
        Assert.Equal(["TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "DECIMAL(38,18)", "DATE", "TIME WITH TIME ZONE", "UUID"], types.Select(t => (string)t!));
        for (var i = 0; i < records.Length; i++)
        {
            var (expected, row) = (records[i], rows[i]);
            Assert.Equal(expected.Id, Convert.ToInt64(row[0], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Count, Convert.ToInt32(row[1], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Small, Convert.ToInt16(row[2], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Tiny, Convert.ToByte(row[3], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Unsigned, Convert.ToUInt32(row[4], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Huge, Convert.ToUInt64(row[5], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Flag, row[6]);
            Assert.Equal(expected.Ratio, row[7]);
            Assert.Equal(expected.Single, row[8]);
            Assert.Equal(expected.Money, row[9]);
            Assert.Equal(expected.Text, row[10]);
            Assert.Equal(expected.Maybe, row[11] as string);
            Assert.Equal(expected.Letter.ToString(), row[12]);
            Assert.Equal(expected.Local, row[13]);
            Assert.Equal(expected.At.UtcDateTime, Utc(row[14]));
            Assert.Equal(expected.Guid, row[15]);
            Assert.Equal(expected.Day, row[16]);
            Assert.Equal(expected.Time.ToTimeSpan(), ((DateTimeOffset)row[17]!).TimeOfDay); // DuckDB.NET returns a TIMETZ as a DateTimeOffset
            Assert.Equal(expected.Span.Ticks / 10, row[18]); // microseconds
            Assert.Equal(expected.Colour.ToString(), row[19]);
            Assert.Equal(expected.Missing, row[20] is null ? null : Convert.ToInt32(row[20], CultureInfo.InvariantCulture));
        }
    }

    [Fact]
    public async Task Hive_partitions_from_record_members_hold_exactly_their_records()
    {
        var sales = Enumerable.Range(1, 3000).Select(i => SaleOf(i)).ToArray();
        var pipeline = new SalesToParquet
        {
            Input = new CollectionSource<Sale>(sales),
            Lake = new ParquetSink<Sale>(new ParquetSinkOptions { Directory = _lake, PartitionBy = "region={Country}/dt={At:yyyy-MM-dd}/hour={At:HH}", RowGroupRows = 100, RollBytes = 2000 }),
        };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 3, BatchSize = 128 });

        // The directories are Hive's: '/' in a value is escaped, DateTimeOffset is formatted in UTC.
        Assert.True(Directory.Exists(Path.Combine(_lake, "region=US%2FCA", "dt=2026-11-30", "hour=22")));
        Assert.Empty(Directory.GetFiles(_lake, "*.inprogress", SearchOption.AllDirectories));
        Assert.True(Directory.GetFiles(_lake, "*.parquet", SearchOption.AllDirectories).Length > 3 * 24, "files roll by size within each directory");

        var rows = Lake.Query($"SELECT id, country, amount, \"at\", dt, \"hour\", region FROM read_parquet('{_lake}/**/*.parquet', hive_partitioning = true) ORDER BY id");
        Assert.Equal(sales.Length, rows.Count);
        for (var i = 0; i < sales.Length; i++)
        {
            var (sale, row) = (sales[i], rows[i]);
            Assert.Equal(sale.Id, Convert.ToInt64(row[0], CultureInfo.InvariantCulture));
            Assert.Equal(sale.Country, row[1]);
            Assert.Equal(sale.Amount, row[2]);
            Assert.Equal(sale.At.UtcDateTime, Utc(row[3]));
            Assert.Equal(DateOnly.FromDateTime(sale.At.UtcDateTime), row[4]); // DuckDB types dt=… as a DATE
            Assert.Equal(sale.At.UtcDateTime.Hour, Convert.ToInt32(row[5], CultureInfo.InvariantCulture));
            Assert.Equal(sale.Country, Uri.UnescapeDataString((string)row[6]!));
        }
    }

    [Fact]
    public async Task A_decimal_the_column_would_round_fails_the_run_and_leaves_no_final_file_with_it()
    {
        var sales = Enumerable.Range(1, 100).Select(i => SaleOf(i)).ToArray();
        sales[60] = sales[60] with { Amount = 1m / 3m };
        var pipeline = new SalesToParquet
        {
            Input = new CollectionSource<Sale>(sales),
            Lake = new ParquetSink<Sale>(new ParquetSinkOptions { Directory = _lake, DecimalPrecision = 18, DecimalScale = 4 }),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("Field 'Amount': 0.3333333333333333333333333333 has more than 4 digits after the point", error.ToString(), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_lake, "*.parquet", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Exactly_once_behind_a_source_that_reads_from_its_start_every_run_is_refused_before_anything_is_written()
    {
        // An outside test found this run ending with exit code 0 and "exactly-once" in its summary while every file
        // stayed *.inprogress: no checkpoint ever came, so nothing was published.
        var pipeline = new SalesToParquet
        {
            Input = new CollectionSource<Sale>(Enumerable.Range(1, 100).Select(i => SaleOf(i)).ToArray()),
            Lake = new ParquetSink<Sale>(new ParquetSinkOptions { Directory = _lake, ExactlyOnce = true }),
        };
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 2 }));
        Assert.Contains("sink 'Lake' is exactly-once, which needs a source that stores its positions with the sink's output", error.Message, StringComparison.Ordinal);
        Assert.Contains("source 'Input' (collection (100 records)) reads its input from the start on every run", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_lake, "*.parquet*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_partition_template_naming_no_member_is_refused_with_the_members_listed()
    {
        var pipeline = new SalesToParquet
        {
            Input = new CollectionSource<Sale>(SaleOf(1)),
            Lake = new ParquetSink<Sale>(new ParquetSinkOptions { Directory = _lake, PartitionBy = "day={Day:yyyy-MM-dd}" }),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("PartitionBy 'day={Day:yyyy-MM-dd}': 'Day' is not a member of Sale (members: Id, Country, Amount, At)", error.ToString(), StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error)); // a bad setting: exit code 2
    }

    [Fact]
    public async Task Partition_values_made_of_dots_or_slashes_stay_inside_the_lake()
    {
        var root = Path.Combine(_lake, "inner");
        var countries = new[] { "..", ".", "../../escaped", "ok", "...", "a/../b" };
        var sales = countries.Select((c, i) => SaleOf(i + 1) with { Country = c }).ToArray();
        var pipeline = new SalesToParquet
        {
            Input = new CollectionSource<Sale>(sales),
            Lake = new ParquetSink<Sale>(new ParquetSinkOptions { Directory = root, PartitionBy = "{Country}" }),
        };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });

        Assert.Empty(Directory.GetFiles(_lake, "*", SearchOption.TopDirectoryOnly)); // nothing beside the lake
        Assert.Empty(Directory.GetFiles(root, "*.parquet", SearchOption.TopDirectoryOnly)); // nothing in its root either: every value has its directory
        Assert.Equal(["%2E", "%2E%2E", "..%2F..%2Fescaped", "...", "a%2F..%2Fb", "ok"], Directory.GetDirectories(root).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var read = Lake.Query($"SELECT id, country FROM read_parquet('{root}/**/*.parquet') ORDER BY id");
        Assert.Equal(sales.Select(s => (s.Id, s.Country)), read.Select(r => (Convert.ToInt64(r[0], CultureInfo.InvariantCulture), (string)r[1]!)));
    }

    [Fact]
    public async Task A_decimal_too_large_for_the_column_fails_naming_the_field_and_the_setting()
    {
        var pipeline = new SalesToParquet
        {
            Input = new CollectionSource<Sale>(SaleOf(1) with { Amount = decimal.MaxValue }),
            Lake = new ParquetSink<Sale>(new ParquetSinkOptions { Directory = _lake }),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("Field 'Amount': 79228162514264337593543950335 has more than 20 digits before the point, which its Parquet column DECIMAL(38, 18) cannot hold; set DecimalPrecision", error.ToString(), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_lake, "*.parquet", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task ParquetSink_keeps_the_contract()
    {
        var report = await Compiled.Testing.ConnectorContract.CheckSinkAsync(new Compiled.Testing.SinkContract<Sale>
        {
            CreateSink = name => new ParquetSink<Sale>(new ParquetSinkOptions { Directory = Path.Combine(_lake, name), PartitionBy = "country={Country}", RowGroupRows = 100 }),
            ReadBack = (name, _) => Task.FromResult<IReadOnlyList<Sale>>(ReadSales(Path.Combine(_lake, name))),
            Record = i => SaleOf(i + 1),
            Schema = Compiled.Testing.ConnectorContract.SchemaOf<Sale>(new SalesToParquet()),
            CreateBroken = name => new ParquetSink<Sale>(new ParquetSinkOptions { Directory = Path.Combine(_lake, name), PartitionBy = "day={Day}" }),
        });

        Assert.True(report.Ok, report.ToString());
        Assert.Equal(["every record once", "durable at a checkpoint", "a run after an aborted one", "failures name the connector"], report.Passed);
    }

    /// <summary>The sales in a lake's final files; none when there are none yet.</summary>
    private static List<Sale> ReadSales(string lake)
        => !Directory.Exists(lake) || Directory.GetFiles(lake, "*.parquet", SearchOption.AllDirectories).Length == 0
            ? []
            : [.. Lake.Query($"SELECT id, country, amount, \"at\" FROM read_parquet('{lake}/**/*.parquet')")
                .Select(r => new Sale(Convert.ToInt64(r[0], CultureInfo.InvariantCulture), (string)r[1]!, (decimal)r[2]!, new DateTimeOffset(Utc(r[3]))))];

    [Fact]
    public async Task Exactly_once_from_kafka_survives_aborts_with_each_record_in_the_lake_once()
    {
        const int chunks = 4;
        const int chunk = 5_000;
        var topic = kafka.NewTopic("lake", 4);
        var source = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = "lake-" + Guid.NewGuid().ToString("N"), StartFrom = KafkaStart.Earliest, SessionTimeout = kafka.KilledConsumerSessionTimeout };
        var options = new ParquetSinkOptions { Directory = _lake, PartitionBy = "country={Country}", RowGroupRows = 500, RollBytes = 20_000, ExactlyOnce = true };

        // Each run gets a new chunk of sales and is aborted (as a crash: no final checkpoint, the files of the open
        // checkpoint left in progress) as soon as some of that chunk is committed.
        for (var c = 0; c < chunks; c++)
        {
            var before = LakeCount();
            kafka.Produce(topic, Enumerable.Range(1 + (c * chunk), chunk).Select(i => ((string?)i.ToString(CultureInfo.InvariantCulture), (byte[]?)Json(SaleOf(i)))));
            var pipeline = new KafkaSalesToParquet { Input = new(source), Lake = new(options) };
            using var abort = new CancellationTokenSource();
            var run = ((ICompiledPipeline)pipeline).CreateJob().RunAsync(RunOptions(), CancellationToken.None, abort.Token);
            var deadline = DateTime.UtcNow + Patience;
            while (LakeCount() <= before)
            {
                Assert.False(run.IsCompleted, "the run ended before it was aborted");
                Assert.True(DateTime.UtcNow < deadline, $"not within {Patience}: rows of chunk {c} in the lake");
                await Task.Delay(50); // polling the lake (a DuckDB query), with a deadline
            }

            await abort.CancelAsync();
            await Assert.ThrowsAsync<PipelineAbortedException>(() => run.WaitAsync(Patience));
            log.WriteLine($"aborted with {LakeCount()} rows in the lake, {Directory.GetFiles(_lake, "*.inprogress", SearchOption.AllDirectories).Length} files in progress");
        }

        // The last run reads to the end of the topic.
        const int count = chunks * chunk;
        var last = new KafkaSalesToParquet { Input = new(source), Lake = new(options) };
        using (var stop = new CancellationTokenSource())
        {
            var run = last.RunAsync(RunOptions(), stop.Token);
            var deadline = DateTime.UtcNow + Patience;
            while (LakeCount() < count)
            {
                Assert.False(run.IsCompleted, "the run ended early");
                Assert.True(DateTime.UtcNow < deadline, $"not within {Patience}: every row in the lake");
                await Task.Delay(20);
            }

            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        var ids = Lake.Query($"SELECT id FROM read_parquet('{_lake}/**/*.parquet') ORDER BY id").Select(r => Convert.ToInt64(r[0], CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), ids); // none lost, none twice
    }

    /// <summary>A DuckDB TIMESTAMPTZ as DuckDB.NET returns it (a UTC DateTime, or a DateTimeOffset), in UTC.</summary>
    private static DateTime Utc(object? value) => value switch
    {
        DateTimeOffset offset => offset.UtcDateTime,
        DateTime time => DateTime.SpecifyKind(time.Kind == DateTimeKind.Local ? time.ToUniversalTime() : time, DateTimeKind.Utc),
        _ => throw new InvalidCastException($"not a timestamp: {value}"),
    };

    private static PipelineOptions RunOptions() => new() { Parallelism = 4, CheckpointInterval = TimeSpan.FromMilliseconds(100), BatchSize = 256 };

    private static byte[] Json(Sale sale)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        Sale.JsonCodec.Encode(sale, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Rows in final files, counted by DuckDB; 0 while there are none.</summary>
    private long LakeCount()
        => Directory.GetFiles(_lake, "*.parquet", SearchOption.AllDirectories).Length == 0
            ? 0
            : Convert.ToInt64(Lake.Query($"SELECT count(*) FROM read_parquet('{_lake}/**/*.parquet')")[0][0], CultureInfo.InvariantCulture);
}
