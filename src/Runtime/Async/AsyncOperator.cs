using System.Runtime.CompilerServices;

namespace Compiled.Runtime;

/// <summary>How an asynchronous transform's result becomes output records: one record, or each element of a sequence.</summary>
internal interface IAsyncResultShape<TCall, TOut>
{
    static abstract void Emit(RecordBuffer<TOut> results, TCall value);
}

/// <summary>A map: the call's result is the record.</summary>
internal readonly struct SingleResult<T> : IAsyncResultShape<T, T>
{
    public static void Emit(RecordBuffer<T> results, T value) => results.Add(value);
}

/// <summary>A flatMap: each element of the call's result is a record (none for null or empty).</summary>
internal readonly struct ManyResults<T> : IAsyncResultShape<IEnumerable<T>, T>
{
    public static void Emit(RecordBuffer<T> results, IEnumerable<T> value)
    {
        if (value is null)
        {
            return;
        }

        foreach (var item in value)
        {
            results.Add(item);
        }
    }
}

/// <summary>
/// One partition of an asynchronous transform. <see cref="PrepareAsync"/> calls the user's method for every record of
/// the batch with at most <see cref="AsyncSettings.MaxInFlight"/> calls in flight (lanes that each take the next record
/// when their call completes), retries and times out attempts, and returns once every record of the batch has a
/// result or has failed; <see cref="Add"/> then emits the results — in arrival order, or in completion order — and
/// hands failures to the error policy. A batch is finished before the partition reads the next one, so a checkpoint
/// barrier (which travels between batches) never passes a request in flight: nothing is lost or repeated on a restore.
/// </summary>
internal sealed class AsyncOperator<TIn, TCall, TOut, TShape> : KeyedOperator<int, TIn, TOut>, IAsyncDisposable
    where TShape : IAsyncResultShape<TCall, TOut>
{
    private readonly Func<TIn, CancellationToken, ValueTask<TCall>> _call;
    private readonly int _maxInFlight;
    private readonly TimeSpan _timeout;
    private readonly int _maxAttempts;
    private readonly TimeSpan _backoff;
    private readonly bool _ordered;
    private readonly TimeProvider _time;
    private readonly AsyncStatistics _statistics;
    private readonly PartitionContext _context;
    private readonly StageDescriptor _stage;
    private readonly CancellationTokenSource?[] _lanes;
    private readonly ValueTask[] _running;
    private TCall?[] _results = new TCall?[64];
    private Exception?[] _errors = new Exception?[64];
    private int[] _completed = new int[64];
    private ReadOnlyMemory<Keyed<int, TIn>> _batch;
    private int _next;
    private int _done;
    private int _inFlight;
    private CancellationToken _abort;

    public AsyncOperator(Func<TIn, CancellationToken, ValueTask<TCall>> call, AsyncSettings settings, TimeProvider time, AsyncStatistics statistics, PartitionContext context, int stage)
    {
        _call = call;
        _maxInFlight = settings.MaxInFlight;
        _timeout = settings.Timeout ?? System.Threading.Timeout.InfiniteTimeSpan;
        _maxAttempts = settings.MaxAttempts;
        _backoff = settings.RetryBackoff;
        _ordered = settings.Ordered;
        _time = time;
        _statistics = statistics;
        _context = context;
        _stage = context.Pipeline.Stages[stage];
        _lanes = new CancellationTokenSource?[_maxInFlight];
        _running = new ValueTask[_maxInFlight];
    }

    /// <summary>An asynchronous transform keeps no state between batches.</summary>
    public override int StateEntries => 0;

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2012:Use ValueTasks correctly", Justification = "Each lane's ValueTask is stored once and awaited exactly once, below, before the batch is let go.")]
    public override async ValueTask PrepareAsync(ReadOnlyMemory<Keyed<int, TIn>> batch, CancellationToken cancellationToken)
    {
        if (_results.Length < batch.Length)
        {
            var size = Math.Max(batch.Length, _results.Length * 2);
            _results = new TCall?[size];
            _errors = new Exception?[size];
            _completed = new int[size];
        }

        _batch = batch;
        _next = -1;
        _done = 0;
        _abort = cancellationToken;
        var lanes = Math.Min(_maxInFlight, batch.Length);
        using var cancel = cancellationToken.Register(static state => ((AsyncOperator<TIn, TCall, TOut, TShape>)state!).CancelLanes(), this);
        for (var lane = 0; lane < lanes; lane++)
        {
            _running[lane] = RunLaneAsync(lane);
        }

        Exception? failure = null;
        for (var lane = 0; lane < lanes; lane++)
        {
            try
            {
                await _running[lane].ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                failure ??= ex; // the run is aborting; every lane is still awaited before the batch is let go
            }

            _running[lane] = default;
        }

        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }
    }

    private void CancelLanes()
    {
        foreach (var lane in _lanes)
        {
            try
            {
                lane?.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>One lane: takes the batch's next record, calls for it until it has a result or has failed, and repeats.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask RunLaneAsync(int lane)
    {
        var count = _batch.Length;
        while (true)
        {
            var i = Interlocked.Increment(ref _next);
            if (i >= count)
            {
                return;
            }

            _statistics.InFlight(Interlocked.Increment(ref _inFlight));
            try
            {
                await CallWithRetriesAsync(lane, i).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }

            _completed[Interlocked.Increment(ref _done) - 1] = i;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask CallWithRetriesAsync(int lane, int i)
    {
        var record = _batch.Span[i].Record;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                _results[i] = await CallOnceAsync(lane, record).ConfigureAwait(false);
                _errors[i] = null;
                return;
            }
            catch (Exception ex) when (!_abort.IsCancellationRequested)
            {
                if (ex is NonRetryableException || attempt >= _maxAttempts)
                {
                    _errors[i] = ex;
                    return;
                }
            }

            _statistics.Retried();
            var wait = _backoff * Math.Pow(2, Math.Min(attempt - 1, 16));
            await Task.Delay(wait, _time, _abort).ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<TCall> CallOnceAsync(int lane, TIn record)
    {
        var source = _lanes[lane] ??= new CancellationTokenSource(System.Threading.Timeout.InfiniteTimeSpan, _time);
        if (_abort.IsCancellationRequested)
        {
            source.Cancel();
        }
        else if (_timeout != System.Threading.Timeout.InfiniteTimeSpan)
        {
            source.CancelAfter(_timeout);
        }

        _statistics.Called();
        try
        {
            var pending = _call(record, source.Token);
            if (pending.IsCompleted || _timeout == System.Threading.Timeout.InfiniteTimeSpan)
            {
                return await pending.ConfigureAwait(false);
            }

            // The user's method may ignore its token: the wait ends at the timeout whether or not the call does.
            return await pending.AsTask().WaitAsync(source.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (source.IsCancellationRequested && !_abort.IsCancellationRequested)
        {
            _statistics.TimedOut();
            throw new TimeoutException($"The call did not complete within {Setting.FormatDuration(_timeout)}.");
        }
        finally
        {
            if (!source.TryReset())
            {
                source.Dispose();
                _lanes[lane] = null;
            }
        }
    }

    public override void Add(ReadOnlySpan<Keyed<int, TIn>> batch)
    {
        var results = Results;
        var failed = 0L;
        for (var k = 0; k < batch.Length; k++)
        {
            var i = _ordered ? k : _completed[k];
            if (_errors[i] is { } error)
            {
                _errors[i] = null;
                failed++;
                Fail(batch[i].Record, error);
                continue;
            }

            TShape.Emit(results, _results[i]!);
            _results[i] = default;
        }

        if (failed > 0)
        {
            _statistics.AddFailed(failed);
        }
    }

    /// <summary>A record whose every attempt failed: under fail-fast the run stops; otherwise it is dead-lettered (or skipped) with its text.</summary>
    private void Fail(in TIn record, Exception error)
    {
        var channel = _context.DeadLetters;
        if (channel.Policy == ErrorPolicy.FailFast)
        {
            throw new OperatorException(_context.Pipeline.Name, _stage, _context.Index, error);
        }

        var origin = new RecordOrigin(_stage.Name, null, null, null, System.Text.Encoding.UTF8.GetBytes(record?.ToString() ?? ""));
        channel.Report(new FailedRecord(FailureKind.Operator, _context.Index, _stage.Name, origin, error.GetType().FullName ?? error.GetType().Name, error.Message));
    }

    /// <summary>An asynchronous transform holds nothing back: its watermark is its input's.</summary>
    public override void Advance(long watermark)
    {
        if (watermark > Watermark)
        {
            Watermark = watermark;
        }
    }

    public ValueTask DisposeAsync()
    {
        for (var lane = 0; lane < _lanes.Length; lane++)
        {
            _lanes[lane]?.Dispose();
            _lanes[lane] = null;
        }

        return ValueTask.CompletedTask;
    }
}
