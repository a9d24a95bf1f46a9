using System.Data;
using System.Globalization;
using Compiled.Connectors;
using Compiled.MySql;
using Compiled.MySql.Testing;
using Compiled.Runtime;
using MySqlConnector;

namespace Compiled.Throughput;

/// <summary>An order row as a shop's table holds it.</summary>
public readonly record struct BenchOrderRow(long Id, string Customer, decimal Amount, string Status, DateTime PlacedAt);

/// <summary>Order rows from memory into MySQL (append, bulk copy).</summary>
[Pipeline(Name = "bench-mysql")]
public sealed partial class OrdersIntoMySql
{
    [Source] public ISource<BenchOrderRow> Rows { get; set; } = new CollectionSource<BenchOrderRow>();

    [Sink] public MySqlSink<BenchOrderRow> Table { get; set; } = new(new MySqlSinkOptions());
}

/// <summary>
/// The MySQL sink against MySqlConnector's <c>MySqlBulkCopy</c> used by hand on the same rows — a <c>DataTable</c> per
/// batch of 50 000 rows (the sink's <c>FlushRows</c>), each in its own transaction, as a user would write it — on a
/// throwaway MariaDB server. The goal: the sink at ≥ 0.8× the hand-written bulk copy.
/// </summary>
internal static class MySqlScenario
{
    private const int Batch = MySqlSinkOptions.DefaultFlushRows;

    public static async Task RunAsync(int records, int warmups, int repetitions, List<(string, string)> results)
    {
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scenario: {records:N0} order rows from memory -> MariaDB (append, bulk copy)"));
        if (!File.Exists("/usr/sbin/mariadbd"))
        {
            Console.WriteLine("  skipped: MariaDB is not installed (apt-get install mariadb-server)");
            return;
        }

        await using var server = await MariaDbServer.StartAsync();
        var connection = await server.CreateDatabaseAsync("bench") + ";AllowLoadLocalInfile=true";
        await ExecuteAsync(connection, "CREATE TABLE orders (id BIGINT NOT NULL, customer LONGTEXT NOT NULL, amount DECIMAL(18,2) NOT NULL, status LONGTEXT NOT NULL, placed_at DATETIME(6) NOT NULL) ENGINE=InnoDB");
        var start = new DateTime(2026, 12, 1, 8, 0, 0, DateTimeKind.Unspecified);
        var rows = Enumerable.Range(0, records).Select(i => new BenchOrderRow(i, "customer " + (i % 5000), (i % 100_000) / 100m, i % 3 == 0 ? "paid" : "open", start.AddMilliseconds(i))).ToArray();

        var hand = new Measurement("hand-written MySqlBulkCopy (DataTable)", records, 48);
        var p1 = new Measurement("Compiled MySqlSink, parallelism 1", records, 48);
        var p2 = new Measurement("Compiled MySqlSink, parallelism 2", records, 48);
        for (var rep = 0; rep < warmups + repetitions; rep++)
        {
            var measure = rep >= warmups;
            await ExecuteAsync(connection, "TRUNCATE TABLE orders");
            await hand.RunAsync(() => ByHandAsync(connection, rows), measure);
            await Verify(connection, records, hand.Name);
            foreach (var (measurement, parallelism) in new[] { (p1, 1), (p2, 2) })
            {
                await ExecuteAsync(connection, "TRUNCATE TABLE orders");
                await measurement.RunAsync(
                    async () =>
                    {
                        var pipeline = new OrdersIntoMySql
                        {
                            Rows = new CollectionSource<BenchOrderRow>(rows),
                            Table = new MySqlSink<BenchOrderRow>(new MySqlSinkOptions { ConnectionString = connection, Table = "orders" }),
                        };
                        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism });
                    },
                    measure);
                await Verify(connection, records, measurement.Name);
            }
        }

        foreach (var m in new[] { hand, p1, p2 })
        {
            Console.WriteLine(m.Row(hand.MedianSeconds));
        }

        results.Add(("mysql_sink_p1_vs_bulk_copy", (hand.MedianSeconds / p1.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
        results.Add(("mysql_sink_p2_vs_bulk_copy", (hand.MedianSeconds / p2.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
    }

    /// <summary>What a user writes: fill a DataTable per batch and bulk-copy it in a transaction.</summary>
    private static async Task ByHandAsync(string connectionString, BenchOrderRow[] rows)
    {
        await using var connection = new MySqlConnection(connectionString);
        await connection.OpenAsync();
        using var table = new DataTable();
        table.Columns.Add("id", typeof(long));
        table.Columns.Add("customer", typeof(string));
        table.Columns.Add("amount", typeof(decimal));
        table.Columns.Add("status", typeof(string));
        table.Columns.Add("placed_at", typeof(DateTime));
        for (var start = 0; start < rows.Length; start += Batch)
        {
            table.Clear();
            foreach (var row in rows.AsSpan(start, Math.Min(Batch, rows.Length - start)))
            {
                table.Rows.Add(row.Id, row.Customer, row.Amount, row.Status, row.PlacedAt);
            }

            await using var transaction = await connection.BeginTransactionAsync();
            var copy = new MySqlBulkCopy(connection, transaction) { DestinationTableName = "orders" };
            var result = await copy.WriteToServerAsync(table);
            if (result.Warnings.Count > 0)
            {
                throw new InvalidOperationException(result.Warnings[0].Message);
            }

            await transaction.CommitAsync();
        }
    }

    private static async Task Verify(string connection, int records, string name)
    {
        await using var db = new MySqlConnection(connection);
        await db.OpenAsync();
        await using var command = new MySqlCommand("SELECT count(*), coalesce(sum(id), 0) FROM orders", db);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        var (count, sum) = (reader.GetInt64(0), reader.GetDecimal(1));
        if (count != records || sum != (decimal)records * (records - 1) / 2)
        {
            throw new InvalidOperationException($"{name}: the table holds {count} rows (id sum {sum}), expected {records}");
        }
    }

    private static async Task ExecuteAsync(string connection, string sql)
    {
        await using var db = new MySqlConnection(connection);
        await db.OpenAsync();
        await using var command = new MySqlCommand(sql, db);
        await command.ExecuteNonQueryAsync();
    }
}
