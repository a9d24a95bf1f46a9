using System.Diagnostics;
using System.Globalization;
using Compiled.Bench;
using Compiled.Postgres;
using Compiled.Postgres.Testing;
using Compiled.Runtime;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using Compiled.Connectors;

namespace Compiled.Throughput;

/// <summary>A change of the benchmark's <c>orders</c> table.</summary>
public sealed partial record CdcBenchOrder
{
    [Key] public long Id { get; init; }

    public string Customer { get; init; } = "";

    public decimal Amount { get; init; }

    public string Status { get; init; } = "";

    public DateTime PlacedAt { get; init; }

    public ChangeKind Op { get; init; }
}

[Pipeline(Name = "bench-cdc-snapshot")]
public sealed partial class CdcSnapshotToCount
{
    [Source] public PostgresCdcSource<CdcBenchOrder> Orders { get; set; } = new("", "orders");

    [Sink] public CountSink<CdcBenchOrder> Count { get; set; } = new();
}

[Pipeline(Name = "bench-cdc-replica")]
public sealed partial class CdcChangesToReplica
{
    [Source] public PostgresCdcSource<CdcBenchOrder> Orders { get; set; } = new("", "orders");

    [Sink] public PostgresSink<CdcBenchOrder> Replica { get; set; } = new(new PostgresSinkOptions());
}

/// <summary>
/// PostgreSQL CDC next to what a user writes by hand with Npgsql: the snapshot against a binary <c>COPY … TO STDOUT</c>
/// of the same table read into records (goal ≥ 0.7×), and the change stream applied to a replica against a hand-written
/// pgoutput client that applies each source transaction as one batch of parameterized upserts and deletes (goal ≥ 0.8×).
/// </summary>
internal static class CdcScenario
{
    private const string Columns = "id, customer, amount, status, placed_at";

    public static async Task RunAsync(int rows, int changes, int warmups, int repetitions, List<(string, string)> results)
    {
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scenario: PostgreSQL CDC — snapshot of {rows:N0} rows, then {changes:N0} changes applied to a replica"));
        if (PostgresServer.FindBinaries() is null)
        {
            Console.WriteLine("  skipped: PostgreSQL server binaries not found (apt-get install postgresql-15)");
            return;
        }

        await using var server = await PostgresServer.StartAsync();
        var shop = await server.CreateDatabaseAsync("shop");
        var replica = await server.CreateDatabaseAsync("replica");
        await ExecuteAsync(shop, $"""
            CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2) NOT NULL, status text NOT NULL, placed_at timestamp NOT NULL);
            CREATE PUBLICATION bench FOR TABLE orders WITH (publish = 'insert, update, delete');
            """);

        var copy = new Measurement("raw Npgsql binary COPY TO STDOUT -> records", rows, 48);
        var snapshot1 = new Measurement("PostgresCdcSource snapshot, parallelism 1", rows, 48);
        var snapshot2 = new Measurement("PostgresCdcSource snapshot, parallelism 2", rows, 48);
        var hand = new Measurement("hand-written pgoutput client -> replica", changes, 48);
        var compiled = new Measurement("PostgresCdcSource -> PostgresSink ApplyChanges, exactly-once", changes, 48);
        var run = 0;
        for (var rep = 0; rep < warmups + repetitions; rep++)
        {
            var measure = rep >= warmups;
            await ResetAsync(shop, rows); // every repetition starts from the same table (TRUNCATE is not published)
            await copy.RunAsync(() => Task.Run(() => Copy(shop, rows)), measure);
            foreach (var (measurement, parallelism) in new[] { (snapshot1, 1), (snapshot2, 2) })
            {
                await measurement.RunTimedAsync(() => SnapshotAsync(shop, rows, parallelism, $"bench_snapshot_{++run}"), measure);
            }

            // The change load sits in the WAL behind two new slots; each implementation applies it to a fresh replica.
            var handSlot = $"bench_hand_{++run}";
            var compiledSlot = $"bench_compiled_{run}";
            await ExecuteAsync(shop, $"SELECT pg_create_logical_replication_slot('{handSlot}', 'pgoutput'); SELECT pg_create_logical_replication_slot('{compiledSlot}', 'pgoutput')");
            await ChangeAsync(shop, rows, changes, rep);
            var end = await ScalarAsync(shop, "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint");
            var expected = await ChecksumAsync(shop);

            await ResetReplicaAsync(replica, rows);
            await hand.RunAsync(() => HandClientAsync(shop, replica, handSlot, end), measure);
            Check(hand.Name, expected, await ChecksumAsync(replica));

            await ResetReplicaAsync(replica, rows);
            await compiled.RunAsync(() => CompiledAsync(shop, replica, compiledSlot, end), measure);
            Check(compiled.Name, expected, await ChecksumAsync(replica));
            await ExecuteAsync(shop, $"SELECT pg_drop_replication_slot('{handSlot}'); SELECT pg_drop_replication_slot('{compiledSlot}')");
        }

        foreach (var m in new[] { copy, snapshot1, snapshot2 })
        {
            Console.WriteLine(m.Row(copy.MedianSeconds));
        }

        foreach (var m in new[] { hand, compiled })
        {
            Console.WriteLine(m.Row(hand.MedianSeconds));
        }

        results.Add(("cdc_snapshot_p1_vs_copy", (copy.MedianSeconds / snapshot1.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
        results.Add(("cdc_snapshot_p2_vs_copy", (copy.MedianSeconds / snapshot2.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
        results.Add(("cdc_changes_vs_hand_client", (hand.MedianSeconds / compiled.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
    }

    /// <summary>What a user writes to read a table fast: binary COPY out, each row into a record.</summary>
    private static void Copy(string shop, int rows)
    {
        using var connection = new NpgsqlConnection(shop);
        connection.Open();
        var read = new List<CdcBenchOrder>(rows);
        using (var exporter = connection.BeginBinaryExport($"COPY orders ({Columns}) TO STDOUT (FORMAT BINARY)"))
        {
            while (exporter.StartRow() != -1)
            {
                read.Add(new CdcBenchOrder
                {
                    Id = exporter.Read<long>(),
                    Customer = exporter.Read<string>(),
                    Amount = exporter.Read<decimal>(),
                    Status = exporter.Read<string>(),
                    PlacedAt = exporter.Read<DateTime>(),
                    Op = ChangeKind.Snapshot,
                });
            }
        }

        if (read.Count != rows)
        {
            throw new InvalidOperationException($"COPY read {read.Count} rows, expected {rows}");
        }
    }

    /// <summary>The CDC snapshot (slot creation included), timed until every row reached the sink.</summary>
    private static async Task<double?> SnapshotAsync(string shop, int rows, int parallelism, string slot)
    {
        var pipeline = new CdcSnapshotToCount { Orders = new PostgresCdcSource<CdcBenchOrder>(shop, "orders") { Slot = slot, Publication = "bench", HeartbeatInterval = TimeSpan.Zero } };
        using var stop = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism }, stop.Token);
        while (pipeline.Count.Count < rows && !run.IsCompleted)
        {
            await Task.Delay(1);
        }

        var seconds = clock.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await run;
        await ExecuteAsync(shop, $"SELECT pg_drop_replication_slot('{slot}')");
        return pipeline.Count.Count == rows ? seconds : throw new InvalidOperationException($"snapshot delivered {pipeline.Count.Count} rows, expected {rows}");
    }

    /// <summary>Updates (most), inserts and deletes in transactions of 50 changes.</summary>
    private static async Task ChangeAsync(string shop, int rows, int changes, int rep)
    {
        await using var connection = new NpgsqlConnection(shop);
        await connection.OpenAsync();
        var random = new Random(rep);
        var next = rows + 1L;
        for (var done = 0; done < changes;)
        {
            await using var batch = new NpgsqlBatch(connection);
            for (var i = 0; i < 50 && done < changes; i++, done++)
            {
                var kind = random.Next(10);
                var command = kind switch
                {
                    < 7 => new NpgsqlBatchCommand("UPDATE orders SET status = $2, amount = amount + 1 WHERE id = $1") { Parameters = { new() { Value = random.NextInt64(1, rows + 1) }, new() { Value = kind % 2 == 0 ? "shipped" : "paid" } } },
                    < 9 => new NpgsqlBatchCommand("INSERT INTO orders VALUES ($1, 'new customer', 9.99, 'open', timestamp '2026-12-01 09:00')") { Parameters = { new() { Value = next++ } } },
                    _ => new NpgsqlBatchCommand("DELETE FROM orders WHERE id = $1") { Parameters = { new() { Value = random.NextInt64(1, rows + 1) } } },
                };
                batch.BatchCommands.Add(command);
            }

            await using var transaction = await connection.BeginTransactionAsync();
            batch.Transaction = transaction;
            await batch.ExecuteNonQueryAsync();
            await transaction.CommitAsync();
        }
    }

    /// <summary>
    /// The hand-written client: pgoutput (binary) from the slot, each source transaction applied as one batch of
    /// parameterized upserts and deletes (one round trip) in one transaction, the slot confirmed after each commit.
    /// </summary>
    private static async Task HandClientAsync(string shop, string replica, string slot, long end)
    {
        await using var target = new NpgsqlConnection(replica);
        await target.OpenAsync();
        await using var replication = new LogicalReplicationConnection(shop);
        await replication.Open();
        using var stop = new CancellationTokenSource();
        var batch = new NpgsqlBatch(target);
        try
        {
            await foreach (var message in replication.StartReplication(new PgOutputReplicationSlot(slot), new PgOutputReplicationOptions("bench", PgOutputProtocolVersion.V1, binary: true), stop.Token))
            {
                switch (message)
                {
                    case InsertMessage insert:
                        batch.BatchCommands.Add(await UpsertAsync(insert.NewRow));
                        break;
                    case UpdateMessage update:
                        batch.BatchCommands.Add(await UpsertAsync(update.NewRow));
                        break;
                    case KeyDeleteMessage delete:
                        var id = 0L;
                        await foreach (var value in delete.Key)
                        {
                            if (!value.IsDBNull && id == 0)
                            {
                                id = await value.Get<long>();
                            }
                        }

                        batch.BatchCommands.Add(new NpgsqlBatchCommand("DELETE FROM orders WHERE id = $1") { Parameters = { new NpgsqlParameter<long> { TypedValue = id } } });
                        break;
                    case CommitMessage commit:
                        await using (var transaction = await target.BeginTransactionAsync())
                        {
                            batch.Transaction = transaction;
                            await batch.ExecuteNonQueryAsync();
                            await transaction.CommitAsync();
                        }

                        await batch.DisposeAsync();
                        batch = new NpgsqlBatch(target);
                        replication.SetReplicationStatus(commit.TransactionEndLsn);
                        if ((long)(ulong)commit.TransactionEndLsn >= end)
                        {
                            await stop.CancelAsync();
                        }

                        break;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // every change applied
        }
        finally
        {
            await batch.DisposeAsync();
        }

        static async Task<NpgsqlBatchCommand> UpsertAsync(ReplicationTuple row)
        {
            var values = new object[5];
            var i = 0;
            await foreach (var value in row)
            {
                values[i] = i switch
                {
                    0 => await value.Get<long>(),
                    1 => await value.Get<string>(),
                    2 => await value.Get<decimal>(),
                    3 => await value.Get<string>(),
                    _ => await value.Get<DateTime>(),
                };
                i++;
            }

            var command = new NpgsqlBatchCommand($"INSERT INTO orders ({Columns}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET customer = EXCLUDED.customer, amount = EXCLUDED.amount, status = EXCLUDED.status, placed_at = EXCLUDED.placed_at");
            foreach (var value in values)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value });
            }

            return command;
        }
    }

    /// <summary>Compiled: changes only, from the slot, applied exactly-once; timed until the slot is confirmed past the load.</summary>
    private static async Task CompiledAsync(string shop, string replica, string slot, long end)
    {
        var pipeline = new CdcChangesToReplica
        {
            Orders = new PostgresCdcSource<CdcBenchOrder>(shop, "orders") { Slot = slot, Publication = "bench", Snapshot = false, CreateSlot = false, HeartbeatInterval = TimeSpan.FromMilliseconds(100) },
            Replica = new PostgresSink<CdcBenchOrder>(new PostgresSinkOptions { ConnectionString = replica, Table = "orders", Mode = PostgresWriteMode.ApplyChanges, ExactlyOnce = true, TableMode = TableMode.MustExist }),
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, CheckpointInterval = TimeSpan.FromMilliseconds(100) }, stop.Token);
        while (pipeline.Orders.ConfirmedLsn < end && !run.IsCompleted)
        {
            await Task.Delay(1);
        }

        await stop.CancelAsync();
        await run;
    }

    /// <summary>The source table as every repetition starts it.</summary>
    private static async Task ResetAsync(string shop, int rows)
    {
        await ExecuteAsync(shop, $"TRUNCATE orders; {Fill(rows)}");
        await ExecuteAsync(shop, "VACUUM ANALYZE orders");
    }

    /// <summary>The replica as the slots found the source: the table before the change load.</summary>
    private static async Task ResetReplicaAsync(string replica, int rows)
    {
        await ExecuteAsync(replica, $"""
            DROP TABLE IF EXISTS orders, compiled_offsets;
            CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2) NOT NULL, status text NOT NULL, placed_at timestamp NOT NULL);
            {Fill(rows)};
            """);
        await ExecuteAsync(replica, "VACUUM ANALYZE orders");
    }

    private static string Fill(int rows)
        => $"INSERT INTO orders SELECT i, 'customer ' || (i % 5000), (i % 100000) / 100.0, CASE WHEN i % 3 = 0 THEN 'paid' ELSE 'open' END, timestamp '2026-12-01 08:00' + make_interval(secs => i) FROM generate_series(1, {rows}) i";

    /// <summary>A checksum of the rows the changes touched most (all of them): count and sums.</summary>
    private static async Task<string> ChecksumAsync(string database)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) || ' ' || sum(id) || ' ' || sum(amount) || ' ' || sum(length(status)) FROM orders", connection);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private static void Check(string name, string expected, string actual)
    {
        if (expected != actual)
        {
            throw new InvalidOperationException($"{name}: the replica's checksum {actual} differs from the source's {expected}");
        }
    }

    private static async Task<long> ScalarAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
