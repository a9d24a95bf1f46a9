namespace Compiled.Runtime;

/// <summary>A source partition as a worker's input: its reader's batches run through the pipeline's first loop.</summary>
internal sealed class SourceInput<TIn>(RunContext run, string sourceName, int partition, ISourceReader<TIn> reader, FusedSegment<TIn> segment, IReadOnlyList<IExchangePort> exchanges) : IWorkerInput
{
    private readonly KeyValuePair<string, object?>[] _tags = [new("pipeline", run.Pipeline), new("source", sourceName)];
    private readonly OffsetOrigins _runOrigins = new();
    private SourceBatch<TIn> _batch;
    private long _recordsRead;
    private bool _ended;

    public string Name => sourceName;

    public long RecordsRead => Volatile.Read(ref _recordsRead);

    public bool Ended => _ended;

    public bool CommitsPositions => reader.CommitsPositions;

    public bool CanCheckpoint => reader.CanCheckpoint;

    /// <remarks>
    /// Called for every batch: a reader that has its batch at hand (a collection, a buffer already filled) is taken
    /// without an async state machine; a reader that waits, or throws, goes through <see cref="ReadPendingAsync"/>.
    /// </remarks>
    public ValueTask<bool> ReadAsync(CancellationToken stop, CancellationToken abort)
    {
        if (stop.IsCancellationRequested)
        {
            return new ValueTask<bool>(false);
        }

        ValueTask<SourceBatch<TIn>> pending;
        try
        {
            // The run's own token when the worker was given the run's stop (a stop or an abort wakes a waiting reader).
            pending = reader.ReadAsync(stop == run.Stop ? run.StopOrAbort : stop);
        }
        catch (Exception ex)
        {
            pending = ValueTask.FromException<SourceBatch<TIn>>(ex); // handled as if thrown while waiting
        }

        if (!pending.IsCompletedSuccessfully)
        {
            return ReadPendingAsync(pending, stop, abort);
        }

        _batch = pending.Result;
        return new ValueTask<bool>(Accept());
    }

    private async ValueTask<bool> ReadPendingAsync(ValueTask<SourceBatch<TIn>> pending, CancellationToken stop, CancellationToken abort)
    {
        try
        {
            _batch = await pending.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception ex) when (ex is not PipelineException)
        {
            // A sink's failure can surface through the source (a checkpoint the source started, as Kafka does on a
            // revoke): it is that sink's failure, not a failure to read.
            if (ConnectorException.Within(ex) is { } sink)
            {
                throw sink;
            }

            throw new ConnectorException(run.Pipeline, sourceName, partition, "read", ex);
        }

        return Accept();
    }

    /// <summary>Takes the batch just read: false at the end of input; an idle batch or the splits it names go to the exchanges.</summary>
    private bool Accept()
    {
        if (_batch.IsEnd)
        {
            _ended = true;
            return false;
        }

        if (_batch.IsIdle)
        {
            foreach (var exchange in exchanges)
            {
                exchange.DeclareIdle();
            }
        }

        if (_batch.Splits is { } splits)
        {
            foreach (var exchange in exchanges)
            {
                exchange.ReadSplits(splits);
            }
        }

        return true;
    }

    public void Process()
    {
        var records = _batch.Records;
        if (records.IsEmpty)
        {
            return;
        }

        Volatile.Write(ref _recordsRead, _recordsRead + records.Length);
        if (CompiledMeter.RecordsRead.Enabled)
        {
            CompiledMeter.RecordsRead.Add(records.Length, _tags);
        }
        if (_batch.Splits is not { Runs.Count: > 0 } splits || exchanges.Count == 0)
        {
            segment.Process(records.Span, _batch.Origins);
            return;
        }

        // A run at a time, so that the exchanges know which split each record they received came from.
        var span = records.Span;
        var offset = 0;
        foreach (var run in splits.Runs)
        {
            var count = Math.Min(run.Count, span.Length - offset);
            segment.Process(span.Slice(offset, count), _runOrigins.At(_batch.Origins, offset));
            foreach (var exchange in exchanges)
            {
                exchange.EndRun(run.Split);
            }

            offset += count;
        }

        if (offset < span.Length)
        {
            segment.Process(span[offset..], _runOrigins.At(_batch.Origins, offset));
        }
    }

    /// <summary>The origins of a run of a batch: the batch's, from the run's first record.</summary>
    private sealed class OffsetOrigins : IRecordOrigins
    {
        private IRecordOrigins? _batch;
        private int _offset;

        public RecordOrigin this[int index] => _batch![_offset + index];

        public IRecordOrigins? At(IRecordOrigins? batch, int offset)
        {
            if (batch is null || offset == 0)
            {
                return batch;
            }

            _batch = batch;
            _offset = offset;
            return this;
        }
    }

    /// <summary>Runs the loop over records handed in by the test driver, as if the reader had returned them.</summary>
    public void Push(ReadOnlySpan<TIn> records)
    {
        Volatile.Write(ref _recordsRead, _recordsRead + records.Length);
        segment.Process(records);
    }

    public void Finish()
    {
    }

    public Checkpoint CreateCheckpoint(string pipeline, int partition, long number)
        => new(pipeline, sourceName, partition, number, reader.Positions, reader.CheckpointState);

    public ValueTask CommitAsync(CancellationToken cancellationToken) => reader.CommitAsync(cancellationToken);

    public ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken) => reader.CommitAsync(positions, cancellationToken);

    public ValueTask DisposeAsync() => reader.DisposeAsync();
}
