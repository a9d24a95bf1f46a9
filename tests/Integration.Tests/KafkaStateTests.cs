using System.Globalization;
using System.Text;
using System.Text.Json;
using Compiled.Kafka;
using Compiled.Postgres;
using Compiled.Runtime;
using Confluent.Kafka;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>A page view as it arrives in Kafka (JSON).</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct PageView(string Page, [property: EventTime] long Time);

/// <summary>Views per page in 1-second tumbling windows, read from Kafka: the first streaming job anyone writes.</summary>
[Pipeline(Name = "kafka-page-views")]
public sealed partial class KafkaPageViews
{
    [Source] public KafkaSource<PageView, PageView.JsonCodec> Views { get; set; } = new(new KafkaSourceOptions());

    [KeyBy] static string Page(PageView v) => v.Page;

    [Window] public WindowSpec<PageView, Count<PageView>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] public CountingSink<WindowResult<string, long>> Counts { get; set; } = new();
}

/// <summary>Views per page per second, behind a gate the test holds shut so that the brokers fill before the run reads on.</summary>
[Pipeline(Name = "kafka-gated-views")]
public sealed partial class KafkaGatedViews
{
    /// <summary>Released when the view of page "gate" reaches the gate.</summary>
    public static SemaphoreSlim Entered { get; set; } = new(0);

    /// <summary>Waited for by the gate.</summary>
    public static SemaphoreSlim Open { get; set; } = new(0);

    [Source] public KafkaSource<PageView, PageView.JsonCodec> Views { get; set; } = new(new KafkaSourceOptions());

    [Transform]
    static PageView Gate(PageView v)
    {
        if (v.Page == "gate")
        {
            Entered.Release();
            Open.Wait();
        }

        return v;
    }

    [KeyBy] static string Page(PageView v) => v.Page;

    [Window] public WindowSpec<PageView, Count<PageView>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] public CountingSink<WindowResult<string, long>> Counts { get; set; } = new();
}

/// <summary>Views per page per second from two topics read as one stream.</summary>
[Pipeline(Name = "kafka-two-topics")]
public sealed partial class KafkaTwoTopics
{
    [Source] public KafkaSource<PageView, PageView.JsonCodec> Web { get; set; } = new(new KafkaSourceOptions());

    [Source] public KafkaSource<PageView, PageView.JsonCodec> Mobile { get; set; } = new(new KafkaSourceOptions());

    [KeyBy] static string Page(PageView v) => v.Page;

    [Window] public WindowSpec<PageView, Count<PageView>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] public CountingSink<WindowResult<string, long>> Counts { get; set; } = new();
}

/// <summary>A window's result as a table row.</summary>
public readonly record struct PageCount(string Page, long WindowStart, long Views);

/// <summary>Views per page per second from Kafka into PostgreSQL.</summary>
[Pipeline(Name = "kafka-page-counts-pg")]
public sealed partial class KafkaPageCountsToPostgres
{
    [Source] public KafkaSource<PageView, PageView.JsonCodec> Views { get; set; } = new(new KafkaSourceOptions());

    [KeyBy] static string Page(PageView v) => v.Page;

    [Window] public WindowSpec<PageView, Count<PageView>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Transform] static PageCount Row(WindowResult<string, long> w) => new(w.Key, w.Start, w.Value);

    [Sink] public PostgresSink<PageCount> Table { get; set; } = new(new PostgresSinkOptions());
}

/// <summary>A window's result as a Kafka message (JSON).</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct ViewCount(string Page, long WindowStart, long Views);

/// <summary>Views per page per second from Kafka into a Kafka topic: Flink's canonical job.</summary>
[Pipeline(Name = "kafka-page-counts-kafka")]
public sealed partial class KafkaPageCountsToKafka
{
    [Source] public KafkaSource<PageView, PageView.JsonCodec> Views { get; set; } = new(new KafkaSourceOptions());

    [KeyBy] static string Page(PageView v) => v.Page;

    [Window] public WindowSpec<PageView, Count<PageView>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Transform] static ViewCount Row(WindowResult<string, long> w) => new(w.Key, w.Start, w.Value);

    [Sink] public KafkaSink<ViewCount, ViewCount.JsonCodec> Counts { get; set; } = new(new KafkaSinkOptions());
}

/// <summary>Views per page per second from Kafka into PostgreSQL, their pages trimmed before the <c>[KeyBy]</c>.</summary>
[Pipeline(Name = "kafka-trimmed-page-counts")]
public sealed partial class KafkaTrimmedPageCounts
{
    [Source] public KafkaSource<PageView, PageView.JsonCodec> Views { get; set; } = new(new KafkaSourceOptions());

    [Transform] static PageView Trim(PageView v) => v with { Page = v.Page.Trim() };

    [KeyBy] static string Page(PageView v) => v.Page;

    [Window] public WindowSpec<PageView, Count<PageView>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Transform] static PageCount Row(WindowResult<string, long> w) => new(w.Key, w.Start, w.Value);

    [Sink] public PostgresSink<PageCount> Table { get; set; } = new(new PostgresSinkOptions());
}

/// <summary>A page's section, looked up in PostgreSQL.</summary>
public sealed record PageSection([property: Key] string Page, string Section);

/// <summary>A view with its page's section, as a table row.</summary>
public readonly record struct ViewSection(string Page, long Time, string Section);

/// <summary>Views from Kafka joined with their page's section from PostgreSQL, into PostgreSQL.</summary>
[Pipeline(Name = "kafka-view-sections")]
public sealed partial class KafkaViewSections
{
    [Source] public KafkaSource<PageView, PageView.JsonCodec> Views { get; set; } = new(new KafkaSourceOptions());

    [KeyBy] static string Page(PageView v) => v.Page;

    [Lookup] public PostgresLookup<string, PageSection> Pages { get; set; } = new("", "pages");

    [Transform] static ViewSection Row(Joined<PageView, PageSection> j) => new(j.Left.Page, j.Left.Time, j.Right!.Section);

    [Sink] public PostgresSink<ViewSection> Table { get; set; } = new(new PostgresSinkOptions());
}

/// <summary>Views from Kafka through an asynchronous transform (a stand-in service that answers a little later), into PostgreSQL.</summary>
[Pipeline(Name = "kafka-view-sections-async")]
public sealed partial class KafkaViewSectionsAsync
{
    [Source] public KafkaSource<PageView, PageView.JsonCodec> Views { get; set; } = new(new KafkaSourceOptions());

    [Transform, AsyncOptions(MaxInFlight = 16)]
    static async ValueTask<ViewSection> Section(PageView view, CancellationToken cancellationToken)
    {
        await Task.Delay(1, cancellationToken);
        return new(view.Page, view.Time, "section " + (int.Parse(view.Page[4..], CultureInfo.InvariantCulture) % 5));
    }

    [Sink] public PostgresSink<ViewSection> Table { get; set; } = new(new PostgresSinkOptions());
}

/// <summary>Keyed windows behind Kafka: state checkpointed with the offsets, restored at another parallelism.</summary>
[Collection(nameof(Infrastructure))]
public sealed partial class KafkaStateTests(KafkaFixture kafka, PostgresFixture postgres, MariaDbFixture mysql) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);
    private readonly string _state = Directory.CreateTempSubdirectory("compiled-kafka-state-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private static byte[] Json(PageView view) => Encoding.UTF8.GetBytes($$"""{"page":"{{view.Page}}","time":{{view.Time.ToString(CultureInfo.InvariantCulture)}}}""");

    [Fact]
    public async Task Windows_behind_kafka_stop_with_their_state_and_a_run_at_another_parallelism_finishes_them_each_once()
    {
        const int partitions = 8;
        var topic = kafka.NewTopic("views", partitions);
        var group = "views-" + Guid.NewGuid().ToString("N");
        var random = new Random(42);
        var time = 1_700_000_000_000L;
        var views = Enumerable.Range(0, 12_000).Select(_ => new PageView("page" + random.Next(0, 20), time += random.Next(0, 15))).ToArray();
        var half = views.Length / 2;

        // Produced in time order, keyed by page: every Kafka partition is in time order.
        kafka.Produce(topic, views[..half].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        var options = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = group, StartFrom = KafkaStart.Earliest };

        // Run 1, four readers (two Kafka partitions each): with this out-of-orderness no window fires; the stop
        // writes the state of every open window and the offsets it covers.
        var first = new KafkaPageViews { Views = new(options) };
        first.PerSecond = new(Window.Tumbling(TimeSpan.FromSeconds(1))) { OutOfOrderness = TimeSpan.FromDays(1) };
        using (var stop = new CancellationTokenSource())
        {
            var run = first.RunAsync(Options(4), stop.Token);
            await WaitUntil(() => first.Views.Progress.Done >= half, run, "the first half read");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        Assert.Equal(0, first.Counts.Count);
        Assert.NotEmpty(Directory.GetFiles(_state, "_checkpoint.json", SearchOption.AllDirectories));

        // The rest arrives, then a sentinel a day later in every partition, which lets every real window fire.
        kafka.Produce(topic, views[half..].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        using (var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build())
        {
            for (var p = 0; p < partitions; p++)
            {
                await producer.ProduceAsync(new TopicPartition(topic, p), new Message<string?, byte[]> { Key = null, Value = Json(new PageView("sentinel", time + 86_400_000)) });
            }
        }

        // Run 2, one reader per Kafka partition: restores the open windows, resumes at the checkpoint's offsets.
        var expected = views.GroupBy(v => (v.Page, Start: v.Time - (v.Time % 1000))).ToDictionary(g => g.Key, g => (long)g.Count());
        var second = new KafkaPageViews { Views = new(options) };
        using (var stop = new CancellationTokenSource())
        {
            var run = second.RunAsync(Options(partitions), stop.Token);
            await WaitUntil(() => second.Counts.Count >= expected.Count, run, $"{expected.Count} windows");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        var emitted = second.Counts.Items.Where(w => w.Key != "sentinel").Select(w => KeyValuePair.Create((w.Key, w.Start), w.Value)).ToList();
        Assert.Equal(expected.Count, emitted.Count); // each window once
        Assert.Equal(expected.OrderBy(e => e.Key), emitted.OrderBy(e => e.Key));
    }

    [Fact]
    public async Task A_backlog_read_by_fewer_readers_than_partitions_loses_no_record_to_lateness()
    {
        // Eight partitions in time order, read by three readers with no out-of-orderness allowed: a reader gets whole
        // fetches of one partition before another's, minutes of event time apart. Each partition keeps its own
        // watermark, so none of the partitions read later is late.
        const int partitions = 8;
        var topic = kafka.NewTopic("backlog", partitions);
        var random = new Random(7);
        var time = 1_700_000_000_000L;
        var views = Enumerable.Range(0, 20_000).Select(_ => new PageView("page" + random.Next(0, 40), time += random.Next(0, 30))).ToArray();
        kafka.Produce(topic, views.Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        using (var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build())
        {
            for (var p = 0; p < partitions; p++)
            {
                await producer.ProduceAsync(new TopicPartition(topic, p), new Message<string?, byte[]> { Key = null, Value = Json(new PageView("sentinel", time + 86_400_000)) });
            }
        }

        var expected = views.GroupBy(v => (v.Page, Start: v.Time - (v.Time % 1000))).ToDictionary(g => g.Key, g => (long)g.Count());
        var pipeline = new KafkaPageViews { Views = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, StartFrom = KafkaStart.Earliest }) };
        using (var stop = new CancellationTokenSource())
        {
            var run = pipeline.RunAsync(Options(3), stop.Token);
            await WaitUntil(() => pipeline.Counts.Count >= expected.Count, run, $"{expected.Count} windows");
            await stop.CancelAsync();
            var result = await run.WaitAsync(Patience);
            Assert.Equal(0, result.LateRecords);
        }

        var emitted = pipeline.Counts.Items.Where(w => w.Key != "sentinel").Select(w => KeyValuePair.Create((w.Key, w.Start), w.Value)).ToList();
        Assert.Equal(expected.OrderBy(e => e.Key), emitted.OrderBy(e => e.Key));
    }

    [Fact]
    public async Task State_on_disk_with_an_exactly_once_database_sink_is_refused_before_the_sink_connects()
    {
        // Nothing listens on port 1: a refusal that came after the sink connected would be a connection error instead.
        var pipeline = new KafkaPageCountsToPostgres
        {
            Views = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = kafka.NewTopic("refused", 1) }),
            Table = new(new PostgresSinkOptions { ConnectionString = "Host=127.0.0.1;Port=1;Username=nobody;Timeout=2", Table = "page_counts", ExactlyOnce = true }),
        };
        var options = new PipelineOptions { Parallelism = 1, StateBackend = StateBackend.Disk, StateDirectory = Directory.CreateTempSubdirectory("compiled-refused-").FullName };
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => pipeline.RunAsync(options).WaitAsync(Patience));
        Assert.Contains("StateBackend=Disk", error.Message, StringComparison.Ordinal);
        Assert.Contains("window 'PerSecond'", error.Message, StringComparison.Ordinal);
        Assert.Contains("exactly-once sink 'Table'", error.Message, StringComparison.Ordinal);
        Directory.Delete(options.StateDirectory, recursive: true);
    }

    [Fact]
    public async Task A_partition_that_gets_its_burst_a_moment_after_another_loses_nothing_to_lateness()
    {
        // A producer writes 100 s of events to partition 0 and, a moment later, the same 100 s to partition 1, while
        // the run reads: partition 1 is at its end (empty) when partition 0's events come. It keeps holding the
        // watermark back for IdleAfterEnd before it counts as idle, so its own events, when they come, are not late.
        var topic = kafka.NewTopic("burst", 2);
        var start = 1_700_000_000_000L;
        IEnumerable<(string?, byte[]?)> Views(string page) => Enumerable.Range(0, 1_000).Select(i => ((string?)null, (byte[]?)Json(new PageView(page, start + (i * 100)))));
        using var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, LingerMs = 5 }).SetLogHandler((_, _) => { }).Build();
        void Produce(int partition, IEnumerable<(string?, byte[]?)> messages)
        {
            foreach (var (_, value) in messages)
            {
                producer.Produce(new TopicPartition(topic, partition), new Message<string?, byte[]> { Value = value! });
            }

            producer.Flush(Patience);
        }

        var pipeline = new KafkaPageViews { Views = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, StartFrom = KafkaStart.Earliest, IdleAfterEnd = TimeSpan.FromSeconds(20) }) };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(Options(1), stop.Token);
        Produce(0, Views("a"));
        await WaitUntil(() => pipeline.Views.Progress.Done >= 1_000, run, "partition 0's burst read");
        Produce(1, Views("b"));
        Produce(0, [(null, Json(new PageView("sentinel", start + 86_400_000)))]);
        Produce(1, [(null, Json(new PageView("sentinel", start + 86_400_000)))]);
        await WaitUntil(() => pipeline.Counts.Items.Count(w => w.Key == "b") >= 100, run, "partition 1's windows");
        await stop.CancelAsync();
        var result = await run.WaitAsync(Patience);
        Assert.Equal(0, result.LateRecords);
        Assert.All(pipeline.Counts.Items.Where(w => w.Key != "sentinel"), w => Assert.Equal(10, w.Value));
        Assert.Equal(200, pipeline.Counts.Items.Count(w => w.Key != "sentinel"));
    }

    [Fact]
    public async Task Records_that_reach_every_partition_at_once_after_a_quiet_spell_are_not_late()
    {
        // An outside test lost a third of a burst: after a quiet spell longer than IdleAfterEnd every partition was
        // idle, the burst reached all of them at once, and the records of the partition read first moved the watermark
        // past those of the others. Here both partitions are idle at once (IdleAfterEnd 0) while the run is held at a
        // gate; a burst of 20 s of views goes to both, and is in the brokers before the run reads on. A batch holds at
        // most one partition's first 2.5 s, so without asking the broker about the idle partition, the other
        // partition's first seconds would be late.
        KafkaGatedViews.Entered = new SemaphoreSlim(0);
        KafkaGatedViews.Open = new SemaphoreSlim(0);
        var topic = kafka.NewTopic("burst-after-quiet", 2);
        var start = 1_700_000_000_000L;
        using var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, LingerMs = 5 }).SetLogHandler((_, _) => { }).Build();
        void Produce(int partition, IEnumerable<PageView> views)
        {
            foreach (var view in views)
            {
                producer.Produce(new TopicPartition(topic, partition), new Message<string?, byte[]> { Value = Json(view) });
            }

            producer.Flush(Patience);
        }

        IEnumerable<PageView> Burst(string page) => Enumerable.Range(0, 2_000).Select(i => new PageView(page, start + 1_000 + (i * 10)));
        var pipeline = new KafkaGatedViews { Views = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, StartFrom = KafkaStart.Earliest, IdleAfterEnd = TimeSpan.Zero }) };
        using var stop = new CancellationTokenSource();
        var options = Options(1);
        options.BatchSize = 256; // a batch holds one partition's first 2.5 s at most, never both partitions' bursts
        var run = pipeline.RunAsync(options, stop.Token);
        try
        {
            Produce(0, [new PageView("gate", start)]);
            Assert.True(await KafkaGatedViews.Entered.WaitAsync(Patience), "the gate was not reached");
            Produce(0, Burst("a"));
            Produce(1, Burst("b"));
        }
        finally
        {
            KafkaGatedViews.Open.Release();
        }

        Produce(0, [new PageView("sentinel", start + 86_400_000)]);
        Produce(1, [new PageView("sentinel", start + 86_400_000)]);
        // Each page's last window is never late; once both fired, every window before them has (one watermark moves them all).
        var last = start + 20_000;
        await WaitUntil(() => pipeline.Counts.Items.Count(w => w.Key is "a" or "b" && w.Start == last) == 2, run, "the burst's last windows");
        await stop.CancelAsync();
        var result = await run.WaitAsync(Patience);
        Assert.Equal(0, result.LateRecords);
        Assert.All(pipeline.Counts.Items.Where(w => w.Key is "a" or "b"), w => Assert.Equal(100, w.Value));
        Assert.Equal(40, pipeline.Counts.Items.Count(w => w.Key is "a" or "b"));
    }

    [Fact]
    public async Task A_partition_read_to_its_end_does_not_hold_back_the_windows_of_another()
    {
        // One reader, two partitions: partition 0 has one second of views, partition 1 ten. Partition 0 is read to its
        // end (its last messages and the end come in one poll) and is idle from then on, so partition 1's windows fire
        // while the run goes on — no idle timeout needed.
        var topic = kafka.NewTopic("uneven", 2);
        var start = 1_700_000_000_000L;
        using (var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, LingerMs = 50 }).SetLogHandler((_, _) => { }).Build())
        {
            for (var i = 0; i < 1_000; i++)
            {
                if (i < 100)
                {
                    producer.Produce(new TopicPartition(topic, 0), new Message<string?, byte[]> { Value = Json(new PageView("a", start + (i * 10))) });
                }

                producer.Produce(new TopicPartition(topic, 1), new Message<string?, byte[]> { Value = Json(new PageView("b", start + (i * 10))) });
            }

            producer.Flush(Patience);
        }

        var pipeline = new KafkaPageViews { Views = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, StartFrom = KafkaStart.Earliest }) };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(Options(1), stop.Token);
        await WaitUntil(() => pipeline.Counts.Items.Count(w => w.Key == "b") >= 9, run, "partition 1's first nine windows"); // fails here if partition 0 held them back
        await stop.CancelAsync();
        await run.WaitAsync(Patience);
        Assert.All(pipeline.Counts.Items.Where(w => w.Key == "b"), w => Assert.Equal(100, w.Value));
    }

    [Fact]
    public async Task A_reader_whose_partitions_were_read_to_their_end_before_a_restart_holds_back_no_window_after_it()
    {
        // Two readers, one partition each. Run 1 reads both to their end and stops; run 2 resumes partition 1 exactly
        // at its end and gets nothing more there, while partition 0 gets ten more seconds of views. Before, reader 1's
        // watermark stayed at its minimum (its only partition never delivered a record in run 2), so no window fired.
        var topic = kafka.NewTopic("resumed-at-end", 2);
        var group = "resumed-" + Guid.NewGuid().ToString("N");
        var start = 1_700_000_000_000L;
        ProduceViews(topic, 0, "a", start, count: 100);
        ProduceViews(topic, 1, "b", start, count: 100);
        var options = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = group, StartFrom = KafkaStart.Earliest };
        var first = new KafkaPageViews { Views = new(options) };
        using (var stop = new CancellationTokenSource())
        {
            var run = first.RunAsync(Options(2), stop.Token);
            await WaitUntil(() => first.Views.Progress.Done >= 200, run, "both partitions read to their end");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        ProduceViews(topic, 0, "a", start + 1_000, count: 1_000);
        var second = new KafkaPageViews { Views = new(options) };
        using (var stop = new CancellationTokenSource())
        {
            var run = second.RunAsync(Options(2), stop.Token);
            await WaitUntil(() => second.Counts.Count >= 11, run, "the windows partition 0's views complete, and b's restored one"); // fails here with reader 1 holding them back
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        // Every window the watermark completed fired exactly once, in run 2; the last second of a stays open (checkpointed).
        Assert.Equal(0, first.Counts.Count);
        var windows = second.Counts.Items.Select(w => (w.Key, w.Start, w.Value)).OrderBy(w => w).ToList();
        var expected = Enumerable.Range(0, 10).Select(i => ("a", start + (i * 1_000), 100L)).Append(("b", start, 100L)).OrderBy(w => w).ToList();
        Assert.Equal(expected, windows);
    }

    [Fact]
    public async Task Windows_already_due_at_a_stop_fire_after_a_restart_with_nothing_new_to_read()
    {
        // Run 1 reads ten seconds of a's views from partition 0 and b's first 100 ms from partition 1, which stays
        // active (IdleAfterEnd is long), so it holds every window back; the run stops with its state. Run 2 resumes both
        // partitions at their end and nothing more comes. Before, its readers knew nothing of what run 1 had read: when
        // both fell idle the watermark had nothing to move to, and the windows run 1 had filled waited for a new record.
        var topic = kafka.NewTopic("due-after-restart", 2);
        var group = "due-" + Guid.NewGuid().ToString("N");
        var start = 1_700_000_000_000L;
        ProduceViews(topic, 0, "a", start, count: 1_000);
        ProduceViews(topic, 1, "b", start, count: 10);
        var first = new KafkaPageViews { Views = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = group, StartFrom = KafkaStart.Earliest, IdleAfterEnd = TimeSpan.FromMinutes(10) }) };
        using (var stop = new CancellationTokenSource())
        {
            var run = first.RunAsync(Options(1), stop.Token);
            await WaitUntil(() => first.Views.Progress.Done >= 1_010, run, "both partitions read to their end");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        var second = new KafkaPageViews { Views = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = group, StartFrom = KafkaStart.Earliest }) };
        using (var stop = new CancellationTokenSource())
        {
            var run = second.RunAsync(Options(2), stop.Token);
            await WaitUntil(() => second.Counts.Count >= 10, run, "the windows run 1's records complete"); // fails here without the restored watermark
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        // The watermark moved to what run 1 had read (a's last view, 9.99 s in): nine of a's seconds and b's only one
        // fired, once each, in run 2; a's tenth second stays open (a view at 10.5 s could still come).
        Assert.Equal(0, first.Counts.Count);
        var windows = second.Counts.Items.Select(w => (w.Key, w.Start, w.Value)).OrderBy(w => w).ToList();
        var expected = Enumerable.Range(0, 9).Select(i => ("a", start + (i * 1_000), 100L)).Append(("b", start, 10L)).OrderBy(w => w).ToList();
        Assert.Equal(expected, windows);
    }

    [Fact]
    public void IdleAfterEnd_of_zero_is_a_setting_as_its_description_says()
    {
        // An outside test's finding: "--set Views.IdleAfterEnd=0" exited 2 ("expected a positive duration"), while --help
        // and connectors.md say 0 makes a partition at its end idle at once.
        var pipeline = new KafkaPageViews();
        var source = Assert.Single(((ICompiledPipeline)pipeline).CreateJob().Connectors, c => c.Role == ConnectorRole.Source);
        var idleAfterEnd = source.Settings.First(s => s.Name == "Views.IdleAfterEnd");
        Assert.Null(idleAfterEnd.TrySet("0"));
        Assert.Equal(TimeSpan.Zero, ((KafkaSource<PageView, PageView.JsonCodec>)source.Connector).Options.IdleAfterEnd);
        Assert.Null(idleAfterEnd.TrySet("0s"));
        Assert.Equal("0ms", idleAfterEnd.Value);
        Assert.NotNull(idleAfterEnd.TrySet("-2s"));
    }

    [Fact]
    public async Task A_restart_on_other_topics_says_that_the_restored_checkpoint_has_none_of_their_offsets()
    {
        // Run 1 reads views ten seconds later than run 2's, from another topic, under the same pipeline name and state
        // directory: run 2 restores run 1's state and watermark, and its views are all late. Nothing said why before.
        var start = 1_700_000_000_000L;
        var before = kafka.NewTopic("before-rename", 1);
        ProduceViews(before, 0, "a", start + 10_000, count: 100);
        var first = new KafkaPageViews { Views = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = before, StartFrom = KafkaStart.Earliest }) };
        using (var stop = new CancellationTokenSource())
        {
            var run = first.RunAsync(Options(1), stop.Token);
            await WaitUntil(() => first.Views.Progress.Done >= 100, run, "run 1's views read");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        var after = kafka.NewTopic("after-rename", 1);
        ProduceViews(after, 0, "a", start, count: 100);
        using var log = new LogLines();
        var second = new KafkaPageViews { Views = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = after, StartFrom = KafkaStart.Earliest }) };
        using (var stop = new CancellationTokenSource())
        {
            var options = Options(1);
            options.LoggerFactory = log;
            var run = second.RunAsync(options, stop.Token);
            await WaitUntil(() => second.Views.Progress.Done >= 100, run, "run 2's views read");
            await stop.CancelAsync();
            var result = await run.WaitAsync(Patience);
            Assert.Equal(100, result.LateRecords);
        }

        Assert.True(log.Contains($"the restored checkpoint has offsets of {before}, none of the partitions read now"), log.ToString());
    }

    private void ProduceViews(string topic, int partition, string page, long from, int count)
    {
        using var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, LingerMs = 20 }).SetLogHandler((_, _) => { }).Build();
        for (var i = 0; i < count; i++)
        {
            producer.Produce(new TopicPartition(topic, partition), new Message<string?, byte[]> { Value = Json(new PageView(page, from + (i * 10))) });
        }

        producer.Flush(Patience);
    }

    [Fact]
    public async Task Two_topics_read_as_one_stream_stop_with_their_state_and_finish_each_window_once()
    {
        // Two sources (a union), each on a topic of 4 partitions, the second topic's views as old as the first's: each
        // source's partitions keep their own watermarks, its positions are checkpointed with the state, and a second
        // run at another parallelism resumes both where the checkpoint says.
        var web = kafka.NewTopic("web", 4);
        var mobile = kafka.NewTopic("mobile", 4);
        var group = "union-" + Guid.NewGuid().ToString("N");
        var random = new Random(11);
        var time = 1_700_000_000_000L;
        var views = Enumerable.Range(0, 16_000).Select(_ => new PageView("page" + random.Next(0, 25), time += random.Next(0, 10))).ToArray();
        var toWeb = views.Where((_, i) => i % 3 != 0).ToArray();
        var toMobile = views.Where((_, i) => i % 3 == 0).ToArray();
        kafka.Produce(web, toWeb[..(toWeb.Length / 2)].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        kafka.Produce(mobile, toMobile[..(toMobile.Length / 2)].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        KafkaTwoTopics Pipeline() => new()
        {
            Web = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = web, GroupId = group, StartFrom = KafkaStart.Earliest }),
            Mobile = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = mobile, GroupId = group + "-m", StartFrom = KafkaStart.Earliest }),
        };

        var first = Pipeline();
        using (var stop = new CancellationTokenSource())
        {
            var run = first.RunAsync(Options(2), stop.Token);
            await WaitUntil(() => first.Web.Progress.Done + first.Mobile.Progress.Done >= (toWeb.Length / 2) + (toMobile.Length / 2), run, "the first halves read");
            await stop.CancelAsync();
            var result = await run.WaitAsync(Patience);
            Assert.Equal(0, result.LateRecords);
        }

        kafka.Produce(web, toWeb[(toWeb.Length / 2)..].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        kafka.Produce(mobile, toMobile[(toMobile.Length / 2)..].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        using (var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build())
        {
            foreach (var topic in new[] { web, mobile })
            {
                for (var p = 0; p < 4; p++)
                {
                    await producer.ProduceAsync(new TopicPartition(topic, p), new Message<string?, byte[]> { Value = Json(new PageView("sentinel", time + 86_400_000)) });
                }
            }
        }

        var expected = views.GroupBy(v => (v.Page, Start: v.Time - (v.Time % 1000))).ToDictionary(g => g.Key, g => (long)g.Count());
        var second = Pipeline();
        using (var stop = new CancellationTokenSource())
        {
            var run = second.RunAsync(Options(3), stop.Token);
            await WaitUntil(() => first.Counts.Items.Count(w => w.Key != "sentinel") + second.Counts.Items.Count(w => w.Key != "sentinel") >= expected.Count, run, $"{expected.Count} windows");
            await stop.CancelAsync();
            var result = await run.WaitAsync(Patience);
            Assert.Equal(0, result.LateRecords);
        }

        var emitted = first.Counts.Items.Concat(second.Counts.Items).Where(w => w.Key != "sentinel").Select(w => KeyValuePair.Create((w.Key, w.Start), w.Value)).ToList();
        Assert.Equal(expected.Count, emitted.Count); // each window once, across the two runs
        Assert.Equal(expected.OrderBy(e => e.Key), emitted.OrderBy(e => e.Key));
    }

    [Fact]
    public async Task Exactly_once_window_results_in_postgres_survive_an_abort_with_no_row_lost_or_repeated()
    {
        const int partitions = 8;
        var topic = kafka.NewTopic("views-eo", partitions);
        var connection = await postgres.NewDatabaseAsync();
        var random = new Random(7);
        var time = 1_700_000_000_000L;
        var views = Enumerable.Range(0, 16_000).Select(_ => new PageView("page" + random.Next(0, 24), time += random.Next(0, 12))).ToArray();
        var half = views.Length / 2;
        kafka.Produce(topic, views[..half].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        var source = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = "eo-" + Guid.NewGuid().ToString("N"), StartFrom = KafkaStart.Earliest };
        PostgresSink<PageCount> Sink() => new(new PostgresSinkOptions { ConnectionString = connection, Table = "page_counts", ExactlyOnce = true }); // append: a repeat would be a second row

        // Run 1 (one reader per Kafka partition, so windows fire as the data goes) is aborted once checkpoints with
        // rows have committed: what it wrote after the last one is rolled back with it.
        var first = new KafkaPageCountsToPostgres { Views = new(source), Table = Sink() };
        using (var abort = new CancellationTokenSource())
        {
            var run = ((ICompiledPipeline)first).CreateJob().RunAsync(Options(partitions), CancellationToken.None, abort.Token);
            await WaitUntil(() => Scalar(connection, "SELECT count(*) FROM page_counts") > 0 && Scalar(connection, "SELECT coalesce(max(checkpoint_id), 0) FROM compiled_checkpoints") >= 2, run, "committed checkpoints with rows");
            await abort.CancelAsync();
            await Assert.ThrowsAsync<PipelineAbortedException>(() => run.WaitAsync(Patience));
        }

        var committedBefore = Scalar(connection, "SELECT count(*) FROM page_counts");
        kafka.Produce(topic, views[half..].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        using (var producer = new ProducerBuilder<string?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build())
        {
            for (var p = 0; p < partitions; p++)
            {
                await producer.ProduceAsync(new TopicPartition(topic, p), new Message<string?, byte[]> { Key = null, Value = Json(new PageView("sentinel", time + 86_400_000)) });
            }
        }

        // Run 2 restores the state and offsets committed with the rows, and finishes every window.
        var expected = views.GroupBy(v => (v.Page, Start: v.Time - (v.Time % 1000))).ToDictionary(g => g.Key, g => (long)g.Count());
        var second = new KafkaPageCountsToPostgres { Views = new(source), Table = Sink() };
        using (var stop = new CancellationTokenSource())
        {
            var run = second.RunAsync(Options(partitions), stop.Token);
            await WaitUntil(() => Scalar(connection, "SELECT count(*) FROM page_counts") >= expected.Count, run, $"{expected.Count} rows");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        Assert.True(committedBefore > 0);
        var rows = new List<KeyValuePair<(string, long), long>>();
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var select = new NpgsqlCommand("SELECT page, window_start, views FROM page_counts", db);
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows.Add(KeyValuePair.Create((reader.GetString(0), reader.GetInt64(1)), reader.GetInt64(2)));
            }
        }

        Assert.Equal(expected.Count, rows.Count); // one row per window: none lost, none repeated
        Assert.Equal(expected.OrderBy(e => e.Key), rows.OrderBy(e => e.Key));
    }

    [Fact]
    public async Task Exactly_once_window_results_in_a_kafka_topic_survive_an_abort_and_a_stop_with_no_record_lost_or_repeated()
    {
        const int partitions = 4;
        var topic = kafka.NewTopic("views-k2k", partitions);
        var output = kafka.NewTopic("counts-k2k", 3);
        var checkpoints = kafka.NewTopic("counts-k2k-checkpoints", 1);
        var random = new Random(11);
        var time = 1_700_000_000_000L;
        var views = Enumerable.Range(0, 12_000).Select(_ => new PageView("page" + random.Next(0, 24), time += random.Next(0, 12))).ToArray();
        var third = views.Length / 3;
        kafka.Produce(topic, views[..third].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        var source = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = "k2k-" + Guid.NewGuid().ToString("N"), StartFrom = KafkaStart.Earliest };
        KafkaSink<ViewCount, ViewCount.JsonCodec> Sink() => new(new KafkaSinkOptions { BootstrapServers = kafka.BootstrapServers, Topic = output, Transactional = true, CheckpointTopic = checkpoints }, key: c => c.Page);

        // Run 1 is aborted once checkpoints with records have committed: the records its windows produced after the
        // last one were never written (they wait for their checkpoint), and its state and offsets are that checkpoint's.
        var first = new KafkaPageCountsToKafka { Views = new(source), Counts = Sink() };
        using (var abort = new CancellationTokenSource())
        {
            var run = ((ICompiledPipeline)first).CreateJob().RunAsync(Options(partitions), CancellationToken.None, abort.Token);
            await WaitUntil(() => kafka.Offsets(output) > 0 && kafka.Offsets(checkpoints) >= 6, run, "committed checkpoints with records");
            await abort.CancelAsync();
            await Assert.ThrowsAsync<PipelineAbortedException>(() => run.WaitAsync(Patience));
        }

        // Run 2 restores them, reads another third and stops (SIGTERM's path: a last checkpoint, committed).
        var committedBefore = kafka.Offsets(output);
        kafka.Produce(topic, views[third..(2 * third)].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        var second = new KafkaPageCountsToKafka { Views = new(source), Counts = Sink() };
        using (var stop = new CancellationTokenSource())
        {
            var run = second.RunAsync(Options(partitions), stop.Token);
            await WaitUntil(() => kafka.Offsets(output) > committedBefore, run, "records of the second run");
            await stop.CancelAsync();
            var result = await run.WaitAsync(Patience);
            Assert.Equal(DeliveryGuarantee.ExactlyOnce, result.Delivery);
            Assert.NotNull(result.State?.Restored); // run 1's last checkpoint
            Assert.Contains(checkpoints, result.State!.Location, StringComparison.Ordinal);
        }

        // Run 3 reads the rest, then a sentinel per partition that closes every window, and finishes them.
        kafka.Produce(topic, views[(2 * third)..].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        await kafka.ProduceToEveryPartitionAsync(topic, partitions, Json(new PageView("sentinel", time + 86_400_000)));

        var expected = views.GroupBy(v => (v.Page, Start: v.Time - (v.Time % 1000))).ToDictionary(g => g.Key, g => (long)g.Count());
        var last = new KafkaPageCountsToKafka { Views = new(source), Counts = Sink() };
        using (var stop = new CancellationTokenSource())
        {
            var run = last.RunAsync(Options(partitions), stop.Token);
            await WaitUntil(() => kafka.ReadAll(output).Count >= expected.Count, run, $"{expected.Count} records");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        // One record per window: none lost, none repeated (the mock cluster shows aborted transactions too, but these
        // runs produce records only inside a checkpoint's commit, which an abort does not interrupt).
        var counts = kafka.ReadAll(output).Select(value => JsonSerializer.Deserialize<JsonElement>(value)).Select(e => KeyValuePair.Create((e.GetProperty("page").GetString()!, e.GetProperty("windowStart").GetInt64()), e.GetProperty("views").GetInt64())).ToList();
        Assert.True(committedBefore > 0);
        Assert.Equal(expected.Count, counts.Count);
        Assert.Equal(expected.OrderBy(e => e.Key), counts.OrderBy(e => e.Key));
    }

    [Fact]
    public async Task State_larger_than_a_kafka_message_is_kept_in_several_and_restored_whole()
    {
        // 60 000 pages in one window: the state is larger than one message of the checkpoint topic (512 KiB), so the
        // checkpoint a stop takes is split; the next run restores every key's count from the pieces.
        const int pages = 60_000;
        var topic = kafka.NewTopic("views-large-state", 2);
        var output = kafka.NewTopic("counts-large-state", 3);
        var checkpoints = kafka.NewTopic("counts-large-state-checkpoints", 1);
        var time = 1_700_000_000_000L;
        kafka.Produce(topic, Enumerable.Range(0, pages).Select(i => ((string?)null, (byte[]?)Json(new PageView($"p{i:00000}", time + (i % 500))))));
        var source = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = "large-" + Guid.NewGuid().ToString("N"), StartFrom = KafkaStart.Earliest };
        KafkaSink<ViewCount, ViewCount.JsonCodec> Sink() => new(new KafkaSinkOptions { BootstrapServers = kafka.BootstrapServers, Topic = output, Transactional = true, CheckpointTopic = checkpoints }, key: c => c.Page);

        // One checkpoint only (a mock partition keeps at most 5 MiB): the one the stop takes.
        var first = new KafkaPageCountsToKafka { Views = new(source), Counts = Sink() };
        using (var stop = new CancellationTokenSource())
        {
            var options = Options(2);
            options.CheckpointInterval = TimeSpan.FromHours(1);
            var run = first.RunAsync(options, stop.Token);
            await WaitUntil(() => first.Views.Progress.Done >= pages, run, "every view read");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        Assert.Equal(0, kafka.Offsets(output)); // nothing fired: every page's window is open
        Assert.True(kafka.Offsets(checkpoints) >= 4, $"{kafka.Offsets(checkpoints)} offsets in the checkpoint topic: the state was not split"); // two or more pieces, the manifest, the commit's marker

        await kafka.ProduceToEveryPartitionAsync(topic, 2, Json(new PageView("sentinel", time + 86_400_000)));

        var second = new KafkaPageCountsToKafka { Views = new(source), Counts = Sink() };
        using (var stop = new CancellationTokenSource())
        {
            var options = Options(2);
            options.CheckpointInterval = TimeSpan.FromSeconds(1);
            var run = second.RunAsync(options, stop.Token);
            await WaitUntil(() => kafka.ReadAll(output).Count >= pages, run, $"{pages} records");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        var counts = kafka.ReadAll(output).Select(value => JsonSerializer.Deserialize<JsonElement>(value)).ToList();
        Assert.Equal(pages, counts.Count);
        Assert.Equal(pages, counts.Select(c => c.GetProperty("page").GetString()).Distinct().Count());
        Assert.All(counts, c => Assert.Equal(1, c.GetProperty("views").GetInt64()));
    }

    [Fact]
    public async Task A_kafka_checkpoint_topic_that_is_read_or_written_or_lost_pieces_of_its_newest_checkpoint_stops_the_run()
    {
        var topic = kafka.NewTopic("views-k2k-bad", 2);
        var output = kafka.NewTopic("counts-k2k-bad", 1);
        var checkpoints = kafka.NewTopic("counts-k2k-bad-checkpoints", 1);
        kafka.Produce(topic, Enumerable.Range(0, 300).Select(i => ((string?)null, (byte[]?)Json(new PageView("page" + (i % 7), 1_700_000_000_000L + i)))));
        var source = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = "k2k-bad-" + Guid.NewGuid().ToString("N"), StartFrom = KafkaStart.Earliest };
        KafkaPageCountsToKafka Pipeline(string checkpointTopic) => new()
        {
            Views = new(source),
            Counts = new(new KafkaSinkOptions { BootstrapServers = kafka.BootstrapServers, Topic = output, Transactional = true, CheckpointTopic = checkpointTopic }),
        };

        async Task<string> Refused(KafkaPageCountsToKafka pipeline)
        {
            var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(Options(1)).WaitAsync(Patience));
            Assert.True(NonRetryableException.IsCause(error), error.ToString()); // exit code 2
            return error.Message;
        }

        // The output topic would carry checkpoints among the records; an input topic would feed them back in.
        Assert.Contains("is the topic the records are written to", await Refused(Pipeline(output)), StringComparison.Ordinal);
        Assert.Contains("is a topic the pipeline reads", await Refused(Pipeline(topic)), StringComparison.Ordinal);
        Assert.Equal(0, kafka.Offsets(output));

        // A checkpoint, then its newest manifest again behind a piece of another checkpoint: the newest checkpoint has
        // lost a piece (as when retention deletes the start of a topic that is not compacted). Restoring an older
        // one would write its output again; the run refuses to.
        var first = Pipeline(checkpoints);
        using (var stop = new CancellationTokenSource())
        {
            var run = first.RunAsync(Options(1), stop.Token);
            await WaitUntil(() => first.Views.Progress.Done >= 300, run, "every view read");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        var pipelineName = "kafka-page-counts-kafka";
        Message<byte[], byte[]>? manifest = null;
        using (var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "peek-" + Guid.NewGuid().ToString("N"), EnablePartitionEof = true }).SetLogHandler((_, _) => { }).Build())
        {
            consumer.Assign(new TopicPartitionOffset(checkpoints, 0, Offset.Beginning));
            while (consumer.Consume(Patience) is { IsPartitionEOF: false } consumed)
            {
                if (Encoding.UTF8.GetString(consumed.Message.Key) == pipelineName + "#checkpoint")
                {
                    manifest = consumed.Message;
                }
            }
        }

        Assert.NotNull(manifest);
        using (var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build())
        {
            var stranger = new byte[16];
            BitConverter.TryWriteBytes(stranger.AsSpan(0, 8), 999_999L); // a piece of checkpoint 999999
            await producer.ProduceAsync(new TopicPartition(checkpoints, 0), new Message<byte[], byte[]> { Key = Encoding.UTF8.GetBytes(pipelineName + "#chunk-0"), Value = stranger });
            await producer.ProduceAsync(new TopicPartition(checkpoints, 0), new Message<byte[], byte[]> { Key = manifest.Key, Value = manifest.Value });
        }

        var lost = await Refused(Pipeline(checkpoints));
        Assert.Contains("without all of its pieces", lost, StringComparison.Ordinal);
        Assert.Contains(checkpoints, lost, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lookup_join_behind_kafka_into_exactly_once_postgres_survives_an_abort_with_no_row_lost_or_repeated()
    {
        const int partitions = 4;
        var topic = kafka.NewTopic("views-lookup-eo", partitions);
        var connection = await postgres.NewDatabaseAsync();
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE pages (page text PRIMARY KEY, section text NOT NULL); INSERT INTO pages SELECT 'page' || i, 'section ' || (i % 5) FROM generate_series(0, 19) i;", db);
            await create.ExecuteNonQueryAsync();
        }

        await AbortAndRestartIntoViewSections(topic, connection, seed: 11, source => new KafkaViewSections
        {
            Views = new(source),
            Pages = new PostgresLookup<string, PageSection>(connection, "pages"),
            Table = new(new PostgresSinkOptions { ConnectionString = connection, Table = "view_sections", ExactlyOnce = true }), // append: a repeat would be a second row
        }, page => page < 20); // pages 20-23 have no row
    }

    [Fact]
    public async Task An_async_transform_behind_kafka_into_exactly_once_postgres_survives_an_abort_with_no_row_lost_or_repeated()
    {
        const int partitions = 4;
        var topic = kafka.NewTopic("views-async-eo", partitions);
        var connection = await postgres.NewDatabaseAsync();
        await AbortAndRestartIntoViewSections(topic, connection, seed: 12, source => new KafkaViewSectionsAsync
        {
            Views = new(source),
            Table = new(new PostgresSinkOptions { ConnectionString = connection, Table = "view_sections", ExactlyOnce = true }), // append: a repeat would be a second row
        }, page => true); // the abort cancels calls in flight; what they were for is read again
    }

    /// <summary>
    /// Produces half of 12,000 page views, runs the pipeline until it committed checkpoints with rows, aborts it, produces
    /// the rest, runs it again to the end, and compares <c>view_sections</c> with every view whose page <paramref name="joins"/>,
    /// once each.
    /// </summary>
    private async Task AbortAndRestartIntoViewSections(string topic, string connection, int seed, Func<KafkaSourceOptions, ICompiledPipeline> pipeline, Func<int, bool> joins)
    {
        const int partitions = 4;
        var random = new Random(seed);
        var views = Enumerable.Range(0, 12_000).Select(i => new PageView("page" + random.Next(0, 24), i)).ToArray();
        var half = views.Length / 2;
        kafka.Produce(topic, views[..half].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        var source = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = "view-sections-" + Guid.NewGuid().ToString("N"), StartFrom = KafkaStart.Earliest };
        using (var abort = new CancellationTokenSource())
        {
            var run = pipeline(source).CreateJob().RunAsync(Options(partitions), CancellationToken.None, abort.Token);
            await WaitUntil(() => Scalar(connection, "SELECT count(*) FROM view_sections", "view_sections") > 0 && Scalar(connection, "SELECT coalesce(max(checkpoint_id), 0) FROM compiled_checkpoints", "view_sections") >= 2, run, "committed checkpoints with rows");
            await abort.CancelAsync();
            await Assert.ThrowsAsync<PipelineAbortedException>(() => run.WaitAsync(Patience));
        }

        var committedBefore = Scalar(connection, "SELECT count(*) FROM view_sections", "view_sections");
        kafka.Produce(topic, views[half..].Select(v => ((string?)v.Page, (byte[]?)Json(v))));
        var expected = views.Select(v => (View: v, Page: int.Parse(v.Page[4..], CultureInfo.InvariantCulture))).Where(v => joins(v.Page))
            .Select(v => $"{v.View.Page} {v.View.Time} section {v.Page % 5}").Order(StringComparer.Ordinal).ToList();
        using (var stop = new CancellationTokenSource())
        {
            var run = pipeline(source).CreateJob().RunAsync(Options(partitions), stop.Token, CancellationToken.None);
            await WaitUntil(() => Scalar(connection, "SELECT count(*) FROM view_sections", "view_sections") >= expected.Count, run, $"{expected.Count} rows");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        Assert.InRange(committedBefore, 1, expected.Count - 1);
        Assert.Equal(expected, await ViewSectionRows(connection)); // every joined view once: none lost, none repeated
    }

    private static async Task<List<string>> ViewSectionRows(string connection)
    {
        var rows = new List<string>();
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var select = new NpgsqlCommand("SELECT page || ' ' || time || ' ' || section FROM view_sections", db);
        await using var reader = await select.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return [.. rows.Order(StringComparer.Ordinal)];
    }

    private static long Scalar(string connection, string sql, string table = "page_counts")
    {
        using var db = new NpgsqlConnection(connection);
        db.Open();
        // The sink creates its tables when it opens, which may be after the first poll: until then, -1.
        using var command = new NpgsqlCommand($"SELECT to_regclass('{table}') IS NOT NULL AND to_regclass('compiled_checkpoints') IS NOT NULL", db);
        if (command.ExecuteScalar() is not true)
        {
            return -1;
        }

        using var query = new NpgsqlCommand(sql, db);
        return Convert.ToInt64(query.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private PipelineOptions Options(int parallelism) => new()
    {
        Parallelism = parallelism,
        StateDirectory = _state,
        CheckpointInterval = TimeSpan.FromMilliseconds(100),
    };

    private static async Task WaitUntil(Func<bool> condition, Task run, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (run.IsCompleted)
            {
                await run;
                Assert.Fail($"the run ended before {what}");
            }

            Assert.True(DateTime.UtcNow < deadline, $"not within {Patience}: {what}");
            await Task.Delay(20); // polling the run's progress, with a deadline
        }
    }
}
