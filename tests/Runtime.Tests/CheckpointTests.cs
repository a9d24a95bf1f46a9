using System.Collections.Concurrent;

namespace Compiled.Runtime.Tests;

/// <summary>
/// The checkpoint contract with a source that commits positions (as Kafka's does): positions are committed only after
/// every sink committed the records before them; a sink failing at a checkpoint fails the run instead of hanging it;
/// an aborted partition's queued records never reach its sink.
/// </summary>
public sealed class CheckpointTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task A_source_commits_a_position_only_after_the_sink_committed_every_record_before_it()
    {
        var source = new CommittingSource(batches: 200);
        var sink = new CheckpointSink();
        var pipeline = new CommittingPipeline { Input = source, Output = sink };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 64, CheckpointInterval = TimeSpan.FromMilliseconds(1) }).WaitAsync(HangGuard);

        Assert.NotEmpty(source.Commits);
        foreach (var (partition, position) in source.Commits)
        {
            // Everything up to the committed position was written and committed by the sink, in that partition.
            Assert.True(sink.CommittedThrough(partition) >= position, $"partition {partition} committed {position} before the sink had");
        }

        Assert.Equal(2 * 200 * 64, sink.Written);
    }

    [Fact]
    public async Task A_sink_that_fails_to_commit_fails_the_run_instead_of_hanging_it()
    {
        var source = new CommittingSource(batches: int.MaxValue);
        var sink = new CheckpointSink { FailCommitAfter = 3 };
        var pipeline = new CommittingPipeline { Input = source, Output = sink };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 64, CheckpointInterval = TimeSpan.FromMilliseconds(1) }).WaitAsync(HangGuard));
        Assert.Contains("commit refused", error.ToString(), StringComparison.Ordinal);
        Assert.True(source.Commits.All(c => c.Position <= sink.CommittedThrough(c.Partition)));
    }

    [Fact]
    public async Task A_failed_partition_does_not_flush_its_queued_records_to_the_sink()
    {
        var source = new CommittingSource(batches: int.MaxValue) { FailAtBatch = 50 };
        var sink = new CheckpointSink { SlowWrites = true };
        var pipeline = new CommittingPipeline { Input = source, Output = sink };
        await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 64, CheckpointInterval = TimeSpan.FromHours(1) }).WaitAsync(HangGuard));

        // No checkpoint happened (interval: an hour) and the run failed: nothing may be flushed or committed.
        Assert.Equal(0, sink.Flushes);
        Assert.Equal(0, sink.Commits);
        Assert.Empty(source.Commits);
    }
}

[Pipeline(Name = "committing")]
public sealed partial class CommittingPipeline
{
    [Source] public CommittingSource Input { get; set; } = new(1);

    [Sink] public CheckpointSink Output { get; set; } = new();
}

/// <summary>Numbers per partition, 0, 1, 2, …; its readers commit positions (the next number) at checkpoints.</summary>
public sealed class CommittingSource(int batches) : ISource<long>
{
    private SourceContext<long>? _context;

    /// <summary>Batches per partition before the end.</summary>
    public int Batches { get; } = batches;

    public ConcurrentQueue<(int Partition, long Position)> Commits { get; } = new();

    /// <summary>Partition 0 throws when reading this batch.</summary>
    public int FailAtBatch { get; init; } = -1;

    public ValueTask OpenAsync(SourceContext<long> context, CancellationToken cancellationToken)
    {
        _context = context;
        return ValueTask.CompletedTask;
    }

    public ISourceReader<long> CreateReader(int partition) => new Reader(this, partition);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader(CommittingSource source, int partition) : ISourceReader<long>
    {
        private readonly long[] _buffer = new long[source._context!.BatchSize];
        private long _next;
        private int _batch;

        public bool CommitsPositions => true;

        public IReadOnlyList<SourcePosition> Positions => [new SourcePosition("numbers", partition, _next)];

        public ValueTask<SourceBatch<long>> ReadAsync(CancellationToken cancellationToken)
        {
            if (_batch == source.FailAtBatch && partition == 0)
            {
                throw new InvalidOperationException("the source broke");
            }

            if (_batch++ >= source.Batches || cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromResult(SourceBatch<long>.End);
            }

            for (var i = 0; i < _buffer.Length; i++)
            {
                _buffer[i] = _next++;
            }

            return ValueTask.FromResult(SourceBatch<long>.Of(_buffer));
        }

        public ValueTask CommitAsync(CancellationToken cancellationToken)
        {
            source.Commits.Enqueue((partition, _next));
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>A decoupled sink that records, per partition, the highest number written and committed.</summary>
public sealed class CheckpointSink : ISink<long>
{
    private readonly ConcurrentDictionary<int, long> _committed = new();
    private long _written;
    private int _flushes;
    private int _commits;

    public int FailCommitAfter { get; init; } = int.MaxValue;

    public bool SlowWrites { get; init; }

    /// <summary>Commits wait until the run aborts; <see cref="CommitStalled"/> completes when the first one starts waiting.</summary>
    public bool StallCommits { get; init; }

    public TaskCompletionSource CommitStalled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long Written => Interlocked.Read(ref _written);

    public int Flushes => Volatile.Read(ref _flushes);

    public int Commits => Volatile.Read(ref _commits);

    /// <summary>The position (next number) up to which partition <paramref name="partition"/>'s records were committed.</summary>
    public long CommittedThrough(int partition) => _committed.GetValueOrDefault(partition);

    public ValueTask OpenAsync(SinkContext<long> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISinkWriter<long> CreateWriter(int partition) => new Writer(this, partition);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Writer(CheckpointSink sink, int partition) : ISinkWriter<long>
    {
        private long _writtenThrough;

        public async ValueTask WriteAsync(ReadOnlyMemory<long> records, CancellationToken cancellationToken)
        {
            if (sink.SlowWrites)
            {
                await Task.Yield(); // let the partition run ahead and fill the queue
            }

            _writtenThrough = records.Span[^1] + 1;
            Interlocked.Add(ref sink._written, records.Length);
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref sink._flushes);
            return ValueTask.CompletedTask;
        }

        public async ValueTask CommitAsync(Checkpoint checkpoint, CancellationToken cancellationToken)
        {
            if (sink.StallCommits)
            {
                sink.CommitStalled.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            if (Interlocked.Increment(ref sink._commits) > sink.FailCommitAfter)
            {
                throw new InvalidOperationException("commit refused");
            }

            // The checkpoint's positions are the reader's: everything before them must have been written here.
            var position = checkpoint.Positions.Single().Offset;
            Assert.Equal(position, _writtenThrough);
            sink._committed[partition] = position;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
