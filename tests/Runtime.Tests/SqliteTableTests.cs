using System.Globalization;
using Compiled.Connectors;
using Compiled.Sqlite;
using Microsoft.Data.Sqlite;

namespace Compiled.Runtime.Tests;

public sealed record PriceRow([property: Key] int ProductId, [property: Key] string StoreCode, decimal UnitPrice, DateTimeOffset SeenAt, DateTime? ValidUntil);

[Pipeline]
public sealed partial class PricesToSqlite
{
    [Source] public CollectionSource<PriceRow> Prices { get; set; } = new();

    [Sink] public SqliteSink<PriceRow> Table { get; set; } = new("unused.db", "prices");
}

/// <summary>The SQLite sink behaves like the PostgreSQL sink: [Key] upserts, snake_case columns, one type mapping (issue 18, item 14).</summary>
public sealed class SqliteTableTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("compiled-sqlite-table-").FullName;

    private string Database => Path.Combine(_directory, "prices.db");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static PriceRow Row(int id, string store, decimal price) => new(id, store, price, new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.FromHours(2)), null);

    [Fact]
    public async Task Upsert_mode_keys_on_the_key_members_so_a_second_run_updates_instead_of_doubling()
    {
        PriceRow[] first = [Row(1, "a", 1.5m), Row(2, "a", 2.5m), Row(1, "b", 3.5m)];
        PriceRow[] second = [Row(1, "a", 9.25m), Row(1, "a", 9.5m), Row(3, "c", 4m)]; // a key twice in one batch: the last wins
        foreach (var rows in new[] { first, second })
        {
            var sink = new SqliteSink<PriceRow>(Database, "prices", writeMode: TableWriteMode.Upsert);
            await new PricesToSqlite { Prices = new CollectionSource<PriceRow>(rows), Table = sink }.RunAsync(new PipelineOptions { Parallelism = 1 });
        }

        using var connection = Open();
        Assert.Equal(["1|a|9.5", "1|b|3.5", "2|a|2.5", "3|c|4"], Query(connection, "SELECT product_id || '|' || store_code || '|' || unit_price FROM prices ORDER BY product_id, store_code"));
    }

    [Fact]
    public async Task Columns_are_snake_case_with_the_key_as_primary_key_and_documented_types()
    {
        await new PricesToSqlite { Prices = new CollectionSource<PriceRow>(Row(1, "a", 1.5m)), Table = new SqliteSink<PriceRow>(Database, "prices") }.RunAsync(new PipelineOptions { Parallelism = 1 });
        using var connection = Open();
        Assert.Equal(
            ["product_id INTEGER 1 1", "store_code TEXT 1 2", "unit_price TEXT 1 0", "seen_at TEXT 1 0", "valid_until TEXT 0 0"],
            Query(connection, "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || pk FROM pragma_table_info('prices')"));

        // Times are ISO 8601 in UTC, the form SQLite's date functions read; text order is time order.
        Assert.Equal(["2026-03-04T03:06:07.0000000Z|2026-03-04 03:06:07"], Query(connection, "SELECT seen_at || '|' || datetime(seen_at) FROM prices"));
    }

    [Fact]
    public async Task Exact_naming_keeps_member_names()
    {
        var sink = new SqliteSink<PriceRow>(Database, "exact", naming: ColumnNaming.Exact);
        await new PricesToSqlite { Prices = new CollectionSource<PriceRow>(Row(1, "a", 1.5m)), Table = sink }.RunAsync(new PipelineOptions { Parallelism = 1 });
        using var connection = Open();
        Assert.Equal(["ProductId", "StoreCode", "UnitPrice", "SeenAt", "ValidUntil"], Query(connection, "SELECT name FROM pragma_table_info('exact')"));
    }

    [Fact]
    public async Task Append_mode_with_a_key_refuses_a_repeated_key_as_PostgreSQL_does()
    {
        var pipeline = new PricesToSqlite { Prices = new CollectionSource<PriceRow>(Row(1, "a", 1m), Row(1, "a", 2m)), Table = new SqliteSink<PriceRow>(Database, "prices") };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("UNIQUE constraint failed", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upsert_without_a_key_is_refused_at_start_and_cannot_be_retried()
    {
        var pipeline = new EventsToSqlite { Events = new CollectionSource<Happening>(), Table = new SqliteSink<Happening>(Database, "events", writeMode: TableWriteMode.Upsert) };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("[Key]", error.Message, StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error));
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection($"Data Source={Database};Mode=ReadOnly;Pooling=False");
        connection.Open();
        return connection;
    }

    private static List<string> Query(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            rows.Add(Convert.ToString(reader.GetValue(0), CultureInfo.InvariantCulture)!);
        }

        return rows;
    }
}
