using System.Globalization;
using System.Text;

namespace Compiled.Runtime;

/// <summary>
/// Renders a compiled plan for <c>--explain</c>: the stages, which loop each was fused into, where and why the chain
/// breaks, the parallelism, and the connectors with their settings — secrets masked — as text or as a Mermaid graph.
/// </summary>
public static class PlanExplainer
{
    /// <summary>The stages of lookups that read the loop before them partition by partition (<see cref="LookupRouting.Local"/>): their keyBy is no exchange.</summary>
    private static HashSet<int> LocalLookups(IPipelineJob job)
        => job is IPipelineJobSlots { KeyedStages: var stages } ? [.. stages.Where(s => s is IDescribedLookup { IsLocal: true }).Select(s => s.WindowStage)] : [];

    /// <summary>The plan of <paramref name="job"/> run with <paramref name="options"/>, as text.</summary>
    public static string Text(IPipelineJob job, PipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(options);
        var plan = job.Descriptor;
        var connectors = job.Connectors.Where(c => c.Role == ConnectorRole.Sink).ToDictionary(c => c.Stage); // several sources (a union) share stage 0
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"pipeline {plan.Name} ({plan.TypeName})\n");
        text.Append(CultureInfo.InvariantCulture, $"  parallelism {options.Parallelism}, batches of {options.BatchSize} records, grace period {Setting.FormatDuration(options.GracePeriod)}\n");
        text.Append(CultureInfo.InvariantCulture, $"  errors: {options.ErrorPolicy ?? plan.ErrorPolicy}{DeadLetterTarget(job, options)}\n");
        var local = LocalLookups(job);
        foreach (var segment in plan.Segments)
        {
            var reason = local.Contains(segment.FirstStage)
                ? $"all edges forward from lookup '{plan.Stages[segment.FirstStage].Name}', which runs in each partition of the loop before it (Routing = Local)"
                : plan.Stages[segment.LastStage] is { Kind: StageKind.KeyBy } last && local.Contains(last.Index + 1)
                    ? $"all edges forward up to keyBy '{last.Name}', whose records the local lookup after it reads partition by partition"
                    : segment.Reason;
            text.Append('\n');
            text.Append(CultureInfo.InvariantCulture, $"  loop {segment.Index}: stages {segment.FirstStage}-{segment.LastStage} fused into one loop, one copy per partition ({options.Parallelism}); fused because {reason}\n");
            if (segment.Index > 0 && plan.Stages[segment.FirstStage].Input is var input and >= 0 && plan.Stages[segment.FirstStage].Kind == StageKind.Async)
            {
                text.Append(CultureInfo.InvariantCulture, $"    reads '{plan.Stages[input].Name}' (loop {plan.Stages[input].Segment}) partition by partition (with Spread: each batch to the next partition in turn): the asynchronous calls wait here, up to MaxInFlight per partition, and the loop resumes with their results\n");
            }
            else if (segment.Index > 0 && plan.Stages[segment.FirstStage] is { Kind: StageKind.Join, Input: >= 0 and var left, SecondInput: >= 0 and var right })
            {
                text.Append(CultureInfo.InvariantCulture, $"    reads the hash exchange both keyBy '{plan.Stages[left].Name}' and keyBy '{plan.Stages[right].Name}' (loop {plan.Stages[left].Segment}) write into: each of its {options.Parallelism} partitions sends every record of either side to the partition that owns the key\n");
            }
            else if (segment.Index > 0 && local.Contains(segment.FirstStage) && plan.Stages[segment.FirstStage].Input is var keyed and >= 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"    reads keyBy '{plan.Stages[keyed].Name}' (loop {plan.Stages[keyed].Segment}) partition by partition (lookup Routing = Local): no exchange, each partition looks up its own records\n");
            }
            else if (segment.Index > 0 && plan.Stages[segment.FirstStage].Input is var keyBy and >= 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"    reads the hash exchange of keyBy '{plan.Stages[keyBy].Name}' (loop {plan.Stages[keyBy].Segment}): each of its {options.Parallelism} partitions sends every record to the partition that owns the key\n");
            }

            for (var i = segment.FirstStage; i <= segment.LastStage; i++)
            {
                var stage = plan.Stages[i];
                var types = stage.InputType is null ? $"-> {stage.OutputType}" : stage.Kind == StageKind.Filter || stage.Kind == StageKind.Sink ? stage.InputType : $"{stage.InputType} -> {stage.OutputType}";
                var branch = stage.Input >= 0 && stage.Input != i - 1 && i != segment.FirstStage ? $"  (reads {plan.Stages[stage.Input].Name})" : "";
                text.Append(CultureInfo.InvariantCulture, $"    {stage.Index,2}  {Kind(stage),-8} {stage.Name,-16} {types,-28} {stage.Implementation}{branch}\n");
            }

            for (var i = segment.FirstStage; i <= segment.LastStage; i++)
            {
                if (connectors.TryGetValue(i, out var connector))
                {
                    text.Append(CultureInfo.InvariantCulture, $"    {connector.Name}: {Boundary(connector, options)}\n");
                }
            }
        }

        text.Append("\n  connectors\n");
        foreach (var connector in job.Connectors)
        {
            text.Append(CultureInfo.InvariantCulture, $"    {connector.Role.ToString().ToLowerInvariant(),-6} {connector.Name}: {connector.Describe()}\n");
            foreach (var setting in connector.Settings)
            {
                text.Append(CultureInfo.InvariantCulture, $"             {setting.Name} = {setting.DisplayValue}\n");
            }
        }

        return text.ToString();
    }

    /// <summary>The plan of <paramref name="job"/> as a Mermaid flowchart (paste it into any Markdown that renders Mermaid).</summary>
    public static string Mermaid(IPipelineJob job, PipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(options);
        var plan = job.Descriptor;
        var local = LocalLookups(job);
        var text = new StringBuilder();
        text.Append("flowchart LR\n");
        foreach (var segment in plan.Segments)
        {
            text.Append(CultureInfo.InvariantCulture, $"  subgraph loop{segment.Index}[\"{Escape($"loop {segment.Index}: fused, one copy per partition (× {options.Parallelism})")}\"]\n");
            text.Append("    direction LR\n");
            for (var i = segment.FirstStage; i <= segment.LastStage; i++)
            {
                var stage = plan.Stages[i];
                var label = Escape($"{stage.Name}") + "<br/>" + Escape(stage.InputType is null ? $"{Kind(stage)} → {stage.OutputType}" : $"{Kind(stage)} {stage.InputType}{(stage.Kind is StageKind.Map or StageKind.FlatMap ? $" → {stage.OutputType}" : "")}");
                if (stage.Kind == StageKind.Source)
                {
                    text.Append(CultureInfo.InvariantCulture, $"    s{i}([\"{label}\"])\n");
                }
                else
                {
                    text.Append(CultureInfo.InvariantCulture, $"    s{i}[\"{label}\"]\n");
                }
            }

            text.Append("  end\n");
        }

        // Every stage is fed by the stage it reads (a sink passes its input on unchanged); several edges from one stage are a fork.
        for (var i = 1; i < plan.Stages.Count; i++)
        {
            var input = plan.Stages[i].Input;
            if (input < 0)
            {
                continue;
            }

            var edge = plan.Stages[input].Kind != StageKind.KeyBy ? "-->" : local.Contains(i) ? "-- \"local lookup\" -->" : "== \"hash exchange\" ==>";
            text.Append(CultureInfo.InvariantCulture, $"  s{input} {edge} s{i}\n");
            if (plan.Stages[i].SecondInput >= 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"  s{plan.Stages[i].SecondInput} {edge} s{i}\n"); // a join's right input
            }
        }

        var sources = 0;
        foreach (var connector in job.Connectors)
        {
            if (connector.Role == ConnectorRole.Source)
            {
                // One node per source: several sources (a union) all feed stage 0.
                var node = sources++ == 0 ? "in0" : $"in0_{sources - 1}";
                text.Append(CultureInfo.InvariantCulture, $"  {node}[(\"{Escape(connector.Describe())}\")] --> s{connector.Stage}\n");
            }
            else if (connector.Role == ConnectorRole.Lookup)
            {
                text.Append(CultureInfo.InvariantCulture, $"  lk{connector.Stage}[(\"{Escape(connector.Describe())}\")] -. \"lookup, cached\" .-> s{connector.Stage}\n");
            }
            else if (connector.Role == ConnectorRole.Async)
            {
                continue; // not a connector: its settings show in the stage's line
            }
            else
            {
                var edge = connector.Execution == SinkExecution.Inline ? "inline" : $"queue, {options.SinkQueueCapacity} batches per partition";
                text.Append(CultureInfo.InvariantCulture, $"  s{connector.Stage} -. \"{Escape(edge)}\" .-> out{connector.Stage}[(\"{Escape(connector.Describe())}\")]\n");
            }
        }

        return text.ToString();
    }

    private static string Kind(StageDescriptor stage) => stage.Kind switch
    {
        StageKind.FlatMap => "flatMap",
        var kind => kind.ToString().ToLowerInvariant(),
    };

    private static string Boundary(ConnectorInfo sink, PipelineOptions options) => sink.Execution == SinkExecution.Inline
        ? "inline sink — called on the partition's worker after each batch; the loop does not break"
        : $"the chain breaks here for this sink, which batches differently — the loop fills an output port, and full batches cross a bounded queue ({options.SinkQueueCapacity} per partition) to the sink's own writer, so processing overlaps its I/O and a slow sink slows the source";

    private static string DeadLetterTarget(IPipelineJob job, PipelineOptions options) => (options.ErrorPolicy ?? job.Descriptor.ErrorPolicy) switch
    {
        ErrorPolicy.DeadLetter => job is IDeadLetterTarget target ? $" -> {target.DescribeDeadLetters(options)}" : "",
        ErrorPolicy.Skip => " (failed records are counted and skipped)",
        _ => " (the first failed record stops the run)",
    };

    private static string Escape(string text) => text.Replace("\"", "#quot;", StringComparison.Ordinal).Replace("<", "#lt;", StringComparison.Ordinal).Replace(">", "#gt;", StringComparison.Ordinal);
}
