using System.Globalization;
using Compiled.Connectors;
using Compiled.Postgres;
using Compiled.Postgres.Testing;
using Compiled.Runtime;
using Compiled.Sqlite;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Compiled.Throughput;

/// <summary>A sale to enrich with its customer.</summary>
public readonly record struct BenchSale(int Id, int CustomerId, double Amount);

/// <summary>A customer row.</summary>
public sealed record BenchCustomer([property: Key] int Id, string Name, string Country);

/// <summary>A sale with its customer's name and country.</summary>
public readonly record struct EnrichedBenchSale(int Id, string Name, string Country, double Amount);

/// <summary>Sales joined with customers from SQLite, into a sink that sums the amounts.</summary>
[Pipeline(Name = "bench-sqlite-lookup")]
public sealed partial class SqliteEnrichment
{
    [Source] public ISource<BenchSale> Sales { get; set; } = new CollectionSource<BenchSale>();

    [KeyBy] static int CustomerOf(BenchSale s) => s.CustomerId;

    [Lookup] public SqliteLookup<int, BenchCustomer> Customers { get; set; } = new("unused.db", "customers");

    [Transform] static EnrichedBenchSale Enrich(Joined<BenchSale, BenchCustomer> j) => new(j.Left.Id, j.Right!.Name, j.Right.Country, j.Left.Amount);

    [Sink] public AmountSink Total { get; set; } = new();
}

/// <summary>
/// The same join into a method sink — the simplest sink a user writes for an in-process total, called inline from
/// the loop after the lookup (no sink buffer, no pass of its own). Parallelism 1 only: the totals are plain fields.
/// </summary>
[Pipeline(Name = "bench-sqlite-lookup-method-sink")]
public sealed partial class SqliteEnrichmentToMethod
{
    public double Amount { get; private set; }

    public long Characters { get; private set; }

    [Source] public ISource<BenchSale> Sales { get; set; } = new CollectionSource<BenchSale>();

    [KeyBy] static int CustomerOf(BenchSale s) => s.CustomerId;

    [Lookup] public SqliteLookup<int, BenchCustomer> Customers { get; set; } = new("unused.db", "customers");

    [Transform] static EnrichedBenchSale Enrich(Joined<BenchSale, BenchCustomer> j) => new(j.Left.Id, j.Right!.Name, j.Right.Country, j.Left.Amount);

    [Sink] void Sum(EnrichedBenchSale sale)
    {
        Amount += sale.Amount;
        Characters += sale.Name.Length + sale.Country.Length;
    }
}

/// <summary>
/// The sum as an operator object — a sealed class whose fields hold values, the sink a user writes for an in-process
/// total — called inline from the loop after the lookup, which keeps its fast path (no sink buffer, no pass of its
/// own). Parallelism 1 only: each partition has its own object.
/// </summary>
public sealed class EnrichedTotals
{
    public double Amount { get; private set; }

    public long Characters { get; private set; }

    public void Add(EnrichedBenchSale sale)
    {
        Amount += sale.Amount;
        Characters += sale.Name.Length + sale.Country.Length;
    }
}

/// <summary>The join into an operator-object sink (<see cref="EnrichedTotals"/>).</summary>
[Pipeline(Name = "bench-sqlite-lookup-object-sink")]
public sealed partial class SqliteEnrichmentToObject
{
    [Source] public ISource<BenchSale> Sales { get; set; } = new CollectionSource<BenchSale>();

    [KeyBy] static int CustomerOf(BenchSale s) => s.CustomerId;

    [Lookup] public SqliteLookup<int, BenchCustomer> Customers { get; set; } = new("unused.db", "customers");

    [Transform] static EnrichedBenchSale Enrich(Joined<BenchSale, BenchCustomer> j) => new(j.Left.Id, j.Right!.Name, j.Right.Country, j.Left.Amount);

    [Sink] public EnrichedTotals Total { get; } = new();
}

/// <summary>The workaround a user had before lookups: a transform over a Dictionary loaded up front (no exchange, no refresh).</summary>
[Pipeline(Name = "bench-dictionary-transform")]
public sealed partial class DictionaryEnrichment
{
    public static Dictionary<int, BenchCustomer> Table { get; set; } = [];

    [Source] public ISource<BenchSale> Sales { get; set; } = new CollectionSource<BenchSale>();

    [Transform] static bool Known(BenchSale s) => Table.ContainsKey(s.CustomerId);

    [Transform] static EnrichedBenchSale Enrich(BenchSale s)
    {
        var customer = Table[s.CustomerId];
        return new(s.Id, customer.Name, customer.Country, s.Amount);
    }

    [Sink] public AmountSink Total { get; set; } = new();
}

/// <summary>Sales joined with customers from PostgreSQL.</summary>
[Pipeline(Name = "bench-postgres-lookup")]
public sealed partial class PostgresEnrichment
{
    [Source] public ISource<BenchSale> Sales { get; set; } = new CollectionSource<BenchSale>();

    [KeyBy] static int CustomerOf(BenchSale s) => s.CustomerId;

    [Lookup] public PostgresLookup<int, BenchCustomer> Customers { get; set; } = new("", "customers");

    [Transform] static EnrichedBenchSale Enrich(Joined<BenchSale, BenchCustomer> j) => new(j.Left.Id, j.Right!.Name, j.Right.Country, j.Left.Amount);

    [Sink] public AmountSink Total { get; set; } = new();
}

/// <summary>Sums the amounts and counts the names' characters of what reaches it (inline), so nothing is optimised away.</summary>
public sealed class AmountSink : ISink<EnrichedBenchSale>
{
    private readonly Lock _lock = new();

    public double Amount { get; private set; }

    public long Characters { get; private set; }

    public SinkExecution Execution => SinkExecution.Inline;

    public ValueTask OpenAsync(SinkContext<EnrichedBenchSale> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISinkWriter<EnrichedBenchSale> CreateWriter(int partition) => new Writer(this);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Writer(AmountSink sink) : ISinkWriter<EnrichedBenchSale>
    {
        public ValueTask WriteAsync(ReadOnlyMemory<EnrichedBenchSale> records, CancellationToken cancellationToken)
        {
            double amount = 0;
            long characters = 0;
            foreach (ref readonly var record in records.Span)
            {
                amount += record.Amount;
                characters += record.Name.Length + record.Country.Length;
            }

            lock (sink._lock)
            {
                sink.Amount += amount;
                sink.Characters += characters;
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>
/// Lookup joins against hand-written C#: a warm cache over SQLite next to a Dictionary loaded by hand (the issue's
/// ≥ 0.7× goal), and a cold cache against PostgreSQL — batched queries next to one query per record.
/// </summary>
internal static class LookupScenario
{
    private const int Customers = 10_000;

    internal static int LookupBatch { get; set; } = 1024;

    public static async Task RunAsync(int records, int warmups, int repetitions, List<(string, string)> results)
    {
        var directory = Directory.CreateTempSubdirectory("compiled-bench-lookup-").FullName;
        try
        {
            await WarmAsync(Path.Combine(directory, "crm.db"), records, warmups, repetitions, results);
            await ColdAsync(warmups, repetitions, results);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static BenchSale[] Sales(int count) => [.. Enumerable.Range(0, count).Select(i => new BenchSale(i, 1 + (int)((uint)(i * 2654435761u) % Customers), i % 100 / 4.0))];

    private static (double Amount, long Characters) Expected(BenchSale[] sales)
        => (sales.Sum(s => s.Amount), sales.Sum(s => (long)$"customer {s.CustomerId}".Length + $"country {s.CustomerId % 50}".Length));

    private static async Task WarmAsync(string database, int records, int warmups, int repetitions, List<(string, string)> results)
    {
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scenario: lookup join, warm cache: {records:N0} sales x {Customers:N0} customers in SQLite -> enriched -> sum"));
        await using (var connection = new SqliteConnection($"Data Source={database};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var create = connection.CreateCommand();
            create.CommandText = "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL); " +
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) INSERT INTO customers SELECT i, 'customer ' || i, 'country ' || (i % 50) FROM n;";
            await create.ExecuteNonQueryAsync();
        }

        // Each implementation runs over all the sales and over their first quarter, interleaved: the whole run's time
        // includes what a run costs once (the hand loop reads the table, a lookup fills its cache from empty — 10,000
        // keys, which a short run mostly pays for), the difference between the two sizes is the warm, steady rate.
        var sales = Sales(records);
        var quarter = sales[..(records / 4)];
        var inputs = new[] { (Sales: sales, Expected: Expected(sales)), (Sales: quarter, Expected: Expected(quarter)) };
        var implementations = new (string Name, Func<BenchSale[], Task<(double, long)>> Run)[]
        {
            ("hand-written: table into a Dictionary, loop", s => Task.FromResult(HandWarm(database, s))),
            ("hand-written: the same join into the same ISink", s => HandWarmIntoSinkAsync(database, s)),
            ("Compiled p1, transform over a Dictionary", async s =>
            {
                DictionaryEnrichment.Table = Load(database);
                var pipeline = new DictionaryEnrichment { Sales = new CollectionSource<BenchSale>(s) };
                await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = LookupBatch });
                return (pipeline.Total.Amount, pipeline.Total.Characters);
            }),
            ("Compiled SqliteLookup, parallelism 1", s => IntoSinkAsync(database, s, 1, LookupRouting.ByKey)),
            ("Compiled SqliteLookup, p1, method sink", async s =>
            {
                var pipeline = new SqliteEnrichmentToMethod { Sales = new CollectionSource<BenchSale>(s), Customers = new(database, "customers") { TimeToLive = TimeSpan.Zero } };
                await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = LookupBatch });
                return (pipeline.Amount, pipeline.Characters);
            }),
            ("Compiled SqliteLookup, p1, operator-object sink", async s =>
            {
                var pipeline = new SqliteEnrichmentToObject { Sales = new CollectionSource<BenchSale>(s), Customers = new(database, "customers") { TimeToLive = TimeSpan.Zero } };
                await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = LookupBatch });
                return (pipeline.Total.Amount, pipeline.Total.Characters);
            }),
            ("Compiled SqliteLookup, parallelism 2", s => IntoSinkAsync(database, s, 2, LookupRouting.ByKey)),
            ("Compiled SqliteLookup, Routing = Local, p1", s => IntoSinkAsync(database, s, 1, LookupRouting.Local)),
            ("Compiled SqliteLookup, Routing = Local, p2", s => IntoSinkAsync(database, s, 2, LookupRouting.Local)),
        };

        var whole = implementations.Select(i => new Measurement(i.Name, records, 16)).ToArray();
        var quarters = implementations.Select(i => new Measurement(i.Name, quarter.Length, 16)).ToArray();
        for (var rep = 0; rep < warmups + repetitions; rep++)
        {
            var measure = rep >= warmups;
            for (var k = 0; k < implementations.Length; k++)
            {
                foreach (var (input, measurement) in new[] { (inputs[0], whole[k]), (inputs[1], quarters[k]) })
                {
                    var run = implementations[k].Run;
                    await measurement.RunAsync(async () => Verify(await run(input.Sales), input.Expected, measurement.Name), measure);
                }
            }
        }

        foreach (var m in whole)
        {
            Console.WriteLine(m.Row(whole[0].MedianSeconds));
        }

        // Warm: the records the larger run adds, over the time it adds.
        double Warm(int k) => (records - quarter.Length) / (whole[k].MedianSeconds - quarters[k].MedianSeconds);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"warm (the {records - quarter.Length:N0} sales a {records:N0}-sale run adds over a {quarter.Length:N0}-sale one, medians):"));
        for (var k = 0; k < implementations.Length; k++)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {implementations[k].Name,-50} {Warm(k) / 1e6,7:F1} M rec/s  x{Warm(k) / Warm(0):F3}"));
        }

        string Ratio(double value) => value.ToString("F3", CultureInfo.InvariantCulture);
        double Whole(int k) => whole[0].MedianSeconds / whole[k].MedianSeconds;
        results.Add(("lookup_warm_p1_vs_hand", Ratio(Whole(3))));
        results.Add(("lookup_warm_p1_vs_hand_into_sink", Ratio(whole[1].MedianSeconds / whole[3].MedianSeconds)));
        results.Add(("lookup_warm_p1_method_sink_vs_hand", Ratio(Whole(4))));
        results.Add(("lookup_warm_p1_object_sink_vs_hand", Ratio(Whole(5))));
        results.Add(("lookup_warm_p2_vs_hand", Ratio(Whole(6))));
        results.Add(("lookup_warm_local_p1_vs_hand", Ratio(Whole(7))));
        results.Add(("lookup_warm_local_p2_vs_hand", Ratio(Whole(8))));
        results.Add(("lookup_steady_p1_vs_hand", Ratio(Warm(3) / Warm(0))));
        results.Add(("lookup_steady_p1_method_sink_vs_hand", Ratio(Warm(4) / Warm(0))));
        results.Add(("lookup_steady_p1_object_sink_vs_hand", Ratio(Warm(5) / Warm(0))));
    }

    /// <summary>The lookup join into the <see cref="AmountSink"/>, the pipeline's <c>ISink</c>.</summary>
    private static async Task<(double, long)> IntoSinkAsync(string database, BenchSale[] sales, int parallelism, LookupRouting routing)
    {
        var pipeline = new SqliteEnrichment { Sales = new CollectionSource<BenchSale>(sales), Customers = new(database, "customers") { TimeToLive = TimeSpan.Zero, Routing = routing } };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = LookupBatch });
        return (pipeline.Total.Amount, pipeline.Total.Characters);
    }

    /// <summary>What a user writes by hand: read the whole table into a Dictionary, then join in a loop.</summary>
    private static (double, long) HandWarm(string database, BenchSale[] sales)
    {
        var customers = Load(database);

        double amount = 0;
        long characters = 0;
        foreach (var sale in sales)
        {
            if (customers.TryGetValue(sale.CustomerId, out var customer))
            {
                var enriched = new EnrichedBenchSale(sale.Id, customer.Name, customer.Country, sale.Amount);
                amount += enriched.Amount;
                characters += enriched.Name.Length + enriched.Country.Length;
            }
        }

        return (amount, characters);
    }

    /// <summary>
    /// The same join by hand into the pipeline's <see cref="AmountSink"/>: what a user writes who has a sink that takes
    /// batches (a database writer, a file writer) — the enriched records gathered 1,024 at a time and handed over.
    /// </summary>
    private static async Task<(double, long)> HandWarmIntoSinkAsync(string database, BenchSale[] sales)
    {
        var customers = Load(database);
        var sink = new AmountSink();
        var writer = sink.CreateWriter(0);
        var batch = new EnrichedBenchSale[LookupBatch];
        var count = 0;
        foreach (var sale in sales)
        {
            if (customers.TryGetValue(sale.CustomerId, out var customer))
            {
                batch[count++] = new EnrichedBenchSale(sale.Id, customer.Name, customer.Country, sale.Amount);
                if (count == batch.Length)
                {
                    await writer.WriteAsync(batch, CancellationToken.None);
                    count = 0;
                }
            }
        }

        await writer.WriteAsync(batch.AsMemory(0, count), CancellationToken.None);
        return (sink.Amount, sink.Characters);
    }

    private static Dictionary<int, BenchCustomer> Load(string database)
    {
        var customers = new Dictionary<int, BenchCustomer>();
        using var connection = new SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, name, country FROM customers";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            customers[reader.GetInt32(0)] = new BenchCustomer(reader.GetInt32(0), reader.GetString(1), reader.GetString(2));
        }

        return customers;
    }

    private static async Task ColdAsync(int warmups, int repetitions, List<(string, string)> results)
    {
        if (PostgresServer.FindBinaries() is null)
        {
            Console.WriteLine("scenario: lookup join against PostgreSQL: skipped (no PostgreSQL server binaries here)");
            return;
        }

        const int batched = 200_000;
        const int single = 20_000;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scenario: lookup join against PostgreSQL, cold cache: {Customers:N0} customers; batched {batched:N0} sales, one query per record {single:N0} sales"));
        await using var server = await PostgresServer.StartAsync();
        var connection = await server.CreateDatabaseAsync("bench_lookup");
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, country text NOT NULL); INSERT INTO customers SELECT i, 'customer ' || i, 'country ' || (i % 50) FROM generate_series(1, 10000) i;", db);
            await create.ExecuteNonQueryAsync();
        }

        var sales = Sales(batched);
        var expected = Expected(sales);
        var few = sales[..single];
        var fewExpected = Expected(few);
        var perRecord = new Measurement("hand-written: one query per record", single, 16);
        var noCache = new Measurement("Compiled PostgresLookup, no cache, p1", batched, 16);
        var cached = new Measurement("Compiled PostgresLookup, cache from empty, p1", batched, 16);
        long noCacheQueries = 0, cachedQueries = 0;
        for (var rep = 0; rep < warmups + repetitions; rep++)
        {
            var measure = rep >= warmups;
            await perRecord.RunAsync(async () => Verify(await HandPerRecordAsync(connection, few), fewExpected, perRecord.Name), measure);
            await noCache.RunAsync(async () => noCacheQueries = await RunPostgresAsync(connection, sales, 0, expected, noCache.Name), measure);
            await cached.RunAsync(async () => cachedQueries = await RunPostgresAsync(connection, sales, 100_000, expected, cached.Name), measure);
        }

        foreach (var m in new[] { perRecord, noCache, cached })
        {
            Console.WriteLine(m.Row(perRecord.MedianSeconds));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"queries per run: one per record {single:N0} ({single / perRecord.MedianSeconds:N0}/s); no cache {noCacheQueries:N0} ({noCacheQueries / noCache.MedianSeconds:N0}/s); cache {cachedQueries:N0}"));
        results.Add(("lookup_cold_no_cache_vs_per_record", (noCache.RecordsPerSecond / perRecord.RecordsPerSecond).ToString("F1", CultureInfo.InvariantCulture)));
        results.Add(("lookup_cold_cached_vs_per_record", (cached.RecordsPerSecond / perRecord.RecordsPerSecond).ToString("F1", CultureInfo.InvariantCulture)));
    }

    private static async Task<long> RunPostgresAsync(string connection, BenchSale[] sales, int cacheSize, (double, long) expected, string name)
    {
        var pipeline = new PostgresEnrichment
        {
            Sales = new CollectionSource<BenchSale>(sales),
            Customers = new PostgresLookup<int, BenchCustomer>(connection, "customers") { CacheSize = cacheSize, TimeToLive = TimeSpan.Zero },
        };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });
        Verify((pipeline.Total.Amount, pipeline.Total.Characters), expected, name);
        return pipeline.Customers.Queries;
    }

    /// <summary>What a user writes without batching: a prepared query per record.</summary>
    private static async Task<(double, long)> HandPerRecordAsync(string connection, BenchSale[] sales)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT name, country FROM customers WHERE id = $1", db);
        var id = new NpgsqlParameter<int>();
        command.Parameters.Add(id);
        await command.PrepareAsync();
        double amount = 0;
        long characters = 0;
        foreach (var sale in sales)
        {
            id.TypedValue = sale.CustomerId;
            await using var reader = await command.ExecuteReaderAsync();
            if (await reader.ReadAsync())
            {
                var enriched = new EnrichedBenchSale(sale.Id, reader.GetString(0), reader.GetString(1), sale.Amount);
                amount += enriched.Amount;
                characters += enriched.Name.Length + enriched.Country.Length;
            }
        }

        return (amount, characters);
    }

    private static void Verify((double Amount, long Characters) actual, (double Amount, long Characters) expected, string name)
    {
        if (Math.Abs(actual.Amount - expected.Amount) > 1e-6 * Math.Max(1, expected.Amount) || actual.Characters != expected.Characters)
        {
            throw new InvalidOperationException($"{name}: {actual} differs from the expected {expected}");
        }
    }
}
