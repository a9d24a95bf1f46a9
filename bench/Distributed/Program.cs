using System.Diagnostics;
using System.Globalization;
using System.Text;
using Compiled.Kafka.Testing;
using Compiled.Postgres.Testing;
using Confluent.Kafka;
using Npgsql;

// One copy against two copies of the ClickCounts sample, run distributed (Clicks.Distributed), over the same number of
// clicks in fresh topics and databases, interleaved, in two modes: "keyed" — the topic keyed by page, the [KeyBy] key
// (Clicks.PartitionedByKey) — and "repartition" — the topic keyed by user, so every copy re-keys its share through the
// repartition topic. Each copy runs at -p 1, pinned to a core of its own with taskset when it exists (the mock brokers,
// PostgreSQL and this harness share those cores). Reported: the wall time from the copies' start until every window's
// row is committed (a click per partition an hour later closes them all), and the steady rate between 10 % and 100 %
// of the rows (start-up and the first rebalance left out; checkpoints every 200 ms).
var clicks = Argument("--clicks", 300_000);
var rounds = Argument("--rounds", 3);
var modes = (args.SkipWhile(a => a != "--modes").Skip(1).FirstOrDefault() ?? "keyed,repartition").Split(',');
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
var results = new Dictionary<(string Mode, int Copies), List<(double Wall, double Rate)>>();
for (var round = 0; round < rounds; round++)
{
    var order = modes.SelectMany(mode => new[] { (mode, 1), (mode, 2) }).ToList();
    if (round % 2 == 1)
    {
        order.Reverse();
    }

    foreach (var (mode, copies) in order)
    {
        var (wall, rate) = await RunAsync(round, mode, copies);
        (results.TryGetValue((mode, copies), out var list) ? list : results[(mode, copies)] = []).Add((wall, rate));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{mode} {copies} {(copies == 1 ? "copy " : "copies")}\twall {wall:F2} s ({clicks / wall:N0} clicks/s)\tsteady {rate:N0} clicks/s"));
    }
}

foreach (var ((mode, copies), list) in results.OrderBy(r => r.Key.Mode).ThenBy(r => r.Key.Copies))
{
    var wall = list.Select(r => r.Wall).Order().ElementAt(list.Count / 2);
    var rate = list.Select(r => r.Rate).Order().ElementAt(list.Count / 2);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median {mode} {copies}\twall {wall:F2} s ({clicks / wall:N0} clicks/s)\tsteady {rate:N0} clicks/s\truns {string.Join(", ", list.Select(r => r.Rate.ToString("N0", CultureInfo.InvariantCulture)))}"));
}

return 0;

async Task<(double Wall, double Rate)> RunAsync(int round, string mode, int copies)
{
    var topic = $"clicks-{mode}-{round}-{copies}";
    var group = $"g-{mode}-{round}-{copies}";
    var repartition = mode == "repartition";
    kafka.CreateTopic(topic, 8);
    if (repartition)
    {
        kafka.CreateTopic($"{group}-PerMinute-repartition", 8); // the mock cluster cannot create topics through the admin API
    }

    var rows = Produce(topic, repartition);
    var connection = await server.CreateDatabaseAsync($"d{mode}{round}_{copies}");
    await using (var db = new NpgsqlConnection(connection))
    {
        await db.OpenAsync();
        await using var create = new NpgsqlCommand("CREATE TABLE page_minutes (page text NOT NULL, window_start timestamptz NOT NULL, clicks bigint NOT NULL)", db);
        await create.ExecuteNonQueryAsync();
    }

    var started = Stopwatch.StartNew();
    var children = Enumerable.Range(0, copies).Select(i => Start(i, topic, group, connection, repartition)).ToList();
    try
    {
        double tenth = -1;
        while (true)
        {
            var committed = await RowsAsync(connection);
            if (tenth < 0 && committed >= rows / 10)
            {
                tenth = started.Elapsed.TotalSeconds;
            }

            if (committed >= rows)
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

Process Start(int index, string topic, string group, string connection, bool repartition)
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
        "--set", "Clicks.Distributed=true", "--set", $"Clicks.PartitionedByKey={(repartition ? "false" : "true")}", "--set", "Clicks.SessionTimeout=6s", "--set", "Table.Mode=Append", "--set", "CheckpointInterval=200ms", "-p", "1",
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

static async Task<long> RowsAsync(string connection)
{
    await using var db = new NpgsqlConnection(connection);
    await db.OpenAsync();
    await using var command = new NpgsqlCommand("SELECT count(*) FROM page_minutes", db);
    return (long)(await command.ExecuteScalarAsync())!;
}

// Produces the clicks, keyed by page or by user, and a click per partition an hour later; returns the number of rows
// (page-minutes) the clicks make.
int Produce(string topic, bool byUser)
{
    using var producer = new ProducerBuilder<string, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, LingerMs = 20, CompressionType = CompressionType.Lz4 })
        .SetLogHandler((_, _) => { })
        .Build();
    var random = new Random(42);
    var start = new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    var span = TimeSpan.FromMinutes(20).Ticks;
    var minutes = new HashSet<(string, long)>();
    for (var i = 0; i < clicks; i++)
    {
        var page = $"/page/{random.Next(200)}";
        var user = $"user-{random.Next(5000)}";
        var at = start.AddTicks(span * i / clicks);
        minutes.Add((page, at.UtcTicks / TimeSpan.TicksPerMinute));
        Send(producer, topic, null, byUser ? user : page, $$"""{"page":"{{page}}","user":"{{user}}","at":"{{at:O}}"}""");
    }

    for (var partition = 0; partition < 8; partition++)
    {
        Send(producer, topic, partition, "closing", $$"""{"page":"/closing","user":"closing","at":"{{start.AddHours(1):O}}"}""");
    }

    if (producer.Flush(TimeSpan.FromMinutes(2)) != 0)
    {
        throw new InvalidOperationException("the clicks were not all acknowledged");
    }

    return minutes.Count;
}

static void Send(IProducer<string, byte[]> producer, string topic, int? partition, string key, string json)
{
    var message = new Message<string, byte[]> { Key = key, Value = Encoding.UTF8.GetBytes(json) };
    while (true)
    {
        try
        {
            if (partition is { } number)
            {
                producer.Produce(new TopicPartition(topic, number), message);
            }
            else
            {
                producer.Produce(topic, message);
            }

            return;
        }
        catch (ProduceException<string, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
        {
            producer.Poll(TimeSpan.FromMilliseconds(10));
        }
    }
}

int Argument(string name, int fallback)
    => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;
