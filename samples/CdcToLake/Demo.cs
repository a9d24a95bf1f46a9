using System.Globalization;
using Compiled.Postgres.Testing;
using Compiled.Runtime;
using DuckDB.NET.Data;
using Npgsql;

namespace CdcToLake;

/// <summary>
/// <c>--demo</c>: a throwaway PostgreSQL with <c>wal_level = logical</c>, a shop database whose <c>orders</c> table is
/// written to while both pipelines run — one into a Parquet lake, one into a replica database — then, once both slots
/// are confirmed past the last write, the replica compared row by row with the table and the lake read by DuckDB.
/// </summary>
internal static class Demo
{
    public static async Task<int> RunAsync(string[] args, PipelineHostContext context)
    {
        var transactions = Option(args, "--demo-transactions", 2_000, out args);
        var lake = Path.GetFullPath("lake");
        await using var server = await PostgresServer.StartAsync();
        var shop = await server.CreateDatabaseAsync("shop");
        var replica = await server.CreateDatabaseAsync("replica");
        await Console.Error.WriteLineAsync($"demo: throwaway PostgreSQL on port {server.Port} (wal_level = logical; removed at exit), databases shop and replica, lake in {lake}");
        await SeedAsync(shop, 50_000);

        using var stop = new CancellationTokenSource();
        string[] common = ["--source", shop, "--set", "Orders.HeartbeatInterval=500ms", .. args];
        var runs = new[]
        {
            PipelineHost.RunAsync(new OrdersToLake(), ["--lake", lake, .. common], context, stop.Token),
            PipelineHost.RunAsync(new OrdersToReplica(), ["--replica", replica, .. common], context, stop.Token),
        };

        var written = await WriteAsync(shop, transactions);
        await Console.Error.WriteLineAsync($"demo: wrote {written} changes in {transactions} transactions while the pipelines ran");

        // A slot is confirmed only once its pipeline's sink made every change before it durable.
        var target = await ScalarAsync<long>(shop, "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint");
        while (!runs.Any(r => r.IsCompleted) && await ScalarAsync<long>(shop, "SELECT coalesce(min((confirmed_flush_lsn - '0/0'::pg_lsn)::bigint), 0) FROM pg_replication_slots WHERE database = 'shop'") < target)
        {
            await Task.WhenAny(Task.WhenAny(runs), Task.Delay(200));
        }

        await stop.CancelAsync();
        var codes = await Task.WhenAll(runs);
        if (codes.Any(c => c != 0))
        {
            return codes.First(c => c != 0);
        }

        var source = await RowsAsync(shop);
        var copy = await RowsAsync(replica);
        var equal = source.SequenceEqual(copy);
        Console.WriteLine(equal
            ? $"replica equals the source: {source.Count} rows"
            : $"replica DIFFERS from the source: {source.Count} rows in the source, {copy.Count} in the replica, {source.Except(copy).Count()} missing or different");
        Console.WriteLine();
        Console.WriteLine($"DuckDB over the lake: SELECT dt, op, count(*) FROM read_parquet('{lake}/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL");
        using (var duck = new DuckDBConnection("DataSource=:memory:"))
        {
            duck.Open();
            using var command = duck.CreateCommand();
            command.CommandText = $"SELECT CAST(dt AS VARCHAR), op, count(*) AS changes FROM read_parquet('{lake}/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL";
            using var reader = command.ExecuteReader();
            Console.WriteLine($"{"dt",-12} {"op",-13} {"changes",8}");
            while (reader.Read())
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{reader.GetValue(0),-12} {reader.GetString(1),-13} {reader.GetInt64(2),8}"));
            }
        }

        return equal ? 0 : 1;
    }

    private static async Task SeedAsync(string shop, int orders)
    {
        await using var connection = new NpgsqlConnection(shop);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"""
            CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2) NOT NULL, status text NOT NULL, placed_at timestamptz NOT NULL);
            INSERT INTO orders SELECT i, 'customer-' || (i % 997), (i % 10000) / 100.0 + 1, 'paid', now() - make_interval(secs => {orders} - i) FROM generate_series(1, {orders}) i;
            """, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The shop at work: each transaction places an order, moves two on (paid → shipped → delivered) and deletes a delivered one now and then.</summary>
    private static async Task<long> WriteAsync(string shop, int transactions)
    {
        await using var connection = new NpgsqlConnection(shop);
        await connection.OpenAsync();
        var random = new Random(2026);
        long changes = 0;
        var next = await ScalarAsync<long>(shop, "SELECT max(id) + 1 FROM orders");
        for (var t = 0; t < transactions; t++)
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var insert = new NpgsqlCommand("INSERT INTO orders VALUES ($1, $2, $3, 'paid', now())", connection, transaction))
            {
                insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = next++ });
                insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = $"customer-{random.Next(997)}" });
                insert.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = random.Next(100, 100_000) / 100m });
                changes += await insert.ExecuteNonQueryAsync();
            }

            await using (var update = new NpgsqlCommand("UPDATE orders SET status = CASE status WHEN 'paid' THEN 'shipped' ELSE 'delivered' END WHERE id = ANY($1)", connection, transaction))
            {
                update.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [random.NextInt64(1, next), random.NextInt64(1, next)] });
                changes += await update.ExecuteNonQueryAsync();
            }

            if (t % 4 == 0)
            {
                await using var delete = new NpgsqlCommand("DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE status = 'delivered' AND id >= $1 ORDER BY id LIMIT 1)", connection, transaction);
                delete.Parameters.Add(new NpgsqlParameter<long> { TypedValue = random.NextInt64(1, next) });
                changes += await delete.ExecuteNonQueryAsync();
            }

            await transaction.CommitAsync();
        }

        return changes;
    }

    private static async Task<List<(long Id, string Customer, decimal Amount, string Status, DateTime PlacedAt)>> RowsAsync(string database)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT id, customer, amount, status, placed_at FROM orders ORDER BY id", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(long, string, decimal, string, DateTime)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt64(0), reader.GetString(1), reader.GetDecimal(2), reader.GetString(3), reader.GetDateTime(4)));
        }

        return rows;
    }

    private static async Task<TValue> ScalarAsync<TValue>(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (TValue)(await command.ExecuteScalarAsync())!;
    }

    private static int Option(string[] args, string name, int fallback, out string[] rest)
    {
        var list = args.ToList();
        var at = list.IndexOf(name);
        var value = fallback;
        if (at >= 0 && at + 1 < list.Count && int.TryParse(list[at + 1], CultureInfo.InvariantCulture, out var parsed) && parsed > 0)
        {
            value = parsed;
            list.RemoveRange(at, 2);
        }

        rest = [.. list];
        return value;
    }
}
