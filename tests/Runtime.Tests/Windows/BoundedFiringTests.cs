using Compiled.Connectors;
using Compiled.Runtime.Tests.Joins;
using Compiled.Testing;

namespace Compiled.Runtime.Tests.Windows;

/// <summary>Counts readings per key in one-second tumbling windows into a sink that keeps no record.</summary>
[Pipeline(Name = "many-key-counts")]
public sealed partial class ManyKeyCounts
{
    [Source] public ISource<Reading> Events { get; set; } = new CollectionSource<Reading>();

    [KeyBy] static int Key(Reading r) => r.Key;

    [Window] public WindowSpec<Reading, Count<Reading>> Spec { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] public SummarySink<WindowResult<int, long>> Results { get; set; } = BoundedFiringTests.Counts();
}

/// <summary>Counts readings per key in sessions, into a sink that keeps no record.</summary>
[Pipeline(Name = "many-key-sessions")]
public sealed partial class ManyKeySessions
{
    [Source] public ISource<Reading> Events { get; set; } = new CollectionSource<Reading>();

    [KeyBy] static int Key(Reading r) => r.Key;

    [Window] public WindowSpec<Reading, Count<Reading>> Spec { get; set; } = new(Window.Session(TimeSpan.FromSeconds(1)));

    [Sink] public SummarySink<WindowResult<int, long>> Results { get; set; } = BoundedFiringTests.Counts();
}

/// <summary>Keeps only what the test checks: how many records, a sum of a value and of a key over them, the largest write.</summary>
public sealed class SummarySink<T>(Func<T, long> value, Func<T, long> key) : ISink<T>
{
    private readonly Func<T, long> _value = value;
    private readonly Func<T, long> _key = key;
    private long _records;
    private long _sum;
    private long _keySum;
    private int _largestWrite;

    public SinkExecution Execution { get; init; } = SinkExecution.Inline;

    public long Count => Interlocked.Read(ref _records);

    public long Sum => Interlocked.Read(ref _sum);

    public long KeySum => Interlocked.Read(ref _keySum);

    public int LargestWrite => Volatile.Read(ref _largestWrite);

    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Writer(SummarySink<T> sink) : ISinkWriter<T>
    {
        public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            long sum = 0, keys = 0;
            foreach (var r in records.Span)
            {
                sum += sink._value(r);
                keys += sink._key(r);
            }

            Interlocked.Add(ref sink._records, records.Length);
            Interlocked.Add(ref sink._sum, sum);
            Interlocked.Add(ref sink._keySum, keys);
            int largest;
            while ((largest = Volatile.Read(ref sink._largestWrite)) < records.Length && Interlocked.CompareExchange(ref sink._largestWrite, records.Length, largest) != largest)
            {
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Pairs of a left and a right event of one key in one-second tumbling windows, into a sink that keeps no record.</summary>
[Pipeline(Name = "many-key-window-join")]
public sealed partial class ManyKeyWindowJoin
{
    [Source] public ISource<LeftEvent> Lefts { get; set; } = new CollectionSource<LeftEvent>();

    [Source] public ISource<RightEvent> Rights { get; set; } = new CollectionSource<RightEvent>();

    [KeyBy] static int LeftKey(LeftEvent e) => e.Key;

    [KeyBy] static int RightKey(RightEvent e) => e.Key;

    [Join] public JoinSpec<LeftEvent, RightEvent> Joined { get; set; }
        = Join.Windowed<LeftEvent, RightEvent>(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] public SummarySink<Joined<LeftEvent, RightEvent>> Out { get; set; } = new(j => j.Right.Id, j => j.Left.Key);
}

/// <summary>
/// A window that fires for many keys hands its results to the loop after it a batch at a time, flushing the sinks in
/// between: memory at a firing is the state plus one batch, not the state plus every result (issue #23).
/// </summary>
public sealed class BoundedFiringTests
{
    private const int Keys = 1_000_000;
    private const int BatchSize = 1024;

    /// <summary>Each key twice (so every count is 2), all in window [0, 1000).</summary>
    private static Reading[] Events(int keys) => [.. Enumerable.Range(0, keys * 2).Select(i => new Reading(i % keys, i % 1000, 1))];

    private static long KeySum(int keys) => (long)keys * (keys - 1) / 2;

    private static void PushInBatches<T>(PipelineTestDriver<T> driver, T[] events)
    {
        for (var i = 0; i < events.Length; i += BatchSize)
        {
            driver.Push(events.AsSpan(i, Math.Min(BatchSize, events.Length - i)));
        }
    }

    /// <summary>One count of 2 per key, every key once, and no write larger than a batch.</summary>
    private static void AssertCounts(SummarySink<WindowResult<int, long>> results, int keys)
    {
        Assert.Equal(keys, results.Count);
        Assert.Equal(2L * keys, results.Sum);
        Assert.Equal(KeySum(keys), results.KeySum);
        Assert.InRange(results.LargestWrite, 1, BatchSize);
    }

    /// <summary>A sink of window results that sums their values and keys.</summary>
    internal static SummarySink<WindowResult<int, long>> Counts(SinkExecution execution = SinkExecution.Inline) => new(r => r.Value, r => r.Key) { Execution = execution };

    [Fact]
    public async Task A_tumbling_window_of_a_million_keys_fires_in_batches_and_allocates_nothing_that_grows_with_the_keys()
    {
        var pipeline = new ManyKeyCounts();
        await using var driver = await PipelineTestDriver.StartAsync<Reading>(pipeline, new PipelineOptions { BatchSize = BatchSize });
        var events = Events(Keys);
        PushInBatches(driver, events);

        Assert.Equal(Keys, driver.StateEntries);
        Assert.Equal(0, pipeline.Results.Count);

        // The driver runs the keyed partition and the (inline) sink on this thread: what this thread allocates while
        // the window fires is what the firing costs, whatever other tests do meanwhile.
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        driver.AdvanceWatermark(999); // window [0, 1000) is complete: one result per key
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;

        AssertCounts(pipeline.Results, Keys);
        Assert.Equal(0, driver.StateEntries);

        // Results buffered whole would be a million 40-byte results (twice that as the buffers grow), beside the
        // state: the firing may allocate a few buffers of one batch, nothing per key.
        Assert.True(allocated < 256 << 10, $"firing {Keys} keys allocated {allocated:N0} bytes");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Windows_that_fire_at_the_end_of_input_reach_the_sink_in_batches_with_every_result(int parallelism)
    {
        const int keys = 200_000;
        var pipeline = new ManyKeyCounts { Events = new CollectionSource<Reading>(Events(keys)), Results = Counts(SinkExecution.Decoupled) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = BatchSize });

        AssertCounts(pipeline.Results, keys);
    }

    [Fact]
    public async Task Sessions_that_close_together_reach_the_sink_in_batches_with_every_result()
    {
        const int keys = 100_000;
        var pipeline = new ManyKeySessions();
        await using var driver = await PipelineTestDriver.StartAsync<Reading>(pipeline, new PipelineOptions { BatchSize = BatchSize });
        var events = Events(keys);
        PushInBatches(driver, events);

        driver.AdvanceWatermark(10_000);

        AssertCounts(pipeline.Results, keys);
    }

    [Fact]
    public async Task A_window_join_that_completes_windows_of_many_keys_at_once_emits_its_pairs_in_batches()
    {
        const int keys = 100_000;
        var pipeline = new ManyKeyWindowJoin();
        await using var driver = await PipelineTestDriver.StartAsync<Either<LeftEvent, RightEvent>>(pipeline, new PipelineOptions { BatchSize = BatchSize });
        var events = Enumerable.Range(0, keys).SelectMany(k => new[]
        {
            Either<LeftEvent, RightEvent>.FromLeft(new(k, k, k % 1000)),
            Either<LeftEvent, RightEvent>.FromRight(new(k, k + 1, k % 1000)),
        }).ToArray();
        PushInBatches(driver, events);

        Assert.Equal(0, pipeline.Out.Count);
        driver.AdvanceWatermark(999); // window [0, 1000) is complete for every key: one pair each

        Assert.Equal(keys, pipeline.Out.Count);
        Assert.Equal(KeySum(keys) + keys, pipeline.Out.Sum); // each pair's right id is its key + 1
        Assert.Equal(KeySum(keys), pipeline.Out.KeySum);
        Assert.InRange(pipeline.Out.LargestWrite, 1, BatchSize);
    }
}
