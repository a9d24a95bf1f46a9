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

    internal PipelineTestDriver(IReadOnlyList<ISinkSlot> sinks, PartitionContext partition, FusedSegment<TIn> segment, DeadLetterChannel deadLetters, PipelineOptions options)
    {
        _sinks = sinks;
        _partition = partition;
        _segment = segment;
        _deadLetters = deadLetters;
        _options = options;
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

/// <summary>Starts <see cref="PipelineTestDriver{TIn}"/>s.</summary>
public static class PipelineTestDriver
{
    /// <summary>Opens the pipeline's sinks and prepares its fused loop.</summary>
    public static async Task<PipelineTestDriver<TIn>> StartAsync<TIn>(ICompiledPipeline pipeline, PipelineOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var job = pipeline.CreateJob() as PipelineJob<TIn>
            ?? throw new ArgumentException($"The pipeline's source does not produce '{typeof(TIn).Name}'.", nameof(pipeline));
        options ??= new PipelineOptions();
        var driverOptions = new PipelineOptions { Parallelism = 1, BatchSize = options.BatchSize, SinkQueueCapacity = options.SinkQueueCapacity };
        var binder = job.BoundSinks;
        foreach (var sink in binder.Slots)
        {
            await sink.OpenAsync(job.Descriptor.Name, driverOptions, cancellationToken).ConfigureAwait(false);
        }

        var ports = binder.Slots.Select(s => s.CreatePort(job.Descriptor.Name, 0, driverOptions, cancellationToken, forceInline: true)).ToArray();
        var deadLetters = new DeadLetterChannel(
            job.Descriptor.Name,
            options.ErrorPolicy ?? job.Descriptor.ErrorPolicy,
            PipelineRunner.DeadLetterSinkFor(job, options));
        var partition = new PartitionContext(0, 1, job.Descriptor, ports, deadLetters);
        return new PipelineTestDriver<TIn>(binder.Slots, partition, job.Segment(partition), deadLetters, driverOptions);
    }
}
