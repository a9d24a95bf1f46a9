namespace Compiled.Samples.Tests;

/// <summary>The ClickCounts sample's one-command demo: Kafka mock cluster, ten minutes of clicks, a throwaway PostgreSQL.</summary>
[Collection(nameof(SdkBuilds))]
public sealed class ClickCountsTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-clicks-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task The_demo_counts_every_click_once_per_page_and_minute()
        => SampleAssertions.ClickCountsDemo(await Processes.DotnetAsync([Repository.SampleDll("ClickCounts"), "--demo", "--demo-clicks", "20000"], _work, Timeout), 20_000);
}
