using System.Diagnostics;
using System.Globalization;
using System.Text;
using Compiled.Kafka.Testing;
using Compiled.Postgres.Testing;
using Confluent.Kafka;
using Npgsql;

// One copy against two copies of the ClickCounts sample, run distributed (Clicks.Distributed, topic keyed by page),
// over the same number of clicks in fresh topics and databases, interleaved. Each copy runs at -p 1, pinned to a core
// of its own with taskset when it exists (the mock brokers, PostgreSQL and this harness share those cores). Reported:
// the wall time from the copies' start until every click's offset is committed with the state (compiled_partitions),
// and the steady rate between 10 % and 100 % committed (start-up and the first rebalance left out; checkpoints every
// 200 ms, so the committed offsets lag the reading by at most that).
var clicks = Argument("--clicks", 400_000);
var rounds = Argument("--rounds", 3);
var sample = args.SkipWhile(a => a != "--sample").Skip(1).FirstOrDefault()
    ?? Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../samples/ClickCounts/bin/Release/net10.0/ClickCounts.dll"));
if (!File.Exists(sample))
{
    Console.Error.WriteLine($"build the sample first: dotnet build -c Release samples/ClickCounts ({sample} is missing)");
    return 2;
}

var taskset = File.Exists("/usr/bin/taskset");
await using var server = await PostgresServer.StartAsync();
using var kafka = KafkaMockCluster.Start(brokers: 1);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# {DateTime.UtcNow:O} load {File.ReadAllText("/proc/loadavg")[..14]} clicks {clicks:N0}, 8 partitions, copies at -p 1{(taskset ? ", each pinned to one core" : "")}"));
var results = new Dictionary<int, List<(double Wall, double Rate)>>();
for (var round = 0; round < rounds; round++)
{
    foreach (var copies in round % 2 == 0 ? new[] { 1, 2 } : [2, 1])
    {
        var (wall, rate) = await RunAsync(round, copies);
        (results.TryGetValue(copies, out var list) ? list : results[copies] = []).Add((wall, rate));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{copies} {(copies == 1 ? "copy " : "copies")}\twall {wall:F2} s ({clicks / wall:N0} clicks/s)\tsteady {rate:N0} clicks/s"));
    }
}

foreach (var (copies, list) in results.OrderBy(r => r.Key))
{
    var wall = list.Select(r => r.Wall).Order().ElementAt(list.Count / 2);
    var rate = list.Select(r => r.Rate).Order().ElementAt(list.Count / 2);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median {copies}\twall {wall:F2} s ({clicks / wall:N0} clicks/s)\tsteady {rate:N0} clicks/s"));
}

return 0;

async Task<(double Wall, double Rate)> RunAsync(int round, int copies)
{
    var topic = $"clicks-{round}-{copies}";
    kafka.CreateTopic(topic, 8);
    Produce(topic);
    var connection = await server.CreateDatabaseAsync($"d{round}_{copies}");
    await using (var db = new NpgsqlConnection(connection))
    {
        await db.OpenAsync();
        await using var create = new NpgsqlCommand("CREATE TABLE page_minutes (page text NOT NULL, window_start timestamptz NOT NULL, clicks bigint NOT NULL)", db);
        await create.ExecuteNonQueryAsync();
    }

    var group = $"g-{round}-{copies}";
    var started = Stopwatch.StartNew();
    var children = Enumerable.Range(0, copies).Select(i => Start(i, topic, group, connection)).ToList();
    try
    {
        double tenth = -1;
        while (true)
        {
            var committed = await CommittedAsync(connection);
            if (tenth < 0 && committed >= clicks / 10)
            {
                tenth = started.Elapsed.TotalSeconds;
            }

            if (committed >= clicks)
            {
                var wall = started.Elapsed.TotalSeconds;
                return (wall, clicks * 0.9 / (wall - tenth));
            }

            if (children.FirstOrDefault(c => c.HasExited) is { } exited)
            {
                throw new InvalidOperationException($"a copy exited with {exited.ExitCode}");
            }

            if (started.Elapsed > TimeSpan.FromMinutes(5))
            {
                throw new TimeoutException("the clicks were not all committed within 5 minutes");
            }

            await Task.Delay(20);
        }
    }
    finally
    {
        foreach (var child in children)
        {
            child.Kill();
            await child.WaitForExitAsync();
            child.Dispose();
        }
    }
}

Process Start(int index, string topic, string group, string connection)
{
    var start = new ProcessStartInfo(taskset ? "taskset" : "dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
    if (taskset)
    {
        foreach (var argument in new[] { "-c", (index % Environment.ProcessorCount).ToString(CultureInfo.InvariantCulture), "dotnet" })
        {
            start.ArgumentList.Add(argument);
        }
    }

    foreach (var argument in new[]
    {
        sample, "--bootstrap", kafka.BootstrapServers, "--postgres", connection, "--set", $"Clicks.Topics={topic}", "--set", $"Clicks.GroupId={group}",
        "--set", "Clicks.Distributed=true", "--set", "Clicks.PartitionedByKey=true", "--set", "Clicks.SessionTimeout=6s", "--set", "Table.Mode=Append", "--set", "CheckpointInterval=200ms", "-p", "1",
    })
    {
        start.ArgumentList.Add(argument);
    }

    var process = Process.Start(start)!;
    process.ErrorDataReceived += (_, _) => { };
    process.OutputDataReceived += (_, _) => { };
    process.BeginErrorReadLine();
    process.BeginOutputReadLine();
    return process;
}

static async Task<long> CommittedAsync(string connection)
{
    await using var db = new NpgsqlConnection(connection);
    await db.OpenAsync();
    await using var exists = new NpgsqlCommand("SELECT to_regclass('compiled_partitions') IS NOT NULL", db);
    if (await exists.ExecuteScalarAsync() is not true)
    {
        return 0; // the copies create it when they open
    }

    await using var command = new NpgsqlCommand("SELECT coalesce(sum(next_offset), 0)::bigint FROM compiled_partitions", db);
    return (long)(await command.ExecuteScalarAsync())!;
}

void Produce(string topic)
{
    using var producer = new ProducerBuilder<string, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, LingerMs = 20, CompressionType = CompressionType.Lz4 })
        .SetLogHandler((_, _) => { })
        .Build();
    var random = new Random(42);
    var start = new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    var span = TimeSpan.FromMinutes(20).Ticks;
    for (var i = 0; i < clicks; i++)
    {
        var page = $"/page/{random.Next(200)}";
        var at = start.AddTicks(span * i / clicks);
        var value = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $$"""{"page":"{{page}}","user":"user-{{random.Next(5000)}}","at":"{{at:O}}"}"""));
        while (true)
        {
            try
            {
                producer.Produce(topic, new Message<string, byte[]> { Key = page, Value = value });
                break;
            }
            catch (ProduceException<string, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
            {
                producer.Poll(TimeSpan.FromMilliseconds(10));
            }
        }
    }

    if (producer.Flush(TimeSpan.FromMinutes(2)) != 0)
    {
        throw new InvalidOperationException("the clicks were not all acknowledged");
    }
}

int Argument(string name, int fallback)
    => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;
