using Compiled.Samples.Tests;
using MySqlConnector;

namespace Compiled.Integration.Tests;

/// <summary>Exactly-once Kafka → MySQL (MariaDB) through a pipeline binary killed with SIGKILL again and again.</summary>
public sealed partial class ProcessTests
{
    [Fact]
    public async Task Exactly_once_to_mysql_survives_repeated_sigkill()
    {
        const int chunk = 30_000;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var topic = kafka.NewTopic("crash-mysql", 16); // at most 12 chunks: under the mock cluster's 5 MiB per partition
        var group = "crash-mysql-" + Guid.NewGuid().ToString("N");
        var connection = await mysql.NewDatabaseAsync();

        // No primary key, so that a record written twice shows as a second row (CreateIfMissing keeps this table).
        await MySqlAsync(connection, "CREATE TABLE orders (id BIGINT NOT NULL, customer LONGTEXT NOT NULL, amount DECIMAL(65,30) NOT NULL, amount_eur DECIMAL(65,30) NOT NULL, size LONGTEXT NOT NULL, status LONGTEXT NOT NULL, placed_at DATETIME(6) NOT NULL) ENGINE=InnoDB");

        // Each round produces a new chunk of orders, starts a copy, and kills it (SIGKILL) a random moment after its
        // first rows of the round are committed. A kill that lands after the copy caught up does not count: at least
        // five must land mid-stream (a copy that joins the group late races through its backlog, so some do not).
        log.WriteLine($"seed {seed}");
        var midStream = 0;
        var count = 0;
        for (var round = 0; round < 12 && midStream < 5; round++)
        {
            Produce(topic, count + 1, count + chunk);
            count += chunk;
            var before = await MySqlCountAsync(connection, "SELECT count(*) FROM orders");
            await using var child = StartMySqlApp(connection, topic, group);
            await WaitUntil(child, async () => await MySqlCountAsync(connection, "SELECT count(*) FROM orders") > before, $"rows of round {round}");
            await Task.Delay(random.Next(0, 200)); // randomises where the kill lands; nothing waits on it
            child.Kill();
            await child.WaitAsync(Patience);
            var rowsAtKill = await MySqlCountAsync(connection, "SELECT count(*) FROM orders");
            midStream += rowsAtKill < count ? 1 : 0;
            log.WriteLine($"killed at {rowsAtKill} of {count} rows");
        }

        Assert.True(midStream >= 5, $"only {midStream} kills landed before the last row was written");

        await using (var last = StartMySqlApp(connection, topic, group))
        {
            await WaitUntil(last, () => Task.FromResult(Assigned(last.Error) > 0), "the last copy joined the group");
            await WaitUntil(last, async () => await MySqlCountAsync(connection, $"SELECT coalesce(sum(next_offset), 0) FROM compiled_offsets WHERE stream = '{topic}'") == count, "every offset committed");
            Assert.Equal(0, await last.TerminateAsync(Patience));
        }

        var rows = new List<string>();
        await using (var db = new MySqlConnection(connection))
        {
            await db.OpenAsync();
            await using var command = new MySqlCommand("SELECT id, customer, amount, amount_eur, size, status, placed_at FROM orders ORDER BY id", db);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var placed = new DateTimeOffset(DateTime.SpecifyKind(reader.GetDateTime(6), DateTimeKind.Utc));
                rows.Add(Row(reader.GetInt64(0), reader.GetString(1), reader.GetDecimal(2), reader.GetDecimal(3), reader.GetString(4), reader.GetString(5), placed));
            }
        }

        Assert.Equal(count, rows.Count); // append into a table without a key: a record written twice would be a second row
        Assert.Equal(Enumerable.Range(1, count).Select(i => ExpectedRow(i)), rows);
    }

    [Fact]
    public async Task Quick_start_writes_the_seeds_table_to_mysql_with_the_mysql_option()
    {
        var connection = await mysql.NewDatabaseAsync();
        var result = await Processes.DotnetAsync([Repository.SampleDll("QuickStart"), "--mysql", connection], _work, Patience);
        Assert.True(result.ExitCode == 0, result.ToString());
        var password = new MySqlConnectionStringBuilder(connection).Password;
        Assert.DoesNotContain(password, result.Error + result.Output, StringComparison.Ordinal);
        Assert.Contains("Table -> mysql", result.Output + result.Error, StringComparison.Ordinal);

        var people = new List<string>();
        await using (var db = new MySqlConnection(connection))
        {
            await db.OpenAsync();
            await using var command = new MySqlCommand("SELECT name, age FROM people ORDER BY name", db);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                people.Add($"{reader.GetString(0)}:{reader.GetInt32(1)}");
            }
        }

        Assert.Equal(["Alice:26", "Bob:31"], people);
        Assert.False(File.Exists(Path.Combine(_work, "people.db")), "the embedded database should not be written");

        // Run again: the table is recreated, so it still holds exactly the two people.
        Assert.Equal(0, (await Processes.DotnetAsync([Repository.SampleDll("QuickStart"), "--mysql", connection], _work, Patience)).ExitCode);
        Assert.Equal(2, await MySqlCountAsync(connection, "SELECT count(*) FROM people"));

        // Both databases at once is refused, not guessed at.
        var both = await Processes.DotnetAsync([Repository.SampleDll("QuickStart"), "--mysql", connection, "--postgres", "Host=nowhere"], _work, Patience);
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("give one of them", both.Error, StringComparison.Ordinal);
    }

    private static string KafkaToMySqlDll => Path.Combine(Repository.Root, "tests", "Apps", "KafkaToMySql", "bin", Repository.Configuration, "net10.0", "KafkaToMySql.dll");

    private Child StartMySqlApp(string connection, string topic, string group)
        => Child.Start(
        [
            KafkaToMySqlDll, "--bootstrap", kafka.BootstrapServers, "--mysql", connection,
            "--set", $"Orders.Topics={topic}", "--set", $"Orders.GroupId={group}", "--set", $"Orders.SessionTimeout={kafka.KilledConsumerSessionTimeoutSetting}",
            "--set", "CheckpointInterval=100ms", "-p", "4", "--batch-size", "512", "--log-level", "Information",
        ], _work);

    private static async Task MySqlAsync(string connection, string sql)
    {
        await using var db = new MySqlConnection(connection);
        await db.OpenAsync();
        await using var command = new MySqlCommand(sql, db);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>A count from the database; 0 while the table does not exist yet (the child creates it).</summary>
    private static async Task<long> MySqlCountAsync(string connection, string sql)
    {
        try
        {
            await using var db = new MySqlConnection(connection);
            await db.OpenAsync();
            await using var command = new MySqlCommand(sql, db);
            return Convert.ToInt64(await command.ExecuteScalarAsync() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (MySqlException ex) when (ex.ErrorCode == MySqlErrorCode.NoSuchTable)
        {
            return 0;
        }
    }
}
