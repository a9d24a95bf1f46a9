using System.Globalization;
using Compiled.Samples.Tests;
using Npgsql;
using Xunit.Abstractions;
using static Compiled.Integration.Tests.ProcessTests;

namespace Compiled.Integration.Tests;

/// <summary>
/// PostgreSQL CDC into a Parquet lake and a replica table, through pipeline binaries killed with SIGKILL again and again.
/// A collection of its own (it needs no Kafka), so it need not wait for the Kafka process tests to finish.
/// </summary>
[Collection(nameof(CdcProcesses))]
public sealed class CdcProcessTests(PostgresFixture postgres, ITestOutputHelper log) : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-cdc-process-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task Cdc_into_a_lake_and_a_replica_survives_repeated_sigkill_in_the_snapshot_at_the_switch_and_while_streaming()
    {
        var seed = Environment.TickCount;
        var random = new Random(seed);
        log.WriteLine($"seed {seed}");
        var db = await postgres.NewDatabaseAsync();
        var writer = new CdcWriter(db, seed);
        await writer.SeedAsync(120_000);
        var lake = Path.Combine(_work, "lake");

        // One writer runs through every round, so kills land while changes arrive; its log is the independent truth.
        using var stopWriting = new CancellationTokenSource();
        var writing = Task.Run(async () =>
        {
            while (!stopWriting.IsCancellationRequested)
            {
                await writer.WriteAsync(10);
            }
        });

        // Each round starts both binaries and kills them (SIGKILL): the first rounds once some snapshot rows are committed
        // (inside the snapshot), one right as every split is committed (the switch to the change stream), two while
        // streaming, each a random moment after its condition holds; the last three each binary right after it committed
        // a checkpoint inside a transaction (every 25th writes 400 rows, more than a batch). Files roll every 64 KiB, so
        // kills land in rolls too.
        var phases = new List<string>();
        var midTransaction = 0;
        for (var round = 0; round < 10; round++)
        {
            await using var toLake = StartCdcApp("lake", db);
            await using var toReplica = StartCdcApp("replica", db);
            var (splits, done) = await SplitsAsync(db);
            var streamed = await StreamedAsync(db);
            var (lakeAt, replicaAt) = (LakePlace(lake), await ReplicaPlaceAsync(db));
            if (round < 4)
            {
                await WaitUntil(toReplica, async () => (await SplitsAsync(db)).Done > done || done == splits && splits > 0, $"a split committed in round {round}");
            }
            else if (round == 4)
            {
                await WaitUntil(toReplica, async () => await SplitsAsync(db) is var now && now.Splits > 0 && now.Done == now.Splits, "every split committed");
            }
            else if (round < 7)
            {
                await WaitUntil(toReplica, async () => await StreamedAsync(db) > streamed, $"changes streamed in round {round}");
            }

            if (round >= 7)
            {
                await WaitUntil(toLake, () => Task.FromResult(LakePlace(lake) is var now && now.Inside > 0 && now != lakeAt), $"the lake inside a transaction in round {round}");
                toLake.Kill();
                await WaitUntil(toReplica, async () => await ReplicaPlaceAsync(db) is var now && now.Inside > 0 && now != replicaAt, $"the replica inside a transaction in round {round}");
                toReplica.Kill();
            }
            else
            {
                await Task.Delay(round == 4 ? 0 : random.Next(0, 400)); // randomises where the kill lands; nothing waits on it
                toLake.Kill();
                toReplica.Kill();
            }

            await toLake.WaitAsync(Patience);
            await toReplica.WaitAsync(Patience);
            var state = await SplitsAsync(db);
            var phase = state.Done < state.Splits ? "snapshot" : round == 4 ? "switch" : "streaming";
            phases.Add(phase);
            var inside = (await ReplicaPlaceAsync(db)).Inside;
            var lakeInside = LakePlace(lake).Inside;
            midTransaction += (inside > 0 ? 1 : 0) + (lakeInside > 0 ? 1 : 0);
            log.WriteLine($"round {round}: killed in the {phase} ({state.Done} of {state.Splits} splits committed, {inside} (replica) and {lakeInside} (lake) changes of a transaction committed without its end, {writer.Transactions} transactions written, {Directory.GetFiles(lake, "*.inprogress", SearchOption.AllDirectories).Length} lake files in progress)");
        }

        Assert.Contains("snapshot", phases);
        Assert.True(midTransaction >= 6, $"only {midTransaction} kills left a transaction half committed");

        await stopWriting.CancelAsync();
        await writing;
        var target = await CdcChecks.CurrentLsnAsync(db);
        await using (var toLake = StartCdcApp("lake", db))
        await using (var toReplica = StartCdcApp("replica", db))
        {
            // A slot is confirmed only once its sink made everything before it durable: past the last write, all is in.
            await WaitUntil(toReplica, async () => (await CdcChecks.SlotsAsync(db)) is { Count: 2 } slots && slots.All(s => s.Confirmed >= target), $"both slots confirmed past LSN {target}");
            Assert.Equal(0, await toLake.TerminateAsync(Patience));
            Assert.Equal(0, await toReplica.TerminateAsync(Patience));
        }

        Assert.Empty(await CdcChecks.DifferenceAsync(db, "cdc_orders", "cdc_orders_replica"));
        var history = CdcChecks.ReadLake(lake); // DuckDB reads every final file: none is partial
        CdcChecks.AssertExact(writer, history);
        log.WriteLine($"{history.Count} changes in the lake, {writer.Transactions} transactions written");
    }

    private static string CdcAppDll => Path.Combine(Repository.Root, "tests", "Apps", "CdcApp", "bin", Repository.Configuration, "net10.0", "CdcApp.dll");

    private Child StartCdcApp(string mode, string db)
        => Child.Start(
        [
            CdcAppDll, mode, "--source", db, "--set", "Orders.SnapshotSplits=24", "--set", "Orders.HeartbeatInterval=300ms",
            .. mode == "replica" ? new[] { "--set", $"Replica.ConnectionString={db}" } : [],
            "--set", "CheckpointInterval=100ms", "-p", "2", "--batch-size", "256", "--log-level", "Information",
        ], _work);

    /// <summary>The replica pipeline's snapshot splits and how many are committed (0, 0 before its first commit).</summary>
    private static async Task<(int Splits, int Done)> SplitsAsync(string db)
        => await OffsetsAsync(db, "SELECT count(*), count(*) FILTER (WHERE next_offset >= 0) FROM compiled_offsets WHERE pipeline = 'cdc-app-replica' AND stream = 'cdc-snapshot'") is var (splits, done)
            ? ((int)splits, (int)done)
            : default;

    /// <summary>
    /// Where the replica pipeline's committed change stream is: the end of the last whole transaction, and how many changes
    /// of the next one were committed without its end.
    /// </summary>
    private static Task<(long End, long Inside)> ReplicaPlaceAsync(string db)
        => OffsetsAsync(db, "SELECT coalesce(max(next_offset) FILTER (WHERE partition = 0), 0), coalesce(max(next_offset) FILTER (WHERE partition = 1), 0) FROM compiled_offsets WHERE pipeline = 'cdc-app-replica' AND stream = 'cdc-wal'");

    /// <summary>The two bigint columns <paramref name="sql"/> reads from the stored positions; (0, 0) before the sink made its table.</summary>
    private static async Task<(long, long)> OffsetsAsync(string db, string sql)
    {
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        try
        {
            await using var reader = await command.ExecuteReaderAsync();
            await reader.ReadAsync();
            return (reader.GetInt64(0), reader.GetInt64(1));
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return (0, 0);
        }
    }

    /// <summary>The same for the lake pipeline, from its position files.</summary>
    private static (long End, long Inside) LakePlace(string lake)
    {
        long Read(int partition)
        {
            var path = Path.Combine(lake, "_compiled", "cdc-app-lake", "positions", "Orders", $"cdc-wal-{partition}");
            return File.Exists(path) ? long.Parse(File.ReadAllText(path).Split(' ')[0], CultureInfo.InvariantCulture) : 0;
        }

        return (Read(0), Read(1));
    }

    /// <summary>The replica pipeline's committed change-stream LSN beyond the snapshot's (0 before any change is committed).</summary>
    private static async Task<long> StreamedAsync(string db)
        => (await OffsetsAsync(db, """
            SELECT coalesce(max(w.next_offset) - max(p.next_offset), 0), 0::bigint FROM compiled_offsets w, compiled_offsets p
            WHERE w.pipeline = 'cdc-app-replica' AND w.stream = 'cdc-wal' AND w.partition = 0 AND p.pipeline = w.pipeline AND p.stream = 'cdc-plan' AND p.partition = 0
            """)).Item1;
}
