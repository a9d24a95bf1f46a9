using System.Collections.Concurrent;
using Compiled.Connectors;
using Microsoft.Extensions.Logging;

namespace Compiled.Runtime.Tests.Graph;

/// <summary>A keyed pipeline with a sink on each side of the exchange, from any source into tracking sinks.</summary>
[Pipeline(Name = "lifecycle")]
public sealed partial class TwoSidedPipeline
{
    [Source] public ISource<Windows.Reading> Events { get; set; } = new CollectionSource<Windows.Reading>();

    [Sink] public ISink<Windows.Reading> Raw { get; set; } = new TrackingSink<Windows.Reading>();

    [KeyBy] static int Key(Windows.Reading r) => r.Key;

    [Window] public WindowSpec<Windows.Reading, Count<Windows.Reading>> Counts { get; set; } = new(Window.Tumbling(TimeSpan.FromMilliseconds(100)));

    [Sink] public ISink<WindowResult<int, long>> Results { get; set; } = new TrackingSink<WindowResult<int, long>>();
}

/// <summary>A source straight into a sink.</summary>
[Pipeline(Name = "straight")]
public sealed partial class StraightPipeline
{
    [Source] public ISource<Windows.Reading> Events { get; set; } = new CollectionSource<Windows.Reading>();

    [Sink] public ISink<Windows.Reading> Raw { get; set; } = new TrackingSink<Windows.Reading>();
}

/// <summary>The run owns what it creates: whatever fails, everything opened is closed, and nothing outlives the run.</summary>
public sealed class LifecycleTests
{
    private const int Partitions = 4;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_reader_that_fails_to_open_at_any_partition_leaves_no_reader_writer_or_task_open(int failAt)
    {
        var source = new CountingSource(failReaderAt: failAt);
        var raw = new TrackingSink<Windows.Reading>();
        var results = new TrackingSink<WindowResult<int, long>>();
        var pipeline = new TwoSidedPipeline { Events = source, Raw = raw, Results = results };

        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = Partitions }));
        Assert.Contains("create its reader", error.Message, StringComparison.Ordinal);

        Assert.Equal(failAt, source.ReadersCreated);
        Assert.Equal(source.ReadersCreated, source.ReadersDisposed);
        Assert.True(source.Closed);
        AssertReleased(raw);
        AssertReleased(results);
        Assert.True(raw.WritersCreated >= failAt); // the partitions before the failing one had their writers (and queue tasks)
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_writer_that_fails_to_open_at_any_partition_leaves_nothing_open(int failAt)
    {
        var source = new CountingSource();
        var raw = new TrackingSink<Windows.Reading>();
        var results = new TrackingSink<WindowResult<int, long>> { FailWriterAt = failAt };
        var pipeline = new TwoSidedPipeline { Events = source, Raw = raw, Results = results };

        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = Partitions }));
        Assert.Contains("create its writer", error.Message, StringComparison.Ordinal);

        Assert.Equal(Partitions, source.ReadersCreated); // the source partitions were all created before the keyed ones
        Assert.Equal(source.ReadersCreated, source.ReadersDisposed);
        Assert.True(source.Closed);
        AssertReleased(raw);
        AssertReleased(results);
    }

    [Fact]
    public async Task A_failed_run_aborts_its_other_partitions_instead_of_completing_them()
    {
        // Partition 2's writer fails on its first batch; the others must not complete their sinks or commit their input
        // after that (a failed run must not present partial output as complete).
        var source = new CountingSource(endless: true);
        var raw = new TrackingSink<Windows.Reading> { FailWritesAt = 2 };
        var pipeline = new StraightPipeline { Events = source, Raw = raw };
        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = Partitions }));
        Assert.Contains("disk full", error.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, source.Commits);
        Assert.Equal(source.ReadersCreated, source.ReadersDisposed);
        AssertReleased(raw);
    }

    [Fact]
    public async Task A_failed_run_logs_no_stop_and_a_finished_run_logs_nothing_after_it_returns()
    {
        var time = new ManualTimeProvider(DateTimeOffset.UnixEpoch);
        var log = new ListLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(log).SetMinimumLevel(LogLevel.Debug));

        // A run that fails: no "stop requested".
        var failing = new TwoSidedPipeline { Events = new CountingSource(failReaderAt: 1) };
        await Assert.ThrowsAsync<ConnectorException>(() => failing.RunAsync(new PipelineOptions { Parallelism = 2, LoggerFactory = factory, TimeProvider = time }));
        Assert.DoesNotContain(log.Messages, m => m.Contains("stop requested", StringComparison.Ordinal));

        // A run stopped on request that drains in time: after it returns, the grace period's end passes without a word.
        var stopped = new TwoSidedPipeline { Events = new CountingSource(endless: true) };
        using var stop = new CancellationTokenSource();
        var run = stopped.RunAsync(new PipelineOptions { Parallelism = 2, LoggerFactory = factory, TimeProvider = time, GracePeriod = TimeSpan.FromSeconds(5) }, stop.Token);
        await stop.CancelAsync();
        await run;
        Assert.Contains(log.Messages, m => m.Contains("stop requested", StringComparison.Ordinal));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(log.Messages, m => m.Contains("grace period", StringComparison.Ordinal) && m.Contains("ran out", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Dead_letters_another_partition_is_writing_are_durable_before_flush_returns()
    {
        // Partition B reports a letter; partition A's flush takes it (with A's own) and stalls writing. B's flush must
        // wait for that write — returning because the queue is empty would let B commit past a letter not yet written.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sink = new TrackingSink<DeadLetter> { BeforeWrite = async _ => await gate.Task };
        var channel = new DeadLetterChannel("p", ErrorPolicy.DeadLetter, sink);
        var options = new PipelineOptions();
        channel.Report(Failed(0, "a"));
        channel.Report(Failed(1, "b"));
        var flushA = channel.FlushAsync(options, CancellationToken.None).AsTask();
        Assert.False(flushA.IsCompleted); // writing both, stalled
        var flushB = channel.FlushAsync(options, CancellationToken.None).AsTask();
        Assert.False(flushB.IsCompleted);
        gate.SetResult();
        await Task.WhenAll(flushA, flushB);
        Assert.Equal(["a", "b"], sink.Items.Select(l => l.Raw).Order());
        Assert.Equal(2, channel.Written);
        await channel.DisposeAsync();
    }

    [Fact]
    public async Task An_abort_during_a_checkpoint_ends_the_run_without_committing_and_releases_everything()
    {
        var source = new CommittingSource(batches: int.MaxValue);
        var sink = new CheckpointSink { StallCommits = true };
        var pipeline = new CommittingPipeline { Input = source, Output = sink };
        using var stop = new CancellationTokenSource();
        using var abort = new CancellationTokenSource();
        var run = ((ICompiledPipeline)pipeline).CreateJob().RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 64, CheckpointInterval = TimeSpan.FromMilliseconds(5) }, stop.Token, abort.Token);
        await sink.CommitStalled.Task.WaitAsync(TimeSpan.FromMinutes(1)); // a checkpoint is waiting for the sink to commit
        await abort.CancelAsync();
        await Assert.ThrowsAsync<PipelineAbortedException>(() => run.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Empty(source.Commits); // the stalled checkpoint never reached the source
        Assert.Equal(0, sink.Commits);
    }

    [Fact]
    public async Task A_stop_while_a_keyed_partition_flushes_drains_the_windows_and_releases_everything()
    {
        // The sink after the window stalls until the stop has been requested: the stop arrives while a keyed
        // partition is inside its flush. The run must still drain: every window fires, every writer is closed.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var source = new CountingSource(endless: true);
        var raw = new TrackingSink<Windows.Reading>();
        var results = new TrackingSink<WindowResult<int, long>> { BeforeWrite = async _ => { stalled.TrySetResult(); await gate.Task; } };
        var pipeline = new TwoSidedPipeline { Events = source, Raw = raw, Results = results };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2, GracePeriod = TimeSpan.FromMinutes(1) }, stop.Token);
        await stalled.Task.WaitAsync(TimeSpan.FromMinutes(1));
        await stop.CancelAsync();
        gate.SetResult();
        var result = await run.WaitAsync(TimeSpan.FromMinutes(1));

        Assert.Equal(PipelineOutcome.Stopped, result.Outcome);
        Assert.Equal(result.RecordsRead, results.Items.Sum(r => r.Value)); // every record read is counted in a fired window
        Assert.Equal(result.RecordsRead, raw.Written);
        Assert.Equal(source.ReadersCreated, source.ReadersDisposed);
        AssertReleased(raw);
        AssertReleased(results);
    }

    private static FailedRecord Failed(int partition, string raw)
        => new(FailureKind.Operator, partition, "S", new RecordOrigin("src", null, null, null, System.Text.Encoding.UTF8.GetBytes(raw)), "E", "boom");

    private static void AssertReleased<T>(TrackingSink<T> sink)
    {
        Assert.Equal(sink.WritersCreated, sink.WritersDisposed);
        Assert.Equal(sink.Opened, sink.Closed);
    }
}

/// <summary>A source that counts readers and commits; it can fail to create a reader, and read for ever or a little.</summary>
public sealed class CountingSource(int failReaderAt = -1, bool endless = false) : ISource<Windows.Reading>
{
    private int _created;
    private int _disposed;
    private int _commits;

    public int ReadersCreated => Volatile.Read(ref _created);

    public int ReadersDisposed => Volatile.Read(ref _disposed);

    public int Commits => Volatile.Read(ref _commits);

    public bool Closed { get; private set; }

    public ValueTask OpenAsync(SourceContext<Windows.Reading> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISourceReader<Windows.Reading> CreateReader(int partition)
    {
        if (partition == failReaderAt)
        {
            throw new InvalidOperationException($"no reader for partition {partition}");
        }

        Interlocked.Increment(ref _created);
        return new Reader(this, partition);
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        Closed = true;
        return ValueTask.CompletedTask;
    }

    private bool Endless => endless;

    private sealed class Reader(CountingSource source, int partition) : ISourceReader<Windows.Reading>
    {
        private readonly Windows.Reading[] _batch = new Windows.Reading[64];
        private long _time;
        private int _batches;

        public ValueTask<SourceBatch<Windows.Reading>> ReadAsync(CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!source.Endless && _batches++ == 10)
            {
                return ValueTask.FromResult(SourceBatch<Windows.Reading>.End);
            }

            for (var i = 0; i < _batch.Length; i++)
            {
                _batch[i] = new Windows.Reading(partition + (i % 5), _time++, 1);
            }

            return ValueTask.FromResult(SourceBatch<Windows.Reading>.Of(_batch));
        }

        public ValueTask CommitAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref source._commits);
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            Interlocked.Increment(ref source._disposed);
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>Collects formatted log messages.</summary>
public sealed class ListLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _messages = new();

    public IReadOnlyCollection<string> Messages => _messages;

    public ILogger CreateLogger(string categoryName) => new ListLogger(_messages);

    public void Dispose()
    {
    }

    private sealed class ListLogger(ConcurrentQueue<string> messages) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => messages.Enqueue(formatter(state, exception));
    }
}
