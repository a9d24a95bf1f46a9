using Compiled.Runtime;
using Compiled.Runtime.CompilerServices;

namespace Compiled.Testing;

/// <summary>
/// Drives a compiled pipeline by hand, on the calling thread: push records into its fused loop and read what its
/// sinks received. No source is read, no worker threads run, nothing waits on a real clock — a test of a pipeline's
/// logic is a plain function call (the model is Kafka Streams' TopologyTestDriver). The pipeline object is partition 0
/// of the source's loop; its sinks are opened and written inline after every push. Keyed stages behind exchanges run
/// through the same workers and exchanges as a real run, every exchange inline.
/// </summary>
/// <typeparam name="TIn">The pipeline's source record type.</typeparam>
public sealed class PipelineTestDriver<TIn> : IAsyncDisposable
{
    private readonly PipelineRun _run;
    private readonly ManualTimeProvider _time;
    private bool _completed;

    internal PipelineTestDriver(PipelineRun run, ManualTimeProvider time)
    {
        _run = run;
        _time = time;
    }

    /// <summary>The virtual clock, Unix milliseconds: processing-time windows and idle timeouts read it. Starts at 0.</summary>
    public long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Records the windows found too late for every window they belong to (dropped, or sent to a <c>[LateData]</c> sink).</summary>
    public long LateRecords => _run.LateRecords;

    /// <summary>
    /// Moves the virtual clock forward by <paramref name="time"/>: the keyed partitions' clock ticks run on the way, so
    /// idle inputs stop holding the watermark back once their idle timeout has passed, and processing-time windows
    /// fire (they look at the clock every 50 ms of it). Nothing waits.
    /// </summary>
    public void AdvanceTime(TimeSpan time)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        ArgumentOutOfRangeException.ThrowIfLessThan(time, TimeSpan.Zero);
        _time.Advance(time);
    }

    /// <summary>
    /// Moves the watermark of the driver's input to <paramref name="unixMilliseconds"/> (if it is later), as if the
    /// source had said no record at or before it will come: windows ending at or before it fire, and windows behind
    /// them see their watermark move in turn.
    /// </summary>
    public void AdvanceWatermark(long unixMilliseconds)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (_run.Windows.Count == 0)
        {
            throw new InvalidOperationException($"Pipeline '{Pipeline.Name}' has no window; watermarks only matter to keyed windows.");
        }

        _run.RaiseWatermark(unixMilliseconds);
    }

    /// <summary>Keys the windows hold state for now (keys × open windows, sessions), over every keyed partition.</summary>
    public long StateEntries => _run.Workers.Select(w => w.Input).OfType<KeyedInput>().Sum(i => (long)i.StateEntries);

    /// <summary>Keys dropped so far because their state outlived the window's <c>StateTimeToLive</c>.</summary>
    public long ExpiredKeys => _run.Windows.Sum(w => w.ExpiredKeys);

    /// <summary>Records an operator threw on so far (dead-lettered or skipped, by the error policy).</summary>
    public long OperatorFailures => _run.Context.DeadLetters.OperatorFailures;

    /// <summary>The pipeline's plan.</summary>
    public PipelineDescriptor Pipeline => _run.Context.Descriptor;

    /// <summary>Records pushed so far.</summary>
    public long RecordsPushed { get; private set; }

    /// <summary>Runs the fused loop over <paramref name="records"/> and hands its outputs to the sinks (through any windows).</summary>
    public void Push(ReadOnlySpan<TIn> records)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        RecordsPushed += records.Length;
        _run.Push(records);
    }

    /// <summary>Pushes the given records.</summary>
    public void Push(params TIn[] records) => Push(records.AsSpan());

    /// <summary>Ends the input — windows fire what they hold — then flushes and closes the sinks, as at the end of a run.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        Exception? failure = null;
        try
        {
            await _run.CompleteDrivenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = ex;
            _run.Context.Fail(ex);
        }

        var closing = await _run.CloseAsync().ConfigureAwait(false);
        if ((failure ?? closing) is { } error)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await CompleteAsync().ConfigureAwait(false);
}

/// <summary>Starts <see cref="PipelineTestDriver{TIn}"/>s.</summary>
public static class PipelineTestDriver
{
    /// <summary>
    /// Opens the pipeline's sinks and prepares its fused loops. The driver is one source partition; each window has
    /// <c>options.Parallelism</c> keyed partitions behind its exchange (1 without options); every push runs through them
    /// on the calling thread. The clock is virtual and starts at the Unix epoch (see <see cref="PipelineTestDriver{TIn}.AdvanceTime"/>).
    /// </summary>
    public static async Task<PipelineTestDriver<TIn>> StartAsync<TIn>(ICompiledPipeline pipeline, PipelineOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        cancellationToken.ThrowIfCancellationRequested();
        var job = pipeline.CreateJob() as PipelineJob<TIn>
            ?? throw new ArgumentException($"The pipeline's source does not produce '{typeof(TIn).Name}'.", nameof(pipeline));
        var keyedPartitions = options?.Parallelism ?? 1;
        options ??= new PipelineOptions();
        var driverOptions = new PipelineOptions
        {
            Parallelism = 1,
            BatchSize = options.BatchSize,
            SinkQueueCapacity = options.SinkQueueCapacity,
            ErrorPolicy = options.ErrorPolicy,
            StateBackend = options.StateBackend, // state on disk is tested as it runs (its live databases in StateDirectory)
            StateCacheKeys = options.StateCacheKeys,
            StateDirectory = options.StateDirectory,
            LoggerFactory = options.LoggerFactory, // what sinks and lookups warn of as the pushes run
        };
        var deadLetters = new DeadLetterChannel(
            job.Descriptor.Name,
            options.ErrorPolicy ?? job.Descriptor.ErrorPolicy,
            PipelineRunner.DeadLetterSinkFor(job, options));
        var time = new ManualTimeProvider(DateTimeOffset.UnixEpoch);
        var run = await PipelineRun.StartDrivenAsync(job, driverOptions, keyedPartitions, deadLetters, time).ConfigureAwait(false);
        return new PipelineTestDriver<TIn>(run, time);
    }
}
