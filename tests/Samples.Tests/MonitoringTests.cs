namespace Compiled.Samples.Tests;

public sealed class MonitoringTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-monitoring-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task Monitoring_prints_alerts_a_late_update_and_the_late_event_in_the_side_output()
        => AssertMonitoringOutput(await Processes.DotnetAsync([Repository.SampleDll("Monitoring")], _work, Timeout));

    [Fact]
    public async Task The_native_aot_binary_publishes_without_warnings_and_prints_the_same()
    {
        var binary = await Repository.PublishNativeAsync("Monitoring", Path.Combine(_work, "publish"), Timeout);
        AssertMonitoringOutput(await Processes.RunAsync(binary, [], _work, Timeout));
    }

    private static void AssertMonitoringOutput(ProcessResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.Output.Split('\n', StringSplitOptions.TrimEntries);

        // data/events.jsonl: checkout has 4 errors in 09:00 on time, a fifth from 09:00:55 arrives 30 s late (within the
        // allowed lateness) and a sixth from 09:00:20 arrives after 09:03 (past it); auth has 5 errors in 09:03.
        Assert.Equal(
            [
                "ALERT 1m checkout  4 errors in [09:00:00, 09:01:00)",
                "ALERT 1m checkout  5 errors in [09:00:00, 09:01:00)  (updated by a late event)",
                "ALERT 1m auth      5 errors in [09:03:00, 09:04:00)",
            ],
            lines.Where(l => l.StartsWith("ALERT 1m", StringComparison.Ordinal)));
        Assert.Equal(["LATE  checkout  error at 09:00:20: too late for every 1-minute window -> side output"], lines.Where(l => l.StartsWith("LATE", StringComparison.Ordinal)));

        // The 5-minute windows of the same pipeline still accept the 09:00:20 event (their ends are later), so it updates them.
        var perFive = lines.Where(l => l.StartsWith("ALERT 5m", StringComparison.Ordinal)).ToList();
        Assert.Contains("ALERT 5m checkout  6 errors in [08:58:00, 09:03:00)  (updated by a late event)", perFive);
        Assert.Contains("ALERT 5m search    6 errors in [09:00:00, 09:05:00)", perFive);

        // One pipeline, one read of the file: the summary counts each event once.
        Assert.Contains("Late -> console: 1 records", result.Error, StringComparison.Ordinal);
        Assert.Single(result.Error.Split('\n'), l => l.Contains("service-alerts", StringComparison.Ordinal) && l.Contains("records read", StringComparison.Ordinal));
    }
}
