using Compiled;
using Compiled.Connectors;

namespace Monitoring;

/// <summary>One service event (JSON Lines, snake_case); <c>time</c> is Unix milliseconds.</summary>
[Record(Naming = FieldNaming.SnakeCase)]
public partial record ServiceEvent(string Service, string Level, [EventTime] long Time, int LatencyMs);

/// <summary>Where the sample reads.</summary>
public static class Paths
{
    /// <summary>The events shipped with the sample (copied beside the binary).</summary>
    public static string Events { get; } = Path.Combine(AppContext.BaseDirectory, "data", "events.jsonl");
}

/// <summary>How alerts and late events are printed.</summary>
public static class Show
{
    /// <summary>An alert line.</summary>
    public static string Alert(WindowResult<string, long> r)
        => $"ALERT {r.Key,-9} {r.Value} errors in [{r.StartTime:HH:mm:ss}, {r.EndTime:HH:mm:ss}){(r.IsUpdate ? "  (updated by a late event)" : "")}";

    /// <summary>A late event line.</summary>
    public static string Late(ServiceEvent e)
        => $"LATE  {e.Service,-9} {e.Level} at {DateTimeOffset.FromUnixTimeMilliseconds(e.Time):HH:mm:ss}: too late for every window -> side output";
}

/// <summary>Per-service error counts in 1-minute tumbling windows; 3 or more errors in a minute is an alert.</summary>
[Pipeline(Name = "errors-per-minute")]
public sealed partial class ErrorsPerMinute
{
    [Source] FileSource<ServiceEvent, ServiceEvent.JsonCodec> Events { get; } = new(Paths.Events);

    [Transform] static bool IsError(ServiceEvent e) => e.Level == "error";

    [KeyBy] static string Service(ServiceEvent e) => e.Service;

    [Window]
    WindowSpec<ServiceEvent, Count<ServiceEvent>> PerMinute { get; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)))
    {
        OutOfOrderness = TimeSpan.FromSeconds(10),
        AllowedLateness = TimeSpan.FromSeconds(30),
    };

    [Transform] static bool OverThreshold(WindowResult<string, long> r) => r.Value >= 3;

    [Sink] ConsoleSink<WindowResult<string, long>> Alerts { get; } = new(Show.Alert);

    [LateData] ConsoleSink<ServiceEvent> Late { get; } = new(Show.Late);
}

/// <summary>Per-service error counts in 5-minute windows sliding every minute; 4 or more is an alert.</summary>
[Pipeline(Name = "errors-per-5-minutes")]
public sealed partial class ErrorsPerFiveMinutes
{
    [Source] FileSource<ServiceEvent, ServiceEvent.JsonCodec> Events { get; } = new(Paths.Events);

    [Transform] static bool IsError(ServiceEvent e) => e.Level == "error";

    [KeyBy] static string Service(ServiceEvent e) => e.Service;

    [Window]
    WindowSpec<ServiceEvent, Count<ServiceEvent>> FiveMinutes { get; } = new(Window.Sliding(TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1)))
    {
        OutOfOrderness = TimeSpan.FromSeconds(10),
        AllowedLateness = TimeSpan.FromSeconds(30),
    };

    [Transform] static bool OverThreshold(WindowResult<string, long> r) => r.Value >= 4;

    [Sink] ConsoleSink<WindowResult<string, long>> Alerts { get; } = new(Show.Alert);

    [LateData] ConsoleSink<ServiceEvent> Late { get; } = new(Show.Late);
}
