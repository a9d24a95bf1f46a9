using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Compiled.Runtime;

/// <summary>
/// What a worker reads: a source partition's reader, or a keyed partition's exchange inbox. One step reads one item
/// (a batch of records, an exchange batch, a clock tick) and runs the partition's fused loop over it, filling the
/// worker's output buffers.
/// </summary>
internal interface IWorkerInput : IAsyncDisposable
{
    /// <summary>The connector or window the input belongs to, for errors.</summary>
    string Name { get; }

    /// <summary>Records read from a source so far (0 for keyed partitions: their records were counted where they were read).</summary>
    long RecordsRead { get; }

    /// <summary>Whether the input has ended (every producer of a keyed partition has ended).</summary>
    bool Ended { get; }

    /// <summary>Waits for the next item (a batch, an exchange batch, a tick); false once the input has ended or, for a source, the run stops.</summary>
    ValueTask<bool> ReadAsync(CancellationToken stop, CancellationToken abort);

    /// <summary>Runs the loop over the item just read, into the worker's output buffers.</summary>
    void Process();

    /// <summary>After the input ended: runs the loop over what the partition still holds (windows fire at the end of input).</summary>
    void Finish();

    /// <summary>
    /// Runs the loop over the next batch of what the last item (or <see cref="Finish"/>) released — a window fires a
    /// batch at a time, the worker flushing its ports between batches; false when nothing is left.
    /// </summary>
    bool ProcessMore() => false;

    /// <summary>Whether the input commits positions as it goes (Kafka): the worker then takes checkpoints.</summary>
    bool CommitsPositions { get; }

    /// <summary>Whether a checkpoint may be taken now (the reader's positions can be resumed from exactly).</summary>
    bool CanCheckpoint => true;

    /// <summary>The checkpoint of everything read so far (sources that commit positions).</summary>
    Checkpoint CreateCheckpoint(string pipeline, int partition, long number);

    /// <summary>Everything read so far is durable downstream: the source may commit its positions.</summary>
    ValueTask CommitAsync(CancellationToken cancellationToken);

    /// <summary>A checkpoint of keyed state is complete: the source may commit <paramref name="positions"/>, which it recorded at that checkpoint's barrier.</summary>
    ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken);
}

/// <summary>
/// One partition of one stage of a run — a source partition, or a keyed partition behind an exchange. Every partition
/// of every stage runs the same lifecycle: read an item from its input → run the fused loop → flush its ports (and the
/// dead letters) → at the end of input, complete its ports and let the input commit; on failure, abort its ports.
/// A worker runs on its own task, or inline on the worker that feeds it (<see cref="Exchange.Inline"/>).
/// </summary>
internal sealed class Worker : IPartitionState, IAsyncDisposable
{
    private const int Created = 0;
    private const int Running = 1;
    private const int Completed = 2;
    private const int Aborted = 3;

    private readonly RunContext _run;
    private readonly IWorkerInput _input;
    private readonly PartitionContext _context;
    private readonly KeyValuePair<string, object?>[] _tags;
    private int _state;
    private int _disposed;
    private long _checkpoints;
    private long _lastCheckpoint;
    private long _lastBarrier = -1;
    private long _committedCheckpoint;
    private readonly Queue<(long Id, IReadOnlyList<SourcePosition> Positions)> _barrierPositions = new();

    public Worker(RunContext run, int stage, int index, IWorkerInput input, PartitionContext context)
    {
        _run = run;
        Stage = stage;
        Index = index;
        _input = input;
        _context = context;
        _tags = [new("pipeline", run.Pipeline)];
        _lastCheckpoint = Stopwatch.GetTimestamp();
    }

    /// <summary>The stage (segment) this worker runs: 0 for the source's loop.</summary>
    public int Stage { get; }

    /// <summary>The partition's index within its stage.</summary>
    public int Index { get; }

    public long RecordsRead => _input.RecordsRead;

    bool IPartitionState.Running => Volatile.Read(ref _state) == Running;

    public IReadOnlyList<IOutputPort> Ports => _context.Ports;

    public IOutputPort? PortOf(int slot) => _context.PortOf(slot);

    /// <summary>The input, for the run's metrics.</summary>
    public IWorkerInput Input => _input;

    /// <summary>Runs the partition on the calling task until its input ends, the run stops, or something fails.</summary>
    public async Task RunAsync()
    {
        Volatile.Write(ref _state, Running);
        Exception? failure = null;
        try
        {
            var stop = _run.Stop;
            var abort = _run.Abort;
            var coordinator = _run.Checkpoints;
            var checkpoints = _input.CommitsPositions && coordinator is null;
            var barriers = coordinator is not null && Stage == 0;
            var interval = _run.Options.CheckpointInterval;
            while (true)
            {
                abort.ThrowIfCancellationRequested(); // a reader that returns empty batches must not outlive an abort
                if (checkpoints && Stopwatch.GetElapsedTime(_lastCheckpoint) >= interval && _input.CanCheckpoint)
                {
                    await CheckpointAsync(abort).ConfigureAwait(false);
                }
                else if (barriers && _input.CanCheckpoint)
                {
                    await SendBarriersAsync(abort).ConfigureAwait(false);
                    await CommitCheckpointedAsync(abort).ConfigureAwait(false);
                }

                if (!await _input.ReadAsync(stop, abort).ConfigureAwait(false))
                {
                    break;
                }

                var timed = CompiledMeter.BatchDuration.Enabled; // only read the clock when someone listens
                var started = timed ? Stopwatch.GetTimestamp() : 0;
                _input.Process();
                await FlushAsync(abort).ConfigureAwait(false);
                await ProcessMoreAsync(abort).ConfigureAwait(false);
                await SnapshotIfAlignedAsync(abort).ConfigureAwait(false);
                if (timed)
                {
                    CompiledMeter.BatchDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds, _tags);
                }
            }

            await FinishAsync(abort).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = ex is OutOfMemoryException ? OutOfMemory(ex) : ex;
            _run.Fail(failure);
            await AbortAsync().ConfigureAwait(false);
        }

        try
        {
            await DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (failure is null)
        {
            failure = ex;
            _run.Fail(ex);
        }

        if (failure is not null)
        {
            ExceptionDispatchInfo.Capture(failure).Throw();
        }
    }

    /// <summary>
    /// Inline: another worker (or the test driver) handed this partition's input an item on its own thread; flush what
    /// the loop produced, and complete once the input has ended.
    /// </summary>
    public async ValueTask AfterInlineStepAsync(CancellationToken abort)
    {
        await FlushAsync(abort).ConfigureAwait(false);
        await ProcessMoreAsync(abort).ConfigureAwait(false);
        await SnapshotIfAlignedAsync(abort).ConfigureAwait(false);
        if (_input.Ended && Volatile.Read(ref _state) == Running)
        {
            await FinishAsync(abort).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Makes everything the reader returned so far durable in every sink — with the reader's positions, so that a
    /// transactional sink stores both in one transaction — writes pending dead letters, then lets the reader commit.
    /// Runs on the partition's worker: between batches, or from inside the reader's own ReadAsync (a rebalance).
    /// </summary>
    public async ValueTask CheckpointAsync(CancellationToken abort)
    {
        var checkpoint = _input.CreateCheckpoint(_run.Pipeline, Index, ++_checkpoints);
        foreach (var port in _context.Ports)
        {
            await port.DrainAsync(checkpoint, abort).ConfigureAwait(false);
        }

        await FlushDeadLettersAsync(abort).ConfigureAwait(false);
        await CommitAsync(abort).ConfigureAwait(false);
        _lastCheckpoint = Stopwatch.GetTimestamp();
    }

    /// <summary>
    /// A source partition of a run with checkpointed keyed state: for every checkpoint opened since the last barrier,
    /// records the reader's positions, sends the barrier into every exchange after the records before it, makes the
    /// partition's own sinks' output durable, and acknowledges.
    /// </summary>
    private ValueTask SendBarriersAsync(CancellationToken abort)
    {
        var coordinator = _run.Checkpoints!;
        if (_lastBarrier < 0)
        {
            _lastBarrier = coordinator.Completed; // checkpoints opened before this partition started have no records of it
        }

        // Called after every batch: no state machine unless a checkpoint was opened since the last barrier.
        return _lastBarrier < coordinator.Requested ? SendOpenedBarriersAsync(coordinator, abort) : default;
    }

    private async ValueTask SendOpenedBarriersAsync(CheckpointCoordinator coordinator, CancellationToken abort)
    {
        var requested = coordinator.Requested;
        while (_lastBarrier < requested)
        {
            var id = ++_lastBarrier;
            var taken = _input.CreateCheckpoint(_run.Pipeline, Index, id);
            var positions = taken.Positions.ToArray();
            await PassBarrierAsync(new Checkpoint(taken.Pipeline, taken.Source, Index, id, positions, taken.SourceState) { Aligned = true }, abort).ConfigureAwait(false);
            _barrierPositions.Enqueue((id, positions));
            coordinator.AckSource(id, Index, positions);
        }
    }

    /// <summary>Commits the positions recorded at the newest checkpoint the store has completed, if not done yet.</summary>
    private ValueTask CommitCheckpointedAsync(CancellationToken abort)
    {
        var completed = _run.Checkpoints!.Completed;
        return completed <= _committedCheckpoint ? default : CommitCompletedAsync(completed, abort); // no state machine per batch
    }

    private async ValueTask CommitCompletedAsync(long completed, CancellationToken abort)
    {
        IReadOnlyList<SourcePosition>? positions = null;
        while (_barrierPositions.TryPeek(out var next) && next.Id <= completed)
        {
            positions = _barrierPositions.Dequeue().Positions;
        }

        _committedCheckpoint = completed;
        if (positions is not null)
        {
            await CommitAsync(abort, positions).ConfigureAwait(false);
        }
    }

    /// <summary>Passes a checkpoint's barrier through every port — into each exchange after its records; each sink's output durable as of it — then writes the dead letters.</summary>
    private async ValueTask PassBarrierAsync(Checkpoint checkpoint, CancellationToken abort)
    {
        foreach (var port in _context.Ports)
        {
            if (port is IExchangePort exchange)
            {
                await exchange.SendBarrierAsync(checkpoint.Sequence, abort).ConfigureAwait(false);
            }
            else
            {
                await port.DrainAsync(checkpoint, abort).ConfigureAwait(false);
            }
        }

        await FlushDeadLettersAsync(abort).ConfigureAwait(false);
    }

    /// <summary>
    /// A keyed partition whose inputs have all delivered the barrier: snapshots its window state, makes its sinks'
    /// output durable, forwards the barrier to the windows after it, acknowledges, and lets held-back input flow again.
    /// </summary>
    private ValueTask SnapshotIfAlignedAsync(CancellationToken abort)
        => _input is KeyedInput { AlignedBarrier: > 0 } keyed ? SnapshotAsync(keyed, abort) : default; // no state machine per batch

    private async ValueTask SnapshotAsync(KeyedInput keyed, CancellationToken abort)
    {
        var id = keyed.AlignedBarrier;
        var coordinator = _run.Checkpoints!;
        var snapshot = coordinator.RentBuffer();
        keyed.Stage!.Snapshot(keyed, snapshot, id);
        await PassBarrierAsync(new Checkpoint(_run.Pipeline, keyed.Name, Index, id, []) { Aligned = true }, abort).ConfigureAwait(false);
        keyed.ReleaseAlignment();
        if (coordinator.IsFinal(id))
        {
            keyed.Freeze();
        }

        coordinator.AckKeyed(id, keyed.StageIndex, Index, snapshot);
    }

    /// <summary>Hands what the last step produced to the ports, and makes the dead letters it caused durable.</summary>
    /// <remarks>
    /// Runs after every batch, so it stays synchronous while each port's flush completes synchronously (an empty
    /// buffer, an inline sink that did not wait): an async method's state machine per batch per call cost the runtime
    /// several percent of a fast loop's time at the default batch size (bench/RESULTS.md).
    /// </remarks>
    public ValueTask FlushAsync(CancellationToken abort)
    {
        if (Volatile.Read(ref _state) == Created)
        {
            Volatile.Write(ref _state, Running);
        }

        var ports = _context.Ports;
        for (var i = 0; i < ports.Count; i++)
        {
            var pending = ports[i].FlushAsync(abort);
            if (!pending.IsCompletedSuccessfully)
            {
                return FlushRestAsync(pending, i + 1, abort);
            }

            pending.GetAwaiter().GetResult(); // releases a pooled source, as an await would
        }

        return _run.DeadLetters.HasPending ? FlushDeadLettersAsync(abort) : default;
    }

    /// <summary>The rest of <see cref="FlushAsync"/> once a port's flush has to wait: that one, then the ports after it, then the dead letters.</summary>
    private async ValueTask FlushRestAsync(ValueTask pending, int next, CancellationToken abort)
    {
        await pending.ConfigureAwait(false);
        var ports = _context.Ports;
        for (var i = next; i < ports.Count; i++)
        {
            await ports[i].FlushAsync(abort).ConfigureAwait(false);
        }

        if (_run.DeadLetters.HasPending)
        {
            await FlushDeadLettersAsync(abort).ConfigureAwait(false);
        }
    }

    /// <summary>The partition ran out of memory: an error that says so, where, and how much keyed state it held — not .NET's bare message.</summary>
    private PipelineException OutOfMemory(Exception exception)
    {
        var state = _input is KeyedInput keyed ? $"; its keyed state held {keyed.StateEntries:N0} entries" : "";
        return new PipelineException(
            _run.Pipeline,
            $"Pipeline '{_run.Pipeline}' ran out of memory in partition {Index} of '{_input.Name}'{state}. Keyed state lives on the heap: give the process more memory (and check DOTNET_GCHeapHardLimit and container limits), or a shorter window, lateness or state time-to-live (see docs/state.md, 'Sizing: memory per key').",
            exception);
    }

    /// <summary>Emits what the last step released in batches (a window's firing), flushing the ports after each: memory holds one batch of results, not all of them.</summary>
    private ValueTask ProcessMoreAsync(CancellationToken abort)
        => _input.ProcessMore() ? FlushAndProcessMoreAsync(abort) : default; // no state machine when nothing was released

    /// <summary>A batch was released and run: flush it, then run and flush the next, until none is left.</summary>
    private async ValueTask FlushAndProcessMoreAsync(CancellationToken abort)
    {
        do
        {
            await FlushAsync(abort).ConfigureAwait(false);
        }
        while (_input.ProcessMore());
    }

    /// <summary>Ends a partition driven by hand (the test driver's source partition) as if its input had ended.</summary>
    public ValueTask CompleteAsync(CancellationToken abort) => FinishAsync(abort);

    /// <summary>The graceful end: what the input still holds, then every output durable (dead letters included), then the input may commit.</summary>
    private async ValueTask FinishAsync(CancellationToken abort)
    {
        if (_run.Checkpoints is { } coordinator && Stage == 0)
        {
            await FinishCheckpointedAsync(coordinator, abort).ConfigureAwait(false);
            return;
        }

        _input.Finish();
        await ProcessMoreAsync(abort).ConfigureAwait(false);
        var checkpoints = _input.CommitsPositions;
        if (checkpoints && !_input.CanCheckpoint)
        {
            // Stopped where the reader's positions cannot be resumed from (inside a CDC snapshot split): what it read
            // since its last checkpoint is dropped, as a crash would drop it, and is read again by the next run.
            await AbortAsync().ConfigureAwait(false);
            return;
        }

        if (checkpoints)
        {
            await CheckpointAsync(abort).ConfigureAwait(false);
        }

        await CompletePortsAsync(abort).ConfigureAwait(false);

        await FlushDeadLettersAsync(abort).ConfigureAwait(false);
        if (!checkpoints)
        {
            await CommitAsync(abort).ConfigureAwait(false);
        }

        Volatile.Write(ref _state, Completed);
    }

    /// <summary>
    /// A source partition of a run with checkpointed keyed state ends. On a stop: the final checkpoint's barrier, then
    /// the end of input (the windows keep what they hold), then, once the checkpoint is written, its positions are
    /// committed. At the end of the input: the partition counts as acknowledged in later checkpoints, the windows fire
    /// what its records completed, and the positions are committed.
    /// </summary>
    private async ValueTask FinishCheckpointedAsync(CheckpointCoordinator coordinator, CancellationToken abort)
    {
        _input.Finish();
        await ProcessMoreAsync(abort).ConfigureAwait(false);
        var stopping = _run.Stop.IsCancellationRequested || !_input.Ended;
        var final = stopping ? coordinator.RequestFinal() : 0;
        await SendBarriersAsync(abort).ConfigureAwait(false);
        if (!stopping)
        {
            coordinator.SourceEnded(Index, _input.CreateCheckpoint(_run.Pipeline, Index, 0).Positions.ToArray());
        }

        await CompletePortsAsync(abort).ConfigureAwait(false);

        await FlushDeadLettersAsync(abort).ConfigureAwait(false);
        if (stopping)
        {
            await coordinator.WaitCompletedAsync(final, abort).ConfigureAwait(false);
            await CommitCheckpointedAsync(abort).ConfigureAwait(false);
        }
        else
        {
            await CommitAsync(abort).ConfigureAwait(false);
        }

        Volatile.Write(ref _state, Completed);
    }

    /// <summary>
    /// Completes every port — but first tells every exchange this partition feeds that its input has ended, and only
    /// then waits for any of them. Completing an exchange waits for its consumers to finish, which needs every producer's
    /// end; one at a time, a partition that ended early held back its end on the second branch until the first
    /// branch's other producers ended too, and with it the second branch's watermark.
    /// </summary>
    private async ValueTask CompletePortsAsync(CancellationToken abort)
    {
        foreach (var port in _context.Ports)
        {
            if (port is IExchangePort exchange)
            {
                await exchange.EndAsync(abort).ConfigureAwait(false);
            }
        }

        foreach (var port in _context.Ports)
        {
            await port.CompleteAsync(abort).ConfigureAwait(false);
        }
    }

    private async ValueTask CommitAsync(CancellationToken abort, IReadOnlyList<SourcePosition>? positions = null)
    {
        try
        {
            if (positions is null)
            {
                await _input.CommitAsync(abort).ConfigureAwait(false);
            }
            else
            {
                await _input.CommitAsync(positions, abort).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or PipelineException))
        {
            throw new ConnectorException(_run.Pipeline, _input.Name, Index, "commit", ex);
        }
    }

    private async ValueTask FlushDeadLettersAsync(CancellationToken abort)
    {
        try
        {
            await _run.DeadLetters.FlushAsync(_run.Options, abort).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or PipelineException))
        {
            throw new ConnectorException(_run.Pipeline, "dead letters", Index, "write", ex);
        }
    }

    /// <summary>Drops what is buffered and closes every port without committing: the partition failed, or the run did.</summary>
    public async ValueTask AbortAsync()
    {
        var state = Volatile.Read(ref _state);
        if (state is Completed or Aborted || Interlocked.CompareExchange(ref _state, Aborted, state) != state)
        {
            return;
        }

        foreach (var port in _context.Ports)
        {
            try
            {
                await port.AbortAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The run's first failure is what gets reported; a second one while closing would only hide it.
            }
        }
    }

    /// <summary>
    /// Releases what the worker holds: aborts its ports unless it completed, disposes its input (the source reader) and
    /// the objects its partition owns. Safe to call more than once, and for a worker that never ran.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await AbortAsync().ConfigureAwait(false);
        Exception? failure = null;
        try
        {
            await _input.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = new ConnectorException(_run.Pipeline, _input.Name, Index, "close its reader", ex);
        }

        try
        {
            await _context.DisposeOwnedAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure ??= ex;
        }

        if (failure is not null)
        {
            ExceptionDispatchInfo.Capture(failure).Throw();
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{_run.Pipeline} stage {Stage} partition {Index}";
}
