using System.Diagnostics;
using System.Globalization;
using Compiled.Bench;
using Compiled.Kafka;
using Compiled.Kafka.Testing;
using Compiled.Runtime;
using Compiled.StateOnKafka;
using Confluent.Kafka;
using Streamiz.Kafka.Net;
using Streamiz.Kafka.Net.SerDes;
using Streamiz.Kafka.Net.Table;

// A count per key behind Kafka with its state in RocksDB: Compiled (StateBackend=Disk, and in memory for reference)
// next to Streamiz.Kafka.Net (GroupByKey().Count() materialised in its RocksDB store), on the same topic of the mock
// cluster, interleaved. Each run counts the results it hands on and stops at one per hit. Streamiz's store runs with
// its changelog disabled: creating the changelog topic is an admin call, which never completes on the mock cluster
// (docs: DESIGN.md) — so Streamiz writes no copy of its state while Compiled checkpoints its own every second.
var keys = Argument("--keys", 200_000);
var hits = Argument("--hits", keys + keys / 4);
var rounds = Argument("--rounds", 3);
var cacheKeys = Argument("--cache-keys", keys / 20); // per partition; two partitions hold a tenth of the keys

using var kafka = KafkaMockCluster.Start(brokers: 1);
const string Topic = "hits";
kafka.CreateTopic(Topic, 8);
Produce(kafka.BootstrapServers, keys, hits);
var work = Directory.CreateTempSubdirectory("state-on-kafka-").FullName;
var run = 0;
if (args.Contains("--checkpoint-cost"))
{
    await CheckpointCost();
    Directory.Delete(work, recursive: true);
    return 0;
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# {DateTime.UtcNow:O} load {File.ReadAllText("/proc/loadavg")[..14]} keys {keys:N0} hits {hits:N0} Compiled cache {cacheKeys:N0} keys per partition, parallelism 2; Streamiz 2 stream threads"));
var times = new Dictionary<string, List<double>>();
for (var round = 0; round < rounds; round++)
{
    foreach (var engine in new[] { "compiled-disk", "streamiz-rocksdb", "compiled-memory" })
    {
        var seconds = engine == "streamiz-rocksdb" ? await Streamiz(++run) : await Compiled(engine == "compiled-disk", ++run);
        (times.TryGetValue(engine, out var list) ? list : times[engine] = []).Add(seconds);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{engine}\t{seconds:F2} s\t{hits / seconds:N0} hits/s"));
    }
}

foreach (var (engine, list) in times)
{
    var median = list.Order().ElementAt(list.Count / 2);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median {engine}\t{median:F2} s\t{hits / median:N0} hits/s"));
}

Directory.Delete(work, recursive: true);
return 0;

async Task<double> Compiled(bool disk, int id)
{
    var source = new KafkaSource<Hit, Hit.JsonCodec>(new KafkaSourceOptions
    {
        BootstrapServers = kafka.BootstrapServers,
        Topics = Topic,
        GroupId = $"compiled-{id}",
        StartFrom = KafkaStart.Earliest,
        SessionTimeout = TimeSpan.FromSeconds(6),
    });
    var pipeline = new KafkaCounts { Hits = source };
    var options = new PipelineOptions
    {
        Parallelism = 2,
        StateBackend = disk ? StateBackend.Disk : StateBackend.Memory,
        StateCacheKeys = cacheKeys,
        StateDirectory = Path.Combine(work, $"compiled-{id}"),
    };
    using var stop = new CancellationTokenSource();
    var running = pipeline.RunAsync(options, stop.Token);
    var seconds = await Until(() => pipeline.Results.Count >= hits, () => source.Progress.Done > 0, running);
    await stop.CancelAsync();
    await running;
    return seconds;
}

async Task<double> Streamiz(int id)
{
    long results = 0;
    long consumed = 0;
    var config = new StreamConfig<StringSerDes, StringSerDes>
    {
        ApplicationId = $"streamiz-{id}",
        BootstrapServers = kafka.BootstrapServers,
        AutoOffsetReset = AutoOffsetReset.Earliest,
        NumStreamThreads = 2,
        StateDir = Path.Combine(work, $"streamiz-{id}"),
        SessionTimeoutMs = 6000,
        CompressionType = CompressionType.Lz4,
        Logger = Microsoft.Extensions.Logging.LoggerFactory.Create(_ => { }), // its Information log is a page per start
    };
    var builder = new StreamBuilder();
    builder.Stream<string, string>(Topic)
        .Peek((_, _, _) => Interlocked.Increment(ref consumed))
        .GroupByKey()
        .Count(RocksDb.As<string, long>("counts").WithKeySerdes<StringSerDes>().WithValueSerdes<Int64SerDes>().WithLoggingDisabled())
        .ToStream()
        .Foreach((_, _, _) => Interlocked.Increment(ref results));
    var stream = new KafkaStream(builder.Build(), config);
    await stream.StartAsync();
    var seconds = await Until(() => Interlocked.Read(ref results) >= hits, () => Interlocked.Read(ref consumed) > 0, null);
    stream.Dispose();
    return seconds;
}

// What checkpoints and restores cost, on disk and in memory: a run counts every hit with a checkpoint every second and
// stops with a final one; a second run restores it. Prints each checkpoint's duration (barrier to manifest, as the
// runtime logs it), the state folder's size and the time from start to restored state.
async Task CheckpointCost()
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# {DateTime.UtcNow:O} load {File.ReadAllText("/proc/loadavg")[..14]} checkpoint cost: keys {keys:N0} hits {hits:N0} cache {cacheKeys:N0} keys per partition, parallelism 2, checkpoints every second"));
    foreach (var disk in new[] { true, false, true, false })
    {
        var id = ++run;
        var folder = Path.Combine(work, $"cost-{id}");
        var logs = new Captured();
        using var factory = new Microsoft.Extensions.Logging.LoggerFactory([logs]); // no minimum level: the checkpoint timings are Debug
        PipelineOptions Options() => new()
        {
            Parallelism = 2,
            StateBackend = disk ? StateBackend.Disk : StateBackend.Memory,
            StateCacheKeys = cacheKeys,
            StateDirectory = folder,
            CheckpointInterval = TimeSpan.FromSeconds(1),
            LoggerFactory = factory,
        };
        KafkaSource<Hit, Hit.JsonCodec> Source() => new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = Topic, GroupId = $"cost-{id}", StartFrom = KafkaStart.Earliest, SessionTimeout = TimeSpan.FromSeconds(6) });

        var counting = new KafkaCounts { Hits = Source() };
        using (var stop = new CancellationTokenSource())
        {
            var running = counting.RunAsync(Options(), stop.Token);
            await Until(() => counting.Results.Count >= hits, () => true, running);
            await stop.CancelAsync();
            await running; // stops with a final checkpoint
        }

        var durations = logs.Matching(@"checkpoint \d+ complete: \d+ bytes of state in ([\d.]+) ms").Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).Order().ToList();
        using var du = Process.Start(new ProcessStartInfo("du", ["-sb", "--exclude=live", folder]) { RedirectStandardOutput = true })!; // du counts a hard-linked file once
        var bytes = long.Parse((await du.StandardOutput.ReadToEndAsync()).Split('\t')[0], CultureInfo.InvariantCulture);
        var restoring = new KafkaCounts { Hits = Source() };
        var clock = Stopwatch.StartNew();
        using (var stop = new CancellationTokenSource())
        {
            var running = restoring.RunAsync(Options(), stop.Token);
            await Until(() => logs.Matching("restored checkpoint").Any(), () => true, running);
            var restored = clock.Elapsed.TotalSeconds;
            await stop.CancelAsync();
            await running;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(disk ? "disk" : "memory")}	checkpoints {durations.Count}	median {durations[durations.Count / 2]:F0} ms	max {durations[^1]:F0} ms	retained checkpoints {bytes / 1e6:F1} MB	restore {restored:F2} s"));
        }
    }
}

// Seconds from the first record consumed to the last result: joining the consumer group is start-up, not throughput.
static async Task<double> Until(Func<bool> done, Func<bool> started, Task? running)
{
    var clock = Stopwatch.StartNew();
    double? first = null;
    while (!done())
    {
        if (running is { IsCompleted: true })
        {
            await running;
            throw new InvalidOperationException("the run ended before every result");
        }

        if (first is null && started())
        {
            first = clock.Elapsed.TotalSeconds;
        }

        if (clock.Elapsed > TimeSpan.FromMinutes(10))
        {
            throw new TimeoutException("no result for every hit within 10 minutes");
        }

        await Task.Delay(2);
    }

    return clock.Elapsed.TotalSeconds - (first ?? 0);
}

static void Produce(string bootstrap, int keys, int hits)
{
    using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, LingerMs = 20, CompressionType = CompressionType.Lz4 }).Build();
    for (long i = 0; i < hits; i++)
    {
        var key = (int)(i < keys ? i * 1_000_003 % keys : (i - keys) * 7_000_033 % keys);
        var text = key.ToString(CultureInfo.InvariantCulture);
        var message = new Message<string, string> { Key = text, Value = $$"""{"key":{{text}}}""" };
        while (true)
        {
            try
            {
                producer.Produce(Topic, message);
                break;
            }
            catch (ProduceException<string, string> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
            {
                producer.Poll(TimeSpan.FromMilliseconds(100)); // the local queue is full: let deliveries drain it
            }
        }
    }

    producer.Flush();
}

int Argument(string name, int fallback)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
}

namespace Compiled.StateOnKafka
{
    /// <summary>Keeps every log message, for the checkpoint-cost mode to read the runtime's checkpoint timings from.</summary>
    internal sealed class Captured : Microsoft.Extensions.Logging.ILoggerProvider, Microsoft.Extensions.Logging.ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _messages = new();

        public IEnumerable<System.Text.RegularExpressions.Match> Matching(string pattern)
            => _messages.Select(m => System.Text.RegularExpressions.Regex.Match(m, pattern)).Where(m => m.Success);

        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => _messages.Enqueue(formatter(state, exception));

        public void Dispose()
        {
        }
    }

    /// <summary>A hit on a key.</summary>
    [Record(Naming = FieldNaming.CamelCase)]
    public readonly partial record struct Hit(int Key);

    [Pipeline(Name = "bench-kafka-counts")]
    public sealed partial class KafkaCounts
    {
        [Source] public KafkaSource<Hit, Hit.JsonCodec> Hits { get; set; } = new(new KafkaSourceOptions());

        [KeyBy] static int Key(Hit hit) => hit.Key;

        [Window] WindowSpec<Hit, Count<Hit>> Total { get; } = new(Window.Running());

        [Sink] public CountSink<WindowResult<int, long>> Results { get; set; } = new();
    }
}
