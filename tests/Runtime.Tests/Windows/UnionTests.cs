using Compiled.Connectors;

namespace Compiled.Runtime.Tests.Windows;

/// <summary>Two sources of one record type, read as one stream into one sink.</summary>
[Pipeline(Name = "union-of-two")]
public sealed partial class UnionOfTwo
{
    [Source] public ISource<Reading> Left { get; set; } = new CollectionSource<Reading>();

    [Source] public ISource<Reading> Right { get; set; } = new CollectionSource<Reading>();

    [Transform] static bool Positive(Reading r) => r.Value > 0;

    [Sink] public TrackingSink<Reading> All { get; set; } = new();
}

/// <summary>Two sources of one record type into one keyed window.</summary>
[Pipeline(Name = "union-windows")]
public sealed partial class UnionWindows
{
    [Source] public ISource<Reading> Left { get; set; } = new CollectionSource<Reading>();

    [Source] public ISource<Reading> Right { get; set; } = new CollectionSource<Reading>();

    [KeyBy] static int Key(Reading r) => r.Key;

    [Window] public WindowSpec<Reading, Sum<Reading, ReadingValue, long>> Spec { get; set; } = new(Window.Tumbling(TimeSpan.FromMilliseconds(100)));

    [Sink] public ISink<WindowResult<int, long>> Results { get; set; } = new CollectionSink<WindowResult<int, long>>();

    [LateData] public CollectionSink<Reading> Late { get; set; } = new();
}

/// <summary>A source whose reader fails at once.</summary>
public sealed class BrokenSource : ISource<Reading>
{
    public ValueTask OpenAsync(SourceContext<Reading> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISourceReader<Reading> CreateReader(int partition) => new Reader();

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader : ISourceReader<Reading>
    {
        public async ValueTask<SourceBatch<Reading>> ReadAsync(CancellationToken cancellationToken)
        {
            await Task.Yield();
            throw new IOException("the disk went away");
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Several <c>[Source]</c> members of one record type: a union.</summary>
public sealed class UnionTests
{
    private static Reading[] Readings(int count, int keys, long value) => [.. Enumerable.Range(0, count).Select(i => new Reading(1 + (i % keys), i * 10L, value))];

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Every_record_of_every_source_reaches_the_sink_once(int parallelism)
    {
        var left = Readings(5_000, 7, 1);
        var right = Readings(3_000, 5, 2).Append(new Reading(1, 1, -1)).ToArray();
        var pipeline = new UnionOfTwo { Left = new CollectionSource<Reading>(left), Right = new CollectionSource<Reading>(right) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 256 });
        var expected = left.Concat(right).Where(r => r.Value > 0).OrderBy(r => (r.Key, r.Time, r.Value));
        Assert.Equal(expected, pipeline.All.Items.OrderBy(r => (r.Key, r.Time, r.Value)));
        Assert.Equal(left.Length + right.Length, result.RecordsRead);
        var job = ((ICompiledPipeline)pipeline).CreateJob();
        Assert.Equal(["Left", "Right", "All"], job.Connectors.Select(c => c.Name)); // each source a connector, with its own settings
    }

    [Fact]
    public async Task Sources_that_always_have_a_batch_ready_are_read_in_turn()
    {
        // Both collections answer every read at once. Read first-ready-first-served, the first would be read to its
        // end before the second starts — its watermark held at the second's start all that time, so every window and
        // join behind it would hold all the first's records. In turn, the sink sees their batches alternate.
        var left = Readings(1_000, 3, 1);
        var right = Readings(1_000, 3, 2);
        var pipeline = new UnionOfTwo { Left = new CollectionSource<Reading>(left), Right = new CollectionSource<Reading>(right) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 16 });
        var firstBatches = pipeline.All.Items.Take(320).ToList();
        Assert.InRange(firstBatches.Count(r => r.Value == 2), 144, 176);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Each_source_keeps_its_own_watermark_so_the_one_read_later_is_not_late(int parallelism)
    {
        // Both sources cover the same second of event time; whichever is read first must not make the other late.
        var left = Readings(100, 3, 1);
        var right = Readings(100, 4, 10);
        var pipeline = new UnionWindows { Left = new CollectionSource<Reading>(left), Right = new CollectionSource<Reading>(right) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 16 });
        Assert.Empty(pipeline.Late.Items);
        var expected = left.Concat(right).GroupBy(r => (r.Key, Start: r.Time / 100 * 100)).Select(g => (g.Key.Key, g.Key.Start, Sum: g.Sum(r => r.Value)));
        Assert.Equal(expected.Order(), ((CollectionSink<WindowResult<int, long>>)pipeline.Results).Items.Select(r => (r.Key, r.Start, Sum: r.Value)).Order());
    }

    [Fact]
    public async Task A_partition_where_every_source_is_idle_does_not_hold_the_windows_back()
    {
        // Partition 1 of both sources has nothing to read and says so: the union says so too, so the windows that
        // partition 0's records close fire while the run goes on.
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var results = new TrackingSink<WindowResult<int, long>> { BeforeWrite = _ => { fired.TrySetResult(); return ValueTask.CompletedTask; } };
        var pipeline = new UnionWindows
        {
            Left = new Compiled.Runtime.Tests.Graph.IdlePartitionSource<Reading>([new Reading(1, 10, 1), new Reading(1, 50, 2), new Reading(2, 120, 4), new Reading(1, 250, 8)]),
            Right = new Compiled.Runtime.Tests.Graph.IdlePartitionSource<Reading>([new Reading(3, 30, 16), new Reading(3, 260, 32)]),
            Results = results,
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2 }, stop.Token);
        await fired.Task.WaitAsync(TimeSpan.FromMinutes(1)); // fails here if partition 1 held the watermark back
        Assert.False(run.IsCompleted);
        await stop.CancelAsync();
        await run;
        Assert.Equal([(1, 0L, 3L), (1, 200, 8), (2, 100, 4), (3, 0, 16), (3, 200, 32)], results.Items.Select(r => (r.Key, r.Start, r.Value)).Order());
    }

    [Fact]
    public async Task A_source_that_waits_does_not_hold_back_the_other()
    {
        // Left's partition 0 hands on its readings, then waits for the stop; Right ends at once. The stateless records
        // of Right reach the sink while Left waits.
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var right = Readings(1_000, 3, 2);
        var sink = new TrackingSink<Reading>();
        var arriving = 0L;
        sink.BeforeWrite = batch =>
        {
            // Counted here, not from sink.Written: two partitions' writers may both read it before either adds to it.
            if (Interlocked.Add(ref arriving, batch.Length) >= right.Length)
            {
                seen.TrySetResult();
            }

            return ValueTask.CompletedTask;
        };
        var pipeline = new UnionOfTwo
        {
            Left = new QuietPartitionSource<Reading>([new Reading(1, 5, 1)]),
            Right = new CollectionSource<Reading>(right),
            All = sink,
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 100 }, stop.Token);
        await seen.Task.WaitAsync(TimeSpan.FromMinutes(1)); // fails here if Left's wait held Right back
        Assert.False(run.IsCompleted);
        await stop.CancelAsync();
        await run;
        Assert.Equal(right.Length + 1, pipeline.All.Items.Count);
    }

    [Fact]
    public async Task A_silent_source_stops_holding_the_windows_back_after_the_idle_timeout()
    {
        // Left never hands on anything (a socket nobody connects to); with an idle timeout the windows that Right's
        // readings close fire while the run goes on.
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var results = new TrackingSink<WindowResult<int, long>> { BeforeWrite = _ => { fired.TrySetResult(); return ValueTask.CompletedTask; } };
        var pipeline = new UnionWindows
        {
            Left = new QuietPartitionSource<Reading>([]),
            Right = new QuietPartitionSource<Reading>([new Reading(1, 10, 1), new Reading(2, 120, 4), new Reading(1, 250, 8)]),
            Spec = new(Window.Tumbling(TimeSpan.FromMilliseconds(100))) { IdleTimeout = TimeSpan.FromMilliseconds(200) },
            Results = results,
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }, stop.Token);
        await fired.Task.WaitAsync(TimeSpan.FromMinutes(1)); // fails here if the silent source held the watermark back
        Assert.False(run.IsCompleted); // a window fired before the stop
        await stop.CancelAsync();
        await run;
        Assert.Equal([(1, 0L, 1L), (1, 200, 8), (2, 100, 4)], results.Items.Select(r => (r.Key, r.Start, r.Value)).Order());
    }

    [Fact]
    public async Task A_failing_source_is_named_in_the_error()
    {
        var pipeline = new UnionOfTwo { Left = new CollectionSource<Reading>(Readings(10, 2, 1)), Right = new BrokenSource() };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Equal("Right", error.ConnectorName);
        Assert.Contains("the disk went away", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_null_source_is_named_and_exactly_once_is_refused()
    {
        var missing = new UnionOfTwo { Right = null! };
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => missing.RunAsync(new PipelineOptions()));
        Assert.Contains("source 'Right' is null", error.Message, StringComparison.Ordinal);

        var union = new UnionSource<int>(["A", "B"], [new CollectionSource<int>([1]), new CollectionSource<int>([2])]);
        var context = new SourceContext<int>("p", "A", 1, 16, null, null, DeliveryGuarantee.ExactlyOnce, null, null);
        var refused = await Assert.ThrowsAsync<PipelineConfigurationException>(() => union.OpenAsync(context, CancellationToken.None).AsTask());
        Assert.Contains("exactly-once delivery of several sources needs checkpoints, which pipelines with a window, a join, a lookup or an asynchronous transform take; this one reads A (collection", refused.Message, StringComparison.Ordinal);
    }
}
