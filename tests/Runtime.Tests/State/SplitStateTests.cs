using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using Compiled.Runtime.Tests.Graph;

namespace Compiled.Runtime.Tests.State;

/// <summary>
/// A distributed run's split states (what a repartition topic's reader keeps per partition: its deduplication and its
/// writers' marks) travel with the checkpoint barriers into the keyed partitions' snapshots, are committed with them
/// per input partition, and reach the reader again when the next run claims the partitions.
/// </summary>
public sealed class SplitStateTests
{
    [Fact]
    public async Task Each_splits_state_is_committed_with_its_keyed_partition_and_handed_back_to_the_reader_of_the_next_run()
    {
        var sink = new PartitionedMemorySink<WindowResult<string, long>>();
        View[][] views = [[new View("/a", 1_000), new View("/b", 2_000), new View("/a", 3_000)], [new View("/c", 1_500)]];

        // The first run reads every split's records, checkpoints, and is stopped: its last checkpoint has each split's
        // state (here, how many records the split handed on).
        var first = new CountingSplitSource(views, restoredAlready: false);
        using (var stop = new CancellationTokenSource())
        {
            var run = new PagesPerMinute { Views = first, Results = sink }.RunAsync(new PipelineOptions { Parallelism = 2, CheckpointInterval = TimeSpan.FromMilliseconds(20) }, stop.Token);
            await Until(first.AllHandedOn, run);
            await Until(sink.CommittedAsync(checkpoints: 2), run); // one after the records were handed on
            await stop.CancelAsync();
            await run;
        }

        Assert.Empty(first.Restored);
        Assert.Equal(3, Count(sink.StateOf(partition: 0)));
        Assert.Equal(1, Count(sink.StateOf(partition: 1)));

        // The next run claims both partitions: each reader gets its split's state back, by split.
        var second = new CountingSplitSource(views, restoredAlready: true);
        using (var stop = new CancellationTokenSource())
        {
            var run = new PagesPerMinute { Views = second, Results = sink }.RunAsync(new PipelineOptions { Parallelism = 2, CheckpointInterval = TimeSpan.FromMilliseconds(20) }, stop.Token);
            await Until(second.Opened, run);
            await stop.CancelAsync();
            await run;
        }

        Assert.Equal([(0, 3), (1, 1)], second.Restored.Select(r => (r.Key, Count(r.Value))).Order());
    }

    /// <summary>Waits for <paramref name="task"/>; a run that ends first fails the test with its outcome.</summary>
    private static async Task Until(Task task, Task<PipelineResult> run)
    {
        if (await Task.WhenAny(task, run).WaitAsync(TimeSpan.FromMinutes(1)) == run)
        {
            var result = await run;
            Assert.Fail($"the run ended first: {result.Outcome}");
        }
    }

    private static int Count(ReadOnlyMemory<byte> state) => BinaryPrimitives.ReadInt32LittleEndian(state.Span);

    /// <summary>
    /// A distributed source of two partitions, leased once: reader i mod P reads split i's views in one batch (unless
    /// the restored state says it handed them on already), then hands on empty batches until the stop. A split's state is the number of
    /// records it handed on.
    /// </summary>
    private sealed class CountingSplitSource(View[][] splits, bool restoredAlready) : ISource<View>, IDistributedSource
    {
        private readonly TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _handedOn = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _pending = splits.Length;
        private SourceContext<View>? _context;
        private bool _leased;

        /// <summary>The views of a split, or none when the restored state says they were handed on already.</summary>
        private View[] ViewsOf(int split) => restoredAlready ? [] : splits[split];

        public ConcurrentDictionary<int, ReadOnlyMemory<byte>> Restored { get; } = new();

        public Task Opened => _opened.Task;

        public Task AllHandedOn => _handedOn.Task;

        public bool IsDistributed => true;

        public async ValueTask<PartitionLease> AcquireAsync(string pipeline, CancellationToken cancellationToken)
        {
            if (_leased)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken); // one assignment only
            }

            _leased = true;
            return new PartitionLease([.. Enumerable.Range(0, splits.Length).Select(p => new SourcePosition("views", p, -1))]);
        }

        public ValueTask RejoinAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask LeaveAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask OpenAsync(SourceContext<View> context, CancellationToken cancellationToken)
        {
            _context = context;
            foreach (var (split, state) in context.RestoredSplitStates)
            {
                Restored[split] = state.ToArray();
            }

            _opened.TrySetResult();
            return ValueTask.CompletedTask;
        }

        public ISourceReader<View> CreateReader(int partition)
            => new Reader(this, [.. Enumerable.Range(0, splits.Length).Where(s => s % _context!.Parallelism == partition)]);

        public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        private sealed class Reader(CountingSplitSource source, int[] owned) : ISourceReader<View>, ISplitStateReader
        {
            private readonly SourceSplits _splits = new();
            private readonly Dictionary<int, int> _handedOn = [];
            private int _next;

            public bool CommitsPositions => true;

            public IReadOnlyList<SourcePosition> Positions => [.. owned.Select(s => new SourcePosition("views", s, _handedOn.GetValueOrDefault(s)))];

            public async ValueTask<SourceBatch<View>> ReadAsync(CancellationToken cancellationToken)
            {
                _splits.ClearRuns();
                if (_next < owned.Length)
                {
                    var split = owned[_next++];
                    foreach (var s in owned)
                    {
                        _splits.Add(s);
                    }

                    var records = source.ViewsOf(split);
                    _splits.Append(split, records.Length);
                    _handedOn[split] = records.Length;
                    if (Interlocked.Decrement(ref source._pending) == 0)
                    {
                        source._handedOn.TrySetResult();
                    }

                    return SourceBatch<View>.Of(records, null, _splits);
                }

                // Nothing more, until the run is stopped: an empty batch now and then, as a Kafka reader's poll returns,
                // so that the worker can take checkpoints.
                await Task.Delay(10, cancellationToken);
                return SourceBatch<View>.Of(ReadOnlyMemory<View>.Empty, null, _splits);
            }

            public void WriteSplitState(int split, IBufferWriter<byte> output)
            {
                if (_handedOn.TryGetValue(split, out var count))
                {
                    BinaryPrimitives.WriteInt32LittleEndian(output.GetSpan(4), count);
                    output.Advance(4);
                }
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    /// <summary>An exactly-once sink that keeps distributed checkpoints in memory, per input partition (rows are not kept).</summary>
    private sealed class PartitionedMemorySink<T> : ISink<T>, ITransactionalSink, IPartitionedCheckpointCommitter
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<int, (long Offset, List<WindowState> State)> _partitions = [];
        private readonly List<(int Count, TaskCompletionSource Done)> _waiting = [];
        private long _id;
        private long _epoch;
        private int _commits;

        public bool IsTransactional => true;

        public bool CommitsSourcePositions => true;

        public string CheckpointLocation => "memory";

        public string PartitionCheckpointLocation => "memory";

        public ReadOnlyMemory<byte> StateOf(int partition)
        {
            lock (_lock)
            {
                return _partitions[partition].State.Select(s => WindowStateHeader.SplitStateOf(s.Bytes)).Single(s => s is not null);
            }
        }

        public Task CommittedAsync(int checkpoints)
        {
            lock (_lock)
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting.Add((_commits + checkpoints, done));
                return done.Task;
            }
        }

        public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ISinkWriter<T> CreateWriter(int partition) => new Writer();

        public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask<IReadOnlyList<SourcePosition>?> ClaimPositionsAsync(string pipeline, string source, IReadOnlyList<SourcePosition> partitions, CancellationToken cancellationToken)
            => ValueTask.FromResult<IReadOnlyList<SourcePosition>?>(null);

        public ValueTask<StoredCheckpoint?> ClaimCheckpointAsync(string pipeline, CancellationToken cancellationToken) => ValueTask.FromResult<StoredCheckpoint?>(null);

        public ValueTask CommitCheckpointAsync(string pipeline, StoredCheckpoint checkpoint, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<StoredCheckpoint> ClaimPartitionsAsync(string pipeline, IReadOnlyList<SourcePosition> partitions, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                var epoch = ++_epoch;
                var positions = partitions.Select(p => p with { Offset = _partitions.TryGetValue(p.Partition, out var stored) ? stored.Offset : -1, Epoch = epoch }).ToList();
                var state = partitions.Where(p => _partitions.ContainsKey(p.Partition)).SelectMany(p => _partitions[p.Partition].State).ToList();
                return ValueTask.FromResult(new StoredCheckpoint(_id, positions, state));
            }
        }

        public ValueTask CommitPartitionsAsync(string pipeline, StoredCheckpoint checkpoint, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                foreach (var position in checkpoint.Positions)
                {
                    var state = checkpoint.State.Where(s => s.Partition == position.Partition).Select(s => s with { Bytes = s.Bytes.ToArray() }).ToList();
                    _partitions[position.Partition] = (position.Offset, state);
                }

                _id = Math.Max(_id, checkpoint.Id);
                _commits++;
                foreach (var (count, done) in _waiting.Where(w => w.Count <= _commits))
                {
                    done.TrySetResult();
                }
            }

            return ValueTask.CompletedTask;
        }

        private sealed class Writer : ISinkWriter<T>
        {
            public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken) => ValueTask.CompletedTask;

            public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
