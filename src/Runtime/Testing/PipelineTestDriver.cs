namespace Compiled.Runtime.Testing;

/// <summary>
/// Drives a compiled pipeline by hand, on the calling thread: push records into its fused loop and read what its
/// sinks received. No source is read, no worker threads run, nothing waits on a clock — a test of a pipeline's logic
/// is a plain function call (the model is Kafka Streams' TopologyTestDriver). The pipeline object is partition 0; its
/// sinks are opened for one partition and written inline after every push.
/// </summary>
/// <typeparam name="TIn">The pipeline's source record type.</typeparam>
public sealed class PipelineTestDriver<TIn> : IAsyncDisposable
{
    private readonly IReadOnlyList<ISinkSlot> _sinks;
    private readonly PartitionContext _partition;
    private readonly FusedSegment<TIn> _segment;
    private bool _completed;

    private readonly DeadLetterChannel _deadLetters;
    private readonly PipelineOptions _options;
    private readonly KeyedStage? _keyed;
    private readonly VirtualClock _clock;

    internal PipelineTestDriver(IReadOnlyList<ISinkSlot> sinks, PartitionContext partition, FusedSegment<TIn> segment, DeadLetterChannel deadLetters, PipelineOptions options, KeyedStage? keyed, VirtualClock clock)
    {
        _sinks = sinks;
        _partition = partition;
        _segment = segment;
        _deadLetters = deadLetters;
        _options = options;
        _keyed = keyed;
        _clock = clock;
    }

    /// <summary>The virtual clock, Unix milliseconds: processing-time windows and idle timeouts read it. Starts at 0.</summary>
    public long Now => _clock.Now;

    /// <summary>Records a keyed window found too late for every window they belong to.</summary>
    public long LateRecords => _keyed?.LateRecords ?? 0;

    /// <summary>
    /// Moves the virtual clock forward by <paramref name="time"/>: idle inputs stop holding the watermark back once
    /// their idle timeout has passed, and processing-time windows fire. Nothing waits.
    /// </summary>
    public void AdvanceTime(TimeSpan time)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        ArgumentOutOfRangeException.ThrowIfLessThan(time, TimeSpan.Zero);
        _clock.Now += (long)time.TotalMilliseconds;
        _keyed?.Tick();
    }

    /// <summary>
    /// Moves the watermark of the driver's input to <paramref name="unixMilliseconds"/> (if it is later), as if the
    /// source had said no record at or before it will come: windows ending at or before it fire.
    /// </summary>
    public void AdvanceWatermark(long unixMilliseconds)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (_keyed is null)
        {
            throw new InvalidOperationException($"Pipeline '{_partition.Pipeline.Name}' has no window; watermarks only matter to keyed windows.");
        }

        _keyed.AdvanceWatermark(0, unixMilliseconds);
    }

    /// <summary>Records an operator threw on so far (dead-lettered or skipped, by the error policy).</summary>
    public long OperatorFailures => _deadLetters.OperatorFailures;

    /// <summary>The pipeline's plan.</summary>
    public PipelineDescriptor Pipeline => _partition.Pipeline;

    /// <summary>Records pushed so far.</summary>
    public long RecordsPushed { get; private set; }

    /// <summary>Runs the fused loop over <paramref name="records"/> and hands its outputs to the sinks.</summary>
    public void Push(ReadOnlySpan<TIn> records)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        RecordsPushed += records.Length;
        _segment.Process(records);
        var ports = _partition.Ports;
        for (var i = 0; i < ports.Count; i++)
        {
            var flushing = ports[i].FlushAsync(CancellationToken.None);
            if (!flushing.IsCompletedSuccessfully)
            {
                flushing.AsTask().GetAwaiter().GetResult(); // a sink that really is asynchronous: wait for it here
            }
        }

        if (_deadLetters.HasPending)
        {
            _deadLetters.FlushAsync(_options, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>Pushes the given records.</summary>
    public void Push(params TIn[] records) => Push(records.AsSpan());

    /// <summary>Flushes and closes the sinks, as at the end of a run.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        foreach (var port in _partition.Ports)
        {
            await port.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        foreach (var sink in _sinks)
        {
            await sink.CloseAsync(cancellationToken).ConfigureAwait(false);
        }

        await _deadLetters.DisposeAsync().ConfigureAwait(false);
        await _partition.DisposeOwnedAsync().ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await CompleteAsync().ConfigureAwait(false);
}

/// <summary>The test driver's clock: moves only when told.</summary>
internal sealed class VirtualClock
{
    public long Now { get; set; }
}

/// <summary>Starts <see cref="PipelineTestDriver{TIn}"/>s.</summary>
public static class PipelineTestDriver
{
    /// <summary>
    /// Opens the pipeline's sinks and prepares its fused loop. For a keyed pipeline, <c>options.Parallelism</c> keyed
    /// partitions sit behind the exchange (the driver itself is one input partition); every push runs through them
    /// on the calling thread.
    /// </summary>
    public static async Task<PipelineTestDriver<TIn>> StartAsync<TIn>(ICompiledPipeline pipeline, PipelineOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var job = pipeline.CreateJob() as PipelineJob<TIn>
            ?? throw new ArgumentException($"The pipeline's source does not produce '{typeof(TIn).Name}'.", nameof(pipeline));
        var keyedPartitions = options?.Parallelism ?? 1; // keyed partitions behind the exchange: 1 unless the options say
        options ??= new PipelineOptions();
        var driverOptions = new PipelineOptions { Parallelism = 1, BatchSize = options.BatchSize, SinkQueueCapacity = options.SinkQueueCapacity };
        var binder = job.BoundSinks;
        var keyedOptions = new PipelineOptions { Parallelism = job.Keyed is null ? 1 : keyedPartitions, BatchSize = options.BatchSize, SinkQueueCapacity = options.SinkQueueCapacity };
        foreach (var sink in binder.Slots)
        {
            await sink.OpenAsync(job.Descriptor.Name, keyedOptions, cancellationToken).ConfigureAwait(false);
        }

        var deadLetters = new DeadLetterChannel(
            job.Descriptor.Name,
            options.ErrorPolicy ?? job.Descriptor.ErrorPolicy,
            PipelineRunner.DeadLetterSinkFor(job, options));
        var keyed = job.Keyed;
        var clock = new VirtualClock();
        if (keyed is not null)
        {
            // The driver is one input partition; the keyed partitions behind the exchange are as many as the options say.
            keyed.Validate(job.Descriptor.Name);
            keyed.Start(new KeyedRun(1, job.Descriptor, binder.Slots, keyedOptions, deadLetters, () => clock.Now, CancellationToken.None), synchronous: true);
        }

        var ports = new IOutputPort?[binder.Slots.Count + (keyed is null ? 0 : 1)];
        for (var s = 0; s < binder.Slots.Count; s++)
        {
            if (keyed is null || !keyed.OwnsSlot(s, binder.Slots[s].Stage))
            {
                ports[s] = binder.Slots[s].CreatePort(job.Descriptor.Name, 0, driverOptions, cancellationToken, forceInline: true);
            }
        }

        if (keyed is not null)
        {
            ports[binder.Slots.Count] = keyed.CreateInput(0, CancellationToken.None);
        }

        var partition = new PartitionContext(0, 1, job.Descriptor, ports, deadLetters);
        return new PipelineTestDriver<TIn>(binder.Slots, partition, job.Segment(partition), deadLetters, driverOptions, keyed, clock);
    }
}
