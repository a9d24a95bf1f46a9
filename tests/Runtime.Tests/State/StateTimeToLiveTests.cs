using Compiled.Connectors;
using Compiled.Testing;

namespace Compiled.Runtime.Tests.State;

/// <summary>A visit by a user.</summary>
public readonly record struct Visit(long User);

/// <summary>Visits per user as a running count, whose keys expire after 10 s without a visit.</summary>
[Pipeline(Name = "visits-per-user")]
public sealed partial class VisitsPerUser
{
    [Source] public ISource<Visit> Visits { get; set; } = new CollectionSource<Visit>();

    [KeyBy] static long User(Visit v) => v.User;

    [Window] public WindowSpec<Visit, Count<Visit>> Total { get; set; } = new(Window.Running()) { Time = TimeMode.Processing, StateTimeToLive = TimeSpan.FromSeconds(10) };

    [Sink] public CollectionSink<WindowResult<long, long>> Counts { get; set; } = new();
}

/// <summary>Keys past their time-to-live go, in memory and on disk (StateBackend=Disk, a few keys in memory, the rest in RocksDB).</summary>
public sealed class StateTimeToLiveTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("compiled-ttl-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private PipelineOptions Options(int parallelism, bool onDisk) => new()
    {
        Parallelism = parallelism,
        StateDirectory = _state,
        StateBackend = onDisk ? StateBackend.Disk : StateBackend.Memory,
        StateCacheKeys = onDisk ? 16 : PipelineOptions.DefaultStateCacheKeys,
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_key_not_updated_within_its_time_to_live_is_dropped_counted_and_starts_again_from_zero(bool onDisk)
    {
        var pipeline = new VisitsPerUser();
        await using var driver = await PipelineTestDriver.StartAsync<Visit>(pipeline, Options(2, onDisk));
        driver.Push(new Visit(1), new Visit(2));
        driver.AdvanceTime(TimeSpan.FromSeconds(6));
        driver.Push(new Visit(1));
        driver.AdvanceTime(TimeSpan.FromSeconds(6)); // user 2: 12 s without a visit; user 1: 6 s
        Assert.Equal(1, driver.ExpiredKeys);
        Assert.Equal(1, driver.StateEntries);
        driver.Push(new Visit(1), new Visit(2));

        Assert.Equal(
            [new(1, long.MinValue, long.MaxValue, 1), new(1, long.MinValue, long.MaxValue, 2, true), new(1, long.MinValue, long.MaxValue, 3, true)],
            pipeline.Counts.Items.Where(r => r.Key == 1));
        Assert.Equal(
            [new(2, long.MinValue, long.MaxValue, 1), new(2, long.MinValue, long.MaxValue, 1)], // counted again from zero, not an update
            pipeline.Counts.Items.Where(r => r.Key == 2));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_long_run_over_ever_new_keys_keeps_bounded_state(bool onDisk)
    {
        var pipeline = new VisitsPerUser();
        await using var driver = await PipelineTestDriver.StartAsync<Visit>(pipeline, Options(3, onDisk));
        var peak = 0L;
        for (var second = 0; second < 120; second++)
        {
            driver.Push([.. Enumerable.Range(0, 1_000).Select(i => new Visit((second * 1_000L) + i))]);
            driver.AdvanceTime(TimeSpan.FromSeconds(1));
            peak = Math.Max(peak, driver.StateEntries);
        }

        // 120,000 keys seen, each for one visit: at most the last ~10 s of them (plus the sweep's quarter) stay.
        Assert.InRange(peak, 10_000, 14_000);
        Assert.Equal(120_000, driver.StateEntries + driver.ExpiredKeys);
    }

    [Fact]
    public async Task A_time_to_live_on_a_time_window_is_a_configuration_error()
    {
        var pipeline = new VisitsPerUser { Total = new(Window.Tumbling(TimeSpan.FromSeconds(1))) { Time = TimeMode.Processing, StateTimeToLive = TimeSpan.FromSeconds(10) } };
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("StateTimeToLive applies to running aggregates (Window.Running()); a tumbling window drops its state when it fires", error.Message, StringComparison.Ordinal);
    }
}
