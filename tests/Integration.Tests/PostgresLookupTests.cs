using Compiled.Postgres;
using Compiled.Postgres.Testing;
using Compiled.Runtime;
using Compiled.Testing;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>The PostgreSQL lookup join against a real server.</summary>
[Collection(nameof(Infrastructure))]
public sealed class PostgresLookupTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Every_field_type_the_sink_writes_reads_back_equal_through_the_lookup()
    {
        var connection = await postgres.NewDatabaseAsync();
        var records = Enumerable.Range(1, 2000).Select(i => PostgresSinkTests.Sample(i)).ToArray();
        await new EverythingPipeline { Input = new(records), Table = new PostgresSink<Everything>(connection, "everything") }
            .RunAsync(new PipelineOptions { Parallelism = 2 });

        // Ids 1-2500, some twice: 2001-2500 have no row (left outer: passed on alone).
        var wanted = Enumerable.Range(1, 2500).Select(i => new Wanted(i, 0)).Concat(Enumerable.Range(1, 300).Select(i => new Wanted(i * 7, 1))).ToArray();
        var pipeline = new EverythingLookup { Input = new(wanted), Rows = new PostgresLookup<long, Everything>(connection, "everything") { Join = JoinKind.LeftOuter } };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 3, BatchSize = 400 });

        var byId = records.ToDictionary(r => r.Id);
        Assert.Equal(wanted.Length, pipeline.Out.Items.Count);
        foreach (var joined in pipeline.Out.Items)
        {
            if (byId.TryGetValue(joined.Left.Id, out var expected))
            {
                Assert.True(joined.HasRight);
                Assert.Equal(expected, joined.Right);
            }
            else
            {
                Assert.False(joined.HasRight);
            }
        }

        var lookup = Assert.Single(result.Lookups);
        Assert.Equal(2500, lookup.KeysFetched); // each id once: it stays in the cache of the partition that owns it
        Assert.Equal(wanted.Count(w => w.Id > 2000), lookup.Unmatched);
        Assert.Equal(pipeline.Rows.Queries, lookup.Fetches);
    }

    private static async Task<(Purchase[] Purchases, int Keys)> SeedAsync(string connection, int purchases, int seed)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using (var create = new NpgsqlCommand("""
            CREATE TABLE buyers (id integer, name text NOT NULL, country text);
            INSERT INTO buyers SELECT i, 'buyer ' || i, CASE WHEN i % 4 = 0 THEN NULL ELSE 'country ' || (i % 9) END FROM generate_series(1, 500) i;
            INSERT INTO buyers SELECT i, 'second buyer ' || i, 'elsewhere' FROM generate_series(1, 500, 100) i;
            CREATE TABLE purchases (id integer, customer_id integer, amount numeric);
            """, db))
        {
            await create.ExecuteNonQueryAsync();
        }

        var random = new Random(seed);
        var rows = Enumerable.Range(1, purchases).Select(i => new Purchase(i, random.Next(1, 601), random.Next(1, 100_000) / 100m)).ToArray();
        await using (var import = await db.BeginBinaryImportAsync("COPY purchases FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var row in rows)
            {
                await import.WriteRowAsync(default, row.Id, row.CustomerId, row.Amount);
            }

            await import.CompleteAsync();
        }

        return (rows, rows.Select(r => r.CustomerId).Distinct().Count());
    }

    private static async Task<List<EnrichedPurchase>> SqlJoinAsync(string connection)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT p.id, b.name, b.country, p.amount FROM purchases p JOIN buyers b ON b.id = p.customer_id", db);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<EnrichedPurchase>();
        while (await reader.ReadAsync())
        {
            rows.Add(new EnrichedPurchase(reader.GetInt32(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetDecimal(3)));
        }

        return Sorted(rows);
    }

    private static List<EnrichedPurchase> Sorted(IEnumerable<EnrichedPurchase> rows) => [.. rows.OrderBy(r => r.Id).ThenBy(r => r.Buyer, StringComparer.Ordinal)];

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task The_join_equals_a_SQL_join_with_one_query_per_batch_of_missing_keys(int parallelism)
    {
        var connection = await postgres.NewDatabaseAsync();
        var (purchases, keys) = await SeedAsync(connection, 30_000, parallelism);
        var pipeline = new PurchasesWithBuyers { Input = new(purchases), Buyers = new PostgresLookup<int, Buyer>(connection, "buyers") { TimeToLive = TimeSpan.Zero } };

        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 1000 });

        Assert.Equal(await SqlJoinAsync(connection), Sorted(pipeline.Out.Items));
        var lookup = Assert.Single(result.Lookups);
        Assert.Equal(keys, lookup.KeysFetched); // one fetch per key over the run: the cache holds it from then on
        Assert.Equal(lookup.Fetches, pipeline.Buyers.Queries); // one query per fetch, never one per record
        Assert.True(lookup.Fetches <= purchases.Length / 1000 * parallelism, $"{lookup.Fetches} queries for {purchases.Length} records");
        Assert.Equal(purchases.Count(p => p.CustomerId > 500), lookup.Unmatched);
    }

    [Fact]
    public async Task A_row_changed_in_the_database_is_seen_after_the_time_to_live()
    {
        var connection = await postgres.NewDatabaseAsync();
        await SeedAsync(connection, 0, 1);
        var pipeline = new PurchasesWithBuyers { Buyers = new PostgresLookup<int, Buyer>(connection, "buyers") { TimeToLive = TimeSpan.FromSeconds(30) } };
        await using (var driver = await PipelineTestDriver.StartAsync<Purchase>(pipeline))
        {
            driver.Push(new Purchase(1, 42, 1m));
            await using (var db = new NpgsqlConnection(connection))
            {
                await db.OpenAsync();
                await using var update = new NpgsqlCommand("UPDATE buyers SET name = 'renamed' WHERE id = 42", db);
                await update.ExecuteNonQueryAsync();
            }

            driver.AdvanceTime(TimeSpan.FromSeconds(29));
            driver.Push(new Purchase(2, 42, 1m));
            driver.AdvanceTime(TimeSpan.FromSeconds(1));
            driver.Push(new Purchase(3, 42, 1m));
        }

        Assert.Equal(["buyer 42", "buyer 42", "renamed"], pipeline.Out.Items.Select(p => p.Buyer));
        Assert.Equal(2, pipeline.Buyers.Queries);
    }

    [Fact]
    public async Task A_missing_table_stops_the_run_at_start()
    {
        var connection = await postgres.NewDatabaseAsync();
        var pipeline = new PurchasesWithBuyers { Input = new([new Purchase(1, 1, 1m)]), Buyers = new PostgresLookup<int, Buyer>(connection, "nowhere") };
        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("table nowhere does not exist", error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(PostgresServer.Password, error.ToString(), StringComparison.Ordinal);
    }

    private static async Task ExecuteAsync(string connection, string sql, params object[] values)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(sql, db);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        await command.ExecuteNonQueryAsync();
    }

    /// <summary>How the reference join compares a payment's code with the holders' (as the column's type compares).</summary>
    private string PaymentsJoinedOn { get; set; } = "code";

    private async Task<List<HeldBy>> SqlLeftJoinAsync(string connection)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT p.id, p.code, h.owner FROM payments p LEFT JOIN holders h ON h.code = p.{PaymentsJoinedOn}", db);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<HeldBy>();
        while (await reader.ReadAsync())
        {
            rows.Add(new HeldBy(reader.GetInt32(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2)));
        }

        return [.. rows.OrderBy(r => r.Id).ThenBy(r => r.Owner, StringComparer.Ordinal)];
    }

    [Theory]
    [InlineData("text COLLATE case_insensitive", "code")]
    [InlineData("citext", "code::citext")]
    public async Task A_case_insensitive_key_column_finds_its_row_for_every_spelling_as_a_SQL_join_does(string type, string compared)
    {
        // A nondeterministic collation and citext compare 'ACME', 'acme' and 'Acme' equal: each spelling, even several
        // in one batch, must find the row, as PostgreSQL's own join finds it (citext against citext: a text key
        // against a citext column would compare as text).
        var connection = await postgres.NewDatabaseAsync();
        await ExecuteAsync(connection, $"""
            CREATE COLLATION case_insensitive (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
            CREATE EXTENSION IF NOT EXISTS citext;
            CREATE TABLE holders (code {type} PRIMARY KEY, owner text NOT NULL);
            INSERT INTO holders VALUES ('acme', 'Acme Ltd'), ('Globex', 'Globex Corp'), ('initech', 'Initech');
            CREATE TABLE payments (id integer, code text);
            """);
        PaymentsJoinedOn = compared;
        string[] codes = ["acme", "ACME", "Acme", "globex", "GLOBEX", "Globex", "initech", "InItEcH", "umbrella", "acme "];
        var payments = Enumerable.Range(1, 300).Select(i => new Payment(i, codes[i * 7 % codes.Length])).ToArray();
        foreach (var payment in payments)
        {
            await ExecuteAsync(connection, "INSERT INTO payments VALUES ($1, $2)", payment.Id, payment.Code);
        }

        var pipeline = new PaymentsWithHolders { Input = new(payments), Holders = new PostgresLookup<string, Holder>(connection, "holders") { Join = JoinKind.LeftOuter } };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 50 });

        var expected = await SqlLeftJoinAsync(connection);
        Assert.Equal(expected, pipeline.Out.Items.OrderBy(r => r.Id).ThenBy(r => r.Owner, StringComparer.Ordinal));
        Assert.Equal(payments.Length - payments.Count(p => p.Code is "umbrella" or "acme "), expected.Count(r => r.Owner is not null)); // the reference itself matched across spellings
    }

    [Fact]
    public async Task A_text_key_with_a_NUL_character_finds_no_row_and_the_run_goes_on()
    {
        // PostgreSQL text cannot hold U+0000; such a key can have no row, and must not fail the query of its batch.
        var connection = await postgres.NewDatabaseAsync();
        await ExecuteAsync(connection, "CREATE TABLE holders (code text PRIMARY KEY, owner text NOT NULL); INSERT INTO holders VALUES ('a', 'owner a'), ('b', 'owner b');");
        Payment[] payments = [new(1, "a"), new(2, "a\0b"), new(3, "b"), new(4, "\0"), new(5, "b")];
        var pipeline = new PaymentsWithHolders { Input = new(payments), Holders = new PostgresLookup<string, Holder>(connection, "holders") { Join = JoinKind.LeftOuter } };

        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });

        Assert.Equal(
            [new(1, "a", "owner a"), new(2, "a\0b", null), new(3, "b", "owner b"), new(4, "\0", null), new(5, "b", "owner b")],
            pipeline.Out.Items.OrderBy(r => r.Id));
    }

    [Fact]
    public async Task A_key_column_the_key_type_cannot_be_compared_with_stops_the_run_at_start()
    {
        var connection = await postgres.NewDatabaseAsync();
        await ExecuteAsync(connection, "CREATE TABLE buyers (id text, name text NOT NULL, country text); INSERT INTO buyers VALUES ('1', 'one', NULL);");
        var pipeline = new PurchasesWithBuyers { Input = new([new Purchase(1, 1, 1m)]), Buyers = new PostgresLookup<int, Buyer>(connection, "buyers") };

        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));

        Assert.Contains("the key column of buyers cannot be compared with keys of type Int32", error.ToString(), StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error)); // exit code 2: a restart will not fix it
        Assert.Empty(pipeline.Out.Items);
    }

    [Fact]
    public async Task A_row_that_does_not_fit_its_record_stops_the_run_as_a_failure_no_restart_fixes()
    {
        var connection = await postgres.NewDatabaseAsync();
        await ExecuteAsync(connection, "CREATE TABLE buyers (id integer, name text, country text); INSERT INTO buyers VALUES (1, 'one', NULL), (2, NULL, NULL);");
        var pipeline = new PurchasesWithBuyers { Input = new([new Purchase(1, 2, 1m)]), Buyers = new PostgresLookup<int, Buyer>(connection, "buyers") };

        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));

        Assert.Contains("Column 'name' of table buyers is NULL", error.ToString(), StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error));
    }

    [Fact]
    public async Task A_lookup_query_that_fails_transiently_is_retried_and_logged_as_a_warning()
    {
        var connection = await postgres.NewDatabaseAsync();
        await SeedAsync(connection, 0, 1);
        var logs = new CapturingLogs();
        using var factory = LoggerFactory.Create(builder => builder.AddProvider(logs));
        var pipeline = new PurchasesWithBuyers { Buyers = new PostgresLookup<int, Buyer>(connection, "buyers") };
        await using (var driver = await PipelineTestDriver.StartAsync<Purchase>(pipeline, new PipelineOptions { LoggerFactory = factory }))
        {
            driver.Push(new Purchase(1, 42, 1m));

            // The pooled connection the lookup used is cut: its next query fails on it, and is retried.
            await ExecuteAsync(connection, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
            driver.Push(new Purchase(2, 43, 1m));
        }

        Assert.Equal(["buyer 42", "buyer 43"], pipeline.Out.Items.Select(p => p.Buyer));
        Assert.Equal(1, pipeline.Buyers.Retries);
        Assert.Contains(logs.Lines, line => line.Level == LogLevel.Warning && line.Text.Contains("lookup Buyers: PostgreSQL: could not look up rows in buyers (attempt 1 of 5)", StringComparison.Ordinal));
    }
}
