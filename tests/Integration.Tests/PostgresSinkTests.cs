using Compiled.Connectors;
using Compiled.Postgres;
using Compiled.Runtime;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>The PostgreSQL sink against a real server.</summary>
[Collection(nameof(Infrastructure))]
public sealed class PostgresSinkTests(PostgresFixture postgres)
{
    internal static Everything Sample(long id) => new(
        id,
        (int)id * 3,
        (short)(id % 30000),
        (byte)(id % 256),
        uint.MaxValue - (uint)id,
        ulong.MaxValue - (ulong)id,
        id % 2 == 0,
        id / 7.0,
        id / 3f,
        12345.6789m + id,
        $"text {id} with 'quotes', \"doubles\", a tab\t and ünïcødé 🎉",
        id % 3 == 0 ? null : $"maybe {id}",
        (char)('a' + (id % 26)),
        new DateTime(2026, 11, 25, 8, 30, 15, DateTimeKind.Unspecified).AddSeconds(id),
        new DateTimeOffset(2026, 11, 25, 9, 30, 15, TimeSpan.FromHours(2)).AddMinutes(id),
        new Guid((int)id, 1, 2, [3, 4, 5, 6, 7, 8, 9, 10]),
        new DateOnly(2026, 1, 1).AddDays((int)id),
        new TimeOnly(13, 14, 15).Add(TimeSpan.FromSeconds(id)),
        TimeSpan.FromMinutes(id + 0.5),
        (Colour)(id % 3),
        id % 2 == 0 ? null : (int)id);

    [Fact]
    public async Task Append_writes_every_field_type_through_binary_copy_and_reads_back_equal()
    {
        var connection = await postgres.NewDatabaseAsync();
        var records = Enumerable.Range(1, 5000).Select(i => Sample(i)).ToArray();
        var pipeline = new EverythingPipeline
        {
            Input = new CollectionSource<Everything>(records),
            Table = new PostgresSink<Everything>(connection, "everything"),
        };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 700 });
        Assert.Equal(5000, result.Sinks[0].Records);

        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT id, count, small, tiny, unsigned, huge, flag, ratio, single, money, text, maybe, letter, local, at, guid, day, time, span, colour, missing FROM everything ORDER BY id", db);
        await using var reader = await command.ExecuteReaderAsync();
        var read = 0;
        while (await reader.ReadAsync())
        {
            var expected = records[read++];
            Assert.Equal(expected.Id, reader.GetInt64(0));
            Assert.Equal(expected.Count, reader.GetInt32(1));
            Assert.Equal(expected.Small, reader.GetInt16(2));
            Assert.Equal(expected.Tiny, reader.GetInt16(3));
            Assert.Equal(expected.Unsigned, reader.GetInt64(4));
            Assert.Equal((decimal)expected.Huge, reader.GetDecimal(5));
            Assert.Equal(expected.Flag, reader.GetBoolean(6));
            Assert.Equal(expected.Ratio, reader.GetDouble(7));
            Assert.Equal(expected.Single, reader.GetFloat(8));
            Assert.Equal(expected.Money, reader.GetDecimal(9));
            Assert.Equal(expected.Text, reader.GetString(10));
            Assert.Equal(expected.Maybe, reader.IsDBNull(11) ? null : reader.GetString(11));
            Assert.Equal(expected.Letter.ToString(), reader.GetString(12));
            Assert.Equal(expected.Local, reader.GetDateTime(13));
            Assert.Equal(expected.At.UtcDateTime, reader.GetFieldValue<DateTime>(14));
            Assert.Equal(expected.Guid, reader.GetGuid(15));
            Assert.Equal(expected.Day, reader.GetFieldValue<DateOnly>(16));
            Assert.Equal(expected.Time, reader.GetFieldValue<TimeOnly>(17));
            Assert.Equal(expected.Span, reader.GetFieldValue<TimeSpan>(18));
            Assert.Equal(expected.Colour.ToString(), reader.GetString(19));
            Assert.Equal(expected.Missing, reader.IsDBNull(20) ? null : reader.GetInt32(20));
        }

        Assert.Equal(records.Length, read);
    }

    [Fact]
    public async Task Upsert_keeps_the_last_record_of_each_key_within_a_batch_and_across_runs()
    {
        var connection = await postgres.NewDatabaseAsync();
        // Keys repeat within batches and across them; the last occurrence of each key must win.
        var first = Enumerable.Range(0, 3000).Select(i => new Order(i % 1000, $"customer {i}", i, i % 2 == 0 ? "paid" : "open")).ToArray();
        await RunOrders(connection, first, PostgresWriteMode.Upsert);
        var second = Enumerable.Range(500, 1000).Select(i => new Order(i, $"again {i}", -i, "refunded")).ToArray();
        await RunOrders(connection, second, PostgresWriteMode.Upsert);

        var expected = first.Concat(second).GroupBy(o => o.Id).ToDictionary(g => g.Key, g => g.Last());
        var rows = await ReadOrders(connection);
        Assert.Equal(expected.Count, rows.Count);
        foreach (var row in rows)
        {
            Assert.Equal(expected[row.Id], row);
        }
    }

    [Fact]
    public async Task A_missing_table_stops_the_run_with_a_clear_message_when_it_may_not_be_created()
    {
        var connection = await postgres.NewDatabaseAsync();
        var pipeline = new OrdersToPostgres
        {
            Input = new CollectionSource<Order>(new Order(1, "a", 1, "paid")),
            Table = new PostgresSink<Order>(new PostgresSinkOptions { ConnectionString = connection, Table = "nowhere", TableMode = TableMode.MustExist }),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("Table nowhere does not exist (TableMode is MustExist; set it to CreateIfMissing to create it)", error.Message, StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error)); // exit code 2: a restart would not help
    }

    [Fact]
    public async Task Wrong_credentials_stop_the_run_naming_the_problem_but_not_the_password()
    {
        var connection = new NpgsqlConnectionStringBuilder(await postgres.NewDatabaseAsync()) { Password = "not-the-password-42" }.ConnectionString;
        var pipeline = new OrdersToPostgres
        {
            Input = new CollectionSource<Order>(new Order(1, "a", 1, "paid")),
            Table = new PostgresSink<Order>(connection, "orders"),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("password authentication failed", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("not-the-password-42", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("password=***", pipeline.Table.Describe(), StringComparison.OrdinalIgnoreCase);
        Assert.True(NonRetryableException.IsCause(error));
    }

    [Fact]
    public async Task A_missing_connection_string_or_table_is_a_configuration_error()
    {
        foreach (var (connection, table, message) in new[] { ("", "orders", "ConnectionString is required."), (await postgres.NewDatabaseAsync(), " ", "Table is required.") })
        {
            var pipeline = new OrdersToPostgres { Input = new CollectionSource<Order>(new Order(1, "a", 1, "paid")), Table = new PostgresSink<Order>(connection, table) };
            var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
            Assert.Contains(message, error.Message, StringComparison.Ordinal);
            Assert.True(NonRetryableException.IsCause(error)); // exit code 2
        }
    }

    [Fact]
    public async Task A_malformed_connection_string_is_a_configuration_error_that_shows_no_secret()
    {
        // An outside test saw these exit with code 1 ("failed to open"), which a restart policy retries forever.
        foreach (var (connection, message) in new[]
        {
            ("hunter4SECRET", "ConnectionString is not a PostgreSQL connection string"),
            ("Host=localhost;Password=hunter4SECRET;Bogus Key=1", "ConnectionString is not a PostgreSQL connection string"),
            ("Host=localhost;Password=hunter4SECRET;Port=notaport", "ConnectionString is not a PostgreSQL connection string"),
        })
        {
            var pipeline = new OrdersToPostgres { Input = new CollectionSource<Order>(new Order(1, "a", 1, "paid")), Table = new PostgresSink<Order>(connection, "orders") };
            var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
            Assert.Contains(message, error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("hunter4SECRET", error.ToString(), StringComparison.Ordinal);
            Assert.True(NonRetryableException.IsCause(error), connection); // exit code 2
        }
    }

    [Fact]
    public async Task Upsert_without_key_members_is_refused_at_open()
    {
        var connection = await postgres.NewDatabaseAsync();
        var pipeline = new KeylessPipeline
        {
            Input = new CollectionSource<Keyless>(new Keyless(1, "a")),
            Table = new PostgresSink<Keyless>(connection, "keyless", PostgresWriteMode.Upsert),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("Upsert mode needs the record type 'Keyless' to mark its key members with [Key]", error.Message, StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error));
    }

    internal static async Task RunOrders(string connection, Order[] orders, PostgresWriteMode mode)
    {
        var pipeline = new OrdersToPostgres
        {
            Input = new CollectionSource<Order>(orders),
            Table = new PostgresSink<Order>(new PostgresSinkOptions { ConnectionString = connection, Table = "orders", Mode = mode, FlushRows = 700 }),
        };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 256 });
    }

    internal static async Task<List<Order>> ReadOrders(string connection, string table = "orders")
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT id, customer, amount, status FROM {table} ORDER BY id", db);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<Order>();
        while (await reader.ReadAsync())
        {
            rows.Add(new Order(reader.GetInt64(0), reader.GetString(1), reader.GetDecimal(2), reader.GetString(3)));
        }

        return rows;
    }
}
