using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Compiled.Connectors;
using Compiled.Postgres;
using Compiled.Postgres.Testing;
using Compiled.Runtime;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>Partition 0 emits its records once <see cref="Open"/> is set, then either ends or stays quiet until the run stops.</summary>
public sealed class GatedSource<T>(T[] records, bool staysOpen) : ISource<T>
{
    private T[] Records { get; } = records;

    private bool StaysOpen { get; } = staysOpen;

    public TaskCompletionSource Open { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISourceReader<T> CreateReader(int partition) => new Reader(this, partition);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader(GatedSource<T> source, int partition) : ISourceReader<T>
    {
        private bool _sent;

        public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            if (partition != 0)
            {
                return SourceBatch<T>.End;
            }

            if (!_sent)
            {
                await source.Open.Task.WaitAsync(cancellationToken);
                _sent = true;
                return SourceBatch<T>.Of(source.Records);
            }

            if (source.StaysOpen)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken); // a quiet stream: nothing more, until the run stops
            }

            return SourceBatch<T>.End;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

[Pipeline(Name = "pg-gated")]
public sealed partial class GatedOrders
{
    [Source] public GatedSource<Order> Input { get; set; } = new([], false);

    [Sink] public PostgresSink<Order> Table { get; set; } = new(new PostgresSinkOptions());
}

/// <summary>Collects log lines and completes a waiter when a line containing a given text arrives.</summary>
public sealed class CapturingLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, string Text)> _lines = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiters = new();

    public IReadOnlyCollection<(LogLevel Level, string Text)> Lines => _lines;

    /// <summary>Completes when a line containing <paramref name="text"/> has been logged (before or after the call).</summary>
    public Task When(string text)
    {
        var waiter = _waiters.GetOrAdd(text, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        if (_lines.Any(l => l.Text.Contains(text, StringComparison.Ordinal)))
        {
            waiter.TrySetResult();
        }

        return waiter.Task;
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLogs logs) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var text = formatter(state, exception);
            logs._lines.Enqueue((logLevel, text));
            foreach (var (key, waiter) in logs._waiters)
            {
                if (text.Contains(key, StringComparison.Ordinal))
                {
                    waiter.TrySetResult();
                }
            }
        }
    }
}

/// <summary>The PostgreSQL sink's retries, interval flushes, permanent errors and secrets (issue 18, items 4, 8, 9, 10).</summary>
[Collection(nameof(Infrastructure))]
public sealed class PostgresHardeningTests(PostgresFixture postgres)
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    private static Order[] Orders(int count) => [.. Enumerable.Range(1, count).Select(i => new Order(i, $"c{i}", i, "paid"))];

    [Fact]
    public async Task An_outage_is_retried_with_a_warning_per_attempt_counted_in_the_summary_and_metrics_then_blamed_on_the_sink()
    {
        await using var server = await PostgresServer.StartAsync();
        var connection = await server.CreateDatabaseAsync("outage");
        var logs = new CapturingLogs();
        using var factory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        long retriesMeasured = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == CompiledMeter.Name && instrument.Name == "compiled.connector.retries")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            if (tags.ToArray().Any(t => t.Key == "connector" && (string?)t.Value == "Table") && tags.ToArray().Any(t => t.Key == "pipeline" && (string?)t.Value == "pg-gated"))
            {
                Interlocked.Add(ref retriesMeasured, value);
            }
        });
        listener.Start();

        // 1. The server goes down after the sink opened and comes back after the first retry: every row arrives.
        var source = new GatedSource<Order>(Orders(100), staysOpen: false);
        var pipeline = new GatedOrders { Input = source, Table = new PostgresSink<Order>(connection, "orders") };
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, LoggerFactory = factory });
        await logs.When("table orders (append)").WaitAsync(Patience);
        await server.StopAsync();
        source.Open.SetResult();
        await logs.When("(attempt 1 of 10)").WaitAsync(Patience);
        await server.ResumeAsync();
        var result = await run.WaitAsync(Patience);

        var warnings = logs.Lines.Where(l => l.Level == LogLevel.Warning && l.Text.Contains("PostgreSQL: could not write rows (attempt", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(warnings);
        Assert.All(warnings, w => Assert.Contains("sink Table", w.Text, StringComparison.Ordinal));
        Assert.Contains("retrying in", warnings[0].Text, StringComparison.Ordinal);
        var summary = PipelineHost.Summary(result);
        Assert.Matches($"transient failures? retried", summary);
        Assert.Equal(pipeline.Table.Retries, warnings.Count);
        listener.RecordObservableInstruments();
        Assert.Equal(pipeline.Table.Retries, Interlocked.Read(ref retriesMeasured));
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var count = new NpgsqlCommand("SELECT count(*) FROM orders", db);
            Assert.Equal(100L, await count.ExecuteScalarAsync());
        }

        // 2. The server stays down: once the attempts are spent, the run fails naming the sink and PostgreSQL.
        var second = new GatedSource<Order>(Orders(10), staysOpen: false);
        var failing = new GatedOrders { Input = second, Table = new PostgresSink<Order>(new PostgresSinkOptions { ConnectionString = connection, Table = "orders2", MaxAttempts = 2 }) };
        var failingRun = failing.RunAsync(new PipelineOptions { Parallelism = 1, LoggerFactory = factory });
        await logs.When("table orders2 (append)").WaitAsync(Patience);
        await server.StopAsync();
        second.Open.SetResult();
        var error = await Assert.ThrowsAsync<ConnectorException>(() => failingRun.WaitAsync(Patience));
        Assert.Equal("Table", error.ConnectorName);
        Assert.Contains("PostgreSQL: could not write rows after 2 attempts", error.Message, StringComparison.Ordinal);
        Assert.False(NonRetryableException.IsCause(error));
    }

    [Fact]
    public async Task FlushInterval_writes_the_rows_of_a_quiet_stream_without_waiting_for_the_next_record()
    {
        var connection = await postgres.NewDatabaseAsync();
        var source = new GatedSource<Order>(Orders(3), staysOpen: true);
        var pipeline = new GatedOrders { Input = source, Table = new PostgresSink<Order>(new PostgresSinkOptions { ConnectionString = connection, Table = "orders", FlushInterval = TimeSpan.FromMilliseconds(100) }) };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }, stop.Token);
        source.Open.SetResult();

        // The stream is quiet from here on: only the interval can write the rows. Poll the table while the run goes on.
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        var deadline = DateTime.UtcNow + Patience;
        long rows = 0;
        while (rows < 3 && DateTime.UtcNow < deadline)
        {
            rows = await CountIfCreated(db, "orders");
            if (rows < 3)
            {
                await Task.Delay(50); // polling the table, not synchronising with the sink
            }
        }

        Assert.False(run.IsCompleted, "the run should still be going");
        Assert.Equal(3, rows);
        await stop.CancelAsync();
        await run.WaitAsync(Patience);
    }

    // The sink creates its table when it opens, which may be after the first poll: a missing table counts as no rows.
    private static async Task<long> CountIfCreated(NpgsqlConnection db, string table)
    {
        await using var exists = new NpgsqlCommand("SELECT to_regclass(@table) IS NOT NULL", db);
        exists.Parameters.AddWithValue("table", table);
        if (!(bool)(await exists.ExecuteScalarAsync())!)
        {
            return 0;
        }

        await using var count = new NpgsqlCommand($"SELECT count(*) FROM {table}", db);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    [Theory]
    [InlineData("Password")]
    [InlineData("PSW")]
    [InlineData("PWD")]
    public async Task Every_password_key_Npgsql_accepts_is_masked_in_the_summary_the_sink_line_explain_and_the_debug_log(string key)
    {
        var connection = new NpgsqlConnectionStringBuilder(await postgres.NewDatabaseAsync());
        var password = connection.Password!;
        connection.Password = null;
        var withSynonym = $"{connection.ConnectionString};{key}={password};SSL Password=ssl-secret-18";
        string[] set = ["--set", $"Table.ConnectionString={withSynonym}", "--set", "Table.Table=orders"];
        var (code, _, error) = await Run(new OrdersToPostgres { Input = new CollectionSource<Order>(Orders(5)) }, [.. set, "--log-level", "Debug", "-p", "1"]);
        Assert.True(code == 0, error); // Npgsql took the synonym: the server accepted the password
        Assert.Contains("sink Table -> postgresql", error, StringComparison.Ordinal);
        Assert.Contains("Table -> postgresql", error, StringComparison.Ordinal);
        Assert.Contains("setting Table.ConnectionString = ", error, StringComparison.Ordinal);
        Assert.DoesNotContain(password, error, StringComparison.Ordinal);
        Assert.DoesNotContain("ssl-secret-18", error, StringComparison.Ordinal);

        var (explained, output, explainError) = await Run(new OrdersToPostgres(), [.. set, "--explain"]);
        Assert.Equal(0, explained);
        Assert.DoesNotContain(password, output + explainError, StringComparison.Ordinal);
        Assert.DoesNotContain("ssl-secret-18", output + explainError, StringComparison.Ordinal);
        Assert.True(Secrets.IsSecretKey(key));
    }

    [Fact]
    public async Task A_missing_database_or_refused_credentials_exit_2_and_a_run_of_the_binary_prints_the_error_once()
    {
        var missing = new NpgsqlConnectionStringBuilder(await postgres.NewDatabaseAsync()) { Database = "no_such_database" }.ConnectionString;
        var (code, _, error) = await Run(new OrdersToPostgres { Input = new CollectionSource<Order>(Orders(1)) }, ["--set", $"Table.ConnectionString={missing}", "--set", "Table.Table=orders"]);
        Assert.Equal(ExitCodes.ConfigurationError, code);
        Assert.Single(error.Split('\n'), l => l.Contains("the database does not exist", StringComparison.Ordinal));

        var refused = new NpgsqlConnectionStringBuilder(await postgres.NewDatabaseAsync()) { Password = "wrong-password-18" }.ConnectionString;
        (code, _, error) = await Run(new OrdersToPostgres { Input = new CollectionSource<Order>(Orders(1)) }, ["--set", $"Table.ConnectionString={refused}", "--set", "Table.Table=orders"]);
        Assert.Equal(ExitCodes.ConfigurationError, code);
        Assert.Contains("refused the credentials", error, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-password-18", error, StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Output, string Error)> Run(ICompiledPipeline pipeline, string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await PipelineHost.RunAsync(pipeline, args, new PipelineHostContext { Output = output, Error = error, EnvironmentVariables = new System.Collections.Hashtable(), HandleSignals = false });
        return (code, output.ToString(), error.ToString());
    }
}
