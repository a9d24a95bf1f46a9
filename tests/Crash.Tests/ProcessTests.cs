using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Compiled.Samples.Tests;
using Npgsql;
using Xunit.Abstractions;

namespace Compiled.Integration.Tests;

/// <summary>
/// Pipeline binaries as child processes against the fixtures' Kafka cluster and PostgreSQL server: killed with
/// SIGKILL and restarted, stopped with SIGTERM, run two at a time in one consumer group.
/// </summary>
[Collection(nameof(ChildProcesses))]
public sealed partial class ProcessTests(KafkaFixture kafka, PostgresFixture postgres, MariaDbFixture mysql, ITestOutputHelper log) : IDisposable
{
    internal static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);
    private static readonly DateTimeOffset Epoch = new(2026, 11, 25, 8, 0, 0, TimeSpan.Zero);
    private static readonly string[] Currencies = ["EUR", "USD", "GBP"];
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-process-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    /// <summary>The sample's input: an order as the shop publishes it.</summary>
    private static (long Id, string Customer, decimal Amount, string Currency) OrderOf(long id)
        => (id, $"customer-{id % 131:D3}", 1m + (id % 9973) / 10m, Currencies[id % 3]);

    private static byte[] Json(long id)
    {
        var (_, customer, amount, currency) = OrderOf(id);
        var placed = Epoch.AddSeconds(id).ToString("O", CultureInfo.InvariantCulture);
        return Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $$"""{"id":{{id}},"customer":"{{customer}}","amount":{{amount}},"currency":"{{currency}}","status":"paid","placedAt":"{{placed}}"}"""));
    }

    /// <summary>The row the sample must write for order <paramref name="id"/> (its enrichment, restated).</summary>
    private static string ExpectedRow(long id)
    {
        var (_, customer, amount, currency) = OrderOf(id);
        var rate = currency switch { "EUR" => 1m, "USD" => 0.92m, _ => 1.17m };
        var size = amount >= 500m ? "large" : amount >= 50m ? "medium" : "small";
        return Row(id, customer, amount, Math.Round(amount * rate, 2), size, "paid", Epoch.AddSeconds(id));
    }

    private static string Row(long id, string customer, decimal amount, decimal eur, string size, string status, DateTimeOffset placed)
        => string.Create(CultureInfo.InvariantCulture, $"{id}|{customer}|{amount:0.00}|{eur:0.00}|{size}|{status}|{placed.UtcTicks}");

    private void Produce(string topic, long from, long to)
        => kafka.Produce(topic, Enumerable.Range((int)from, (int)(to - from + 1)).Select(i => ((string?)i.ToString(CultureInfo.InvariantCulture), (byte[]?)Json(i))));

    [Fact]
    public async Task Exactly_once_to_postgres_survives_repeated_sigkill_of_the_sample()
    {
        const int count = 100_000;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var topic = kafka.NewTopic("crash", 8);
        var group = "crash-" + Guid.NewGuid().ToString("N");
        Produce(topic, 1, count);
        var connection = await postgres.NewDatabaseAsync();

        // The table has no primary key, so that a record written twice shows as a second row. (The sink would create
        // the [Key] column as the primary key, and then a repeat in append mode would be a constraint violation that
        // stops the copy — caught too, but as a crash, not as the duplicate it is. CreateIfMissing keeps this table.)
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var create = new NpgsqlCommand(
                "CREATE TABLE orders (id bigint NOT NULL, customer text NOT NULL, amount numeric NOT NULL, amount_eur numeric NOT NULL, size text NOT NULL, status text NOT NULL, placed_at timestamptz NOT NULL)", db);
            await create.ExecuteNonQueryAsync();
        }

        // Kill points: each copy is killed once it has written a random number of rows more than were there when it
        // started, plus a random moment, so that the kill lands anywhere relative to the sink's commits (the delay
        // randomises the crash; nothing waits on it).
        log.WriteLine($"seed {seed}");
        for (var kill = 0; kill < 4; kill++)
        {
            var threshold = Math.Min(count - 1, await CountAsync(connection, "orders") + random.Next(count / 50, count / 6));
            await using var child = StartSample(connection, topic, group);
            await WaitUntil(child, async () => await CountAsync(connection, "orders") >= threshold, $"{threshold} rows");
            await Task.Delay(random.Next(0, 400));
            child.Kill();
            await child.WaitAsync(Patience);
            log.WriteLine($"killed at {await CountAsync(connection, "orders")} rows");
        }

        await using (var last = StartSample(connection, topic, group))
        {
            await WaitUntil(last, () => Task.FromResult(Assigned(last.Error) > 0), "the last copy joined the group");
            await WaitUntil(last, async () => await CommittedAsync(connection, topic) == count, "every offset committed");
            Assert.Equal(0, await last.TerminateAsync(Patience));
        }

        var rows = await RowsAsync(connection);
        Assert.Equal(count, rows.Count); // append mode into a table without a key: a record written twice would be a second row
        Assert.Equal(Enumerable.Range(1, count).Select(i => ExpectedRow(i)), rows);
    }

    [Fact]
    public async Task Two_processes_in_one_group_share_the_partitions_and_write_every_order_once()
    {
        var topic = kafka.NewTopic("group", 8);
        var group = "group-" + Guid.NewGuid().ToString("N");
        var connection = await postgres.NewDatabaseAsync();
        Produce(topic, 1, 10_000);

        await using var first = StartSample(connection, topic, group);
        await WaitUntil(first, async () => await CommittedAsync(connection, topic) == 10_000, "the first 10 000 orders");

        // A second copy joins: the group rebalances and each copy owns some partitions.
        await using var second = StartSample(connection, topic, group);
        await WaitUntil(second, () => Task.FromResult(Assigned(second.Error) > 0 && Assigned(first.Error) > 0), "both copies assigned partitions");
        Produce(topic, 10_001, 30_000);
        await WaitUntil(second, async () => await CommittedAsync(connection, topic) == 30_000, "the next 20 000 orders");

        // The first copy leaves (SIGTERM): its partitions move to the second, which finishes what arrives next.
        Assert.Equal(0, await first.TerminateAsync(Patience));
        Produce(topic, 30_001, 40_000);
        await WaitUntil(second, async () => await CommittedAsync(connection, topic) == 40_000, "the last 10 000 orders");
        Assert.Equal(0, await second.TerminateAsync(Patience));

        var rows = await RowsAsync(connection);
        Assert.Equal(Enumerable.Range(1, 40_000).Select(i => ExpectedRow(i)), rows);
        Assert.True(RecordsRead(first.Error) > 0, first.Error);
        Assert.True(RecordsRead(second.Error) > 0, second.Error);
        Assert.Equal(40_000, RecordsRead(first.Error) + RecordsRead(second.Error));
    }

    [Fact]
    public async Task At_least_once_to_files_loses_nothing_when_killed_and_restarted()
    {
        const int count = 30_000;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var topic = kafka.NewTopic("files", 4);
        var group = "files-" + Guid.NewGuid().ToString("N");
        var output = Path.Combine(_work, "out");
        Produce(topic, 1, count);
        log.WriteLine($"seed {seed}");

        string[] arguments = [KafkaToFilesDll, "--set", $"Orders.BootstrapServers={kafka.BootstrapServers}", "--set", $"Orders.Topics={topic}", "--set", $"Orders.GroupId={group}",
            "--set", $"Orders.SessionTimeout={kafka.KilledConsumerSessionTimeoutSetting}", "--set", $"Output.Directory={output}", "--set", "CheckpointInterval=200ms", "-p", "2", "--batch-size", "256", "--log-level", "Information"];
        for (var kill = 0; kill < 3; kill++)
        {
            var threshold = (kill + 1) * count / 5 + random.Next(0, count / 10);
            await using var child = Child.Start(arguments, _work);
            await WaitUntil(child, () => Task.FromResult(CompletedIds(output).Count >= threshold), $"{threshold} orders in complete files");
            await Task.Delay(random.Next(0, 300)); // a random crash point, not a synchronisation
            child.Kill();
            await child.WaitAsync(Patience);
        }

        await using (var last = Child.Start(arguments, _work))
        {
            await WaitUntil(last, () => Task.FromResult(Assigned(last.Error) > 0), "the last copy joined the group");
            await WaitUntil(last, () => Task.FromResult(CompletedIds(output).Distinct().Count() == count), "every order in a complete file");
            Assert.Equal(0, await last.TerminateAsync(Patience));
        }

        var ids = CompletedIds(output);
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), ids.Distinct().Order());
        log.WriteLine($"{ids.Count - count} orders were written twice (allowed at-least-once)");
    }

    [Fact]
    public async Task Quick_start_writes_its_table_to_postgres_with_the_postgres_option()
    {
        var connection = await postgres.NewDatabaseAsync();
        var result = await Processes.DotnetAsync([Repository.SampleDll("QuickStart"), "--postgres", connection], _work, Patience);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.DoesNotContain(PostgresPassword(connection), result.Error + result.Output, StringComparison.Ordinal);

        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT name, age FROM people ORDER BY name", db);
        await using var reader = await command.ExecuteReaderAsync();
        var people = new List<string>();
        while (await reader.ReadAsync())
        {
            people.Add($"{reader.GetString(0)}:{reader.GetInt32(1)}");
        }

        Assert.Equal(["Alice:26", "Bob:31"], people);
        Assert.False(File.Exists(Path.Combine(_work, "people.db")), "the embedded database should not be written");
    }

    private static string PostgresPassword(string connection) => new NpgsqlConnectionStringBuilder(connection).Password!;

    private static string KafkaToFilesDll => Path.Combine(Repository.Root, "tests", "Apps", "KafkaToFiles", "bin", Repository.Configuration, "net10.0", "KafkaToFiles.dll");

    private Child StartSample(string connection, string topic, string group)
        => Child.Start(
        [
            Repository.SampleDll("KafkaToPostgres"), "--bootstrap", kafka.BootstrapServers, "--postgres", connection,
            "--set", $"Orders.Topics={topic}", "--set", $"Orders.GroupId={group}", "--set", $"Orders.SessionTimeout={kafka.KilledConsumerSessionTimeoutSetting}",
            "--set", "Table.Mode=Append", "--set", "CheckpointInterval=250ms", "-p", "4", "--batch-size", "512", "--log-level", "Information",
        ], _work);

    internal static async Task WaitUntil(Child child, Func<Task<bool>> condition, string what)
    {
        // The children commit on their own schedule; their progress is observed by polling what they write.
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (child.HasExited)
            {
                Assert.Fail($"the child exited with {child.ExitCode} before {what}:\n{child.Error}");
            }

            if (await condition())
            {
                return;
            }

            await Task.Delay(50);
        }

        Assert.Fail($"not reached within {Patience}: {what}\n{child.Error}");
    }

    private static Task<long> CountAsync(string connection, string table) => ScalarAsync(connection, $"SELECT count(*) FROM {table}", null);

    private static Task<long> CommittedAsync(string connection, string topic)
        => ScalarAsync(connection, "SELECT coalesce(sum(next_offset), 0)::bigint FROM compiled_offsets WHERE stream = @topic", topic);

    /// <summary>A count from the database; 0 while the table does not exist yet (the child creates it).</summary>
    private static async Task<long> ScalarAsync(string connection, string sql, string? topic)
    {
        try
        {
            await using var db = new NpgsqlConnection(connection);
            await db.OpenAsync();
            await using var command = new NpgsqlCommand(sql, db);
            if (topic is not null)
            {
                command.Parameters.AddWithValue("topic", topic);
            }

            return (long)(await command.ExecuteScalarAsync() ?? 0L);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return 0;
        }
    }

    private static async Task<List<string>> RowsAsync(string connection)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT id, customer, amount, amount_eur, size, status, placed_at FROM orders ORDER BY id", db);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(Row(reader.GetInt64(0), reader.GetString(1), reader.GetDecimal(2), reader.GetDecimal(3), reader.GetString(4), reader.GetString(5), reader.GetFieldValue<DateTimeOffset>(6)));
        }

        return rows;
    }

    /// <summary>The ids in the complete (renamed) files; <c>*.inprogress</c> files are what a crash left behind.</summary>
    private static List<long> CompletedIds(string directory)
    {
        var ids = new List<long>();
        if (!Directory.Exists(directory))
        {
            return ids;
        }

        foreach (var file in Directory.GetFiles(directory, "*.jsonl"))
        {
            foreach (var line in File.ReadLines(file))
            {
                ids.Add(JsonDocument.Parse(line).RootElement.GetProperty("id").GetInt64());
            }
        }

        return ids;
    }

    private static int Assigned(string log) => AssignedLine().Count(log);

    private static long RecordsRead(string log)
        => SummaryLine().Match(log) is { Success: true } match ? long.Parse(match.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture) : 0;

    [GeneratedRegex(@"assigned \S+\[\d+\]")]
    private static partial Regex AssignedLine();

    [GeneratedRegex(@"stopped in [^:]+: ([\d,]+) records read")]
    private static partial Regex SummaryLine();

    /// <summary>A pipeline binary running as a child process, with its standard error captured.</summary>
    internal sealed class Child : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _error = new();

        private Child(Process process) => _process = process;

        public bool HasExited => _process.HasExited;

        public int ExitCode => _process.ExitCode;

        public string Error
        {
            get
            {
                lock (_error)
                {
                    return _error.ToString();
                }
            }
        }

        public static Child Start(IEnumerable<string> arguments, string directory, IReadOnlyDictionary<string, string>? environment = null)
        {
            var start = new ProcessStartInfo("dotnet") { WorkingDirectory = directory, RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }

            foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            {
                start.Environment[name] = value;
            }

            var child = new Child(Process.Start(start)!);
            child._process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (child._error)
                    {
                        child._error.AppendLine(e.Data);
                    }
                }
            };
            child._process.OutputDataReceived += (_, _) => { };
            child._process.BeginErrorReadLine();
            child._process.BeginOutputReadLine();
            return child;
        }

        /// <summary>Sends <paramref name="signal"/> (SIGSTOP, SIGCONT).</summary>
        public void Signal(int signal) => Assert.Equal(0, Signals.Send(_process.Id, signal));

        /// <summary>SIGKILL: no drain, no flush, no goodbye to the consumer group.</summary>
        public void Kill() => _process.Kill();

        /// <summary>SIGTERM, then the exit code of the graceful stop.</summary>
        public async Task<int> TerminateAsync(TimeSpan timeout)
        {
            Assert.Equal(0, Signals.Send(_process.Id, Signals.Term));
            return await WaitAsync(timeout);
        }

        public async Task<int> WaitAsync(TimeSpan timeout)
        {
            try
            {
                await _process.WaitForExitAsync().WaitAsync(timeout);
            }
            catch (TimeoutException)
            {
                // Say what the process was doing: the end of its log, and (where dotnet-stack is installed) its threads.
                var lines = Error.Split('\n');
                var tail = string.Join('\n', lines[Math.Max(0, lines.Length - 80)..]);
                throw new TimeoutException($"Process {_process.Id} did not exit within {timeout}. {Stacks(_process.Id)}The end of its log:\n{tail}");
            }

            _process.WaitForExit(); // drain the output readers
            return _process.ExitCode;
        }

        private static string Stacks(int pid)
        {
            var tool = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "dotnet-stack");
            if (!File.Exists(tool))
            {
                return "";
            }

            using var report = Process.Start(new ProcessStartInfo(tool, ["report", "-p", pid.ToString(CultureInfo.InvariantCulture)]) { RedirectStandardOutput = true, UseShellExecute = false })!;
            var stacks = report.StandardOutput.ReadToEndAsync();
            if (!report.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                report.Kill();
                return "";
            }

            return $"Its threads:\n{stacks.GetAwaiter().GetResult()}\n";
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
        }
    }
}
