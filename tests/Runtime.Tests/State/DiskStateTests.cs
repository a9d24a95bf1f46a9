using Compiled.Connectors;

namespace Compiled.Runtime.Tests.State;

/// <summary>A visit by a user (the key) to a page.</summary>
public readonly record struct PageVisit(int User, int Page);

/// <summary>Visits per user, for ever: a running count, whose state the disk backend holds.</summary>
[Pipeline(Name = "user-totals")]
public sealed partial class UserTotals
{
    [Source] public ISource<PageVisit> Visits { get; set; } = new CollectionSource<PageVisit>();

    [KeyBy] static int User(PageVisit v) => v.User;

    [Window] public WindowSpec<PageVisit, Count<PageVisit>> Total { get; set; } = new(Window.Running());

    [Sink] public ISink<WindowResult<int, long>> Counts { get; set; } = new CollectionSink<WindowResult<int, long>>();
}

/// <summary>
/// Keyed state in RocksDB (<c>StateBackend=Disk</c>) with a cache far smaller than the key space, so that almost every
/// key is written to disk and read back: results equal an independent count, record for record; checkpoints restore at
/// another parallelism and replay exactly; configurations it does not hold are refused with a clear error.
/// </summary>
public sealed class DiskStateTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);
    private readonly string _state = Directory.CreateTempSubdirectory("compiled-disk-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private static PageVisit[] Visits(int count, int users, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => new PageVisit(random.Next(users), random.Next(100))).ToArray();
    }

    private PipelineOptions Options(int parallelism, int cacheKeys = 64) => new()
    {
        Parallelism = parallelism,
        BatchSize = 50,
        StateDirectory = _state,
        StateBackend = StateBackend.Disk,
        StateCacheKeys = cacheKeys,
        CheckpointInterval = TimeSpan.FromMilliseconds(20),
    };

    /// <summary>
    /// Every key's results, in order, must be 1, 2, … n (n its visits), the first not an update. A key written to disk
    /// and read back wrongly restarts at 1 or skips; an entry evicted without being written loses its count.
    /// </summary>
    private static void AssertExactCounts(IEnumerable<PageVisit> visits, IEnumerable<WindowResult<int, long>> results)
    {
        var expected = visits.GroupBy(v => v.User).ToDictionary(g => g.Key, g => g.Count());
        var byKey = results.GroupBy(r => r.Key).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(expected.Keys.Order(), byKey.Keys.Order());
        foreach (var (user, count) in expected)
        {
            var emitted = byKey[user];
            Assert.Equal(Enumerable.Range(1, count).Select(c => (long)c), emitted.Select(r => r.Value));
            Assert.Equal(Enumerable.Range(0, count).Select(i => i > 0), emitted.Select(r => r.IsUpdate));
        }
    }

    [Theory]
    [InlineData(1, 16)]
    [InlineData(3, 64)]
    public async Task A_running_count_on_disk_with_a_cache_far_smaller_than_its_keys_emits_the_exact_counts(int parallelism, int cacheKeys)
    {
        var visits = Visits(40_000, users: 5_000, seed: parallelism);
        var sink = new TrackingSink<WindowResult<int, long>>();
        var result = await new UserTotals { Visits = new CollectionSource<PageVisit>(visits), Counts = sink }.RunAsync(Options(parallelism, cacheKeys)).WaitAsync(Patience);
        Assert.Equal(PipelineOutcome.Completed, result.Outcome);
        AssertExactCounts(visits, sink.Items);
        Assert.Empty(Directory.GetDirectories(Path.Combine(_state, "user-totals", "live"))); // scratch, deleted at the end
    }

    [Fact]
    public async Task A_run_deletes_what_a_crashed_run_at_a_higher_parallelism_left_on_disk()
    {
        // A run killed at parallelism 6 leaves live databases for partitions 0-5; a run at parallelism 1 has no
        // partition 5 to delete its folder: the run clears the whole live folder when it starts.
        var left = Path.Combine(_state, "user-totals", "live", "Total-p5");
        Directory.CreateDirectory(left);
        await File.WriteAllBytesAsync(Path.Combine(left, "000001.sst"), new byte[4096]);
        var visits = Visits(2_000, users: 300, seed: 9);
        var sink = new TrackingSink<WindowResult<int, long>>();
        var result = await new UserTotals { Visits = new CollectionSource<PageVisit>(visits), Counts = sink }.RunAsync(Options(1)).WaitAsync(Patience);
        Assert.Equal(PipelineOutcome.Completed, result.Outcome);
        AssertExactCounts(visits, sink.Items);
        Assert.False(Directory.Exists(left), "the crashed run's live database at partition 5 was left behind");
    }

    [Theory]
    [InlineData(3, 1, false)]
    [InlineData(2, 4, false)]
    [InlineData(3, 2, true)]
    public async Task A_run_on_disk_stopped_with_a_final_checkpoint_restarts_at_another_parallelism_and_every_count_goes_on_exactly(int before, int after, bool timeToLive)
    {
        // With a time-to-live (an hour: nothing expires here) each value on disk also holds its time, which a restore resets.
        UserTotals Pipeline(ISource<PageVisit> visits, ISink<WindowResult<int, long>> counts) => new()
        {
            Visits = visits,
            Counts = counts,
            Total = new(Window.Running()) { StateTimeToLive = timeToLive ? TimeSpan.FromHours(1) : TimeSpan.Zero },
        };

        var visits = Visits(30_000, users: 3_000, seed: before * 10 + after);
        var log = new Partitioned<PageVisit>(visits, partitions: 8);
        var first = new TrackingSink<WindowResult<int, long>>();
        using var stop = new CancellationTokenSource();
        var run = Pipeline(log.Source(pauseAt: 0.6), first).RunAsync(Options(before), stop.Token);
        await log.Paused.WaitAsync(Patience);
        await stop.CancelAsync();
        var stopped = await run.WaitAsync(Patience);
        Assert.Equal(PipelineOutcome.Stopped, stopped.Outcome);

        var second = new TrackingSink<WindowResult<int, long>>();
        var finished = await Pipeline(log.Source(pauseAt: null), second).RunAsync(Options(after)).WaitAsync(Patience);
        Assert.Equal(stopped.State!.Written, finished.State!.Restored);

        // Each key's counts go on from where the first run stopped: none lost, none counted twice.
        AssertExactCounts(visits, first.Items.Concat(second.Items));

        // Each RocksDB checkpoint (chk-N.disk) goes with its checkpoint: none is left behind without one.
        var folder = Path.Combine(_state, "user-totals");
        var checkpoints = Directory.GetDirectories(folder, "chk-*").Where(d => !d.EndsWith(".disk", StringComparison.Ordinal)).Select(d => Path.GetFileName(d)!).ToHashSet();
        var disk = Directory.GetDirectories(folder, "chk-*.disk").Select(d => Path.GetFileName(d)![..^5]).ToHashSet();
        Assert.NotEmpty(disk);
        Assert.Equal(checkpoints.Order(), disk.Order());
        Assert.True(checkpoints.Count <= new PipelineOptions().RetainedCheckpoints + 1, $"{checkpoints.Count} checkpoints kept");

        // The checkpoint holds state on disk: a run that keeps it in memory is refused, with what to do.
        var inMemory = Options(after);
        inMemory.StateBackend = StateBackend.Memory;
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => Pipeline(log.Source(pauseAt: null), new CollectionSink<WindowResult<int, long>>()).RunAsync(inMemory).WaitAsync(Patience));
        Assert.Contains("the checkpoint holds it on disk and this run keeps it in memory; run with StateBackend=Disk, or start with empty state", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_aborted_run_on_disk_replays_from_its_last_checkpoint_without_counting_anything_twice()
    {
        var visits = Visits(30_000, users: 2_000, seed: 11);
        var log = new Partitioned<PageVisit>(visits, partitions: 8) { Throttle = true };
        var first = new TrackingSink<WindowResult<int, long>>();
        using var abort = new CancellationTokenSource();
        var pipeline = new UserTotals { Visits = log.Source(pauseAt: 0.7), Counts = first };
        var run = ((ICompiledPipeline)pipeline).CreateJob().RunAsync(Options(3), CancellationToken.None, abort.Token);
        await log.Paused.WaitAsync(Patience);
        await WaitForCheckpointAsync();
        await abort.CancelAsync(); // no final checkpoint: what was read after the last one is read again
        await Assert.ThrowsAsync<PipelineAbortedException>(() => run.WaitAsync(Patience));

        var second = new TrackingSink<WindowResult<int, long>>();
        await new UserTotals { Visits = log.Source(pauseAt: null), Counts = second }.RunAsync(Options(2)).WaitAsync(Patience);

        // At-least-once output: results after the last checkpoint are emitted again, with the same counts. The state
        // is exact: every key ends at its number of visits, and no count is ever beyond it.
        var expected = visits.GroupBy(v => v.User).ToDictionary(g => g.Key, g => (long)g.Count());
        var all = first.Items.Concat(second.Items).ToList();
        Assert.All(all, r => Assert.InRange(r.Value, 1, expected[r.Key]));
        Assert.Equal(expected.OrderBy(e => e.Key), second.Items.GroupBy(r => r.Key).Select(g => KeyValuePair.Create(g.Key, g.Max(r => r.Value))).Concat(
            first.Items.Where(r => second.Items.All(s => s.Key != r.Key)).GroupBy(r => r.Key).Select(g => KeyValuePair.Create(g.Key, g.Max(r => r.Value)))).OrderBy(e => e.Key));
    }

    [Fact]
    public async Task Sessions_and_joins_the_disk_backend_does_not_hold_are_refused_with_what_to_do()
    {
        var sessions = new UserTotals { Visits = new CollectionSource<PageVisit>(Visits(10, 5, 1)), Total = new(Window.Session(TimeSpan.FromSeconds(1))) { Time = TimeMode.Processing } };
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => sessions.RunAsync(Options(1)).WaitAsync(Patience));
        Assert.Contains("StateBackend=Disk holds running aggregates and tumbling and sliding windows, but window 'Total' is a session window; run it with StateBackend=Memory", error.Message, StringComparison.Ordinal);

        var join = new Joins.PaidPurchases
        {
            Purchases = new CollectionSource<Joins.Purchase>([new Joins.Purchase(1, 1, 10, 1_000)]),
            Payments = new CollectionSource<Joins.Payment>([new Joins.Payment(1, 10, 1_500)]),
        };
        error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => join.RunAsync(Options(1)).WaitAsync(Patience));
        Assert.Contains("but join 'Paid' keeps its state in memory; run it with StateBackend=Memory", error.Message, StringComparison.Ordinal);
    }

    private Task WaitForCheckpointAsync() => CheckpointedRunTests.WaitForCheckpointAsync(Path.Combine(_state, "user-totals"));
}
