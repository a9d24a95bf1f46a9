using Compiled.Connectors;
using Compiled.MySql;
using Compiled.Runtime;
using Compiled.Testing;
using Microsoft.Extensions.Logging;
using MySqlConnector;

namespace Compiled.Integration.Tests;

[Pipeline(Name = "my-everything")]
public sealed partial class EverythingToMySql
{
    [Source] public CollectionSource<Everything> Input { get; set; } = new();

    [Sink] public MySqlSink<Everything> Table { get; set; } = new(new MySqlSinkOptions());
}

[Pipeline(Name = "my-orders")]
public sealed partial class OrdersToMySql
{
    [Source] public CollectionSource<Order> Input { get; set; } = new();

    [Sink] public MySqlSink<Order> Table { get; set; } = new(new MySqlSinkOptions());
}

[Pipeline(Name = "my-keyless")]
public sealed partial class KeylessToMySql
{
    [Source] public CollectionSource<Keyless> Input { get; set; } = new();

    [Sink] public MySqlSink<Keyless> Table { get; set; } = new(new MySqlSinkOptions());
}

[Pipeline(Name = "my-gated")]
public sealed partial class GatedOrdersToMySql
{
    [Source] public GatedSource<Order> Input { get; set; } = new([], false);

    [Sink] public MySqlSink<Order> Table { get; set; } = new(new MySqlSinkOptions());
}

/// <summary>The MySQL sink against a real MariaDB server.</summary>
[Collection(nameof(Infrastructure))]
public sealed class MySqlSinkTests(MariaDbFixture mysql)
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    private static Order[] Orders(int count) => [.. Enumerable.Range(1, count).Select(i => new Order(i, $"customer {i}", i / 4m, i % 2 == 0 ? "paid" : "open"))];

    [Fact]
    public async Task Append_writes_every_field_type_through_bulk_copy_and_reads_back_equal()
    {
        var connection = await mysql.NewDatabaseAsync();
        var records = Enumerable.Range(1, 5000).Select(i => PostgresSinkTests.Sample(i)).ToArray();
        var pipeline = new EverythingToMySql
        {
            Input = new CollectionSource<Everything>(records),
            Table = new MySqlSink<Everything>(new MySqlSinkOptions { ConnectionString = connection, Table = "everything", FlushRows = 1000 }),
        };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 700 });
        Assert.Equal(5000, result.Sinks[0].Records);
        Assert.Equal(5000, pipeline.Table.RowsCommitted);

        await using var db = new MySqlConnection(connection);
        await db.OpenAsync();
        // FLOAT is read as DOUBLE: MySQL's text protocol prints a FLOAT with 6 digits, the stored value has all of them.
        await using var command = new MySqlCommand(
            "SELECT `id`, `count`, `small`, `tiny`, `unsigned`, `huge`, `flag`, `ratio`, CAST(`single` AS DOUBLE), `money`, `text`, `maybe`, `letter`, `local`, `at`, `guid`, `day`, `time`, `span`, `colour`, `missing` FROM everything ORDER BY id", db);
        await using var reader = await command.ExecuteReaderAsync();
        var read = 0;
        while (await reader.ReadAsync())
        {
            var expected = records[read++];
            Assert.Equal(expected.Id, reader.GetInt64(0));
            Assert.Equal(expected.Count, reader.GetInt32(1));
            Assert.Equal(expected.Small, reader.GetInt16(2));
            Assert.Equal(expected.Tiny, reader.GetByte(3));
            Assert.Equal(expected.Unsigned, reader.GetUInt32(4));
            Assert.Equal(expected.Huge, reader.GetUInt64(5));
            Assert.Equal(expected.Flag, reader.GetBoolean(6));
            Assert.Equal(expected.Ratio, reader.GetDouble(7));
            Assert.Equal(expected.Single, (float)reader.GetDouble(8));
            Assert.Equal(expected.Money, reader.GetDecimal(9));
            Assert.Equal(expected.Text, reader.GetString(10));
            Assert.Equal(expected.Maybe, reader.IsDBNull(11) ? null : reader.GetString(11));
            Assert.Equal(expected.Letter.ToString(), reader.GetString(12));
            Assert.Equal(expected.Local, reader.GetDateTime(13));
            Assert.Equal(expected.At.UtcDateTime, DateTime.SpecifyKind(reader.GetDateTime(14), DateTimeKind.Utc));
            Assert.Equal(expected.Guid, reader.GetGuid(15));
            Assert.Equal(expected.Day, DateOnly.FromDateTime(reader.GetDateTime(16)));
            Assert.Equal(expected.Time.ToTimeSpan(), reader.GetTimeSpan(17));
            Assert.Equal(expected.Span, reader.GetTimeSpan(18));
            Assert.Equal(expected.Colour.ToString(), reader.GetString(19));
            Assert.Equal(expected.Missing, reader.IsDBNull(20) ? null : reader.GetInt32(20));
        }

        Assert.Equal(records.Length, read);
    }

    [Fact]
    public async Task Upsert_keeps_the_last_record_of_each_key_within_a_batch_and_across_runs()
    {
        var connection = await mysql.NewDatabaseAsync();
        // Keys repeat within batches and across them; the last occurrence of each key must win.
        var first = Enumerable.Range(0, 3000).Select(i => new Order(i % 1000, $"customer {i}", i, i % 2 == 0 ? "paid" : "open")).ToArray();
        await RunOrders(connection, first, MySqlWriteMode.Upsert);
        var second = Enumerable.Range(500, 1000).Select(i => new Order(i, $"again {i}", -i, "refunded")).ToArray();
        await RunOrders(connection, second, MySqlWriteMode.Upsert);
        await RunOrders(connection, second, MySqlWriteMode.Upsert); // a replay changes nothing

        var expected = first.Concat(second).GroupBy(o => o.Id).Select(g => g.Last()).OrderBy(o => o.Id).ToList();
        Assert.Equal(expected, await ReadOrders(connection));
    }

    [Fact]
    public async Task A_value_the_table_cannot_hold_fails_the_write_and_commits_nothing_of_its_batch()
    {
        var connection = await mysql.NewDatabaseAsync();
        await ExecuteAsync(connection, "CREATE TABLE orders (id BIGINT NOT NULL PRIMARY KEY, customer VARCHAR(12) NOT NULL, amount DECIMAL(65,30) NOT NULL, status LONGTEXT NOT NULL)");
        var orders = Orders(50);
        orders[37] = orders[37] with { Customer = "a customer name longer than twelve characters" };
        var pipeline = new OrdersToMySql
        {
            Input = new CollectionSource<Order>(orders),
            Table = new MySqlSink<Order>(new MySqlSinkOptions { ConnectionString = connection, Table = "orders" }),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Equal("Table", error.ConnectorName);
        Assert.Contains("MySQL would have changed 1 value to fit the table: Data truncated for column 'customer' at row 38", error.Message, StringComparison.Ordinal);
        Assert.Contains("customer", error.Message, StringComparison.Ordinal);
        Assert.Empty(await ReadOrders(connection)); // the batch's other 49 rows were rolled back with it
    }

    [Fact]
    public async Task Append_of_a_key_already_in_the_table_fails_saying_why_and_what_to_use_instead()
    {
        var connection = await mysql.NewDatabaseAsync();
        await RunOrders(connection, Orders(3), MySqlWriteMode.Append);
        var pipeline = new OrdersToMySql
        {
            Input = new CollectionSource<Order>(Orders(5)),
            Table = new MySqlSink<Order>(new MySqlSinkOptions { ConnectionString = connection, Table = "orders" }),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("In Append mode the table's primary key refuses a record whose key is already there or repeats in the batch; use Mode = Upsert", error.Message, StringComparison.Ordinal);
        Assert.Equal(Orders(3), await ReadOrders(connection)); // the batch with ids 4 and 5 was not committed either
    }

    [Fact]
    public async Task A_missing_or_malformed_connection_string_is_a_configuration_error()
    {
        foreach (var (connection, message) in new[] { ("", "ConnectionString is required."), ("Bogus=1", "ConnectionString is not a MySQL connection string") })
        {
            var pipeline = new OrdersToMySql { Input = new CollectionSource<Order>(Orders(1)), Table = new MySqlSink<Order>(connection, "orders") };
            var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
            Assert.Contains(message, error.Message, StringComparison.Ordinal);
            Assert.True(NonRetryableException.IsCause(error)); // exit code 2
        }
    }

    [Fact]
    public async Task A_missing_table_stops_the_run_with_a_clear_message_when_it_may_not_be_created()
    {
        var connection = await mysql.NewDatabaseAsync();
        var pipeline = new OrdersToMySql
        {
            Input = new CollectionSource<Order>(new Order(1, "a", 1, "paid")),
            Table = new MySqlSink<Order>(new MySqlSinkOptions { ConnectionString = connection, Table = "nowhere", TableMode = TableMode.MustExist }),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("Table nowhere does not exist (TableMode is MustExist; set it to CreateIfMissing to create it)", error.Message, StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error));
    }

    [Fact]
    public async Task Wrong_credentials_stop_the_run_naming_the_problem_but_not_the_password()
    {
        var connection = new MySqlConnectionStringBuilder(await mysql.NewDatabaseAsync()) { Password = "not-the-password-42" }.ConnectionString;
        var pipeline = new OrdersToMySql
        {
            Input = new CollectionSource<Order>(new Order(1, "a", 1, "paid")),
            Table = new MySqlSink<Order>(connection, "orders"),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("MySQL refused the credentials", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("not-the-password-42", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("password=***", pipeline.Table.Describe(), StringComparison.OrdinalIgnoreCase);
        Assert.True(NonRetryableException.IsCause(error));
    }

    [Fact]
    public async Task Upsert_without_key_members_is_refused_at_open()
    {
        var connection = await mysql.NewDatabaseAsync();
        var pipeline = new KeylessToMySql
        {
            Input = new CollectionSource<Keyless>(new Keyless(1, "a")),
            Table = new MySqlSink<Keyless>(connection, "keyless", MySqlWriteMode.Upsert),
        };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("Upsert mode needs the record type 'Keyless' to mark its key members with [Key]", error.Message, StringComparison.Ordinal);
        Assert.True(NonRetryableException.IsCause(error));
    }

    [Fact]
    public async Task A_server_without_local_infile_gets_every_row_by_insert_and_a_warning_saying_so()
    {
        var server = mysql.Server;
        Assert.NotNull(server); // needs the throwaway server: the test changes a global setting
        var connection = await mysql.NewDatabaseAsync();
        await server.ExecuteAsRootAsync("SET GLOBAL local_infile = 0");
        try
        {
            using var logs = new CapturingLogs();
            using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
            var orders = Orders(2500);
            var pipeline = new OrdersToMySql
            {
                Input = new CollectionSource<Order>(orders),
                Table = new MySqlSink<Order>(new MySqlSinkOptions { ConnectionString = connection, Table = "orders", Mode = MySqlWriteMode.Append, FlushRows = 1000 }),
            };
            await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, LoggerFactory = factory });
            Assert.Equal(orders, await ReadOrders(connection));
            var warning = Assert.Single(logs.Lines, l => l.Level == LogLevel.Warning && l.Text.Contains("LOAD DATA LOCAL INFILE", StringComparison.Ordinal));
            Assert.Contains("multi-row INSERTs", warning.Text, StringComparison.Ordinal);

            // Upserts stage their rows the same way.
            var changed = Orders(1500).Select(o => o with { Status = "refunded" }).ToArray();
            await RunOrders(connection, changed, MySqlWriteMode.Upsert);
            Assert.Equal(changed.Concat(orders.Skip(1500)), await ReadOrders(connection));
        }
        finally
        {
            await server.ExecuteAsRootAsync("SET GLOBAL local_infile = 1");
        }
    }

    [Fact]
    public async Task Transient_failures_are_retried_and_the_run_fails_naming_mysql_when_they_persist()
    {
        var server = mysql.Server;
        Assert.NotNull(server); // needs the throwaway server: the test stops it
        var connection = await mysql.NewDatabaseAsync();
        using var logs = new CapturingLogs();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));

        // 1. The server goes down after the sink opened and comes back after the first retry: every row arrives.
        var source = new GatedSource<Order>(Orders(100), staysOpen: false);
        var pipeline = new GatedOrdersToMySql { Input = source, Table = new MySqlSink<Order>(connection, "orders") };
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, LoggerFactory = factory });
        await logs.When("table orders (append)").WaitAsync(Patience);
        await server.StopAsync();
        source.Open.SetResult();
        await logs.When("(attempt 1 of 10)").WaitAsync(Patience);
        await server.ResumeAsync();
        await run.WaitAsync(Patience);
        Assert.True(pipeline.Table.Retries > 0);
        Assert.Contains(logs.Lines, l => l.Level == LogLevel.Warning && l.Text.Contains("MySQL: could not write rows (attempt", StringComparison.Ordinal));
        Assert.Equal(Orders(100), await ReadOrders(connection));

        // 2. The server stays down: once the attempts are spent, the run fails naming the sink and MySQL.
        var second = new GatedSource<Order>(Orders(10), staysOpen: false);
        var failing = new GatedOrdersToMySql { Input = second, Table = new MySqlSink<Order>(new MySqlSinkOptions { ConnectionString = connection, Table = "orders2", MaxAttempts = 2 }) };
        var failingRun = failing.RunAsync(new PipelineOptions { Parallelism = 1, LoggerFactory = factory });
        await logs.When("table orders2 (append)").WaitAsync(Patience);
        await server.StopAsync();
        try
        {
            second.Open.SetResult();
            var error = await Assert.ThrowsAsync<ConnectorException>(() => failingRun.WaitAsync(Patience));
            Assert.Equal("Table", error.ConnectorName);
            Assert.Contains("MySQL: could not write rows after 2 attempts", error.Message, StringComparison.Ordinal);
            Assert.False(NonRetryableException.IsCause(error));
        }
        finally
        {
            await server.ResumeAsync();
        }
    }

    [Fact]
    public async Task MySqlSink_keeps_the_contract()
    {
        var connection = await mysql.NewDatabaseAsync();
        var report = await ConnectorContract.CheckSinkAsync(new SinkContract<Order>
        {
            CreateSink = table => new MySqlSink<Order>(new MySqlSinkOptions { ConnectionString = connection, Table = table.Replace('-', '_'), FlushRows = 100, FlushInterval = TimeSpan.FromMilliseconds(20) }),
            ReadBack = async (table, _) => await ReadOrders(connection, table.Replace('-', '_')),
            Record = i => new Order(i, "customer " + (i % 37), i / 4m, i % 3 == 0 ? "paid" : "new"),
            Schema = ConnectorContract.SchemaOf<Order>(new OrdersToMySql()),
            CreateBroken = table => new MySqlSink<Order>(new MySqlSinkOptions { ConnectionString = connection + ";Password=wrong", Table = table.Replace('-', '_') }),
        });

        Assert.True(report.Ok, report.ToString());
        Assert.Equal(["every record once", "durable at a checkpoint", "a run after an aborted one", "failures name the connector"], report.Passed);
    }

    private static async Task RunOrders(string connection, Order[] orders, MySqlWriteMode mode)
    {
        var pipeline = new OrdersToMySql
        {
            Input = new CollectionSource<Order>(orders),
            Table = new MySqlSink<Order>(new MySqlSinkOptions { ConnectionString = connection, Table = "orders", Mode = mode, FlushRows = 700 }),
        };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 256 });
    }

    private static async Task ExecuteAsync(string connection, string sql)
    {
        await using var db = new MySqlConnection(connection);
        await db.OpenAsync();
        await using var command = new MySqlCommand(sql, db);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The table's rows by id; none when the table does not exist.</summary>
    internal static async Task<List<Order>> ReadOrders(string connection, string table = "orders")
    {
        await using var db = new MySqlConnection(connection);
        await db.OpenAsync();
        var rows = new List<Order>();
        try
        {
            await using var command = new MySqlCommand($"SELECT id, customer, amount, status FROM `{table}` ORDER BY id", db);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows.Add(new Order(reader.GetInt64(0), reader.GetString(1), reader.GetDecimal(2), reader.GetString(3)));
            }
        }
        catch (MySqlException ex) when (ex.ErrorCode == MySqlErrorCode.NoSuchTable)
        {
            // not created yet
        }

        return rows;
    }
}
