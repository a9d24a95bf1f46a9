using System.Globalization;
using Compiled.Connectors;
using Compiled.Sqlite;
using Compiled.Testing;
using Microsoft.Data.Sqlite;

namespace Compiled.Runtime.Tests.Joins;

public readonly record struct Sale(int Id, int CustomerId, decimal Amount, long Time);

public enum Tier
{
    Bronze,
    Silver,
    Gold,
}

public sealed record Customer([property: Key] int Id, string Name, string? Country, Tier Tier, DateTime Since);

public readonly record struct EnrichedSale(int SaleId, int CustomerId, string Customer, string? Country, string Tier, decimal Amount);

/// <summary>Sales joined with their customers from a SQLite table.</summary>
[Pipeline(Name = "sales-with-customers")]
public sealed partial class SalesWithCustomers
{
    [Source] public ISource<Sale> Sales { get; set; } = new CollectionSource<Sale>();

    [KeyBy] static int CustomerOf(Sale s) => s.CustomerId;

    [Lookup] public SqliteLookup<int, Customer> Customers { get; set; } = new("unused.db", "customers");

    [Transform] static EnrichedSale Enrich(Joined<Sale, Customer> j)
        => new(j.Left.Id, j.Left.CustomerId, j.HasRight ? j.Right!.Name : "(none)", j.Right?.Country, j.HasRight ? j.Right!.Tier.ToString() : "", j.Left.Amount);

    [Sink] public CollectionSink<EnrichedSale> Out { get; set; } = new();
}

public sealed record Account([property: Key] string Code, string Owner);

public readonly record struct AccountPayment(int Id, string Code);

public readonly record struct PaidBy(int Id, string Code, string Owner);

/// <summary>Payments joined with accounts by a text key.</summary>
[Pipeline(Name = "payments-with-accounts")]
public sealed partial class PaymentsWithAccounts
{
    [Source] public ISource<AccountPayment> Payments { get; set; } = new CollectionSource<AccountPayment>();

    [KeyBy] static string CodeOf(AccountPayment p) => p.Code;

    [Lookup] public SqliteLookup<string, Account> Accounts { get; set; } = new("unused.db", "accounts");

    [Transform] static PaidBy Pay(Joined<AccountPayment, Account> j) => new(j.Left.Id, j.Left.Code, j.Right!.Owner);

    [Sink] public CollectionSink<PaidBy> Out { get; set; } = new();
}

public sealed record Rank([property: Key] int Id, int Value);

/// <summary>Sales joined with a rank by customer id: a table whose rank column SQLite might read as another type.</summary>
[Pipeline(Name = "sales-with-ranks")]
public sealed partial class SalesWithRanks
{
    [Source] public ISource<Sale> Sales { get; set; } = new CollectionSource<Sale>();

    [KeyBy] static int CustomerOf(Sale s) => s.CustomerId;

    [Lookup] public SqliteLookup<int, Rank> Ranks { get; set; } = new("unused.db", "ranked");

    [Transform] static Rank RankOf(Joined<Sale, Rank> j) => j.Right!;

    [Sink] public CollectionSink<Rank> Out { get; set; } = new();
}

public sealed record LetterName([property: Key] char Code, string Name);

public readonly record struct Letter(int Id, char Code);

/// <summary>Letters joined with their names by a char key.</summary>
[Pipeline(Name = "letters-with-names")]
public sealed partial class LettersWithNames
{
    [Source] public ISource<Letter> Input { get; set; } = new CollectionSource<Letter>();

    [KeyBy] static char CodeOf(Letter l) => l.Code;

    [Lookup] public SqliteLookup<char, LetterName> Names { get; set; } = new("unused.db", "letters");

    [Transform] static string Name(Joined<Letter, LetterName> j) => $"{j.Left.Id} {j.Right!.Name}";

    [Sink] public CollectionSink<string> Out { get; set; } = new();
}

/// <summary>Counts the joined records it sees: a mutable struct operator in the loop after a lookup.</summary>
public struct JoinedCounter
{
    private long _seen;

    public Joined<Sale, Customer> Apply(Joined<Sale, Customer> joined)
    {
        _seen++;
        return joined;
    }

    public readonly long Seen => _seen;
}

/// <summary>
/// Sales joined with customers, then a stage that throws now and then: the loop after the lookup reads the cached rows
/// in place until a record fails, then the joined records are handed over one by one and the error policy finds it.
/// </summary>
[Pipeline(Name = "sales-with-customers-checked", ErrorPolicy = ErrorPolicy.DeadLetter)]
public sealed partial class CheckedSalesWithCustomers
{
    [Source] public ISource<Sale> Sales { get; set; } = new CollectionSource<Sale>();

    [KeyBy] static int CustomerOf(Sale s) => s.CustomerId;

    [Lookup] public SqliteLookup<int, Customer> Customers { get; set; } = new("unused.db", "customers");

    [Transform] public JoinedCounter Count { get; set; }

    [Transform] static Joined<Sale, Customer> Check(Joined<Sale, Customer> j) => j.Left.Id % 97 == 0 ? throw new InvalidOperationException("a multiple of 97") : j;

    [Transform] static EnrichedSale Enrich(Joined<Sale, Customer> j)
        => new(j.Left.Id, j.Left.CustomerId, j.HasRight ? j.Right!.Name : "(none)", j.Right?.Country, j.HasRight ? j.Right!.Tier.ToString() : "", j.Left.Amount);

    [Sink] public CollectionSink<EnrichedSale> Out { get; set; } = new();
}

/// <summary>The lookup join: every record with the rows of its key, fetched in batches, cached per partition.</summary>
public sealed class LookupJoinTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("compiled-lookup-").FullName;

    private string Database => Path.Combine(_directory, "shop.db");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>
    /// Writes the customers (some ids twice: a join emits once per matching row) and the sales into SQLite, so that
    /// SQLite itself computes the reference join.
    /// </summary>
    private (Sale[] Sales, int Keys) Seed(int seed, int sales, bool duplicates)
    {
        var random = new Random(seed);
        using var connection = new SqliteConnection($"Data Source={Database};Pooling=False");
        connection.Open();
        Execute(connection, "CREATE TABLE customers (id INTEGER, name TEXT NOT NULL, country TEXT, tier TEXT NOT NULL, since TEXT NOT NULL)");
        Execute(connection, "CREATE TABLE sales (id INTEGER, customer_id INTEGER, amount TEXT, time INTEGER)");
        using var transaction = connection.BeginTransaction();
        for (var id = 1; id <= 300; id++)
        {
            var copies = duplicates && id % 50 == 0 ? 2 : 1;
            for (var copy = 0; copy < copies; copy++)
            {
                Insert(connection, "INSERT INTO customers VALUES ($1, $2, $3, $4, $5)", id, $"customer {id}/{copy}", id % 7 == 0 ? null : "country " + (id % 5), ((Tier)(id % 3)).ToString(), new DateTime(2020, 1, 1).AddDays(id).ToString("O", CultureInfo.InvariantCulture));
            }
        }

        // Customer ids up to 360: a sixth of the sales have no customer.
        var rows = Enumerable.Range(1, sales).Select(i => new Sale(i, random.Next(1, 361), Math.Round((decimal)random.NextDouble() * 100, 2), i)).ToArray();
        foreach (var sale in rows)
        {
            Insert(connection, "INSERT INTO sales VALUES ($1, $2, $3, $4)", sale.Id, sale.CustomerId, sale.Amount.ToString(CultureInfo.InvariantCulture), sale.Time);
        }

        transaction.Commit();
        return (rows, rows.Select(s => s.CustomerId).Distinct().Count());
    }

    /// <summary>The join as SQLite computes it over the same tables.</summary>
    private List<EnrichedSale> ReferenceJoin(bool leftOuter)
    {
        using var connection = new SqliteConnection($"Data Source={Database};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT s.id, s.customer_id, c.name, c.country, c.tier, s.amount FROM sales s {(leftOuter ? "LEFT JOIN" : "JOIN")} customers c ON c.id = s.customer_id";
        using var reader = command.ExecuteReader();
        var rows = new List<EnrichedSale>();
        while (reader.Read())
        {
            rows.Add(new EnrichedSale(
                reader.GetInt32(0),
                reader.GetInt32(1),
                reader.IsDBNull(2) ? "(none)" : reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? "" : reader.GetString(4),
                decimal.Parse(reader.GetString(5), CultureInfo.InvariantCulture)));
        }

        return Sorted(rows);
    }

    private static List<EnrichedSale> Sorted(IEnumerable<EnrichedSale> rows) => [.. rows.OrderBy(r => r.SaleId).ThenBy(r => r.Customer, StringComparer.Ordinal)];

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static void Insert(SqliteConnection connection, string sql, params object?[] values)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters.AddWithValue("$" + (i + 1).ToString(CultureInfo.InvariantCulture), values[i] ?? DBNull.Value);
        }

        command.ExecuteNonQuery();
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(3, false)]
    [InlineData(1, true)]
    [InlineData(4, true)]
    public async Task The_join_equals_SQLs_join_of_the_same_tables(int parallelism, bool leftOuter)
    {
        var (sales, keys) = Seed(parallelism * 10 + (leftOuter ? 1 : 0), 20_000, duplicates: true);
        var pipeline = new SalesWithCustomers
        {
            Sales = new CollectionSource<Sale>(sales),
            Customers = new SqliteLookup<int, Customer>(Database, "customers") { Join = leftOuter ? JoinKind.LeftOuter : JoinKind.Inner, TimeToLive = TimeSpan.Zero },
        };

        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 500 });

        Assert.Equal(ReferenceJoin(leftOuter), Sorted(pipeline.Out.Items));
        var lookup = Assert.Single(result.Lookups);

        // Each key reaches one partition and stays in its cache: every key is fetched once, in a few batched queries.
        Assert.Equal(keys, lookup.KeysFetched);
        Assert.True(lookup.Fetches <= sales.Length / 500 * parallelism, $"{lookup.Fetches} queries");
        Assert.InRange(lookup.CacheHits, 1, sales.Length - keys);
        Assert.Equal(sales.Count(s => s.CustomerId > 300), lookup.Unmatched);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(7, true)]
    [InlineData(500, false)]
    [InlineData(500, true)]
    public async Task A_record_failing_after_the_lookup_is_dead_lettered_once_and_nothing_else_is_joined_or_counted_twice(int batchSize, bool leftOuter)
    {
        var (sales, _) = Seed(batchSize + (leftOuter ? 1 : 0), 5_000, duplicates: true);
        var deadLetters = new CollectionSink<DeadLetter>();
        var pipeline = new CheckedSalesWithCustomers
        {
            Sales = new CollectionSource<Sale>(sales),
            Customers = new SqliteLookup<int, Customer>(Database, "customers") { Join = leftOuter ? JoinKind.LeftOuter : JoinKind.Inner, TimeToLive = TimeSpan.Zero },
        };

        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = batchSize, DeadLetterSink = deadLetters });

        // Each joined record once: those of every 97th sale as dead letters at the failing stage, the others joined.
        var reference = ReferenceJoin(leftOuter);
        Assert.Equal(reference.Where(r => r.SaleId % 97 != 0).ToList(), Sorted(pipeline.Out.Items));
        Assert.Equal(reference.Count(r => r.SaleId % 97 == 0), deadLetters.Items.Count);
        Assert.All(deadLetters.Items, letter => Assert.Equal("Check", letter.Stage));
        Assert.Equal(reference.Count, pipeline.Count.Seen); // the struct before the failing stage counted each joined record once
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Local_routing_looks_records_up_where_they_are_and_joins_the_same(int parallelism)
    {
        var (sales, keys) = Seed(40 + parallelism, 20_000, duplicates: true);
        var pipeline = new SalesWithCustomers
        {
            Sales = new CollectionSource<Sale>(sales),
            Customers = new SqliteLookup<int, Customer>(Database, "customers") { Routing = LookupRouting.Local, Join = JoinKind.LeftOuter },
        };

        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 500 });

        Assert.Equal(ReferenceJoin(leftOuter: true), Sorted(pipeline.Out.Items));

        // No exchange: each source partition meets (nearly) every key and fetches it for its own cache.
        var lookup = Assert.Single(result.Lookups);
        if (parallelism == 1)
        {
            Assert.Equal(keys, lookup.KeysFetched);
        }
        else
        {
            Assert.True(lookup.KeysFetched > keys * (parallelism - 1), $"{lookup.KeysFetched} keys fetched for {keys} keys at parallelism {parallelism}: the records crossed an exchange by key");
        }
    }

    [Theory]
    [InlineData(1, 1, 64)]
    [InlineData(7, 2, 100)]
    [InlineData(50, 3, 33)]
    [InlineData(120, 1, 1000)]
    public async Task A_cache_smaller_than_the_keys_evicts_and_fetches_again_without_changing_the_result(int cacheSize, int parallelism, int batchSize)
    {
        var (sales, keys) = Seed(cacheSize, 6_000, duplicates: true);
        var pipeline = new SalesWithCustomers
        {
            Sales = new CollectionSource<Sale>(sales),
            Customers = new SqliteLookup<int, Customer>(Database, "customers") { CacheSize = cacheSize, Join = JoinKind.LeftOuter },
        };

        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = batchSize });

        Assert.Equal(ReferenceJoin(leftOuter: true), Sorted(pipeline.Out.Items));
        var lookup = Assert.Single(result.Lookups);
        Assert.True(lookup.KeysFetched > keys, $"{lookup.KeysFetched} keys fetched for {keys} keys: nothing was evicted");
    }

    [Theory]
    [InlineData(LookupRouting.ByKey)]
    [InlineData(LookupRouting.Local)]
    public async Task Records_leave_the_lookup_in_the_order_they_came_though_keys_are_fetched_part_way_through_a_batch(LookupRouting routing)
    {
        // A small cache: most batches hold keys it has and keys it must fetch, mixed; the joined records still leave in
        // the order the sales arrived (one partition, so one order to keep).
        var (sales, _) = Seed(17, 6_000, duplicates: true);
        var pipeline = new SalesWithCustomers
        {
            Sales = new CollectionSource<Sale>(sales),
            Customers = new SqliteLookup<int, Customer>(Database, "customers") { CacheSize = 40, Join = JoinKind.LeftOuter, Routing = routing },
        };

        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 300 });

        // Left outer: a sale without a customer once, a customer with two rows (every 50th) twice, side by side.
        Assert.Equal(sales.SelectMany(s => Enumerable.Repeat(s.Id, s.CustomerId <= 300 && s.CustomerId % 50 == 0 ? 2 : 1)), pipeline.Out.Items.Select(e => e.SaleId));
        var lookup = Assert.Single(result.Lookups);
        Assert.True(lookup.CacheHits > 0 && lookup.Fetches == sales.Length / 300, $"{lookup.CacheHits} hits, {lookup.Fetches} fetches: batches did not mix cached and fetched keys");
    }

    [Fact]
    public void The_lookup_is_a_connector_with_settings()
    {
        var job = ((ICompiledPipeline)new SalesWithCustomers()).CreateJob();
        var lookup = Assert.Single(job.Connectors, c => c.Role == ConnectorRole.Lookup);
        Assert.Equal("Customers", lookup.Name);
        Assert.Equal(["Customers.Path", "Customers.Table", "Customers.Join", "Customers.CacheSize", "Customers.TimeToLive", "Customers.Routing"], lookup.Settings.Select(s => s.Name));
        Assert.Null(lookup.Settings.First(s => s.Name == "Customers.Join").TrySet("LeftOuter"));
        Assert.Equal(JoinKind.LeftOuter, ((SqliteLookup<int, Customer>)lookup.Connector).Join);

        // TimeToLive 0 means "until the key leaves the cache", as its description says: a setting takes it (an outside
        // test found the durations whose zero means something refused "0" as not positive). Negative stays refused.
        var timeToLive = lookup.Settings.First(s => s.Name == "Customers.TimeToLive");
        Assert.Null(timeToLive.TrySet("90s"));
        Assert.Null(timeToLive.TrySet("0"));
        Assert.Equal(TimeSpan.Zero, ((SqliteLookup<int, Customer>)lookup.Connector).TimeToLive);
        Assert.Null(timeToLive.TrySet("2m"));
        Assert.Null(timeToLive.TrySet("0ms"));
        Assert.Equal(TimeSpan.Zero, ((SqliteLookup<int, Customer>)lookup.Connector).TimeToLive);
        Assert.Equal("expected 0 or a positive duration such as 250ms, 5s, 2m, 1h or hh:mm:ss", timeToLive.TrySet("-1s"));
        Assert.Contains("SQLite unused.db, table customers", lookup.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Batches_ask_for_the_keys_they_miss_in_one_query_each()
    {
        var (sales, _) = Seed(7, 2_000, duplicates: false);
        var pipeline = new SalesWithCustomers
        {
            Sales = new CollectionSource<Sale>(sales),
            Customers = new SqliteLookup<int, Customer>(Database, "customers") { CacheSize = 0 },
        };

        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 250 });

        // No cache: every batch asks for its distinct keys once, in one query.
        var lookup = Assert.Single(result.Lookups);
        Assert.Equal(sales.Length / 250, lookup.Fetches);
        Assert.Equal(sales.Chunk(250).Sum(batch => batch.Select(s => s.CustomerId).Distinct().Count()), lookup.KeysFetched);
        Assert.Equal(0, lookup.CacheHits);
        Assert.Equal(ReferenceJoin(leftOuter: false), Sorted(pipeline.Out.Items));
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"keys fetched in {lookup.Fetches:N0} queries ("), PipelineHost.Summary(result), StringComparison.Ordinal);

        // One batch, one query: the summary says so in the singular (an outside test read "in 1 queries").
        var once = new SalesWithCustomers { Sales = new CollectionSource<Sale>(sales[..200]), Customers = new SqliteLookup<int, Customer>(Database, "customers") };
        var single = await once.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 250 });
        Assert.Equal(1, Assert.Single(single.Lookups).Fetches);
        Assert.Contains("keys fetched in 1 query (", PipelineHost.Summary(single), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_changed_row_is_seen_once_its_time_to_live_has_passed()
    {
        Seed(3, 0, duplicates: false);
        var pipeline = new SalesWithCustomers
        {
            Customers = new SqliteLookup<int, Customer>(Database, "customers") { TimeToLive = TimeSpan.FromMinutes(5) },
        };

        await using var driver = await PipelineTestDriver.StartAsync<Sale>(pipeline);
        driver.Push(new Sale(1, 10, 1m, 0));
        using (var connection = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            connection.Open();
            Execute(connection, "UPDATE customers SET name = 'renamed' WHERE id = 10");
        }

        driver.AdvanceTime(TimeSpan.FromMinutes(4));
        driver.Push(new Sale(2, 10, 1m, 0)); // still cached
        driver.AdvanceTime(TimeSpan.FromMinutes(1));
        driver.Push(new Sale(3, 10, 1m, 0)); // past the time-to-live: fetched again

        Assert.Equal(["customer 10/0", "customer 10/0", "renamed"], pipeline.Out.Items.Select(s => s.Customer));
    }

    [Fact]
    public async Task A_missing_column_fails_at_start_naming_it()
    {
        using (var connection = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            connection.Open();
            Execute(connection, "CREATE TABLE customers (id INTEGER, name TEXT, tier TEXT, since TEXT)");
        }

        var pipeline = new SalesWithCustomers
        {
            Sales = new CollectionSource<Sale>([new Sale(1, 1, 1m, 0)]),
            Customers = new SqliteLookup<int, Customer>(Database, "customers"),
        };

        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("no column 'country' (for Customer.Country)", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("Customers", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_null_in_a_column_whose_field_cannot_hold_it_names_the_column()
    {
        Seed(5, 0, duplicates: false);
        using (var connection = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            connection.Open();
            Execute(connection, "CREATE TABLE broken AS SELECT id, NULL AS name, country, tier, since FROM customers");
        }

        var pipeline = new SalesWithCustomers
        {
            Sales = new CollectionSource<Sale>([new Sale(1, 1, 1m, 0)]),
            Customers = new SqliteLookup<int, Customer>(Database, "broken"),
        };

        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("Column 'name' of table broken is NULL", error.ToString(), StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error)); // exit code 2: the row must be fixed before a restart helps
        Assert.Contains("connector 'Customers' failed to look up rows in partition 0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Text_keys_of_any_characters_find_their_rows_and_only_theirs()
    {
        // The keys reach SQLite inside one JSON text: quotes, backslashes, control characters, separators, characters
        // beyond the BMP and text that looks like JSON must each find exactly the row stored under them.
        string[] stored = ["plain", "q\"uote", "back\\slash", "new\nline", "tab\t", "nul\0byte", "emoji \U0001F600", "ünïcödé", "[1,2]", "a,b", "", "'single'", "</script>", "\u2028", "  spaced  ", "NULL"];
        string[] absent = ["Plain", "plain ", "q'uote", "back/slash", "emoji", "[1, 2]", "null"];
        using (var connection = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            connection.Open();
            Execute(connection, "CREATE TABLE accounts (code TEXT PRIMARY KEY, owner TEXT NOT NULL)");
            for (var i = 0; i < stored.Length; i++)
            {
                Insert(connection, "INSERT INTO accounts VALUES ($1, $2)", stored[i], "owner " + i.ToString(CultureInfo.InvariantCulture));
            }
        }

        var codes = stored.Concat(absent).ToArray();
        var payments = Enumerable.Range(0, 400).Select(i => new AccountPayment(i, codes[i * 7 % codes.Length])).ToArray();
        var pipeline = new PaymentsWithAccounts
        {
            Payments = new CollectionSource<AccountPayment>(payments),
            Accounts = new SqliteLookup<string, Account>(Database, "accounts"),
        };

        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 64 });

        var owners = stored.Select((code, i) => (code, i)).ToDictionary(p => p.code, p => "owner " + p.i.ToString(CultureInfo.InvariantCulture), StringComparer.Ordinal);
        var expected = payments.Where(p => owners.ContainsKey(p.Code)).Select(p => new PaidBy(p.Id, p.Code, owners[p.Code])).OrderBy(p => p.Id);
        Assert.Equal(expected, pipeline.Out.Items.OrderBy(p => p.Id));
        Assert.Equal(codes.Length, Assert.Single(result.Lookups).KeysFetched);
    }

    [Theory]
    [InlineData("NOCASE", false)]
    [InlineData("RTRIM", false)]
    [InlineData("NOCASE", true)]
    [InlineData("RTRIM", true)]
    public async Task A_key_column_that_collates_spellings_together_finds_its_row_for_each_as_SQLites_join_does(string collation, bool throughView)
    {
        string[] codes = ["acme", "ACME", "Acme", "acme ", "acme  ", "globex", "GLOBEX ", "ümlaut", "ÜMLAUT", "none"];
        var payments = Enumerable.Range(1, 500).Select(i => new AccountPayment(i, codes[i * 7 % codes.Length])).ToArray();
        var expected = new List<PaidBy>();
        using (var connection = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            connection.Open();
            Execute(connection, $"CREATE TABLE accounts (code TEXT COLLATE {collation} PRIMARY KEY, owner TEXT NOT NULL); CREATE TABLE payments (id INTEGER, code TEXT)");
            Execute(connection, "INSERT INTO accounts VALUES ('acme', 'Acme Ltd'), ('GLOBEX', 'Globex Corp'), ('ümlaut', 'Umlaut AG')");
            Execute(connection, "CREATE VIEW account_view AS SELECT code, owner FROM accounts"); // SQLite does not describe a view's columns
            foreach (var payment in payments)
            {
                Insert(connection, "INSERT INTO payments VALUES ($1, $2)", payment.Id, payment.Code);
            }

            using var join = connection.CreateCommand();
            join.CommandText = $"SELECT p.id, p.code, a.owner FROM payments p JOIN {(throughView ? "account_view" : "accounts")} a ON a.code = p.code ORDER BY p.id";
            using var reader = join.ExecuteReader();
            while (reader.Read())
            {
                expected.Add(new PaidBy(reader.GetInt32(0), reader.GetString(1), reader.GetString(2)));
            }
        }

        var pipeline = new PaymentsWithAccounts
        {
            Payments = new CollectionSource<AccountPayment>(payments),
            Accounts = new SqliteLookup<string, Account>(Database, throughView ? "account_view" : "accounts"),
        };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 64 });

        Assert.Equal(expected, pipeline.Out.Items.OrderBy(p => p.Id));
        Assert.True(expected.Select(p => p.Code).Distinct().Count() >= 3, "the reference joins several spellings");
    }

    [Theory]
    [InlineData("TEXT", false)]
    [InlineData("VARCHAR(20)", false)]
    [InlineData("INTEGER", true)]
    [InlineData("REAL", true)]
    public async Task A_key_column_of_another_type_than_the_key_is_an_error_at_start(string declared, bool textKey)
    {
        using (var connection = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            connection.Open();
            Execute(connection, $"CREATE TABLE customers (id {declared}, name TEXT, country TEXT, tier TEXT, since TEXT); CREATE TABLE accounts (code {declared}, owner TEXT)");
        }

        var options = new PipelineOptions { Parallelism = 1 };
        Func<Task> run = textKey
            ? () => new PaymentsWithAccounts { Payments = new CollectionSource<AccountPayment>([new(1, "007")]), Accounts = new SqliteLookup<string, Account>(Database, "accounts") }.RunAsync(options)
            : () => new SalesWithCustomers { Sales = new CollectionSource<Sale>([new Sale(1, 1, 1m, 0)]), Customers = new SqliteLookup<int, Customer>(Database, "customers") }.RunAsync(options);

        var error = await Assert.ThrowsAnyAsync<PipelineException>(run);

        Assert.Contains($"is declared {declared}", error.ToString(), StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error));
    }

    [Theory]
    [InlineData("'abc'", "the text 'abc'")]
    [InlineData("1.5", "1.5")]
    public async Task A_value_SQLite_would_convert_into_a_number_stops_the_run_naming_the_column(string stored, string shown)
    {
        using (var connection = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            connection.Open();
            Execute(connection, $"CREATE TABLE customers (id INTEGER, name TEXT, country TEXT, tier TEXT, since TEXT); CREATE TABLE ranked (id INTEGER, value ANY); INSERT INTO ranked VALUES (1, 7), (2, {stored})");
        }

        var pipeline = new SalesWithRanks { Sales = new CollectionSource<Sale>([new Sale(1, 1, 1m, 0), new Sale(2, 2, 1m, 0)]), Ranks = new SqliteLookup<int, Rank>(Database, "ranked") };

        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 1 }));

        Assert.Contains($"Column 'value' of table ranked holds {shown} in a row, which does not fit Value (Int32)", error.ToString(), StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error));
    }

    [Theory]
    [InlineData("3000000000")]
    [InlineData("-2147483649")]
    public async Task A_whole_number_too_large_for_the_member_stops_the_run_naming_the_column(string stored)
    {
        using (var connection = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            connection.Open();
            Execute(connection, $"CREATE TABLE customers (id INTEGER, name TEXT, country TEXT, tier TEXT, since TEXT); CREATE TABLE ranked (id INTEGER, value INTEGER); INSERT INTO ranked VALUES (1, 7), (2, {stored})");
        }

        var pipeline = new SalesWithRanks { Sales = new CollectionSource<Sale>([new Sale(1, 1, 1m, 0), new Sale(2, 2, 1m, 0)]), Ranks = new SqliteLookup<int, Rank>(Database, "ranked") };

        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 1 }));

        Assert.Contains("Column 'value' of table ranked does not read as Value (Int32)", error.ToString(), StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error));
    }

    [Fact]
    public async Task Keys_SQLite_receives_in_another_form_find_the_rows_SQLites_join_finds()
    {
        // A string with a lone surrogate reaches SQLite as U+FFFD; a char key meets a NOCASE column; a text key meets a
        // view over an integer column ('007' finds 7). Each must join as SQLite's own join of the same values does.
        using (var connection = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            connection.Open();
            Execute(connection, "CREATE TABLE accounts (code TEXT PRIMARY KEY, owner TEXT NOT NULL); CREATE TABLE numbered (code INTEGER, owner TEXT NOT NULL); CREATE VIEW numbered_view AS SELECT code, owner FROM numbered");
            Insert(connection, "INSERT INTO accounts VALUES ($1, 'replacement')", "\uFFFD");
            Insert(connection, "INSERT INTO accounts VALUES ($1, 'plain')", "plain");
            Execute(connection, "INSERT INTO numbered VALUES (7, 'seven'), (12, 'twelve')");
            Execute(connection, "CREATE TABLE letters (code TEXT COLLATE NOCASE PRIMARY KEY, name TEXT NOT NULL); INSERT INTO letters VALUES ('a', 'lower a'), ('B', 'upper b')");
        }

        var surrogates = new PaymentsWithAccounts
        {
            Payments = new CollectionSource<AccountPayment>([new(1, "\uD800"), new(2, "plain"), new(3, "\uFFFD"), new(4, "\uDC00x")]),
            Accounts = new SqliteLookup<string, Account>(Database, "accounts"),
        };
        await surrogates.RunAsync(new PipelineOptions { Parallelism = 1 });
        Assert.Equal([new(1, "\uD800", "replacement"), new(2, "plain", "plain"), new(3, "\uFFFD", "replacement")], surrogates.Out.Items.OrderBy(p => p.Id));

        var numbers = new PaymentsWithAccounts
        {
            Payments = new CollectionSource<AccountPayment>([new(1, "007"), new(2, "7"), new(3, "12"), new(4, "8")]),
            Accounts = new SqliteLookup<string, Account>(Database, "numbered_view"),
        };
        await numbers.RunAsync(new PipelineOptions { Parallelism = 1 });
        Assert.Equal([new(1, "007", "seven"), new(2, "7", "seven"), new(3, "12", "twelve")], numbers.Out.Items.OrderBy(p => p.Id));

        var letters = new LettersWithNames
        {
            Input = new CollectionSource<Letter>([new(1, 'a'), new(2, 'A'), new(3, 'b'), new(4, 'B'), new(5, 'c')]),
            Names = new SqliteLookup<char, LetterName>(Database, "letters"),
        };
        await letters.RunAsync(new PipelineOptions { Parallelism = 1 });
        Assert.Equal(["1 lower a", "2 lower a", "3 upper b", "4 upper b"], letters.Out.Items.Order(StringComparer.Ordinal));
    }
}
