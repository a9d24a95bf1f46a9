using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Compiled.Runtime;

/// <summary>
/// Aligned checkpoints of a run with keyed state behind a source that commits positions (Flink's model). Every
/// interval the coordinator opens checkpoint <c>n</c>; each source partition, between two batches, records its
/// positions, sends barrier <c>n</c> into every exchange it feeds (after the records before it), makes its own sinks'
/// output durable and acknowledges. A keyed partition that has barrier <c>n</c> from every input (it holds back what
/// inputs that are ahead send meanwhile) snapshots its window state, makes its sinks' output durable, forwards the
/// barrier and acknowledges with the snapshot. When every partition has acknowledged, the checkpoint is written to the
/// store (off the workers); only then do the sources commit the positions it recorded.
/// </summary>
/// <remarks>
/// On a stop, the sources take a final checkpoint and the windows do not fire what they hold (stop-with-savepoint
/// without drain): the next run restores that state and goes on where this one stopped.
/// </remarks>
internal sealed class CheckpointCoordinator : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly RunContext _run;
    private readonly ICheckpointStore _store;
    private readonly IReadOnlyList<KeyedStage> _keyed;
    private readonly int _sources;
    private readonly int[] _keyedPartitions;
    private readonly ILogger _logger;
    private readonly SortedDictionary<long, Pending> _pending = [];
    private readonly Channel<Pending> _complete = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<(long Id, TaskCompletionSource Done)> _waiters = [];
    private readonly bool[] _sourceEnded;
    private readonly IReadOnlyList<SourcePosition>[] _endedPositions;
    private readonly Task _writer;
    private readonly System.Collections.Concurrent.ConcurrentBag<StateWriter> _buffers = [];
    private long _next;
    private long _requested;
    private long _completed;
    private long _final;
    private ITimer? _timer;

    public CheckpointCoordinator(RunContext run, ICheckpointStore store, IReadOnlyList<KeyedStage> keyed, int sources, int[] keyedPartitions, long lastId, ILogger logger)
    {
        _run = run;
        _store = store;
        _keyed = keyed;
        _sources = sources;
        _keyedPartitions = keyedPartitions;
        _logger = logger;
        _next = lastId;
        _completed = lastId;
        _requested = lastId;
        _sourceEnded = new bool[sources];
        _endedPositions = new IReadOnlyList<SourcePosition>[sources];
        _writer = Task.Run(WriteAsync, CancellationToken.None);
    }

    /// <summary>The newest checkpoint the sources must send a barrier for.</summary>
    public long Requested => Interlocked.Read(ref _requested);

    /// <summary>The newest checkpoint written to the store: its positions may be committed.</summary>
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Whether the run is stopping with a final checkpoint: windows keep what they hold instead of firing it.</summary>
    public bool Stopping => Interlocked.Read(ref _final) != 0;

    /// <summary>Whether <paramref name="id"/> is the stop's final checkpoint.</summary>
    public bool IsFinal(long id) => id != 0 && Interlocked.Read(ref _final) == id;

    /// <summary>Where the stop's final checkpoint is also written (stop with a savepoint), or null.</summary>
    public FileCheckpointStore? Savepoint { get; init; }

    /// <summary>
    /// The positions of the checkpoint the run restored. One that no source partition reports in a checkpoint of this
    /// run is carried into it unchanged: a reader reports a partition's position only once it knows it (a Kafka reader
    /// of a union assigns its partitions in its first read, which may still be under way at the first barriers), and
    /// until then it has handed on nothing of that partition — so the restored position is still exact. Dropping it
    /// would make the next restore read the partition again from its start, into state that already holds it.
    /// </summary>
    public IReadOnlyList<SourcePosition> Restored { get; init; } = [];

    /// <summary>Checkpoints written in this run.</summary>
    public long Written { get; private set; }

    /// <summary>Bytes of state in the newest checkpoint this run wrote (for the console).</summary>
    public long LastBytes { get; private set; }

    /// <summary>How long writing the newest checkpoint took, in milliseconds (for the console).</summary>
    public double LastMilliseconds { get; private set; }

    /// <summary>Starts opening a checkpoint every <paramref name="interval"/>.</summary>
    public void Start(TimeSpan interval)
        => _timer = _run.Clock.Provider.CreateTimer(static state => ((CheckpointCoordinator)state!).Trigger(), this, interval, interval);

    /// <summary>Opens a checkpoint now unless two are still in flight or the run is stopping.</summary>
    public void Trigger()
    {
        lock (_lock)
        {
            if (_final != 0 || _pending.Count >= 2 || _run.IsAborted || _sourceEnded.All(ended => ended))
            {
                return;
            }

            Open(++_next);
        }
    }

    /// <summary>The stop's final checkpoint (opened by the first caller): every source sends its barrier before it ends.</summary>
    public long RequestFinal()
    {
        lock (_lock)
        {
            if (_final == 0)
            {
                Interlocked.Exchange(ref _final, ++_next);
                Open(_final);
            }

            return _final;
        }
    }

    private void Open(long id)
    {
        var pending = new Pending(id, _sources, _keyedPartitions);
        for (var s = 0; s < _sources; s++)
        {
            if (_sourceEnded[s])
            {
                pending.AckSource(s, _endedPositions[s]);
            }
        }

        _pending[id] = pending;
        Interlocked.Exchange(ref _requested, id);
        Arrived(pending);
    }

    /// <summary>Source partition <paramref name="partition"/> sent barrier <paramref name="id"/>; it resumes from <paramref name="positions"/>.</summary>
    public void AckSource(long id, int partition, IReadOnlyList<SourcePosition> positions)
    {
        lock (_lock)
        {
            if (_pending.TryGetValue(id, out var pending))
            {
                pending.AckSource(partition, positions);
                Arrived(pending);
            }
        }
    }

    /// <summary>Source partition <paramref name="partition"/> ended at <paramref name="positions"/>: it counts as acknowledged in every later checkpoint.</summary>
    public void SourceEnded(int partition, IReadOnlyList<SourcePosition> positions)
    {
        lock (_lock)
        {
            _sourceEnded[partition] = true;
            _endedPositions[partition] = positions;
            foreach (var pending in _pending.Values.ToList())
            {
                pending.AckSource(partition, positions);
                Arrived(pending);
            }
        }
    }

    /// <summary>
    /// A buffer for a keyed partition's snapshot, handed back with <see cref="AckKeyed"/>: snapshots are written into
    /// buffers kept from earlier checkpoints, so that a large state does not allocate (and collect) its size in
    /// large-object-heap arrays at every checkpoint.
    /// </summary>
    public StateWriter RentBuffer()
    {
        if (_buffers.TryTake(out var buffer))
        {
            buffer.Reset();
            return buffer;
        }

        return new StateWriter(64 * 1024);
    }

    /// <summary>Keyed partition <paramref name="partition"/> of window <paramref name="window"/> snapshotted its state at barrier <paramref name="id"/> into <paramref name="snapshot"/> (from <see cref="RentBuffer"/>; the coordinator owns it now).</summary>
    public void AckKeyed(long id, int window, int partition, StateWriter snapshot)
    {
        lock (_lock)
        {
            if (_pending.TryGetValue(id, out var pending))
            {
                pending.AckKeyed(window, partition, snapshot);
                Arrived(pending);
            }
        }
    }

    private void Arrived(Pending pending)
    {
        if (pending.Complete && _pending.Remove(pending.Id))
        {
            _complete.Writer.TryWrite(pending);
        }
    }

    /// <summary>Waits until checkpoint <paramref name="id"/> (or a later one) is written.</summary>
    public Task WaitCompletedAsync(long id, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (Completed >= id)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((id, done));
            return done.Task.WaitAsync(cancellationToken);
        }
    }

    private async Task WriteAsync()
    {
        try
        {
            await foreach (var pending in _complete.Reader.ReadAllAsync(_run.Abort).ConfigureAwait(false))
            {
                var started = Stopwatch.GetTimestamp();
                var windows = _keyed.Select((stage, k) => (stage, k)).Where(x => x.stage.HasState).Select(x => new WindowCheckpoint(x.stage.Schema!, pending.Snapshots[x.k])).ToList();
                var data = new CheckpointData(pending.Id, _run.Clock.Provider.GetUtcNow(), WithRestored(pending.Positions), windows);
                await _store.WriteAsync(data, _run.Abort).ConfigureAwait(false);
                if (Savepoint is { } savepoint && IsFinal(pending.Id))
                {
                    savepoint.CopyDiskState(_store.Directory, pending.Id); // before its manifest: a savepoint is whole or absent
                    await savepoint.WriteAsync(data, _run.Abort).ConfigureAwait(false);
                    Log.SavepointWritten(_logger, _run.Pipeline, pending.Id, savepoint.Directory);
                }

                Written++;
                var bytes = windows.Sum(w => w.Partitions.Sum(p => (long)p.Length));
                var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                LastBytes = bytes;
                LastMilliseconds = elapsed;
                foreach (var buffer in pending.Buffers)
                {
                    _buffers.Add(buffer); // written: the next checkpoints' snapshots reuse them
                }

                Log.CheckpointWritten(_logger, _run.Pipeline, pending.Id, bytes, elapsed);
                lock (_lock)
                {
                    Interlocked.Exchange(ref _completed, pending.Id);
                    foreach (var waiter in _waiters.Where(w => w.Id <= pending.Id).ToList())
                    {
                        waiter.Done.TrySetResult();
                        _waiters.Remove(waiter);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_run.IsAborted)
        {
            // the run is aborting: an unfinished checkpoint has no manifest and is skipped on restore
        }
        catch (Exception ex)
        {
            _run.Fail(new PipelineException(_run.Pipeline, $"Pipeline '{_run.Pipeline}': could not write a checkpoint to {_store.Directory}: {ex.Message}", ex));
        }
        finally
        {
            lock (_lock)
            {
                foreach (var waiter in _waiters)
                {
                    waiter.Done.TrySetCanceled();
                }

                _waiters.Clear();
            }
        }
    }

    /// <summary><paramref name="positions"/>, and each restored position of a partition they do not name (see <see cref="Restored"/>).</summary>
    private List<SourcePosition> WithRestored(List<SourcePosition> positions)
    {
        if (Restored.Count == 0)
        {
            return positions;
        }

        var named = positions.Select(p => (p.Stream, p.Partition)).ToHashSet();
        return [.. positions, .. Restored.Where(p => !named.Contains((p.Stream, p.Partition)))];
    }

    public async ValueTask DisposeAsync()
    {
        if (_timer is { } timer)
        {
            await timer.DisposeAsync().ConfigureAwait(false);
        }

        _complete.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
    }

    /// <summary>A checkpoint waiting for acknowledgements.</summary>
    private sealed class Pending(long id, int sources, int[] keyedPartitions)
    {
        private readonly bool[] _sourcesAcked = new bool[sources];
        private int _remaining = sources + keyedPartitions.Sum();

        public long Id { get; } = id;

        public List<SourcePosition> Positions { get; } = [];

        public ReadOnlyMemory<byte>[][] Snapshots { get; } = keyedPartitions.Select(n => new ReadOnlyMemory<byte>[n]).ToArray();

        public bool Complete => _remaining == 0;

        public void AckSource(int partition, IReadOnlyList<SourcePosition> positions)
        {
            if (!_sourcesAcked[partition])
            {
                _sourcesAcked[partition] = true;
                Positions.AddRange(positions);
                _remaining--;
            }
        }

        public List<StateWriter> Buffers { get; } = [];

        public void AckKeyed(int window, int partition, StateWriter snapshot)
        {
            Snapshots[window][partition] = snapshot.Written;
            Buffers.Add(snapshot);
            _remaining--;
        }
    }
}
