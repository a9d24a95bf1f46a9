using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// The base of the job class the generator emits for each pipeline: it binds the pipeline's connectors and creates
/// its fused segments. <typeparamref name="TIn"/> is the source's record type.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract class PipelineJob<TIn> : IPipelineJob, IDeadLetterTarget, IPipelineJobSlots
{
    /// <summary>Creates a job for the plan <paramref name="descriptor"/>.</summary>
    protected PipelineJob(PipelineDescriptor descriptor)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        Descriptor = descriptor;
    }

    /// <inheritdoc/>
    public PipelineDescriptor Descriptor { get; }

    /// <summary>The compile-time schema of the source's records, when they have fields.</summary>
    protected virtual Compiled.RecordSchema<TIn>? SourceSchema => null;

    /// <summary>The dead-letter sink the pipeline declares with <c>[DeadLetters]</c>, if any.</summary>
    protected virtual ISink<DeadLetter>? DeadLetterSink => null;

    internal ISink<DeadLetter>? DeclaredDeadLetterSink => DeadLetterSink;

    private ISource<TIn>? _source;
    private SinkBinder? _sinks;
    private ConnectorInfo[]? _connectors;

    /// <inheritdoc/>
    public IReadOnlyList<ConnectorInfo> Connectors
    {
        get
        {
            if (_connectors is null)
            {
                var source = BoundSource;
                var sinks = BoundSinks.Slots;
                var connectors = new List<ConnectorInfo>(sinks.Count + 1);
                if (source is UnionSource<TIn> union)
                {
                    // Several [Source] members read as one stream: each is a connector of its own, with its own settings.
                    for (var i = 0; i < union.Members.Count; i++)
                    {
                        var member = union.Members[i];
                        var connector = member is ISideSource side ? side.Inner : member; // one side of a join: its settings are the member's
                        connectors.Add(new ConnectorInfo(union.Names[i], 0, ConnectorRole.Source, connector, member.Describe, null));
                    }
                }
                else
                {
                    connectors.Add(new ConnectorInfo(Descriptor.Stages[0].Name, 0, ConnectorRole.Source, source, source.Describe, null));
                }

                foreach (var slot in sinks)
                {
                    connectors.Add(new ConnectorInfo(slot.Name, slot.Stage, ConnectorRole.Sink, slot.Connector, () => slot.Description, slot.Execution));
                }

                foreach (var stage in KeyedStages)
                {
                    if (stage.Lookup is { } lookup)
                    {
                        connectors.Add(new ConnectorInfo(stage.WindowName, stage.WindowStage, ConnectorRole.Lookup, lookup, ((IDescribedLookup)stage).Describe, null));
                    }
                    else if (stage.Configurable is AsyncSettings settings)
                    {
                        connectors.Add(new ConnectorInfo(stage.WindowName, stage.WindowStage, ConnectorRole.Async, settings, settings.Describe, null));
                    }
                }

                _connectors = [.. connectors];
            }

            return _connectors;
        }
    }

    /// <inheritdoc/>
    public Task<PipelineResult> RunAsync(PipelineOptions options, CancellationToken stopToken, CancellationToken abortToken)
        => PipelineRunner.RunAsync(this, options, stopToken, abortToken);

    string IDeadLetterTarget.DescribeDeadLetters(PipelineOptions options) => PipelineRunner.DeadLetterSinkFor(this, options).Describe();

    /// <summary>The source, read from the pipeline member once per job.</summary>
    internal ISource<TIn> BoundSource => _source ??= GetSource() switch
    {
        null => throw new PipelineConfigurationException(Descriptor.Name, $"Pipeline '{Descriptor.Name}': source '{Descriptor.Stages[0].Name}' is null; give the member a value."),
        UnionSource<TIn> { MissingMember: { } missing } => throw new PipelineConfigurationException(Descriptor.Name, $"Pipeline '{Descriptor.Name}': source '{missing}' is null; give the member a value."),
        var source => source,
    };

    /// <summary>The connector sinks, read from the pipeline members once per job.</summary>
    internal SinkBinder BoundSinks
    {
        get
        {
            if (_sinks is null)
            {
                var binder = new SinkBinder(Descriptor);
                BindSinks(binder);
                _sinks = binder;
            }

            return _sinks;
        }
    }

    /// <summary>The pipeline's source.</summary>
    protected abstract ISource<TIn> GetSource();

    /// <summary>Registers the pipeline's connector sinks, in chain order.</summary>
    protected abstract void BindSinks(SinkBinder binder);

    /// <summary>Creates the fused segment of one partition.</summary>
    protected abstract FusedSegment<TIn> CreateSegment(PartitionContext partition);

    /// <summary>The keyed stages (an exchange, a window and the loop after it) of a pipeline with <c>[KeyBy]</c>, in plan order; none for others.</summary>
    protected virtual KeyedStage[] CreateKeyedStages() => [];

    private KeyedStage[]? _keyed;

    /// <summary>The job's keyed stages, created once.</summary>
    internal IReadOnlyList<KeyedStage> KeyedStages => _keyed ??= CreateKeyedStages();

    IReadOnlyList<KeyedStage> IPipelineJobSlots.KeyedStages => KeyedStages;

    IReadOnlyList<ISinkSlot> IPipelineJobSlots.Slots => BoundSinks.Slots;

    internal Compiled.RecordSchema<TIn>? Schema() => SourceSchema;

    internal FusedSegment<TIn> Segment(PartitionContext partition) => CreateSegment(partition);
}

/// <summary>A job whose sink slots the connector contract kit (Compiled.Testing) can look into (for schemas).</summary>
internal interface IPipelineJobSlots
{
    IReadOnlyList<ISinkSlot> Slots { get; }

    /// <summary>The job's keyed stages (windows, joins, lookups, asynchronous transforms).</summary>
    IReadOnlyList<KeyedStage> KeyedStages { get; }
}

/// <summary>Says where a job's dead letters go under given options.</summary>
internal interface IDeadLetterTarget
{
    string DescribeDeadLetters(PipelineOptions options);
}

/// <summary>Collects a pipeline's connector sinks; each gets an output port in every partition.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class SinkBinder
{
    private readonly PipelineDescriptor _descriptor;
    private readonly List<ISinkSlot> _slots = [];

    internal SinkBinder(PipelineDescriptor descriptor) => _descriptor = descriptor;

    internal IReadOnlyList<ISinkSlot> Slots => _slots;

    /// <summary>Registers the sink of stage <paramref name="stage"/>; it becomes output slot <c>Slots.Count</c>.</summary>
    public void Add<T>(int stage, ISink<T>? sink, Compiled.RecordSchema<T>? schema)
    {
        var name = _descriptor.Stages[stage].Name;
        if (sink is null)
        {
            throw new PipelineConfigurationException(_descriptor.Name, $"Pipeline '{_descriptor.Name}': sink '{name}' is null; give the member a value.");
        }

        _slots.Add(new SinkSlot<T>(name, stage, sink, schema));
    }

    /// <summary>Registers a sink named <paramref name="name"/> that is not a chain stage (a window's late-data output) next to stage <paramref name="stage"/>.</summary>
    public void Add<T>(int stage, string name, ISink<T>? sink, Compiled.RecordSchema<T>? schema)
    {
        if (sink is null)
        {
            throw new PipelineConfigurationException(_descriptor.Name, $"Pipeline '{_descriptor.Name}': sink '{name}' is null; give the member a value.");
        }

        _slots.Add(new SinkSlot<T>(name, stage, sink, schema));
    }
}

/// <summary>
/// The base of every generated segment: a fused loop over one partition's batches. <see cref="Process"/> runs the
/// chain over a batch, writing into the partition's output buffers.
/// </summary>
/// <remarks>
/// The generated <see cref="Run"/> holds the loop and nothing else: no <c>try</c> (a handler inside the loop method
/// would force every loop variable onto the stack, measured at 2× the cost of the loop), only plain stores of its
/// position into <see cref="SegmentProgress"/> (stores with no loads: a few percent in measurements). <see cref="Process"/> owns the
/// handler and resumes the loop after a failed record when the error policy lets the run go on.
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract class FusedSegment<TIn>
{
    private readonly int _segment;
    private readonly int _firstStage;
    private readonly int _markedFrom;

    /// <summary>
    /// Creates the segment of <paramref name="partition"/>. Its stages start at chain index <paramref name="firstStage"/>;
    /// those before <paramref name="markedFrom"/> are stateless and carry no marker in the loop (see <see cref="Diagnose"/>).
    /// </summary>
    protected FusedSegment(PartitionContext partition, int segment, int firstStage, int markedFrom)
    {
        ArgumentNullException.ThrowIfNull(partition);
        Partition = partition;
        _segment = segment;
        _firstStage = firstStage;
        _markedFrom = markedFrom;
    }

    /// <summary>The partition this segment runs in.</summary>
    public PartitionContext Partition { get; }

    /// <summary>
    /// Runs the fused chain over <paramref name="batch"/>. A record an operator throws on goes to the error policy with
    /// its origin from <paramref name="origins"/>; under dead-letter and skip policies the loop goes on with the next.
    /// </summary>
    public void Process(ReadOnlySpan<TIn> batch, IRecordOrigins? origins = null)
    {
        if (TryRunFast(batch))
        {
            return;
        }

        var progress = default(SegmentProgress);
        while (true)
        {
            try
            {
                Run(batch, ref progress);
                return;
            }
            catch (Exception exception) when (exception is not OutOfMemoryException) // the process is out of memory, not the record at fault: the run fails
            {
                var index = progress.Record;
                UndoRecord();
                OnOperatorError(FailedStage(progress, batch), index, exception, batch[index], origins);
                progress.Begin(index + 1);
            }
        }
    }

    /// <summary>
    /// Generated for segments whose every stage can run a batch again: runs the chain over the whole batch without
    /// marking its progress, and returns true; when a record throws, sets the segment's outputs back to where they were
    /// and returns false — <see cref="Run"/> then runs the batch again, marked, to find the record and apply the error
    /// policy. The default (other segments) returns false at once.
    /// </summary>
    protected virtual bool TryRunFast(ReadOnlySpan<TIn> batch) => false;

    /// <summary>
    /// Called when a record failed in <see cref="Run"/>, before it goes to the error policy: takes back the outputs it
    /// wrote before the failure, so that a record is delivered whole or dead-lettered whole (never a flatMap's first
    /// copies without the rest, or one branch without the other). Generated for segments where a record can write
    /// several outputs; the default does nothing (a record writes its one output last).
    /// </summary>
    protected virtual void UndoRecord()
    {
    }

    /// <summary>
    /// Replays <paramref name="record"/> through the segment's stateless stages (those before the first marked one),
    /// each under watch, and returns the chain index of the stage that throws, or -1 if none does. Generated for
    /// segments that start with stateless stages: such stages are static or readonly, so calling them again for one
    /// failed record is harmless, and sparing them a marker store per record keeps the loop as fast as a hand loop.
    /// </summary>
    protected virtual int Diagnose(TIn record) => -1;

    private int FailedStage(in SegmentProgress progress, ReadOnlySpan<TIn> batch)
    {
        if (progress.Stage != 0)
        {
            return progress.Stage;
        }

        if (_markedFrom <= _firstStage)
        {
            return _firstStage; // no stateless prefix: stage 0 stands for the first stage
        }

        var replayed = Diagnose(batch[progress.Record]);
        return replayed > 0 ? replayed : _firstStage; // a failure that does not recur is reported at the first stage
    }

    /// <summary>
    /// The generated loop: runs the chain over <paramref name="batch"/> from record <c>progress.Record</c>, storing the
    /// current record and stage into <paramref name="progress"/> as it goes.
    /// </summary>
    protected abstract void Run(ReadOnlySpan<TIn> batch, ref SegmentProgress progress);

    /// <summary>
    /// Called when stage <paramref name="stage"/> throws on record <paramref name="recordIndex"/> of the batch. Under
    /// <see cref="ErrorPolicy.FailFast"/> it stops the run with an <see cref="OperatorException"/> naming pipeline,
    /// stage and partition; otherwise it reports the record (with its origin, or its text) and returns.
    /// </summary>
    private void OnOperatorError(int stage, int recordIndex, Exception exception, in TIn record, IRecordOrigins? origins)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var descriptor = Partition.Pipeline;
        var failed = stage >= 0 && stage < descriptor.Stages.Count ? descriptor.Stages[stage] : descriptor.Stages[0];
        var channel = Partition.DeadLetters;
        if (channel.Policy == ErrorPolicy.FailFast)
        {
            throw new OperatorException(descriptor.Name, failed, Partition.Index, exception);
        }

        var origin = origins is not null
            ? origins[recordIndex]
            : new RecordOrigin(descriptor.Stages[0].Name, null, null, null, System.Text.Encoding.UTF8.GetBytes(record?.ToString() ?? ""));
        channel.Report(new FailedRecord(FailureKind.Operator, Partition.Index, failed.Name, origin, exception.GetType().FullName ?? exception.GetType().Name, exception.Message));
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Partition.Pipeline.Name} segment {_segment} partition {Partition.Index}";
}

/// <summary>Where a generated loop is: the record of the batch and the stage it is working on.</summary>
/// <remarks>
/// A generated loop calls <see cref="Begin"/> once per record — one 8-byte store that also resets the stage to 0,
/// which stands for the segment's first stage — and sets <see cref="Stage"/> before each later stage: one plain
/// store each, with no load. (Packing record and stage into one computed word measured slower: it needs extra
/// instructions per stage.)
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
[StructLayout(LayoutKind.Explicit)]
public struct SegmentProgress
{
    [FieldOffset(0)]
    private ulong _position;

    /// <summary>The index in the batch of the record being processed.</summary>
    [FieldOffset(0)]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1051:Do not declare visible instance fields", Justification = "Read by the runtime's handler; a field keeps generated stores plain.")]
    public int Record;

    /// <summary>The chain index of the stage being called; 0 means the segment's first stage.</summary>
    [FieldOffset(4)]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1051:Do not declare visible instance fields", Justification = "Generated loops store into it once per stage; a field keeps those stores plain.")]
    public int Stage;

    /// <summary>Marks the start of record <paramref name="record"/> (at the segment's first stage).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Begin(int record) => _position = (uint)record;
}

/// <summary>What a partition's segment can reach: its index, its outputs, and objects it owns.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class PartitionContext
{
    private readonly IOutputPort?[] _ports;
    private readonly IOutputPort[] _ownedPorts;
    private readonly List<object> _owned = [];

    /// <summary>A partition with output ports by slot; a slot whose sink another part of the run writes (the keyed partitions) has none.</summary>
    internal PartitionContext(int index, int count, PipelineDescriptor pipeline, IOutputPort?[] ports, IDeadLetterChannel deadLetters)
    {
        Index = index;
        Count = count;
        Pipeline = pipeline;
        _ports = ports;
        _ownedPorts = ports.Where(p => p is not null).ToArray()!;
        DeadLetters = deadLetters;
    }

    /// <summary>Where failed records go, under the run's error policy.</summary>
    public IDeadLetterChannel DeadLetters { get; }

    /// <summary>This partition's index, from 0.</summary>
    public int Index { get; }

    /// <summary>The number of partitions.</summary>
    public int Count { get; }

    /// <summary>The pipeline's plan.</summary>
    public PipelineDescriptor Pipeline { get; }

    internal IReadOnlyList<IOutputPort> Ports => _ownedPorts;

    /// <summary>The port of sink slot <paramref name="slot"/>, or null when this partition does not write that sink.</summary>
    internal IOutputPort? PortOf(int slot) => (uint)slot < (uint)_ports.Length ? _ports[slot] : null;

    /// <summary>The buffer behind output slot <paramref name="slot"/>; the runtime hands its contents to the sink after each batch.</summary>
    public Compiled.RecordBuffer<T> Output<T>(int slot) => ((IBufferedPort<T>)_ports[slot]!).Buffer;

    /// <summary>Registers an object the partition created, to be disposed when the partition ends. Returns it.</summary>
    public T Own<T>(T instance)
        where T : class
    {
        _owned.Add(instance);
        return instance;
    }

    internal async ValueTask DisposeOwnedAsync()
    {
        foreach (var owned in _owned)
        {
            switch (owned)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
    }
}
