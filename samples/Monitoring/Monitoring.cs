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
    /// <summary>An alert line of the window <paramref name="window"/> ("1m", "5m").</summary>
    public static string Alert(string window, WindowResult<string, long> r)
        => $"ALERT {window} {r.Key,-9} {r.Value} errors in [{r.StartTime:HH:mm:ss}, {r.EndTime:HH:mm:ss}){(r.IsUpdate ? "  (updated by a late event)" : "")}";

    /// <summary>A late event line.</summary>
    public static string Late(ServiceEvent e)
        => $"LATE  {e.Service,-9} {e.Level} at {DateTimeOffset.FromUnixTimeMilliseconds(e.Time):HH:mm:ss}: too late for every 1-minute window -> side output";
}

/// <summary>
/// Service alerts from one read of the events: the errors feed two branches, per-service error counts in 1-minute
/// tumbling windows (3 or more is an alert) and in 5-minute windows sliding every minute (4 or more is an alert).
/// </summary>
[Pipeline(Name = "service-alerts")]
public sealed partial class ServiceAlerts
{
    [Source] FileSource<ServiceEvent, ServiceEvent.JsonCodec> Events { get; } = new(Paths.Events);

    [Transform] static bool IsError(ServiceEvent e) => e.Level == "error";

    // Branch 1: reads IsError (the stage above it).
    [KeyBy] static string Service(ServiceEvent e) => e.Service;

    [Window]
    WindowSpec<ServiceEvent, Count<ServiceEvent>> PerMinute { get; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)))
    {
        OutOfOrderness = TimeSpan.FromSeconds(10),
        AllowedLateness = TimeSpan.FromSeconds(30),
    };

    [Transform] static bool ThreeOrMore(WindowResult<string, long> r) => r.Value >= 3;

    [Sink] ConsoleSink<WindowResult<string, long>> MinuteAlerts { get; } = new(r => Show.Alert("1m", r));

    // Branch 2: reads IsError too — the same records, not a copy of them.
    [KeyBy(Input = nameof(IsError))] static string ServiceOverFiveMinutes(ServiceEvent e) => e.Service;

    [Window]
    WindowSpec<ServiceEvent, Count<ServiceEvent>> FiveMinutes { get; } = new(Window.Sliding(TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1)))
    {
        OutOfOrderness = TimeSpan.FromSeconds(10),
        AllowedLateness = TimeSpan.FromSeconds(30),
    };

    [Transform] static bool FourOrMore(WindowResult<string, long> r) => r.Value >= 4;

    [Sink] ConsoleSink<WindowResult<string, long>> FiveMinuteAlerts { get; } = new(r => Show.Alert("5m", r));

    [LateData(Window = nameof(PerMinute))] ConsoleSink<ServiceEvent> Late { get; } = new(Show.Late);
}
