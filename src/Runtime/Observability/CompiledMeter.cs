using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Compiled.Runtime;

/// <summary>
/// The <c>Compiled</c> meter (System.Diagnostics.Metrics): what every run reports, for <c>dotnet-counters monitor
/// --counters Compiled</c>, OpenTelemetry, or the host's Prometheus endpoint. Counters are added to once per batch,
/// never per record, so they cost nothing measurable in the fused loop; gauges are read only when a listener asks.
/// Every instrument carries a <c>pipeline</c> tag. The full list is in docs/operations.md.
/// </summary>
public static class CompiledMeter
{
    /// <summary>The meter's name.</summary>
    public const string Name = "Compiled";

    private static readonly ConcurrentDictionary<RunState, byte> ActiveRuns = new();

    /// <summary>The batch-duration histogram's bucket bounds, in milliseconds: from 10 µs (a small in-memory batch) to 5 s (a stalled sink).</summary>
    internal static readonly double[] BatchDurationBounds = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 50, 100, 500, 1000, 5000];

    internal static readonly Meter Meter = new(Name, "1.0");

    internal static readonly Counter<long> RecordsRead = Meter.CreateCounter<long>(
        "compiled.records.read", "{record}", "Records read from the source (tags: pipeline, source)");

    internal static readonly Counter<long> RecordsWritten = Meter.CreateCounter<long>(
        "compiled.records.written", "{record}", "Records handed to a sink's writer (tags: pipeline, sink)");

    internal static readonly Counter<long> RecordsFailed = Meter.CreateCounter<long>(
        "compiled.records.failed", "{record}", "Records that failed to decode or made an operator throw (tags: pipeline, kind, stage)");

    internal static readonly Counter<long> RecordsLate = Meter.CreateCounter<long>(
        "compiled.records.late", "{record}", "Records a window dropped as too late for every window they belong to, whether or not a [LateData] sink receives them (tags: pipeline, window)");

    internal static readonly Counter<long> StateExpired = Meter.CreateCounter<long>(
        "compiled.state.expired", "{key}", "Keys a running aggregate dropped because their state outlived its time-to-live (tags: pipeline, window)");

    internal static readonly Counter<long> DeadLetters = Meter.CreateCounter<long>(
        "compiled.dead_letters.written", "{record}", "Dead letters made durable in the dead-letter sink (tags: pipeline)");

    private static readonly Counter<long> ConnectorRetries = Meter.CreateCounter<long>(
        "compiled.connector.retries", "{retry}", "Transient connector failures retried: a lost connection, a restarting server (tags: pipeline, connector)");

    /// <summary>Counts one retried transient failure of connector <paramref name="connector"/> (a source or sink member's name).</summary>
    public static void ConnectorRetried(string pipeline, string connector)
        => ConnectorRetries.Add(1, new KeyValuePair<string, object?>("pipeline", pipeline), new KeyValuePair<string, object?>("connector", connector));

    internal static readonly Histogram<double> BatchDuration = Meter.CreateHistogram(
        "compiled.batch.duration",
        "ms",
        "Time to run one batch through a partition's fused loop and hand its outputs to the sinks' queues (tags: pipeline)",
        tags: null,
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = BatchDurationBounds });

    private static readonly ObservableGauge<double> QueueFill = Meter.CreateObservableGauge(
        "compiled.sink.queue.fill",
        () => ActiveRuns.Keys.SelectMany(run => run.QueueFill()),
        "{ratio}",
        "How full the bounded queues in front of a decoupled sink are, 0 to 1: near 1, the sink is the bottleneck and backpressure is slowing the source (tags: pipeline, sink)");

    private static readonly ObservableGauge<long> SourceLag = Meter.CreateObservableGauge(
        "compiled.source.lag",
        () => ActiveRuns.Keys.SelectMany(run => run.SourceLag()),
        "{unit}",
        "Input the source knows of but has not read yet: bytes left in files, records left in a bounded source, consumer lag in Kafka (tags: pipeline, source, unit)");

    private static readonly ObservableUpDownCounter<int> Partitions = Meter.CreateObservableUpDownCounter(
        "compiled.partitions.active",
        () => ActiveRuns.Keys.SelectMany(run => run.ActivePartitions()),
        "{partition}",
        "Partitions still running, per stage of the run: 0 is the source's loop, each window adds one (tags: pipeline, stage)");

    private static readonly ObservableGauge<long> Watermark = Meter.CreateObservableGauge(
        "compiled.window.watermark",
        () => ActiveRuns.Keys.SelectMany(run => run.Watermarks()),
        "ms",
        "A keyed partition's watermark, Unix milliseconds: windows ending at or before it have fired (tags: pipeline, window, partition)");

    private static readonly ObservableGauge<long> WatermarkLag = Meter.CreateObservableGauge(
        "compiled.window.watermark.lag",
        () => ActiveRuns.Keys.SelectMany(run => run.WatermarkLags()),
        "ms",
        "How far a keyed partition's watermark trails the run's clock: with event time, the data's delay plus the out-of-orderness; a growing lag means an input holds the watermark back (tags: pipeline, window, partition)");

    private static readonly ObservableGauge<int> IdleInputs = Meter.CreateObservableGauge(
        "compiled.window.inputs.idle",
        () => ActiveRuns.Keys.SelectMany(run => run.IdleInputs()),
        "{input}",
        "Inputs of a keyed partition that count as idle (no records for the idle timeout, or nothing to read) and so do not hold its watermark back (tags: pipeline, window, partition)");

    internal static void Started(RunState run)
    {
        // Touch the observable instruments so they exist before any listener looks for them.
        _ = (QueueFill, SourceLag, Partitions, Watermark, WatermarkLag, IdleInputs);
        ActiveRuns.TryAdd(run, 0);
    }

    internal static void Ended(RunState run) => ActiveRuns.TryRemove(run, out _);
}
