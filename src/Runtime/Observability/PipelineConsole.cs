using System.Buffers;
using System.Text.Json;

namespace Compiled.Runtime;

/// <summary>
/// The live console of a running pipeline (<c>--ui</c>): a page (<see cref="Page"/>, plain HTML and a small script,
/// no build step) that reads <see cref="Status"/> — the job graph, per-partition records and their rates, queues,
/// watermarks, checkpoints, recent failures and the run's settings, secrets masked — as JSON, once a second
/// (<c>/api/status</c>; <c>/api/events</c> streams the same as server-sent events for tools). Served by a listener like
/// the metrics endpoint's; JSON is written by hand with
/// <see cref="Utf8JsonWriter"/>, so it works under Native AOT.
/// </summary>
public sealed class PipelineConsole
{
    private readonly IPipelineJob _job;
    private readonly PipelineMonitor _monitor;
    private readonly IReadOnlyList<Setting> _settings;

    /// <summary>A console for <paramref name="job"/>, reading the run through <paramref name="monitor"/>, showing <paramref name="settings"/> (display values: secrets masked).</summary>
    public PipelineConsole(IPipelineJob job, PipelineMonitor monitor, IReadOnlyList<Setting> settings)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(monitor);
        ArgumentNullException.ThrowIfNull(settings);
        _job = job;
        _monitor = monitor;
        _settings = settings;
    }

    /// <summary>The run's state as UTF-8 JSON: the graph always, the live part while the run is on.</summary>
    public byte[] Status()
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var json = new Utf8JsonWriter(buffer))
        {
            var plan = _job.Descriptor;
            json.WriteStartObject();
            json.WriteString("pipeline", plan.Name);
            json.WriteString("type", plan.TypeName);
            json.WriteString("errorPolicy", plan.ErrorPolicy.ToString());
            WriteGraph(json, plan);
            json.WriteStartArray("settings");
            foreach (var setting in _settings)
            {
                json.WriteStartObject();
                json.WriteString("name", setting.Name);
                json.WriteString("value", setting.DisplayValue);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteBoolean("ready", _monitor.IsReady);
            if (_monitor.Snapshot() is { } now)
            {
                WriteRun(json, now);
            }
            else
            {
                json.WriteNull("run");
            }

            json.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private void WriteGraph(Utf8JsonWriter json, PipelineDescriptor plan)
    {
        json.WriteStartArray("stages");
        foreach (var stage in plan.Stages)
        {
            json.WriteStartObject();
            json.WriteNumber("index", stage.Index);
            json.WriteString("name", stage.Name);
            json.WriteString("kind", stage.Kind.ToString().ToLowerInvariant());
            json.WriteNumber("segment", stage.Segment);
            json.WriteNumber("input", stage.Input);
            if (stage.SecondInput >= 0)
            {
                json.WriteNumber("secondInput", stage.SecondInput);
            }
            json.WriteString("in", stage.InputType);
            json.WriteString("out", stage.OutputType);
            json.WriteString("implementation", stage.Implementation);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("segments");
        foreach (var segment in plan.Segments)
        {
            json.WriteStartObject();
            json.WriteNumber("index", segment.Index);
            json.WriteNumber("first", segment.FirstStage);
            json.WriteNumber("last", segment.LastStage);
            json.WriteString("reason", segment.Reason);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("connectors");
        foreach (var connector in _job.Connectors)
        {
            json.WriteStartObject();
            json.WriteString("name", connector.Name);
            json.WriteString("role", connector.Role.ToString().ToLowerInvariant());
            json.WriteNumber("stage", connector.Stage);
            json.WriteString("describe", connector.Describe());
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    private static void WriteRun(Utf8JsonWriter json, PipelineSnapshot now)
    {
        json.WriteStartObject("run");
        json.WriteNumber("elapsedMs", (long)now.Elapsed.TotalMilliseconds);
        json.WriteBoolean("stopping", now.Stopping);
        json.WriteNumber("recordsRead", now.RecordsRead);
        if (now.Source is { } progress)
        {
            json.WriteStartObject("progress");
            json.WriteNumber("done", progress.Done);
            if (progress.Total is { } total)
            {
                json.WriteNumber("total", total);
            }

            json.WriteString("unit", progress.Unit);
            json.WriteEndObject();
        }

        json.WriteStartArray("partitions");
        foreach (var partition in now.Partitions)
        {
            json.WriteStartObject();
            json.WriteNumber("segment", partition.Segment);
            json.WriteNumber("partition", partition.Partition);
            json.WriteNumber("recordsIn", partition.RecordsIn);
            json.WriteBoolean("running", partition.Running);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("sinks");
        foreach (var sink in now.Sinks)
        {
            json.WriteStartObject();
            json.WriteString("name", sink.Name);
            json.WriteNumber("written", sink.Written);
            json.WriteNumber("queued", sink.Queued);
            json.WriteNumber("capacity", sink.Capacity);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("exchanges");
        foreach (var exchange in now.Exchanges)
        {
            json.WriteStartObject();
            json.WriteString("name", exchange.Name);
            json.WriteString("routing", exchange.Routing);
            json.WriteNumber("queued", exchange.Queued);
            json.WriteNumber("capacity", exchange.Capacity);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("windows");
        foreach (var window in now.Windows)
        {
            json.WriteStartObject();
            json.WriteString("name", window.Window);
            if (window.Watermark is not (long.MinValue or long.MaxValue))
            {
                json.WriteNumber("watermark", window.Watermark);
            }

            if (window.Lag is { } lag)
            {
                json.WriteNumber("lagMs", (long)lag.TotalMilliseconds);
            }

            json.WriteNumber("late", window.LateRecords);
            json.WriteNumber("idleInputs", window.IdleInputs);
            json.WriteBoolean("stalled", window.Stalled);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartObject("failures");
        json.WriteNumber("malformed", now.Malformed);
        json.WriteNumber("operator", now.OperatorFailures);
        json.WriteNumber("deadLettered", now.DeadLettered);
        json.WriteNumber("late", now.LateRecords);
        json.WriteStartArray("recent");
        foreach (var failure in now.RecentFailures)
        {
            json.WriteStartObject();
            json.WriteString("time", failure.Time);
            json.WriteString("kind", failure.Kind);
            json.WriteString("stage", failure.Stage);
            json.WriteString("where", failure.Where);
            json.WriteString("message", failure.Message);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteEndObject();
        if (now.Checkpoints is { } checkpoints)
        {
            json.WriteStartObject("checkpoints");
            json.WriteNumber("written", checkpoints.Written);
            json.WriteNumber("lastId", checkpoints.LastId);
            json.WriteNumber("lastMs", Math.Round(checkpoints.LastMilliseconds, 1));
            json.WriteNumber("lastBytes", checkpoints.LastBytes);
            json.WriteEndObject();
        }

        json.WriteEndObject();
    }

    /// <summary>The console page: plain HTML, CSS and a script that renders <see cref="Status"/>, read from <c>/api/status</c> once a second.</summary>
    public static string Page => ConsolePage.Html;
}
