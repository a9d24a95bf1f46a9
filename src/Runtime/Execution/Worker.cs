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

    /// <summary>Whether the input commits positions as it goes (Kafka): the worker then takes checkpoints.</summary>
    bool CommitsPositions { get; }

    /// <summary>The checkpoint of everything read so far (sources that commit positions).</summary>
    Checkpoint CreateCheckpoint(string pipeline, int partition, long number);

    /// <summary>Everything read so far is durable downstream: the source may commit its positions.</summary>
    ValueTask CommitAsync(CancellationToken cancellationToken);
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
            var checkpoints = _input.CommitsPositions;
            var interval = _run.Options.CheckpointInterval;
            while (true)
            {
                if (checkpoints && Stopwatch.GetElapsedTime(_lastCheckpoint) >= interval)
                {
                    await CheckpointAsync(abort).ConfigureAwait(false);
                }

                if (!await _input.ReadAsync(stop, abort).ConfigureAwait(false))
                {
                    break;
                }

                var started = Stopwatch.GetTimestamp();
                _input.Process();
                await FlushAsync(abort).ConfigureAwait(false);
                CompiledMeter.BatchDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds, _tags);
            }

            await FinishAsync(abort).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = ex;
            _run.Fail(ex);
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

    /// <summary>Hands what the last step produced to the ports, and makes the dead letters it caused durable.</summary>
    public async ValueTask FlushAsync(CancellationToken abort)
    {
        if (Volatile.Read(ref _state) == Created)
        {
            Volatile.Write(ref _state, Running);
        }

        var ports = _context.Ports;
        for (var i = 0; i < ports.Count; i++)
        {
            await ports[i].FlushAsync(abort).ConfigureAwait(false);
        }

        if (_run.DeadLetters.HasPending)
        {
            await FlushDeadLettersAsync(abort).ConfigureAwait(false);
        }
    }

    /// <summary>Ends a partition driven by hand (the test driver's source partition) as if its input had ended.</summary>
    public ValueTask CompleteAsync(CancellationToken abort) => FinishAsync(abort);

    /// <summary>The graceful end: what the input still holds, then every output durable (dead letters included), then the input may commit.</summary>
    private async ValueTask FinishAsync(CancellationToken abort)
    {
        _input.Finish();
        var checkpoints = _input.CommitsPositions;
        if (checkpoints)
        {
            await CheckpointAsync(abort).ConfigureAwait(false);
        }

        foreach (var port in _context.Ports)
        {
            await port.CompleteAsync(abort).ConfigureAwait(false);
        }

        await FlushDeadLettersAsync(abort).ConfigureAwait(false);
        if (!checkpoints)
        {
            await CommitAsync(abort).ConfigureAwait(false);
        }

        Volatile.Write(ref _state, Completed);
    }

    private async ValueTask CommitAsync(CancellationToken abort)
    {
        try
        {
            await _input.CommitAsync(abort).ConfigureAwait(false);
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
