using System.Diagnostics;
using Compiled.Parquet;
using Compiled.Postgres;
using Compiled.Postgres.Testing;
using Compiled.Runtime;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>
/// <see cref="PostgresCdcSource{T}"/> against a real PostgreSQL 15 with <c>wal_level = logical</c>: snapshot and change
/// stream under a concurrent writer, into a replica table and a Parquet lake, each checked against what the writer did.
/// </summary>
[Collection(nameof(Infrastructure))]
public sealed class PostgresCdcTests(PostgresFixture postgres) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(3);
    private readonly string _lake = Directory.CreateTempSubdirectory("compiled-cdc-lake-").FullName;

    public void Dispose() => Directory.Delete(_lake, recursive: true);

    [Fact]
    public void Before_the_run_names_it_the_description_gives_the_default_slots_pattern_and_never_the_password()
    {
        // Outside finding: --explain showed "(slot , publication …)" for the default slot.
        var source = new PostgresCdcSource<CdcOrder>("Host=db;Database=Shop-1;Username=etl;Password=hunter4SECRET", "cdc_orders");
        var described = source.Describe();
        Assert.Contains("slot compiled_shop_1_{pipeline}_{source} by default, publication compiled_cdc_orders", described, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter4SECRET", described, StringComparison.Ordinal);
        Assert.Contains("(slot compiled_{database}_{pipeline}_{source} by default", new PostgresCdcSource<CdcOrder>("not;a=connection;string=", "t").Describe(), StringComparison.Ordinal);
        Assert.Contains("(slot my_slot,", new PostgresCdcSource<CdcOrder>("Host=db", "t") { Slot = "my_slot" }.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Snapshot_then_changes_under_a_concurrent_writer_reach_the_replica_and_the_lake_exactly()
    {
        var db = await postgres.NewDatabaseAsync();
        var writer = new CdcWriter(db, seed: 7);
        await writer.SeedAsync(20_000);
        var lake = _lake;
        var replica = new CdcToReplica
        {
            Orders = new PostgresCdcSource<CdcOrder>(db, "cdc_orders") { SnapshotSplits = 6, HeartbeatInterval = TimeSpan.FromMilliseconds(300) },
            Replica = new PostgresSink<CdcOrder>(new PostgresSinkOptions { ConnectionString = db, Table = "cdc_orders_replica", Mode = PostgresWriteMode.ApplyChanges, ExactlyOnce = true }),
        };
        var toLake = new CdcToLake
        {
            Orders = new PostgresCdcSource<CdcOrder>(db, "cdc_orders") { SnapshotSplits = 5, HeartbeatInterval = TimeSpan.FromMilliseconds(300) },
            Lake = new ParquetSink<CdcOrder>(new ParquetSinkOptions { Directory = lake, ExactlyOnce = true }),
        };
        using var stop = new CancellationTokenSource();
        var options = new PipelineOptions { Parallelism = 2, BatchSize = 500, CheckpointInterval = TimeSpan.FromMilliseconds(200) };
        var runs = new[] { replica.RunAsync(options, stop.Token), toLake.RunAsync(options, stop.Token) };

        await writer.WriteAsync(300); // while both snapshot and stream
        await CaughtUpAsync(db, runs, replica.Orders, toLake.Orders);

        // A quiet table on a busy server: WAL written elsewhere; heartbeats move both slots past it.
        var elsewhere = await postgres.NewDatabaseAsync();
        await ExecuteAsync(elsewhere, "CREATE TABLE noise AS SELECT i, md5(i::text) AS t FROM generate_series(1, 20000) i");
        var busy = await CdcChecks.CurrentLsnAsync(db);
        await UntilAsync(runs, async () => (await CdcChecks.SlotsAsync(db)).All(s => s.Confirmed >= busy), "both slots confirmed past WAL written in another database");

        await stop.CancelAsync();
        await Task.WhenAll(runs);

        // The replica equals the table.
        Assert.Empty(await CdcChecks.DifferenceAsync(db, "cdc_orders", "cdc_orders_replica"));
        Assert.Equal("bytes", replica.Orders.Progress.Unit); // the slot's lag, as the compiled.source.lag metric reports it
        Assert.Equal(replica.Orders.ConfirmedLsn, replica.Orders.Progress.Done);
        Assert.Equal(writer.Rows.Count, await CountAsync(db, "cdc_orders_replica"));

        // The lake holds exactly the history: per key a snapshot row of some moment, then each later change once.
        var history = CdcChecks.ReadLake(lake);
        Assert.InRange(history.Count(h => h.Op == ChangeKind.Snapshot), 19_000, 20_300);
        Assert.Contains(history, h => h.Op == ChangeKind.UpdateBefore); // the key changes' old keys
        CdcChecks.AssertExact(writer, history);
    }

    [Fact]
    public async Task A_run_stopped_inside_the_snapshot_resumes_its_unread_splits_in_a_new_snapshot_without_losing_or_repeating_a_change()
    {
        var db = await postgres.NewDatabaseAsync();
        var writer = new CdcWriter(db, seed: 11);
        await writer.SeedAsync(30_000);
        var lake = _lake;
        CdcToLake Pipeline(int splits = 12) => new()
        {
            Orders = new PostgresCdcSource<CdcOrder>(db, "cdc_orders") { SnapshotSplits = splits, HeartbeatInterval = TimeSpan.FromMilliseconds(300) },
            Lake = new ParquetSink<CdcOrder>(new ParquetSinkOptions { Directory = lake, ExactlyOnce = true }),
        };
        var options = new PipelineOptions { Parallelism = 2, BatchSize = 200, CheckpointInterval = TimeSpan.FromMilliseconds(200) };

        // A run stopped gracefully inside the snapshot (four splits of 7 500 rows, two per partition, read 50 at a time:
        // the stop usually lands inside a split). It ends normally; a split it finished may be committed (how far each
        // partition got when the stop arrived is a race), but the rows it read of a split it did not finish are not: the
        // lake holds whole splits, each key once, and no more rows than were read — as many only when the stop reached
        // both partitions between splits (CI saw it once: 15 000 read, 15 000 committed). (The end of the test shows the
        // rows read but not committed were read again, not lost.)
        var stopped = Pipeline(splits: 4);
        int unread;
        using (var graceful = new CancellationTokenSource())
        {
            var run = stopped.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 50, CheckpointInterval = TimeSpan.FromMilliseconds(200) }, graceful.Token);
            await UntilAsync([run], () => Task.FromResult(stopped.Orders.SnapshotRows >= 3_000), "a tenth of the snapshot read");
            await graceful.CancelAsync();
            await run;
            Assert.True(stopped.Orders.SnapshotRows < 30_000, "the stop landed after the snapshot");
            var committed = Directory.Exists(lake) && Directory.GetFiles(lake, "*.parquet", SearchOption.AllDirectories).Length > 0 ? CdcChecks.ReadLake(lake) : [];
            Assert.True(committed.Count <= stopped.Orders.SnapshotRows, $"{committed.Count} rows committed but {stopped.Orders.SnapshotRows} read");
            Assert.True(committed.Count % 7_500 == 0, $"{committed.Count} rows committed: not whole splits (a split's rows were committed before the split was finished)");
            Assert.Equal(committed.Count, committed.Select(c => c.Id).Distinct().Count());
            unread = 30_000 - committed.Count;
        }

        // Then one aborted (as a crash would end it) once more splits are committed and others half read (the splits of
        // the plan the stopped run committed, or twelve new ones if it committed none).
        var first = Pipeline();
        using (var abort = new CancellationTokenSource())
        {
            var run = ((ICompiledPipeline)first).CreateJob().RunAsync(options, CancellationToken.None, abort.Token);
            var writing = writer.WriteAsync(100);
            await UntilAsync([run], () => Task.FromResult(first.Orders.SnapshotRows >= unread / 2), "half the unread snapshot read");
            await abort.CancelAsync();
            await Assert.ThrowsAsync<PipelineAbortedException>(() => run);
            await writing;
        }

        await writer.WriteAsync(50); // between the runs: changes to rows in splits read and unread

        var second = Pipeline();
        using var stop = new CancellationTokenSource();
        var runs = new[] { second.RunAsync(options, stop.Token) };
        await writer.WriteAsync(100);
        await CaughtUpAsync(db, runs, second.Orders);
        await stop.CancelAsync();
        await Task.WhenAll(runs);

        var history = CdcChecks.ReadLake(lake);
        Assert.True(second.Orders.SnapshotRows < 30_000, $"the last run read {second.Orders.SnapshotRows} snapshot rows: the splits the aborted run committed were read again");
        CdcChecks.AssertExact(writer, history);
    }

    [Fact]
    public async Task The_change_stream_reconnects_after_a_server_restart_and_loses_and_repeats_nothing()
    {
        var server = postgres.Server ?? throw new InvalidOperationException("This test restarts the fixture's own server (unset COMPILED_TEST_POSTGRES).");
        var db = await postgres.NewDatabaseAsync();
        var writer = new CdcWriter(db, seed: 5);
        await writer.SeedAsync(5_000);
        var lake = _lake;
        var pipeline = new CdcToLake
        {
            Orders = new PostgresCdcSource<CdcOrder>(db, "cdc_orders") { HeartbeatInterval = TimeSpan.FromMilliseconds(300) },
            Lake = new ParquetSink<CdcOrder>(new ParquetSinkOptions { Directory = lake, ExactlyOnce = true }),
        };
        using var stop = new CancellationTokenSource();
        var runs = new[] { pipeline.RunAsync(new PipelineOptions { Parallelism = 1, CheckpointInterval = TimeSpan.FromMilliseconds(200) }, stop.Token) };
        await writer.WriteAsync(60);
        await CaughtUpAsync(db, runs, pipeline.Orders);

        await server.RestartAsync(); // the walsender and every connection are gone; the stream reconnects from where it was
        NpgsqlConnection.ClearAllPools(); // the test's own pooled connections died too
        await writer.WriteAsync(60);
        await CaughtUpAsync(db, runs, pipeline.Orders);
        await stop.CancelAsync();
        await Task.WhenAll(runs);

        var history = CdcChecks.ReadLake(lake);
        CdcChecks.AssertExact(writer, history);
    }

    [Fact]
    public async Task A_quiet_slot_moves_past_wal_written_elsewhere_even_without_heartbeats()
    {
        var db = await postgres.NewDatabaseAsync();
        await new CdcWriter(db, seed: 13).SeedAsync(100);
        var pipeline = new CdcToMemory { Orders = new PostgresCdcSource<CdcOrder>(db, "cdc_orders") { HeartbeatInterval = TimeSpan.Zero } };
        using var stop = new CancellationTokenSource();
        var runs = new[] { pipeline.RunAsync(new PipelineOptions { Parallelism = 1, CheckpointInterval = TimeSpan.FromMilliseconds(100) }, stop.Token) };
        await UntilAsync(runs, () => Task.FromResult(pipeline.Out.Items.Count >= 100), "the snapshot");

        // Everything delivered is committed and nothing is on its way: the slot follows the server's keepalives.
        var elsewhere = await postgres.NewDatabaseAsync();
        await ExecuteAsync(elsewhere, "CREATE TABLE noise AS SELECT i, md5(i::text) AS t FROM generate_series(1, 20000) i");
        var busy = await CdcChecks.CurrentLsnAsync(db);
        await UntilAsync(runs, async () => (await CdcChecks.SlotsAsync(db)).Single().Confirmed >= busy, "the slot confirmed past WAL written in another database");
        await stop.CancelAsync();
        await Task.WhenAll(runs);
        Assert.Equal(100, pipeline.Out.Items.Count); // and nothing was delivered that was not there
    }

    [Fact]
    public async Task A_text_keyed_table_resumed_after_a_crash_in_its_snapshot_skips_the_changes_the_new_snapshot_holds()
    {
        var db = await postgres.NewDatabaseAsync();
        await ExecuteAsync(db, "CREATE TABLE cdc_notes (code text PRIMARY KEY, body text); INSERT INTO cdc_notes SELECT 'n' || i, 'first ' || i FROM generate_series(1, 200000) i");
        var lake = _lake;
        CdcNotesToLake Pipeline() => new()
        {
            Notes = new PostgresCdcSource<CdcNote>(db, "cdc_notes") { HeartbeatInterval = TimeSpan.FromMilliseconds(300) },
            Lake = new ParquetSink<CdcNote>(new ParquetSinkOptions { Directory = lake, ExactlyOnce = true }),
        };

        // One split (the key is text), read by partition 0; partition 1 has none, ends, and commits the plan. The run
        // is aborted inside the split; then every row changes; the next run reads the split in a new snapshot.
        var first = Pipeline();
        using (var abort = new CancellationTokenSource())
        {
            var run = ((ICompiledPipeline)first).CreateJob().RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 100 }, CancellationToken.None, abort.Token);
            await UntilAsync([run], () => Task.FromResult(first.Notes.SnapshotRows >= 5_000), "some of the snapshot read");
            await abort.CancelAsync();
            await Assert.ThrowsAsync<PipelineAbortedException>(() => run);
            Assert.True(first.Notes.SnapshotRows < 200_000, "the abort landed after the split was read");
            Assert.Empty(Directory.GetFiles(lake, "*.parquet", SearchOption.AllDirectories));
        }

        await ExecuteAsync(db, "UPDATE cdc_notes SET body = 'second ' || substr(code, 2) WHERE substr(code, 2)::int <= 20000");
        var second = Pipeline();
        using var stop = new CancellationTokenSource();
        var runs = new[] { second.RunAsync(new PipelineOptions { Parallelism = 2, CheckpointInterval = TimeSpan.FromMilliseconds(200) }, stop.Token) };
        await UntilAsync(runs, async () => second.Notes.ConfirmedLsn >= await CdcChecks.CurrentLsnAsync(db), "the source confirmed the current LSN");
        await stop.CancelAsync();
        await Task.WhenAll(runs);

        // The new snapshot holds the updates: they must not come again as changes.
        var rows = Lake.Query($"SELECT op, count(*), count(*) FILTER (WHERE body LIKE 'second %') FROM read_parquet('{lake}/**/*.parquet') GROUP BY op");
        var (op, count, updated) = Assert.Single(rows) is var row ? ((string)row[0]!, Convert.ToInt64(row[1], System.Globalization.CultureInfo.InvariantCulture), Convert.ToInt64(row[2], System.Globalization.CultureInfo.InvariantCulture)) : default;
        Assert.Equal(("Snapshot", 200_000L, 20_000L), (op, count, updated));
    }

    [Fact]
    public async Task With_replica_identity_full_updates_carry_the_row_before_and_unchanged_large_values_are_filled_in()
    {
        var db = await postgres.NewDatabaseAsync();
        await new CdcWriter(db, seed: 9).SeedAsync(10);
        var large = string.Concat(Enumerable.Range(0, 400).Select(i => Guid.NewGuid().ToString("N"))); // 12.8 kB that does not compress: stored out of line (TOAST)
        await ExecuteAsync(db, $"ALTER TABLE cdc_orders REPLICA IDENTITY FULL; UPDATE cdc_orders SET customer = '{large}' WHERE id = 3");
        var pipeline = new CdcToMemory { Orders = new PostgresCdcSource<CdcOrder>(db, "cdc_orders") { HeartbeatInterval = TimeSpan.FromMilliseconds(200) } };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, CheckpointInterval = TimeSpan.FromMilliseconds(100) }, stop.Token);
        await UntilAsync([run], () => Task.FromResult(pipeline.Out.Items.Count >= 10), "the snapshot");
        await ExecuteAsync(db, "UPDATE cdc_orders SET amount = 99.5, seq = 1 WHERE id IN (2, 3); DELETE FROM cdc_orders WHERE id = 4");
        await UntilAsync([run], () => Task.FromResult(pipeline.Out.Items.Any(o => o.Op == ChangeKind.Delete)), "the delete");
        await stop.CancelAsync();
        await run;

        var changes = pipeline.Out.Items.Where(o => o.Op != ChangeKind.Snapshot).OrderBy(o => o.Lsn).ThenBy(o => o.Id).ToList();
        Assert.Equal(
            [(2L, ChangeKind.UpdateBefore, 2.25m, 0), (2, ChangeKind.UpdateAfter, 99.5m, 1), (3, ChangeKind.UpdateBefore, 3.25m, 0), (3, ChangeKind.UpdateAfter, 99.5m, 1), (4, ChangeKind.Delete, 4.25m, 0)],
            changes.Select(c => (c.Id, c.Op, c.Amount, c.Seq)).ToList());
        Assert.All(changes.Where(c => c.Id == 3), c => Assert.Equal(large, c.Customer)); // the update did not send it: filled from the row before
        Assert.Equal("customer 4", changes.Single(c => c.Op == ChangeKind.Delete).Customer); // a FULL delete carries the whole row
    }

    [Fact]
    public async Task Without_replica_identity_full_an_update_that_leaves_out_a_large_value_stops_the_run_naming_the_column()
    {
        var db = await postgres.NewDatabaseAsync();
        await new CdcWriter(db, seed: 9).SeedAsync(10);
        var large = string.Concat(Enumerable.Range(0, 400).Select(i => Guid.NewGuid().ToString("N")));
        await ExecuteAsync(db, $"UPDATE cdc_orders SET customer = '{large}' WHERE id = 3");
        var pipeline = new CdcToMemory { Orders = new PostgresCdcSource<CdcOrder>(db, "cdc_orders") { HeartbeatInterval = TimeSpan.FromMilliseconds(200) } };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, CheckpointInterval = TimeSpan.FromMilliseconds(100) }, stop.Token);
        await UntilAsync([run], () => Task.FromResult(pipeline.Out.Items.Count >= 10), "the snapshot");
        await ExecuteAsync(db, "UPDATE cdc_orders SET amount = 1 WHERE id = 3");
        var error = await Assert.ThrowsAnyAsync<Exception>(() => run.WaitAsync(Deadline));
        Assert.Contains("'customer'", Flatten(error), StringComparison.Ordinal);
        Assert.Contains("REPLICA IDENTITY FULL", Flatten(error), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pipelines_starting_together_on_one_table_share_the_publication_one_of_them_creates()
    {
        // The CDC sample's demo starts its two pipelines at once; the server reports the race to create the publication
        // as a duplicate object or as a unique violation. Four at once, on several fresh databases, to give it its chances.
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var db = await postgres.NewDatabaseAsync();
            await new CdcWriter(db, seed: attempt).SeedAsync(10);
            var pipelines = Enumerable.Range(0, 4).Select(i => new CdcToMemory { Orders = new PostgresCdcSource<CdcOrder>(db, "cdc_orders") { Slot = $"together_{attempt}_{i}" } }).ToArray();
            using var stop = new CancellationTokenSource();
            var options = new PipelineOptions { Parallelism = 1, CheckpointInterval = TimeSpan.FromMilliseconds(100) };
            using var start = new ManualResetEventSlim();
            var runs = pipelines.Select(p => Task.Run(() => { start.Wait(); return p.RunAsync(options, stop.Token); })).ToArray();
            start.Set();
            await UntilAsync(runs, () => Task.FromResult(pipelines.All(p => p.Out.Items.Count == 10)), $"every snapshot (attempt {attempt})");
            await stop.CancelAsync();
            await Task.WhenAll(runs);
        }
    }

    [Fact]
    public async Task A_truncate_stops_the_run_saying_why_and_an_added_column_is_ignored()
    {
        var db = await postgres.NewDatabaseAsync();
        await new CdcWriter(db, seed: 3).SeedAsync(100);
        await ExecuteAsync(db, "CREATE PUBLICATION all_changes FOR TABLE cdc_orders"); // publishes TRUNCATE too
        var pipeline = new CdcToMemory { Orders = new PostgresCdcSource<CdcOrder>(db, "cdc_orders") { Publication = "all_changes", HeartbeatInterval = TimeSpan.FromMilliseconds(200) } };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, CheckpointInterval = TimeSpan.FromMilliseconds(100) }, stop.Token);
        await UntilAsync([run], () => Task.FromResult(pipeline.Out.Items.Count >= 100), "the snapshot");
        await ExecuteAsync(db, "ALTER TABLE cdc_orders ADD COLUMN note text; INSERT INTO cdc_orders VALUES (1001, 'after the column', 1.5, 7, 'a note')");
        await UntilAsync([run], () => Task.FromResult(pipeline.Out.Items.Any(o => o.Id == 1001)), "the insert after ALTER TABLE");
        Assert.Equal(("after the column", 1.5m, 7, ChangeKind.Insert), pipeline.Out.Items.Where(o => o.Id == 1001).Select(o => (o.Customer!, o.Amount, o.Seq, o.Op)).Single());

        await ExecuteAsync(db, "TRUNCATE cdc_orders");
        var error = await Assert.ThrowsAnyAsync<Exception>(() => run.WaitAsync(Deadline));
        Assert.Contains("was truncated", Flatten(error), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_record_that_does_not_fit_the_table_is_refused_at_start_naming_the_column()
    {
        var db = await postgres.NewDatabaseAsync();
        await new CdcWriter(db, seed: 1).SeedAsync(10);
        var pipeline = new CdcWrongTypePipeline { Orders = new PostgresCdcSource<CdcWrongType>(db, "cdc_orders") };
        var error = await Assert.ThrowsAnyAsync<Exception>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        var message = Flatten(error);
        Assert.Contains("column 'customer'", message, StringComparison.Ordinal);
        Assert.Contains("text", message, StringComparison.Ordinal);
        Assert.Contains("CdcWrongType.Customer", message, StringComparison.Ordinal);
        Assert.Empty(await CdcChecks.SlotsAsync(db)); // refused before a slot was made
    }

    [Fact]
    public async Task A_server_without_logical_replication_is_refused_naming_wal_level()
    {
        await using var server = await PostgresServer.StartAsync("replica");
        var db = await server.CreateDatabaseAsync("cdc");
        await new CdcWriter(db, seed: 1).SeedAsync(10);
        var pipeline = new CdcToMemory { Orders = new PostgresCdcSource<CdcOrder>(db, "cdc_orders") };
        var error = await Assert.ThrowsAnyAsync<Exception>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("wal_level = logical", Flatten(error), StringComparison.Ordinal);
        Assert.DoesNotContain(PostgresServer.Password, Flatten(error), StringComparison.Ordinal);
    }

    /// <summary>Waits until every source confirmed its slot past the table's writes (heartbeats move them on a quiet table).</summary>
    private static async Task CaughtUpAsync(string db, Task[] runs, params PostgresCdcSource<CdcOrder>[] sources)
    {
        var target = await CdcChecks.CurrentLsnAsync(db);
        await UntilAsync(runs, () => Task.FromResult(sources.All(s => s.ConfirmedLsn >= target)), $"the sources confirmed LSN {target}");
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; fails if a run ends first or the deadline passes.</summary>
    private static async Task UntilAsync(Task[] runs, Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (runs.FirstOrDefault(r => r.IsCompleted) is { } ended)
            {
                await ended; // its failure, if it failed
                Assert.Fail($"A run ended before {what}.");
            }

            Assert.True(clock.Elapsed < Deadline, $"Not reached in {Deadline}: {what}.");
            await Task.WhenAny(Task.WhenAny(runs), Task.Delay(50));
        }
    }

    private static async Task<long> CountAsync(string db, string table)
    {
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(string db, string sql)
    {
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static string Flatten(Exception error)
    {
        var text = "";
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            text += e.Message + " | ";
        }

        return text;
    }
}
