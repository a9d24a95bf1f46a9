using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Compiled.Nexmark;

/// <summary>
/// <c>--allocations</c>: samples the runtime's allocation ticks (one about every 100 KB allocated, with the type that
/// crossed it) while a query runs, to show which types its allocation is made of.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private readonly ConcurrentDictionary<string, long> _ticks = new();

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword: AllocationTick
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) == true && eventData.Payload is { } payload)
        {
            var type = payload[eventData.PayloadNames!.IndexOf("TypeName")] as string ?? "?";
            _ticks.AddOrUpdate(type, 1, (_, n) => n + 1);
        }
    }

    /// <summary>The types most sampled, with their share of the samples.</summary>
    public IEnumerable<string> Top(int count)
    {
        var total = Math.Max(1, _ticks.Values.Sum());
        return _ticks.OrderByDescending(t => t.Value).Take(count).Select(t => $"  {100.0 * t.Value / total,5:0.0}%  {t.Key}");
    }
}
