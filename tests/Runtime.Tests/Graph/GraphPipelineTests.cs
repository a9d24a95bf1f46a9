using Compiled.Connectors;
using Compiled.Testing;

namespace Compiled.Runtime.Tests.Graph;

/// <summary>Pipelines that are graphs: keyed stages in sequence, branches, and what a user sees of their windows.</summary>
public sealed class GraphPipelineTests
{
    private static readonly string[] Pages = ["/", "/a", "/b", "/c", "/d", "/e"];

    /// <summary>Views in time order over several minutes, skewed so each minute has a clear but varying top 3.</summary>
    private static View[] Views(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count)
            .Select(i => new View(Pages[Math.Min(random.Next(Pages.Length), random.Next(Pages.Length))], (i * 250L) + random.Next(200)))
            .ToArray();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task Two_keyed_stages_in_sequence_give_the_top_pages_of_every_minute(int parallelism)
    {
        var views = Views(2_000, parallelism);
        var pipeline = new TopPagesPerMinute { Views = new CollectionSource<View>(views) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 64 });

        var expected = TopPagesReference.Of(views);
        var actual = pipeline.Collected.OrderBy(r => r.Start).Select(r => (r.Start, r.Value)).ToList();
        Assert.Equal(expected, actual);
        Assert.Equal(views.Length, result.RecordsRead);
        Assert.Equal(0, result.LateRecords);
    }

    [Fact]
    public async Task The_test_driver_runs_keyed_stages_in_sequence_and_moves_the_watermark_through_both()
    {
        var pipeline = new TopPagesPerMinute();
        await using var driver = await PipelineTestDriver.StartAsync<View>(pipeline, new PipelineOptions { Parallelism = 3 });
        driver.Push(new View("/a", 1_000), new View("/b", 2_000), new View("/a", 3_000), new View("/c", 4_000));
        Assert.Empty(pipeline.Collected); // minute 0 is still open in the first stage, so the second has nothing yet

        driver.Push(new View("/a", 61_000)); // the watermark passes minute 0: the first stage fires, forwards its watermark, the second fires
        Assert.Equal([(0L, "/a:2 /b:1 /c:1")], pipeline.Collected.Select(r => (r.Start, r.Value)));

        driver.AdvanceWatermark(120_000); // minute 1, through both stages
        Assert.Equal([(0L, "/a:2 /b:1 /c:1"), (60_000L, "/a:1")], pipeline.Collected.OrderBy(r => r.Start).Select(r => (r.Start, r.Value)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Branches_each_see_every_record_of_the_stream_they_read(int parallelism)
    {
        var random = new Random(7);
        string[] levels = ["info", "error", "warn", "Error"];
        var events = Enumerable.Range(0, 5_000)
            .Select(i => new ServiceEvent("svc" + (i % 4), levels[random.Next(levels.Length)], i * 40L, random.Next(1_000)))
            .ToArray();
        var pipeline = new ServiceBranches { Events = new CollectionSource<ServiceEvent>(events) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 100 });

        var errors = events.Where(e => e.Level.Equals("error", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.Equal(errors.Count, pipeline.Errors.Items.Count);
        Assert.Equal(errors.Select(e => e.Time).Order(), pipeline.Errors.Items.Select(e => e.Time).Order());
        Assert.Equal(events.Where(e => e.LatencyMs >= 500).Select(e => e.LatencyMs).Order(), pipeline.SlowLatencies.Items.Order());
        var counts = errors.GroupBy(e => (e.Service, Start: e.Time / 60_000 * 60_000)).Select(g => (g.Key.Service, g.Key.Start, g.LongCount())).Order();
        Assert.Equal(counts, pipeline.Counts.Items.Select(r => (r.Key, r.Start, r.Value)).Order());
        Assert.Equal(events.Length, result.RecordsRead);
        Assert.Null(result.Filtered); // the stream forks: "read = written + filtered" has no single last sink
    }

    [Fact]
    public async Task Records_dropped_as_late_without_a_late_data_sink_are_counted_in_the_result()
    {
        // Minute 0 fires when an event of minute 2 arrives; the errors of minute 0 after it are too late and no
        // [LateData] sink takes them: they are dropped, and the run says how many.
        ServiceEvent[] events =
        [
            new("a", "error", 1_000, 1), new("a", "error", 2_000, 1),
            new("a", "error", 130_000, 1), // moves the watermark past minute 0 (and 1)
            new("a", "error", 3_000, 1), new("b", "error", 4_000, 1), new("a", "error", 5_000, 1),
        ];
        var pipeline = new ServiceBranches { Events = new CollectionSource<ServiceEvent>(events) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 1 });
        Assert.Equal(3, result.LateRecords);
        var window = Assert.Single(result.Windows);
        Assert.Equal(new WindowSummary("ErrorsPerMinute", 3, null), window);
        Assert.Equal([("a", 0L, 2L), ("a", 120_000L, 1L)], pipeline.Counts.Items.Select(r => (r.Key, r.Start, r.Value)).Order());
    }

    [Fact]
    public async Task An_idle_source_partition_does_not_hold_the_watermark_back()
    {
        // Partition 1 has nothing to read and says so (SourceBatch.Idle) without ever ending; there is no idle timeout.
        // Windows partition 0's watermark completes still fire while the run goes on.
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var results = new TrackingSink<WindowResult<long, string>> { BeforeWrite = _ => { fired.TrySetResult(); return ValueTask.CompletedTask; } };
        var pipeline = new TopPagesPerMinute
        {
            Views = new IdlePartitionSource<View>([new View("/a", 1_000), new View("/b", 2_000), new View("/a", 125_000)]),
            Results = results,
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2 }, stop.Token);
        await fired.Task.WaitAsync(TimeSpan.FromMinutes(1)); // fails here if partition 1 holds the watermark back
        Assert.False(run.IsCompleted);
        await stop.CancelAsync();
        await run;
        Assert.Equal([(0L, "/a:1 /b:1"), (120_000L, "/a:1")], results.Items.OrderBy(r => r.Start).Select(r => (r.Start, r.Value)));
    }

    [Fact]
    public async Task A_source_partition_that_ends_first_stops_holding_back_every_branch_not_only_the_first()
    {
        // Partition 1 ends at once; partition 0 reads its records, then waits for the stop. Both branches' windows that
        // partition 0's watermark completes fire while the run goes on. (The second branch used to hear of partition 1's
        // end only once the first branch's exchange completed — at the stop — so its windows waited for the stop, and
        // on a bounded input it found no record late.)
        var minutes = new TrackingSink<WindowResult<string, long>>();
        var halfMinutes = new TrackingSink<WindowResult<string, long>>();
        var bothFired = Task.WhenAll(FiredAsync(minutes), FiredAsync(halfMinutes));
        var pipeline = new TwoWindowBranches
        {
            Views = new IdlePartitionSource<View>([new View("/a", 1_000), new View("/b", 2_000), new View("/a", 125_000)], othersEnd: true),
            Minutes = minutes,
            HalfMinutes = halfMinutes,
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2 }, stop.Token);
        await bothFired.WaitAsync(TimeSpan.FromMinutes(1)); // fails here if partition 1's end never reaches the second branch
        Assert.False(run.IsCompleted);
        await stop.CancelAsync();
        await run;
        Assert.Equal([("/a", 0L, 1L), ("/a", 120_000L, 1L), ("/b", 0L, 1L)], minutes.Items.Select(r => (r.Key, r.Start, r.Value)).Order());
        Assert.Equal([("/a", 0L, 1L), ("/a", 120_000L, 1L), ("/b", 0L, 1L)], halfMinutes.Items.Select(r => (r.Key, r.Start, r.Value)).Order());

        static Task FiredAsync(TrackingSink<WindowResult<string, long>> sink)
        {
            var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            sink.BeforeWrite = _ => { fired.TrySetResult(); return ValueTask.CompletedTask; };
            return fired.Task;
        }
    }
    [Fact]
    public async Task A_split_that_says_how_far_it_has_got_holds_the_watermark_there_whatever_its_records_say()
    {
        // One split whose records run ahead of what it says it has reached — as a repartition topic's partition, whose
        // slowest writer is behind. The view at 40 s comes after one at 125 s: by the records it would be late (the
        // watermark would be 125 s); by what the split says (30 s) it is not, and counts in the first minute.
        var pipeline = new TopPagesPerMinute
        {
            Views = new ReachedSplitSource<View>(
                ([new View("/a", 1_000), new View("/a", 125_000)], 30_000),
                ([new View("/a", 40_000)], 30_000),
                ([], 200_000)),
        };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });
        Assert.Equal(PipelineOutcome.Completed, result.Outcome);
        Assert.Equal([(0L, "/a:2"), (120_000L, "/a:1")], pipeline.Collected.OrderBy(r => r.Start).Select(r => (r.Start, r.Value)));
    }
}

/// <summary>One split, read in the given batches; after each, the split says it has reached the batch's event time.</summary>
public sealed class ReachedSplitSource<T>(params (T[] Records, long Reached)[] batches) : ISource<T>
{
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISourceReader<T> CreateReader(int partition) => new Reader(partition == 0 ? batches : []);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader((T[] Records, long Reached)[] batches) : ISourceReader<T>
    {
        private readonly SourceSplits _splits = new();
        private int _next;

        public ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            if (_next == batches.Length)
            {
                return ValueTask.FromResult(SourceBatch<T>.End);
            }

            var (records, reached) = batches[_next++];
            _splits.ClearRuns();
            _splits.Add(0);
            _splits.Append(0, records.Length);
            _splits.SetReached(0, reached);
            return ValueTask.FromResult(SourceBatch<T>.Of(records, null, _splits));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Following files: the partitions without a file are idle, not stuck.</summary>
public sealed class FollowedWindowTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("compiled-follow-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task A_followed_file_feeds_windows_that_fire_while_the_run_goes_on_at_parallelism_2()
    {
        // One file, two partitions: the partition the file is not placed on has nothing to read. It says so, so it does
        // not hold the watermark back and the first second's windows fire without waiting for the stop.
        var file = Path.Combine(_directory, "hits.jsonl");
        await File.WriteAllLinesAsync(file, ["{\"page\":\"/a\",\"time\":100}", "{\"page\":\"/b\",\"time\":200}", "{\"page\":\"/a\",\"time\":300}", "{\"page\":\"/a\",\"time\":1500}"]);
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var results = new TrackingSink<WindowResult<string, long>> { BeforeWrite = _ => { fired.TrySetResult(); return ValueTask.CompletedTask; } };
        var pipeline = new FollowedHits
        {
            Input = new(Path.Combine(_directory, "*.jsonl"), new FileSourceOptions { Follow = true, PollInterval = TimeSpan.FromMilliseconds(20) }),
            Results = results,
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2 }, stop.Token);
        await fired.Task.WaitAsync(TimeSpan.FromMinutes(1)); // fails here if the empty partition holds the watermark back
        Assert.False(run.IsCompleted);
        await stop.CancelAsync();
        await run;
        Assert.Equal([("/a", 0L, 2L), ("/a", 1000L, 1L), ("/b", 0L, 1L)], results.Items.Select(r => (r.Key, r.Start, r.Value)).Order());
    }
}

/// <summary>
/// Partition 0 reads its records in one batch, then waits for the stop; the others have nothing and say they are idle
/// (or, with <paramref name="othersEnd"/>, end at once).
/// </summary>
public sealed class IdlePartitionSource<T>(T[] records, bool othersEnd = false) : ISource<T>
{
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISourceReader<T> CreateReader(int partition) => new Reader(partition == 0 ? records : null, othersEnd);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader(T[]? records, bool end) : ISourceReader<T>
    {
        private bool _sent;

        public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            if (records is null)
            {
                if (end)
                {
                    return SourceBatch<T>.End;
                }

                if (!_sent)
                {
                    _sent = true;
                    return SourceBatch<T>.Idle;
                }
            }
            else if (!_sent)
            {
                _sent = true;
                return SourceBatch<T>.Of(records);
            }

            await Task.Delay(Timeout.Infinite, cancellationToken); // until the run is stopped
            return SourceBatch<T>.End;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
