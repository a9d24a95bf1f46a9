using Compiled;
using Compiled.Kafka;
using Compiled.Postgres;

namespace ClickCounts;

/// <summary>A page view as the web site publishes it to the topic <c>clicks</c> (JSON, camelCase).</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Click(string Page, string User, [property: EventTime] DateTimeOffset At);

/// <summary>One row of the table <c>page_minutes</c>: the clicks of one page in one minute.</summary>
public readonly record struct PageMinute([property: Key] string Page, [property: Key] DateTimeOffset WindowStart, long Clicks);

/// <summary>
/// The first streaming job anyone writes: clicks from Kafka → counts per page per minute (tumbling windows on event
/// time) → PostgreSQL, exactly-once. The open windows' counts are checkpointed with the Kafka offsets; each checkpoint
/// commits the rows of the windows that fired, the offsets and the state in one database transaction, so a crash
/// neither loses a click nor counts one twice, and a restart — at any parallelism — goes on where the last
/// checkpoint left off.
/// </summary>
[Pipeline(Name = "click-counts")]
public sealed partial class ClicksPipeline
{
    [Source]
    public KafkaSource<Click, Click.JsonCodec> Clicks { get; } = new(new KafkaSourceOptions
    {
        BootstrapServers = "localhost:9092",
        Topics = "clicks",
    });

    [KeyBy]
    static string Page(Click click) => click.Page;

    /// <summary>Clicks may arrive up to 5 s out of order; a window closes when the watermark passes its end.</summary>
    [Window]
    public WindowSpec<Click, Count<Click>> PerMinute { get; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)))
    {
        OutOfOrderness = TimeSpan.FromSeconds(5),
    };

    [Transform]
    static PageMinute Row(WindowResult<string, long> window) => new(window.Key, DateTimeOffset.FromUnixTimeMilliseconds(window.Start), window.Value);

    [Sink]
    public PostgresSink<PageMinute> Table { get; } = new(new PostgresSinkOptions
    {
        ConnectionString = "Host=localhost;Database=clicks;Username=postgres",
        Table = "page_minutes",
        Mode = PostgresWriteMode.Upsert,
        ExactlyOnce = true,
    });
}
