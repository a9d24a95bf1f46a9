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

    /// <summary>
    /// Whether the run is ready (Kubernetes' readiness): its sinks and source opened — connections made, tables
    /// prepared, Kafka consumers created and, with a position store, positions claimed — and its partitions running.
    /// False before that, once a stop was requested, and after the run ended. A copy of a distributed pipeline is also
    /// ready while it is in its consumer group between assignments, or holds no partitions (a standby).
    /// </summary>
    public bool IsReady => _run is { } run ? run.IsReady : _standby;

    private volatile bool _standby;

    /// <summary>A distributed run is in its group (ready between its runs), until it stops.</summary>
    internal void SetStandby(bool standby) => _standby = standby;

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
    bool Stopping)
{
    /// <summary>Each window: its watermark, late records, and what holds it back.</summary>
    public IReadOnlyList<WindowSnapshot> Windows { get; init; } = [];

    /// <summary>Records the windows found too late for every window they belong to (dropped, or sent to a <c>[LateData]</c> sink).</summary>
    public long LateRecords => Windows.Sum(w => w.LateRecords);

    /// <summary>Every partition of every loop: records it took in (from its source, or through its exchange).</summary>
    public IReadOnlyList<PartitionSnapshot> Partitions { get; init; } = [];

    /// <summary>Every exchange between loops: batches waiting in its queues.</summary>
    public IReadOnlyList<ExchangeSnapshot> Exchanges { get; init; } = [];

    /// <summary>The run's checkpoints (a pipeline with keyed stages behind a source that commits positions), else null.</summary>
    public CheckpointSnapshot? Checkpoints { get; init; }

    /// <summary>The last few failed records, newest last: where they came from and why, as logs show them (no record contents).</summary>
    public IReadOnlyList<FailureSnapshot> RecentFailures { get; init; } = [];
}

/// <summary>A partition of a loop at one moment.</summary>
/// <param name="Segment">The loop (0: the source's).</param>
/// <param name="Partition">The partition's index.</param>
/// <param name="RecordsIn">Records it took in: read from the source, or received through its exchange.</param>
/// <param name="Running">Whether it is running (not yet ended).</param>
public readonly record struct PartitionSnapshot(int Segment, int Partition, long RecordsIn, bool Running);

/// <summary>An exchange at one moment.</summary>
/// <param name="Name">The stage it feeds.</param>
/// <param name="Routing"><c>hash</c> or <c>forward</c>.</param>
/// <param name="Queued">Batches waiting in its consumers' queues (0 when it runs inline).</param>
/// <param name="Capacity">Its queues' capacity in batches (0 when it runs inline).</param>
public readonly record struct ExchangeSnapshot(string Name, string Routing, int Queued, int Capacity);

/// <summary>The run's checkpoints at one moment.</summary>
/// <param name="Written">Checkpoints this run completed.</param>
/// <param name="LastId">The id of the newest complete checkpoint (restored ones count).</param>
/// <param name="LastMilliseconds">How long writing the newest one took.</param>
/// <param name="LastBytes">Bytes of state in the newest one.</param>
public readonly record struct CheckpointSnapshot(long Written, long LastId, double LastMilliseconds, long LastBytes);

/// <summary>A failed record, as the log describes it.</summary>
/// <param name="Time">When it was reported.</param>
/// <param name="Kind"><c>decode</c>, <c>operator</c> or <c>rejected</c>.</param>
/// <param name="Stage">The source (decode) or the stage that failed.</param>
/// <param name="Where">Where the record came from (file and line, offset), without its contents.</param>
/// <param name="Message">Why, escaped and shortened as in logs.</param>
public readonly record struct FailureSnapshot(DateTimeOffset Time, string Kind, string Stage, string Where, string Message);

/// <summary>A window's state at one moment.</summary>
/// <param name="Window">The window member's name.</param>
/// <param name="Watermark">The smallest watermark over its keyed partitions, Unix milliseconds (<see cref="long.MinValue"/> before any).</param>
/// <param name="Lag">How far that watermark trails the run's clock (null before any watermark, or once the input ended).</param>
/// <param name="LateRecords">Records too late for every window they belong to.</param>
/// <param name="LateSink">The <c>[LateData]</c> sink, or null when late records are dropped.</param>
/// <param name="SinceLastResult">How long since the window last emitted results (or since the run started).</param>
/// <param name="Size">The window's size (zero for a running aggregate).</param>
/// <param name="HoldingInput">The input (producer partition) holding the watermark back, or -1.</param>
/// <param name="IdleInputs">Inputs that count as idle, over all keyed partitions.</param>
public sealed record WindowSnapshot(string Window, long Watermark, TimeSpan? Lag, long LateRecords, string? LateSink, TimeSpan SinceLastResult, TimeSpan Size, int HoldingInput, int IdleInputs)
{
    /// <summary>
    /// Whether the window looks stuck: it has not emitted for longer than its size while an input holds its watermark
    /// back — the status line then names that input.
    /// </summary>
    public bool Stalled => Size > TimeSpan.Zero && SinceLastResult > Size && HoldingInput >= 0 && Lag is not null;
}

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
    private IReadOnlyList<WindowStatistics> _windows = [];
    private IReadOnlyList<Exchange> _exchanges = [];
    private Func<CheckpointCoordinator?>? _checkpoints;
    private Func<long> _now = () => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

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

    public IEnumerable<Measurement<int>> ActivePartitions()
        => _partitions.GroupBy(p => p.Stage).Select(stage => new Measurement<int>(stage.Count(p => p.Running), new("pipeline", Pipeline), new("stage", stage.Key)));

    public void SetPartitions(IReadOnlyList<IPartitionState> partitions) => _partitions = partitions;

    /// <summary>The run's exchanges (their queues' fill) and its checkpoint coordinator, when it has one.</summary>
    public void SetGraph(IReadOnlyList<Exchange> exchanges, Func<CheckpointCoordinator?> checkpoints)
    {
        _exchanges = exchanges;
        _checkpoints = checkpoints;
    }

    /// <summary>Opened and running (the partitions are set once the source opened and its readers exist), and not stopping.</summary>
    public bool IsReady => _partitions.Count > 0 && !_stop.IsCancellationRequested;

    /// <summary>The run's windows, and the clock their watermarks are compared with.</summary>
    public void SetWindows(IReadOnlyList<WindowStatistics> windows, Func<long> now)
    {
        _windows = windows;
        _now = now;
    }

    private List<WindowSnapshot> WindowSnapshots()
    {
        var now = _now();
        return _windows.Select(w =>
        {
            var watermark = w.Watermark;
            TimeSpan? lag = watermark is long.MinValue or long.MaxValue ? null : TimeSpan.FromMilliseconds(Math.Max(0, now - watermark));
            var idle = 0;
            for (var p = 0; p < w.Partitions; p++)
            {
                idle += w.IdleInputsOf(p);
            }

            return new WindowSnapshot(w.Window, watermark, lag, w.LateRecords, w.LateSink, TimeSpan.FromMilliseconds(Math.Max(0, now - w.LastFired)), w.Size, w.HoldingInput, idle);
        }).ToList();
    }

    public IEnumerable<Measurement<long>> Watermarks()
    {
        foreach (var window in _windows)
        {
            for (var p = 0; p < window.Partitions; p++)
            {
                var watermark = window.WatermarkOf(p);
                if (watermark is not (long.MinValue or long.MaxValue))
                {
                    yield return new Measurement<long>(watermark, new("pipeline", Pipeline), new("window", window.Window), new("partition", p));
                }
            }
        }
    }

    public IEnumerable<Measurement<long>> WatermarkLags()
    {
        var now = _now();
        foreach (var window in _windows)
        {
            for (var p = 0; p < window.Partitions; p++)
            {
                var watermark = window.WatermarkOf(p);
                if (watermark is not (long.MinValue or long.MaxValue))
                {
                    yield return new Measurement<long>(Math.Max(0, now - watermark), new("pipeline", Pipeline), new("window", window.Window), new("partition", p));
                }
            }
        }
    }

    public IEnumerable<Measurement<int>> IdleInputs()
    {
        foreach (var window in _windows)
        {
            for (var p = 0; p < window.Partitions; p++)
            {
                yield return new Measurement<int>(window.IdleInputsOf(p), new("pipeline", Pipeline), new("window", window.Window), new("partition", p));
            }
        }
    }

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
            partitions.Where(p => p.Stage == 0).Sum(p => p.RecordsRead),
            sinks,
            _deadLetters.Malformed,
            _deadLetters.OperatorFailures,
            _deadLetters.Written,
            (_source as ISourceProgress)?.Progress,
            _stop.IsCancellationRequested)
        {
            Windows = WindowSnapshots(),
            Partitions = [.. partitions.Select(p => new PartitionSnapshot(p.Stage, p.Index, p.RecordsRead, p.Running))],
            Exchanges = [.. _exchanges.Select(e => (e, Fill: e.Fill())).Select(x => new ExchangeSnapshot(x.e.Name, x.e.Routing.ToString().ToLowerInvariant(), x.Fill.Queued, x.Fill.Capacity))],
            Checkpoints = _checkpoints?.Invoke() is { } checkpoints ? new CheckpointSnapshot(checkpoints.Written, checkpoints.Completed, checkpoints.LastMilliseconds, checkpoints.LastBytes) : null,
            RecentFailures = _deadLetters.Recent(),
        };
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
    /// <summary>The stage (fused loop) the partition runs: 0 is the source's.</summary>
    int Stage { get; }

    /// <summary>The partition's index within its loop.</summary>
    int Index { get; }

    long RecordsRead { get; }

    bool Running { get; }

    IReadOnlyList<IOutputPort> Ports { get; }

    /// <summary>The partition's port for sink slot <paramref name="slot"/>, or null when it has none.</summary>
    IOutputPort? PortOf(int slot);
}
