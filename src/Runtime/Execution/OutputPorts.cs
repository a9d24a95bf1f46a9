using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Compiled.Runtime;

/// <summary>A sink as the runner sees it: opened once, one port per partition, closed once.</summary>
internal interface ISinkSlot
{
    string Name { get; }

    int Stage { get; }

    object Connector { get; }

    SinkExecution Execution { get; }

    string Description { get; }

    long Written { get; }

    ValueTask OpenAsync(string pipelineName, PipelineOptions options, IDeadLetterChannel? deadLetters, CancellationToken cancellationToken);

    IOutputPort CreatePort(string pipelineName, int partition, PipelineOptions options, CancellationToken abort, bool forceInline = false);

    ValueTask CloseAsync(CancellationToken cancellationToken);
}

internal sealed class SinkSlot<T>(string name, int stage, ISink<T> sink, Compiled.RecordSchema<T>? schema) : ISinkSlot
{
    private long _written;
    private KeyValuePair<string, object?>[] _tags = [];

    public string Name { get; } = name;

    public int Stage { get; } = stage;

    public object Connector => sink;

    /// <summary>The record type's compile-time schema, as the generated job bound it.</summary>
    public Compiled.RecordSchema<T>? Schema => schema;

    public SinkExecution Execution => sink.Execution;

    public string Description => sink.Describe();

    public long Written => Interlocked.Read(ref _written);

    public ValueTask OpenAsync(string pipelineName, PipelineOptions options, IDeadLetterChannel? deadLetters, CancellationToken cancellationToken)
    {
        _tags = [new("pipeline", pipelineName), new("sink", Name)];
        var logger = options.LoggerFactory?.CreateLogger("Compiled.Pipeline");
        return sink.OpenAsync(new SinkContext<T>(pipelineName, Name, options.Parallelism, options.BatchSize, schema) { Warn = logger is null ? null : message => Log.SinkWarning(logger, pipelineName, Name, message), DeadLetters = deadLetters }, cancellationToken);
    }

    public IOutputPort CreatePort(string pipelineName, int partition, PipelineOptions options, CancellationToken abort, bool forceInline = false)
    {
        var writer = sink.CreateWriter(partition);
        return forceInline || sink.Execution == SinkExecution.Inline
            ? new InlineOutputPort<T>(this, writer, pipelineName, partition, options.BatchSize)
            : new DecoupledOutputPort<T>(this, writer, pipelineName, partition, options.BatchSize, options.SinkQueueCapacity, abort);
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken) => sink.CloseAsync(cancellationToken);

    public void Count(int records)
    {
        Interlocked.Add(ref _written, records);
        CompiledMeter.RecordsWritten.Add(records, _tags);
    }
}

/// <summary>One partition's output towards one sink, as the partition worker drives it.</summary>
internal interface IOutputPort
{
    /// <summary>Batches waiting in the port's queue (0 for inline ports).</summary>
    int Queued { get; }

    /// <summary>The queue's capacity in batches (0 for inline ports).</summary>
    int Capacity { get; }

    /// <summary>Hands the records buffered by the last batch to the sink (waits while the sink's queue is full).</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken);

    /// <summary>Waits until everything handed over so far is durable in the sink.</summary>
    /// <summary>Makes everything handed to the port so far durable; with a checkpoint, as of that checkpoint (see <see cref="ISinkWriter{T}.CommitAsync"/>).</summary>
    ValueTask DrainAsync(Checkpoint? checkpoint, CancellationToken cancellationToken);

    /// <summary>Flushes, drains and closes the writer: the graceful end of the partition.</summary>
    ValueTask CompleteAsync(CancellationToken cancellationToken);

    /// <summary>Drops what is buffered and closes the writer after the queue empties: the end of a failed partition.</summary>
    ValueTask AbortAsync();
}

/// <summary>A port with a buffer a fused loop appends to.</summary>
internal interface IBufferedPort<T>
{
    Compiled.RecordBuffer<T> Buffer { get; }
}

/// <summary>The buffer a fused loop writes into for one sink, and the way its contents reach the sink's writer.</summary>
internal abstract class OutputPort<T>(SinkSlot<T> slot, ISinkWriter<T> writer, string pipelineName, int partition, int batchSize) : IOutputPort, IBufferedPort<T>
{
    public Compiled.RecordBuffer<T> Buffer { get; } = new(batchSize);

    protected SinkSlot<T> Slot { get; } = slot;

    protected ISinkWriter<T> Writer { get; } = writer;

    protected int BatchSize { get; } = batchSize;

    public virtual int Queued => 0;

    public virtual int Capacity => 0;

    public abstract ValueTask FlushAsync(CancellationToken cancellationToken);

    public abstract ValueTask DrainAsync(Checkpoint? checkpoint, CancellationToken cancellationToken);

    public abstract ValueTask CompleteAsync(CancellationToken cancellationToken);

    public abstract ValueTask AbortAsync();

    protected ConnectorException Failure(string action, Exception exception)
        => exception as ConnectorException ?? new ConnectorException(pipelineName, Slot.Name, partition, action, exception);

    private int _closed;

    /// <summary>Releases the writer once: disposed after a complete partition, aborted (<see cref="ISinkWriter{T}.AbortAsync"/>) otherwise.</summary>
    protected async ValueTask CloseWriterAsync(bool aborting)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        try
        {
            if (aborting)
            {
                await Writer.AbortAsync().ConfigureAwait(false);
            }
            else
            {
                await Writer.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            throw Failure("close", ex);
        }
    }
}

/// <summary>Calls the writer on the partition's own worker, after each batch: for cheap in-memory sinks.</summary>
internal sealed class InlineOutputPort<T>(SinkSlot<T> slot, ISinkWriter<T> writer, string pipelineName, int partition, int batchSize)
    : OutputPort<T>(slot, writer, pipelineName, partition, batchSize)
{
    public override ValueTask FlushAsync(CancellationToken cancellationToken)
        => Buffer.Count == 0 ? default : WriteAsync(cancellationToken); // after every batch: no state machine when the loop wrote nothing here

    private async ValueTask WriteAsync(CancellationToken cancellationToken)
    {
        var count = Buffer.Count;
        try
        {
            await Writer.WriteAsync(Buffer.Memory, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw Failure("write", ex);
        }

        Slot.Count(count);
        Buffer.Reset();
    }

    public override async ValueTask DrainAsync(Checkpoint? checkpoint, CancellationToken cancellationToken)
    {
        try
        {
            await FlushAsync(cancellationToken).ConfigureAwait(false);
            if (checkpoint is null)
            {
                await Writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await Writer.CommitAsync(checkpoint, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw Failure("flush", ex);
        }
    }

    public override async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        await DrainAsync(null, cancellationToken).ConfigureAwait(false);
        Buffer.Clear();
        await CloseWriterAsync(aborting: false).ConfigureAwait(false);
    }

    public override async ValueTask AbortAsync()
    {
        Buffer.Clear();
        await CloseWriterAsync(aborting: true).ConfigureAwait(false);
    }
}

/// <summary>
/// Puts a bounded queue of batches and a worker of its own between the partition and the writer, so processing
/// overlaps the sink's I/O. When the queue is full the partition waits: backpressure reaches the source, and memory
/// stays bounded (the queue's capacity, plus the batch being written and the one being filled).
/// </summary>
internal sealed class DecoupledOutputPort<T> : OutputPort<T>
{
    private readonly Channel<Work> _queue;
    private readonly Channel<T[]> _free;
    private readonly Task _worker;
    private readonly CancellationToken _abort;
    private Exception? _failure;
    private volatile bool _aborted;

    public DecoupledOutputPort(SinkSlot<T> slot, ISinkWriter<T> writer, string pipelineName, int partition, int batchSize, int capacity, CancellationToken abort)
        : base(slot, writer, pipelineName, partition, batchSize)
    {
        _queue = Channel.CreateBounded<Work>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _free = Channel.CreateUnbounded<T[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        _abort = abort;
        Capacity = capacity;
        _worker = Task.Run(WriteLoopAsync, CancellationToken.None);
    }

    /// <summary>The partition was aborted, or the run is aborting: nothing more is written or flushed.</summary>
    private bool Aborting => _aborted || _abort.IsCancellationRequested;

    public override int Queued => _queue.Reader.Count;

    public override int Capacity { get; }

    public override ValueTask FlushAsync(CancellationToken cancellationToken)
        => Buffer.Count == 0 ? default : EnqueueBufferAsync(cancellationToken); // after every batch: no state machine when the loop wrote nothing here

    private ValueTask EnqueueBufferAsync(CancellationToken cancellationToken)
    {
        var replacement = _free.Reader.TryRead(out var recycled) ? recycled : new T[BatchSize];
        var full = Buffer.Exchange(replacement, out var count);
        return EnqueueAsync(new Work(full, count, null), cancellationToken);
    }

    public override async ValueTask DrainAsync(Checkpoint? checkpoint, CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken).ConfigureAwait(false);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await EnqueueAsync(new Work(null, 0, done, checkpoint), cancellationToken).ConfigureAwait(false);
        await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public override async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken).ConfigureAwait(false);
        _queue.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
        if (_failure is not null)
        {
            throw Failure("write", _failure);
        }

        Buffer.Clear();
    }

    public override async ValueTask AbortAsync()
    {
        // Nothing queued reaches the writer any more, and it is not flushed: an aborted partition's records are not
        // committed (for a transactional sink that would be rows without their positions).
        _aborted = true;
        Buffer.Clear();
        _queue.Writer.TryComplete();
        try
        {
            await _worker.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // aborting: the worker's own cancellation is expected
        }
    }

    private async ValueTask EnqueueAsync(Work work, CancellationToken cancellationToken)
    {
        try
        {
            await _queue.Writer.WriteAsync(work, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException) when (_failure is not null)
        {
            throw Failure("write", _failure);
        }
    }

    private async Task WriteLoopAsync()
    {
        TaskCompletionSource? current = null;
        try
        {
            await foreach (var work in _queue.Reader.ReadAllAsync(_abort).ConfigureAwait(false))
            {
                // ReadAllAsync hands out what is queued without looking at the token again: an abort (the grace period
                // ran out) must not wait for the writer to take every queued batch, which a writer that does not watch
                // its token would do at its own pace (an outside test: 13 batches, 6 s past a 500 ms grace period).
                if (Aborting)
                {
                    work.Drained?.TrySetCanceled();
                    continue;
                }

                if (work.Drained is { } drained)
                {
                    current = drained;
                    if (work.Checkpoint is null)
                    {
                        await Writer.FlushAsync(_abort).ConfigureAwait(false);
                    }
                    else
                    {
                        await Writer.CommitAsync(work.Checkpoint, _abort).ConfigureAwait(false);
                    }

                    drained.TrySetResult();
                    current = null;
                    continue;
                }

                await Writer.WriteAsync(new ReadOnlyMemory<T>(work.Items, 0, work.Count), _abort).ConfigureAwait(false);
                Slot.Count(work.Count);
                if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
                {
                    Array.Clear(work.Items!, 0, work.Count);
                }

                _free.Writer.TryWrite(work.Items!);
            }

            if (!Aborting)
            {
                await Writer.FlushAsync(_abort).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            _failure = ex;
            _queue.Writer.TryComplete(ex);
            current?.TrySetException(Failure("write", ex)); // the drain being served when the writer failed
            FailPendingDrains(ex);
        }
        finally
        {
            try
            {
                // A writer that failed, or whose partition is aborted, did not complete: it is aborted, not disposed.
                await CloseWriterAsync(aborting: Aborting || _failure is not null).ConfigureAwait(false);
            }
            catch (Exception ex) when (_failure is null)
            {
                _failure = ex;
            }
        }
    }

    private void FailPendingDrains(Exception exception)
    {
        while (_queue.Reader.TryRead(out var pending))
        {
            pending.Drained?.TrySetException(Failure("write", exception));
        }
    }

    private readonly record struct Work(T[]? Items, int Count, TaskCompletionSource? Drained, Checkpoint? Checkpoint = null);
}
