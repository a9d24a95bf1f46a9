using System.Globalization;
using Compiled.Connectors;
using Compiled.Sqlite;
using Microsoft.Data.Sqlite;

namespace Compiled.Runtime.Tests;

public enum Level
{
    Info,
    Error,
}

public sealed record Happening(int Id, long Big, double Ratio, decimal Price, bool Flag, string Name, string? Note, DateTime At, DateTimeOffset Seen, Guid Key, Level Level, int? Maybe, byte[] Payload);

[Pipeline]
public sealed partial class EventsToSqlite
{
    [Source] public CollectionSource<Happening> Events { get; set; } = new();

    [Sink] public SqliteSink<Happening> Table { get; set; } = new("unused.db", "events");
}

[Pipeline]
public sealed partial class NumbersToSqlite
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new(1, 2);

    [Sink] public SqliteSink<long> Table { get; set; } = new("unused.db", "numbers");
}

public sealed class SqliteSinkTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("compiled-sqlite-").FullName;

    private string Database => Path.Combine(_directory, "out.db");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static readonly Happening[] Events =
    [
        new(1, long.MaxValue, 0.5, 12.345678901234567890m, true, "Zoë \"quoted\"", null, new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc), new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.FromHours(2)), Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), Level.Error, 7, [1, 2, 3]),
        new(2, -1, double.NegativeInfinity, -0.1m, false, "", "a note", DateTime.MinValue, DateTimeOffset.MinValue, Guid.Empty, Level.Info, null, []),
    ];

    [Fact]
    public async Task Rows_hold_every_field_with_columns_derived_from_the_record()
    {
        var pipeline = new EventsToSqlite { Events = new CollectionSource<Happening>(Events), Table = new SqliteSink<Happening>(Database, "events", TableMode.Recreate) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 2 });
        Assert.Equal(2, result.Sinks.Single().Records);

        using var connection = Open();
        Assert.Equal(
            ["id INTEGER 1", "big INTEGER 1", "ratio REAL 1", "price TEXT 1", "flag INTEGER 1", "name TEXT 1", "note TEXT 0", "at TEXT 1", "seen TEXT 1", "key TEXT 1", "level TEXT 1", "maybe INTEGER 0", "payload BLOB 1"],
            Query(connection, "SELECT name || ' ' || type || ' ' || \"notnull\" FROM pragma_table_info('events')"));
        Assert.Equal(
            ["1|9223372036854775807|0.5|12.345678901234567890|1|Zoë \"quoted\"||2026-01-02T03:04:05.0000000Z|2026-01-02T01:04:05.0000000Z|0f8fad5b-d9cb-469f-a165-70867728950e|Error|7|010203",
             "2|-1|-Inf|-0.1|0||a note|0001-01-01T00:00:00.0000000|0001-01-01T00:00:00.0000000Z|00000000-0000-0000-0000-000000000000|Info||"],
            Query(connection, "SELECT id || '|' || big || '|' || ratio || '|' || price || '|' || flag || '|' || name || '|' || ifnull(note, '') || '|' || at || '|' || seen || '|' || key || '|' || level || '|' || ifnull(maybe, '') || '|' || hex(payload) FROM events ORDER BY id"));
    }

    [Fact]
    public async Task Recreate_replaces_the_table_and_create_if_missing_appends()
    {
        for (var run = 0; run < 2; run++)
        {
            await new EventsToSqlite { Events = new CollectionSource<Happening>(Events), Table = new SqliteSink<Happening>(Database, "replaced", TableMode.Recreate) }.RunAsync(new PipelineOptions { Parallelism = 1 });
            await new EventsToSqlite { Events = new CollectionSource<Happening>(Events), Table = new SqliteSink<Happening>(Database, "appended") }.RunAsync(new PipelineOptions { Parallelism = 1 });
        }

        using var connection = Open();
        Assert.Equal(["2"], Query(connection, "SELECT count(*) FROM replaced"));
        Assert.Equal(["4"], Query(connection, "SELECT count(*) FROM appended"));
    }

    [Fact]
    public async Task Must_exist_fails_at_start_naming_the_table()
    {
        var pipeline = new EventsToSqlite { Events = new CollectionSource<Happening>(Events), Table = new SqliteSink<Happening>(Database, "missing", TableMode.MustExist) };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Equal("Table", error.ConnectorName);
        Assert.Contains("Table 'missing' does not exist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_record_type_without_fields_is_rejected_with_a_clear_message()
    {
        var pipeline = new NumbersToSqlite { Table = new SqliteSink<long>(Database, "numbers") };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("needs a record type with public fields or properties", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Many_partitions_share_the_database_without_losing_rows()
    {
        var many = Enumerable.Range(0, 20_000).Select(i => Events[0] with { Id = i }).ToArray();
        var pipeline = new EventsToSqlite { Events = new CollectionSource<Happening>(many), Table = new SqliteSink<Happening>(Database, "many", TableMode.Recreate) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 4, BatchSize = 500 });
        using var connection = Open();
        Assert.Equal(["20000", "20000", "0", "19999"], Query(connection, "SELECT count(*) FROM many UNION ALL SELECT count(DISTINCT id) FROM many UNION ALL SELECT min(id) FROM many UNION ALL SELECT max(id) FROM many"));
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
