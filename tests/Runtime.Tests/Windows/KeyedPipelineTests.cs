using Compiled.Connectors;
using Compiled.Testing;

namespace Compiled.Runtime.Tests.Windows;

/// <summary>Sums of positive readings per key in 100 ms tumbling windows; late readings to a side output.</summary>
[Pipeline(Name = "sums-per-window")]
public sealed partial class SumsPerWindow
{
    [Source] public CollectionSource<Reading> Events { get; set; } = new();

    [Transform] static bool Positive(Reading r) => r.Value > 0;

    [KeyBy] static int Key(Reading r) => r.Key;

    [Window] public WindowSpec<Reading, Sum<Reading, ReadingValue, long>> Spec { get; set; } = new(Window.Tumbling(TimeSpan.FromMilliseconds(100)));

    [Transform] static WindowResult<int, long> Doubled(WindowResult<int, long> r) => r with { Value = r.Value * 2 };

    [Sink] public CollectionSink<WindowResult<int, long>> Results { get; set; } = new();

    [LateData] public CollectionSink<Reading> Late { get; set; } = new();
}

/// <summary>Counts numbers by parity, on processing time (the numbers carry no event time).</summary>
[Pipeline(Name = "numbers-by-parity")]
public sealed partial class NumbersByParity
{
    [Source] public ISource<long> Numbers { get; set; } = new CollectionSource<long>();

    [KeyBy] static long Parity(long x) => x % 2;

    [Window] public WindowSpec<long, Count<long>> Spec { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1))) { Time = TimeMode.Processing };

    [Sink] public ISink<WindowResult<long, long>> Results { get; set; } = new CollectionSink<WindowResult<long, long>>();
}

/// <summary>Sums per key in tumbling windows, from any source into a tracking sink.</summary>
[Pipeline(Name = "idle-aware")]
public sealed partial class IdleAwareSums
{
    [Source] public ISource<Reading> Events { get; set; } = new CollectionSource<Reading>();

    [KeyBy] static int Key(Reading r) => r.Key;

    [Window] public WindowSpec<Reading, Sum<Reading, ReadingValue, long>> Spec { get; set; } = new(Window.Tumbling(TimeSpan.FromMilliseconds(100)));

    [Sink] public TrackingSink<WindowResult<int, long>> Results { get; set; } = new();

    [LateData] public CollectionSink<Reading> Late { get; set; } = new();
}

/// <summary>Partition 0 reads its readings in one batch, then waits for the stop; the other partitions never read anything.</summary>
public sealed class QuietPartitionSource<T>(T[] records) : ISource<T>
{
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISourceReader<T> CreateReader(int partition) => new Reader(partition == 0 ? records : []);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public string Describe() => "quiet partitions";

    private sealed class Reader(T[] records) : ISourceReader<T>
    {
        private bool _sent;

        public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            if (!_sent && records.Length > 0)
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

/// <summary>
/// Partition 0 reads its readings in one batch, then waits for the stop; partition 1 reads one split that is at its end
/// from the start (a Kafka partition resumed exactly at its end) and polls it, finding nothing, until the stop.
/// </summary>
public sealed class SplitAtEndSource<T>(T[] records) : ISource<T>
{
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISourceReader<T> CreateReader(int partition) => partition == 0 ? new QuietPartitionSource<T>(records).CreateReader(0) : new AtEnd();

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class AtEnd : ISourceReader<T>
    {
        private readonly SourceSplits _splits = new();

        public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            if (_splits.Count == 0)
            {
                _splits.Add(7);
                _splits.SetIdle(7, idle: true);
                return SourceBatch<T>.Of(ReadOnlyMemory<T>.Empty, null, _splits);
            }

            _splits.ClearRuns();
            try
            {
                await Task.Delay(20, cancellationToken); // a poll that finds nothing
            }
            catch (OperationCanceledException)
            {
                return SourceBatch<T>.End;
            }

            return SourceBatch<T>.Of(ReadOnlyMemory<T>.Empty, null, _splits);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>
/// One reader over two splits (as a Kafka reader over two partitions catching up on a backlog): all of split 0's
/// readings first, then all of split 1's, which are just as old.
/// </summary>
public sealed class TwoSplitSource(Reading[] first, Reading[] second) : ISource<Reading>
{
    public ValueTask OpenAsync(SourceContext<Reading> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISourceReader<Reading> CreateReader(int partition) => partition == 0 ? new Reader(first, second) : new Reader([], []);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader(Reading[] first, Reading[] second) : ISourceReader<Reading>
    {
        private readonly SourceSplits _splits = new();
        private int _step;

        public ValueTask<SourceBatch<Reading>> ReadAsync(CancellationToken cancellationToken)
        {
            _splits.ClearRuns();
            var step = _step++;
            if (step == 0)
            {
                _splits.Add(0);
                _splits.Add(1);
            }

            var records = step switch { 0 => first, 1 => second, _ => null };
            if (records is null)
            {
                return ValueTask.FromResult(SourceBatch<Reading>.End);
            }

            foreach (var _ in records)
            {
                _splits.Append(step);
            }

            return ValueTask.FromResult(SourceBatch<Reading>.Of(records, null, _splits));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Instance stages on both sides of the exchange, counting what each object saw; a null key for blank names.</summary>
[Pipeline(Name = "names-per-window", ErrorPolicy = ErrorPolicy.DeadLetter)]
public sealed partial class NamesPerWindow
{
    private long _seenBefore;
    private long _seenAfter;

    public long SeenBefore => _seenBefore;

    public long SeenAfter => _seenAfter;

    [Source] public CollectionSource<Reading> Events { get; set; } = new();

    [Transform] bool CountBefore(Reading r) => ++_seenBefore > 0 && r.Key != 13 ? true : throw new InvalidOperationException("13 is unlucky");

    [KeyBy] static string? Name(Reading r) => r.Key == 0 ? null : "k" + r.Key;

    [Window] public WindowSpec<Reading, Count<Reading>> Spec { get; set; } = new(Window.Tumbling(TimeSpan.FromMilliseconds(100)));

    [Transform] bool CountAfter(WindowResult<string?, long> r) => ++_seenAfter > 0;

    [Sink] public CollectionSink<WindowResult<string?, long>> Results { get; set; } = new();
}

public sealed class KeyedPipelineTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task A_sink_failing_after_the_window_fails_the_run_with_its_error(int parallelism)
    {
        var events = Enumerable.Range(0, 10_000).Select(i => new Reading((i % 9) + 1, i, 1)).ToArray();
        var pipeline = new IdleAwareSums
        {
            Events = new CollectionSource<Reading>(events),
            Results = new TrackingSink<WindowResult<int, long>> { BeforeWrite = _ => throw new IOException("disk full") },
        };
        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 256 }));
        Assert.Contains("disk full", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_null_key_dead_letters_its_record_at_the_key_selector_and_the_rest_go_on()
    {
        var deadLetters = new CollectionSink<DeadLetter>();
        var pipeline = new NamesPerWindow();
        await using var driver = await PipelineTestDriver.StartAsync<Reading>(pipeline, new PipelineOptions { Parallelism = 2, DeadLetterSink = deadLetters });
        driver.Push(new Reading(1, 10, 1), new Reading(0, 20, 1), new Reading(1, 30, 1), new Reading(2, 40, 1));
        await driver.CompleteAsync();
        Assert.Equal(1, driver.OperatorFailures);
        var letter = Assert.Single(deadLetters.Items);
        Assert.Equal("Name", letter.Stage);
        Assert.Equal([("k1", 2L), ("k2", 1L)], pipeline.Results.Items.OrderBy(r => r.Key).Select(r => (r.Key, r.Value)));
    }

    [Fact]
    public async Task Instance_stages_on_both_sides_of_the_exchange_never_share_a_pipeline_object()
    {
        // Upstream partition 0 and keyed partition 0 run on different threads: the root object serves the loop before
        // the exchange, and the keyed partitions get objects of their own.
        var events = Enumerable.Range(0, 5_000).Select(i => new Reading((i % 9) + 1, i, 1)).ToArray();
        var pipeline = new NamesPerWindow { Events = new CollectionSource<Reading>(events) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });
        Assert.Equal(events.Length, pipeline.SeenBefore);
        Assert.Equal(0, pipeline.SeenAfter);
        Assert.Equal(events.Length, pipeline.Results.Items.Sum(r => r.Value));
    }

    [Theory]
    [InlineData(1)] // one partition: the keyed partition runs inline on the upstream worker
    [InlineData(2)]
    public async Task A_failing_partition_before_the_exchange_fails_the_run_with_its_own_error_and_stops_the_keyed_partitions(int parallelism)
    {
        var events = Enumerable.Range(0, 20_000).Select(i => new Reading(i == 15_000 ? 13 : (i % 9) + 1, i, 1)).ToArray();
        var pipeline = new NamesPerWindow { Events = new CollectionSource<Reading>(events) };
        var error = await Assert.ThrowsAsync<OperatorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 128, ErrorPolicy = ErrorPolicy.FailFast }));
        Assert.Contains("13 is unlucky", error.InnerException!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_idle_partition_stops_holding_the_watermark_back_so_windows_fire_while_the_run_goes_on()
    {
        // Partition 1 reads nothing and never ends. Without an idle timeout it would hold every keyed partition's
        // watermark at its minimum until the stop; with one, the windows that partition 0's watermark (249) completes
        // fire while the run is still going.
        var (results, seen, fired) = FirstResults<WindowResult<int, long>>(2);
        var pipeline = new IdleAwareSums
        {
            Events = new QuietPartitionSource<Reading>([new Reading(1, 10, 1), new Reading(1, 50, 2), new Reading(2, 120, 4), new Reading(1, 250, 8)]),
            Spec = new(Window.Tumbling(TimeSpan.FromMilliseconds(100))) { IdleTimeout = TimeSpan.FromMilliseconds(200) },
            Results = results,
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2 }, stop.Token);
        await fired.Task.WaitAsync(TimeSpan.FromMinutes(1)); // the test fails here if the windows do not fire before the stop
        Assert.False(run.IsCompleted);
        List<WindowResult<int, long>> beforeStop;
        lock (seen)
        {
            beforeStop = [.. seen.OrderBy(r => r.Key)];
        }

        Assert.Equal([R(1, 0, 100, 3), R(2, 100, 200, 4)], beforeStop);

        await stop.CancelAsync();
        await run;
        Assert.Equal(R(1, 200, 300, 8), pipeline.Results.Items.Single(r => r.Start == 200)); // the stop ends the input: the rest fires
    }

    [Fact]
    public async Task A_reader_whose_splits_are_all_at_their_end_from_the_start_holds_no_watermark_back()
    {
        // No idle timeout: partition 1's only split never delivers a record, but its reader says it is at its end.
        // Before, the reader's watermark stayed at its minimum (no split had a record) and no window ever fired.
        var (results, seen, fired) = FirstResults<WindowResult<int, long>>(2);
        var pipeline = new IdleAwareSums
        {
            Events = new SplitAtEndSource<Reading>([new Reading(1, 10, 1), new Reading(1, 50, 2), new Reading(2, 120, 4), new Reading(1, 250, 8)]),
            Results = results,
        };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2 }, stop.Token);
        await fired.Task.WaitAsync(TimeSpan.FromMinutes(1)); // the test fails here if the windows do not fire before the stop
        Assert.False(run.IsCompleted);
        lock (seen)
        {
            Assert.Equal([R(1, 0, 100, 3), R(2, 100, 200, 4)], seen.OrderBy(r => r.Key));
        }

        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Metrics_can_be_read_while_a_keyed_pipeline_runs()
    {
        // The sink-queue gauge reads each partition's port by sink slot; upstream partitions have none for the sinks
        // after the window (a scrape during a keyed run once threw here and dropped the Prometheus response).
        var (results, _, fired) = FirstResults<WindowResult<int, long>>(1);
        var pipeline = new IdleAwareSums
        {
            Events = new QuietPartitionSource<Reading>([new Reading(1, 10, 1), new Reading(1, 250, 8)]),
            Spec = new(Window.Tumbling(TimeSpan.FromMilliseconds(100))) { IdleTimeout = TimeSpan.FromMilliseconds(50) },
            Results = results,
        };
        var running = new System.Collections.Concurrent.ConcurrentQueue<int>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == CompiledMeter.Name)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "compiled.partitions.active" && tags.ToArray().Any(t => t.Key == "pipeline" && Equals(t.Value, "idle-aware")))
            {
                running.Enqueue(value);
            }
        });
        listener.Start();
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2 }, stop.Token);
        await fired.Task.WaitAsync(TimeSpan.FromMinutes(1)); // running, with results flowing
        listener.RecordObservableInstruments(); // reads every gauge of every active run, this one's sink queues too
        await stop.CancelAsync();
        await run;
        Assert.Equal([2, 2], running); // two source partitions and two keyed partitions, one measurement per stage
    }

    [Fact]
    public async Task Processing_time_windows_fire_on_the_wall_clock_while_the_run_goes_on()
    {
        var (results, seen, fired) = FirstResults<WindowResult<long, long>>(2);
        var pipeline = new NumbersByParity
        {
            Numbers = new QuietPartitionSource<long>([1, 2, 3, 4, 5]),
            Spec = new(Window.Tumbling(TimeSpan.FromMilliseconds(50))) { Time = TimeMode.Processing },
            Results = results,
        };
        using var stop = new CancellationTokenSource();
        var started = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2 }, stop.Token);
        await fired.Task.WaitAsync(TimeSpan.FromMinutes(1)); // fails here if the clock never fires the window
        Assert.False(run.IsCompleted, "the windows fired before the stop, on the clock");
        await stop.CancelAsync();
        await run;
        WindowResult<long, long>[] windows;
        lock (seen)
        {
            windows = [.. seen.OrderBy(r => r.Key)];
        }

        Assert.Equal([(0L, 2L), (1L, 3L)], windows.Select(r => (r.Key, r.Value)));
        Assert.All(windows, r => Assert.True(r.Start >= started - 50 && r.End - r.Start == 50, $"{r} is not a 50 ms window of this run"));
    }

    /// <summary>A sink that keeps what it receives and signals once it has received <paramref name="count"/> records.</summary>
    private static (TrackingSink<T> Sink, List<T> Seen, TaskCompletionSource Fired) FirstResults<T>(int count)
    {
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seen = new List<T>();
        var sink = new TrackingSink<T>
        {
            BeforeWrite = batch =>
            {
                lock (seen)
                {
                    seen.AddRange(batch.Span);
                    if (seen.Count >= count)
                    {
                        fired.TrySetResult();
                    }
                }

                return ValueTask.CompletedTask;
            },
        };
        return (sink, seen, fired);
    }

    private static WindowResult<int, long> R(int key, long start, long end, long value, bool update = false) => new(key, start, end, value, update);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_reader_of_several_splits_holds_the_watermark_at_its_slowest_split_so_a_backlogged_one_is_not_late(int parallelism)
    {
        // Split 0 runs a second ahead of split 1's first reading: with one watermark per reader, all of split 1 would be late.
        var first = Enumerable.Range(0, 100).Select(i => new Reading(1 + (i % 3), i * 10, 1)).ToArray();
        var second = Enumerable.Range(0, 100).Select(i => new Reading(1 + (i % 5), i * 10, 2)).ToArray();
        var pipeline = new IdleAwareSums { Events = new TwoSplitSource(first, second) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism });
        Assert.Empty(pipeline.Late.Items);
        var expected = first.Concat(second).GroupBy(r => (r.Key, Start: r.Time / 100 * 100)).Select(g => R(g.Key.Key, g.Key.Start, g.Key.Start + 100, g.Sum(r => r.Value)));
        Assert.Equal(expected.OrderBy(r => (r.Key, r.Start)), pipeline.Results.Items.OrderBy(r => (r.Key, r.Start)));
    }

    [Fact]
    public async Task Test_driver_holds_windows_until_the_watermark_passes_then_fires_updates_and_routes_late_records()
    {
        var pipeline = new SumsPerWindow { Spec = new(Window.Tumbling(TimeSpan.FromMilliseconds(100))) { AllowedLateness = TimeSpan.FromMilliseconds(50) } };
        await using var driver = await PipelineTestDriver.StartAsync<Reading>(pipeline);
        driver.Push(new Reading(1, 10, 1), new Reading(1, 50, 2), new Reading(2, 60, 5), new Reading(2, 70, -1));
        Assert.Empty(pipeline.Results.Items); // watermark 69: window [0, 100) is still open

        driver.Push(new Reading(1, 130, 4)); // watermark 129: [0, 100) fires (values doubled by the stage after the window)
        Assert.Equal([R(1, 0, 100, 6), R(2, 0, 100, 10)], pipeline.Results.Items.OrderBy(r => r.Key));

        driver.Push(new Reading(2, 99, 1)); // within the lateness (cleanup at 149): an update
        Assert.Equal(R(2, 0, 100, 12, update: true), pipeline.Results.Items[^1]);

        driver.AdvanceWatermark(149); // [0, 100) is cleaned up; [100, 200) is still open
        driver.Push(new Reading(1, 40, 8)); // too late for every window
        Assert.Equal([new Reading(1, 40, 8)], pipeline.Late.Items);
        Assert.Equal(1, driver.LateRecords);
        Assert.Equal(3, pipeline.Results.Count);

        await driver.CompleteAsync(); // the end of input fires what is left
        Assert.Equal(R(1, 100, 200, 8), pipeline.Results.Items[^1]);
    }

    [Fact]
    public async Task Test_driver_runs_keyed_partitions_and_gives_the_same_windows_at_any_parallelism()
    {
        var events = Enumerable.Range(0, 2_000).Select(i => new Reading(i % 13, i * 3 + (i % 5), (i % 7) + 1)).ToArray();
        var outputs = new List<WindowResult<int, long>[]>();
        foreach (var parallelism in new[] { 1, 2, 3, 4 })
        {
            var pipeline = new SumsPerWindow { Spec = new(Window.Sliding(TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(100))) { OutOfOrderness = TimeSpan.FromMilliseconds(10) } };
            await using (var driver = await PipelineTestDriver.StartAsync<Reading>(pipeline, new PipelineOptions { Parallelism = parallelism }))
            {
                foreach (var chunk in events.Chunk(37))
                {
                    driver.Push(chunk);
                }

                await driver.CompleteAsync();
            }

            Assert.Equal(parallelism, pipeline.Results.Partitions.Count);
            Assert.Empty(pipeline.Late.Items);
            outputs.Add([.. pipeline.Results.Items.OrderBy(r => r.Key).ThenBy(r => r.Start)]);
        }

        var expected = events
            .SelectMany(e => Enumerable.Range(0, 3).Select(k => (e.Key, Start: ((e.Time / 100) - k) * 100, e.Value)))
            .GroupBy(x => (x.Key, x.Start))
            .Select(g => R(g.Key.Key, g.Key.Start, g.Key.Start + 300, g.Sum(x => x.Value) * 2))
            .OrderBy(r => r.Key).ThenBy(r => r.Start)
            .ToArray();
        Assert.All(outputs, output => Assert.Equal(expected, output));
    }

    [Fact]
    public async Task Test_driver_fires_processing_time_windows_when_the_virtual_clock_moves()
    {
        var results = new CollectionSink<WindowResult<long, long>>();
        var pipeline = new NumbersByParity { Results = results };
        await using var driver = await PipelineTestDriver.StartAsync<long>(pipeline);
        driver.Push(1, 2, 3);
        driver.AdvanceTime(TimeSpan.FromMilliseconds(999));
        Assert.Empty(results.Items); // the clock is at 999: window [0, 1000) ends at 999 and fires once it has passed
        driver.AdvanceTime(TimeSpan.FromMilliseconds(2));
        Assert.Equal([new WindowResult<long, long>(0, 0, 1000, 1), new WindowResult<long, long>(1, 0, 1000, 2)], results.Items.OrderBy(r => r.Key));
        driver.Push(5);
        Assert.Equal(1_001, driver.Now);
        await driver.CompleteAsync();
        Assert.Equal(new WindowResult<long, long>(1, 1000, 2000, 1), results.Items[^1]);
    }

    [Fact]
    public async Task Running_aggregate_needs_no_event_time_and_emits_on_every_record()
    {
        var results = new CollectionSink<WindowResult<long, long>>();
        var pipeline = new NumbersByParity { Spec = new(Window.Running()), Results = results };
        await using var driver = await PipelineTestDriver.StartAsync<long>(pipeline, new PipelineOptions { Parallelism = 2 });
        driver.Push(1, 2, 3);
        driver.Push(4);
        await driver.CompleteAsync();
        Assert.Equal([(0L, 1L, false), (0L, 2L, true)], results.Items.Where(r => r.Key == 0).Select(r => (r.Key, r.Value, r.IsUpdate)));
        Assert.Equal([(1L, 1L, false), (1L, 2L, true)], results.Items.Where(r => r.Key == 1).Select(r => (r.Key, r.Value, r.IsUpdate)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task A_run_across_partitions_emits_every_window_once_with_every_record_counted(int parallelism)
    {
        // Each source partition reads a contiguous, time-ordered range, so no record is late: every (key, window) must
        // come out exactly once, holding exactly the records of the input.
        var events = Enumerable.Range(0, 50_000).Select(i => new Reading(i % 97, i / 3, (i % 11) + 1)).ToArray();
        var pipeline = new SumsPerWindow { Events = new CollectionSource<Reading>(events) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 256, SinkQueueCapacity = 1 });

        var expected = events.GroupBy(e => (e.Key, Start: e.Time / 100 * 100))
            .Select(g => R(g.Key.Key, g.Key.Start, g.Key.Start + 100, g.Sum(e => e.Value) * 2))
            .OrderBy(r => r.Key).ThenBy(r => r.Start)
            .ToArray();
        Assert.Equal(expected, pipeline.Results.Items.OrderBy(r => r.Key).ThenBy(r => r.Start).ToArray());
        Assert.Empty(pipeline.Late.Items);
        Assert.Equal(events.Length, result.RecordsRead);
    }

    [Fact]
    public async Task Event_time_window_over_records_without_an_event_time_member_is_a_configuration_error()
    {
        var pipeline = new NumbersByParity { Spec = new(Window.Tumbling(TimeSpan.FromSeconds(1))) };
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("has no [EventTime] member", error.Message, StringComparison.Ordinal);
    }
}
