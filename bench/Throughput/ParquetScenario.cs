using System.Globalization;
using Compiled.Connectors;
using Compiled.Parquet;
using Compiled.Runtime;
using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace Compiled.Throughput;

/// <summary>Order rows from memory into a Parquet lake (one directory, no partitions).</summary>
[Pipeline(Name = "bench-parquet")]
public sealed partial class OrdersIntoParquet
{
    [Source] public ISource<BenchOrderRow> Rows { get; set; } = new CollectionSource<BenchOrderRow>();

    [Sink] public ParquetSink<BenchOrderRow> Lake { get; set; } = new(new ParquetSinkOptions());
}

/// <summary>The same order as a class, the shape Parquet.Net's serializer takes.</summary>
public sealed class BenchOrderClass
{
    public long Id { get; set; }

    public string Customer { get; set; } = "";

    public decimal Amount { get; set; }

    public string Status { get; set; } = "";

    public DateTime PlacedAt { get; set; }
}

/// <summary>
/// The Parquet sink against Parquet.Net used by hand on the same rows: its class serializer (what most users write)
/// and its low-level column API with one array per column per row group (the fastest hand-written code). Same
/// compression (zstd, fastest level), same row groups (100,000 rows). The goal: ≥ 0.9× the library by hand.
/// </summary>
internal static class ParquetScenario
{
    private const int RowGroup = ParquetSinkOptions.DefaultRowGroupRows;

    public static async Task RunAsync(int records, int warmups, int repetitions, List<(string, string)> results)
    {
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scenario: {records:N0} order rows from memory -> Parquet files (zstd)"));
        var directory = Directory.CreateTempSubdirectory("compiled-bench-parquet-").FullName;
        try
        {
            var start = new DateTime(2026, 12, 1, 8, 0, 0, DateTimeKind.Unspecified);
            var rows = Enumerable.Range(0, records).Select(i => new BenchOrderRow(i, "customer " + (i % 5000), (i % 100_000) / 100m, i % 3 == 0 ? "paid" : "open", start.AddMilliseconds(i))).ToArray();
            var classes = rows.Select(r => new BenchOrderClass { Id = r.Id, Customer = r.Customer, Amount = r.Amount, Status = r.Status, PlacedAt = r.PlacedAt }).ToArray();
            var options = new ParquetOptions { CompressionMethod = CompressionMethod.Zstd, CompressionLevel = System.IO.Compression.CompressionLevel.Fastest };

            var columns = new Measurement("hand-written Parquet.Net column API", records, 48);
            var serializer = new Measurement("hand-written Parquet.Net serializer", records, 48);
            var p1 = new Measurement("Compiled ParquetSink, parallelism 1", records, 48);
            var p2 = new Measurement("Compiled ParquetSink, parallelism 2", records, 48);
            for (var rep = 0; rep < warmups + repetitions; rep++)
            {
                var measure = rep >= warmups;
                var target = Fresh(directory);
                await columns.RunAsync(() => ByColumnsAsync(Path.Combine(target, "hand.parquet"), rows, options), measure);
                target = Fresh(directory);
                await serializer.RunAsync(
                    async () =>
                    {
                        await using var stream = File.Create(Path.Combine(target, "hand.parquet"));
                        await ParquetSerializer.SerializeAsync(classes, stream, new ParquetOptions { CompressionMethod = CompressionMethod.Zstd, CompressionLevel = System.IO.Compression.CompressionLevel.Fastest, RowGroupSize = RowGroup }, null, default);
                    },
                    measure);
                foreach (var (measurement, parallelism) in new[] { (p1, 1), (p2, 2) })
                {
                    target = Fresh(directory);
                    await measurement.RunAsync(
                        async () =>
                        {
                            var pipeline = new OrdersIntoParquet { Rows = new CollectionSource<BenchOrderRow>(rows), Lake = new(new ParquetSinkOptions { Directory = target }) };
                            await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism });
                            if (pipeline.Lake.RowsCommitted != records)
                            {
                                throw new InvalidOperationException($"{measurement.Name}: {pipeline.Lake.RowsCommitted} rows committed, expected {records}");
                            }
                        },
                        measure);
                }
            }

            foreach (var m in new[] { columns, serializer, p1, p2 })
            {
                Console.WriteLine(m.Row(columns.MedianSeconds));
            }

            results.Add(("parquet_sink_p1_vs_column_api", (columns.MedianSeconds / p1.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
            results.Add(("parquet_sink_p1_vs_serializer", (serializer.MedianSeconds / p1.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
            results.Add(("parquet_sink_p2_vs_column_api", (columns.MedianSeconds / p2.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string Fresh(string directory)
    {
        var target = Path.Combine(directory, "lake");
        if (Directory.Exists(target))
        {
            Directory.Delete(target, recursive: true);
        }

        Directory.CreateDirectory(target);
        return target;
    }

    /// <summary>The low-level API by hand: one array per column per row group.</summary>
    private static async Task ByColumnsAsync(string path, BenchOrderRow[] rows, ParquetOptions options)
    {
        var id = new DataField<long>("id");
        var customer = new DataField<string>("customer");
        var amount = new DecimalDataField("amount", 38, 18);
        var status = new DataField<string>("status");
        var placedAt = new DateTimeDataField("placed_at", DateTimeFormat.Timestamp, false, DateTimeTimeUnit.Micros);
        await using var stream = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(id, customer, amount, status, placedAt), stream, options, false, default);
        for (var start = 0; start < rows.Length; start += RowGroup)
        {
            var group = rows.AsMemory(start, Math.Min(RowGroup, rows.Length - start));
            using var rowGroup = writer.CreateRowGroup();
            await rowGroup.WriteAsync<long>(id, Column(group, r => r.Id), null, null, default);
            await rowGroup.WriteAsync(customer, Column(group, r => r.Customer), null);
            await rowGroup.WriteAsync<decimal>(amount, Column(group, r => r.Amount), null, null, default);
            await rowGroup.WriteAsync(status, Column(group, r => r.Status), null);
            await rowGroup.WriteAsync<DateTime>(placedAt, Column(group, r => r.PlacedAt), null, null, default);
            rowGroup.CompleteValidate();
        }
    }

    private static TValue[] Column<TValue>(ReadOnlyMemory<BenchOrderRow> rows, Func<BenchOrderRow, TValue> member)
    {
        var values = new TValue[rows.Length];
        var span = rows.Span;
        for (var i = 0; i < span.Length; i++)
        {
            values[i] = member(span[i]);
        }

        return values;
    }
}
