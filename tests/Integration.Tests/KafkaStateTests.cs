using System.Globalization;
using System.Text;
using Compiled.Kafka;
using Compiled.Runtime;
using Confluent.Kafka;

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

/// <summary>Keyed windows behind Kafka: state checkpointed with the offsets, restored at another parallelism.</summary>
[Collection(nameof(Infrastructure))]
public sealed class KafkaStateTests(KafkaFixture kafka) : IDisposable
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
