using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Compiled.Runtime;

/// <summary>
/// A window onto a running pipeline, for progress displays and health checks: pass one in
/// <see cref="PipelineOptions.Monitor"/> and call <see cref="Snapshot"/> from any thread. Reading a snapshot sums a
/// few counters; it never blocks the run.
/// </summary>
public sealed class PipelineMonitor
{
    private volatile RunState? _run;

    /// <summary>The live state of the run, or null before it starts and after it ends.</summary>
    public PipelineSnapshot? Snapshot() => _run?.Snapshot();

    internal void Attach(RunState run) => _run = run;

    internal void Detach(RunState run) => Interlocked.CompareExchange(ref _run, null, run);
}

/// <summary>The state of a run at one moment.</summary>
/// <param name="Pipeline">The pipeline's name.</param>
/// <param name="Elapsed">Time since the run started.</param>
/// <param name="RecordsRead">Records read from the source.</param>
/// <param name="Sinks">Each connector sink: records written, and its queue.</param>
/// <param name="Malformed">Records that failed to decode.</param>
/// <param name="OperatorFailures">Records an operator threw on.</param>
/// <param name="DeadLettered">Dead letters written.</param>
/// <param name="Source">How far the source has got, when it says (<see cref="ISourceProgress"/>).</param>
/// <param name="Stopping">Whether a stop was requested and the run is draining.</param>
public sealed record PipelineSnapshot(
    string Pipeline,
    TimeSpan Elapsed,
    long RecordsRead,
    IReadOnlyList<SinkSnapshot> Sinks,
    long Malformed,
    long OperatorFailures,
    long DeadLettered,
    SourceProgress? Source,
    bool Stopping);

/// <summary>A sink's state at one moment.</summary>
/// <param name="Name">The sink member's name.</param>
/// <param name="Written">Records handed to its writers.</param>
/// <param name="Queued">Batches waiting in its queues, over all partitions.</param>
/// <param name="Capacity">Its queues' capacity in batches, over all partitions (0: it runs inline).</param>
public readonly record struct SinkSnapshot(string Name, long Written, int Queued, int Capacity);

/// <summary>The live state of one run, shared by the runner, monitors and the meter's gauges.</summary>
internal sealed class RunState
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly IReadOnlyList<ISinkSlot> _sinks;
    private readonly object _source;
    private readonly string _sourceName;
    private readonly DeadLetterChannel _deadLetters;
    private readonly CancellationToken _stop;
    private IReadOnlyList<IPartitionState> _partitions = [];

    public RunState(string pipeline, string sourceName, object source, IReadOnlyList<ISinkSlot> sinks, DeadLetterChannel deadLetters, CancellationToken stop)
    {
        Pipeline = pipeline;
        _sourceName = sourceName;
        _source = source;
        _sinks = sinks;
        _deadLetters = deadLetters;
        _stop = stop;
    }

    public string Pipeline { get; }

    public int ActivePartitions => _partitions.Count(p => p.Running);

    public void SetPartitions(IReadOnlyList<IPartitionState> partitions) => _partitions = partitions;

    public PipelineSnapshot Snapshot()
    {
        var partitions = _partitions;
        var sinks = new SinkSnapshot[_sinks.Count];
        for (var s = 0; s < sinks.Length; s++)
        {
            var (queued, capacity) = Queue(partitions, s);
            sinks[s] = new SinkSnapshot(_sinks[s].Name, _sinks[s].Written, queued, capacity);
        }

        return new PipelineSnapshot(
            Pipeline,
            _clock.Elapsed,
            partitions.Sum(p => p.RecordsRead),
            sinks,
            _deadLetters.Malformed,
            _deadLetters.OperatorFailures,
            _deadLetters.Written,
            (_source as ISourceProgress)?.Progress,
            _stop.IsCancellationRequested);
    }

    public IEnumerable<Measurement<double>> QueueFill()
    {
        var partitions = _partitions;
        for (var s = 0; s < _sinks.Count; s++)
        {
            var (queued, capacity) = Queue(partitions, s);
            if (capacity > 0)
            {
                yield return new Measurement<double>((double)queued / capacity, new("pipeline", Pipeline), new("sink", _sinks[s].Name));
            }
        }
    }

    public IEnumerable<Measurement<long>> SourceLag()
    {
        if (_source is ISourceProgress progress && progress.Progress is { Total: { } total } now)
        {
            yield return new Measurement<long>(Math.Max(0, total - now.Done), new("pipeline", Pipeline), new("source", _sourceName), new("unit", now.Unit));
        }
    }

    private static (int Queued, int Capacity) Queue(IReadOnlyList<IPartitionState> partitions, int slot)
    {
        int queued = 0, capacity = 0;
        foreach (var partition in partitions)
        {
            if (partition.PortOf(slot) is { } port) // none where the keyed partitions write the sink
            {
                queued += port.Queued;
                capacity += port.Capacity;
            }
        }

        return (queued, capacity);
    }
}

/// <summary>What the run state reads from a partition.</summary>
internal interface IPartitionState
{
    long RecordsRead { get; }

    bool Running { get; }

    IReadOnlyList<IOutputPort> Ports { get; }

    /// <summary>The partition's port for sink slot <paramref name="slot"/>, or null when it has none.</summary>
    IOutputPort? PortOf(int slot);
}
