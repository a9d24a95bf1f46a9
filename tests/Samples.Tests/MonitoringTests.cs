namespace Compiled.Samples.Tests;

public sealed class MonitoringTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-monitoring-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task Monitoring_prints_alerts_a_late_update_and_the_late_event_in_the_side_output()
        => SampleAssertions.MonitoringOutput(await Processes.DotnetAsync([Repository.SampleDll("Monitoring")], _work, Timeout));
}
