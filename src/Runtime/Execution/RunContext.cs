namespace Compiled.Runtime;

/// <summary>
/// What every worker of a run shares: the plan, the options, the dead letters, the clock, and the run's two signals —
/// stop (sources stop reading; everything drains) and abort (everything stops now, nothing more is committed). The
/// first failure anywhere aborts the run; it is the failure the run reports.
/// </summary>
internal sealed class RunContext : IDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly CancellationTokenSource _abort;
    private Exception? _failure;

    public RunContext(PipelineDescriptor descriptor, PipelineOptions options, DeadLetterChannel deadLetters, RunClock clock, CancellationToken stop, CancellationToken abort)
    {
        Descriptor = descriptor;
        Options = options;
        DeadLetters = deadLetters;
        Clock = clock;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _abort = CancellationTokenSource.CreateLinkedTokenSource(abort);
        _stopOrAbort = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, _abort.Token);
    }

    private readonly CancellationTokenSource _stopOrAbort;

    /// <summary>Cancelled by a stop or an abort: what a source reader waiting for data is given.</summary>
    public CancellationToken StopOrAbort => _stopOrAbort.Token;

    public PipelineDescriptor Descriptor { get; }

    public string Pipeline => Descriptor.Name;

    public PipelineOptions Options { get; }

    public DeadLetterChannel DeadLetters { get; }

    public RunClock Clock { get; }

    /// <summary>Sources stop reading at their next batch boundary; the run drains.</summary>
    public CancellationToken Stop => _stop.Token;

    /// <summary>The run's checkpoints of keyed state (runs with windows behind a source that commits positions), else null.</summary>
    public CheckpointCoordinator? Checkpoints { get; set; }

    /// <summary>Everything stops without draining: a failure, the caller's abort, or the grace period running out.</summary>
    public CancellationToken Abort => _abort.Token;

    /// <summary>The run's failure: the first one that is not a cancellation it caused, else the first.</summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>Whether the run was aborted (by a failure, the caller, or the grace period).</summary>
    public bool IsAborted => _abort.IsCancellationRequested;

    /// <summary>Records a failure and aborts the run. A cancellation that follows a real failure never replaces it.</summary>
    public void Fail(Exception exception)
    {
        var current = Volatile.Read(ref _failure);
        while (current is null || (IsCancellation(current) && !IsCancellation(exception)))
        {
            var seen = Interlocked.CompareExchange(ref _failure, exception, current);
            if (ReferenceEquals(seen, current))
            {
                break;
            }

            current = seen;
        }

        Cancel(_abort);
    }

    /// <summary>Asks the run to stop: sources stop reading, everything drains.</summary>
    public void RequestStop() => Cancel(_stop);

    /// <summary>Aborts the run without a failure of its own (the grace period ran out).</summary>
    public void RequestAbort() => Cancel(_abort);

    private static bool IsCancellation(Exception exception)
        => exception is OperationCanceledException or ConnectorException { InnerException: OperationCanceledException };

    private static void Cancel(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the run already ended
        }
    }

    public void Dispose()
    {
        _stopOrAbort.Dispose();
        _stop.Dispose();
        _abort.Dispose();
    }
}
