using System.ComponentModel;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// The settings of an asynchronous transform: compiled in from its <see cref="AsyncOptionsAttribute"/> and changeable
/// at run time (<c>{Method}.MaxInFlight</c> and so on), like a connector's.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class AsyncSettings : IConfigurable
{
    /// <summary>Requests one partition has in flight at most.</summary>
    public int MaxInFlight { get; set; } = 100;

    /// <summary>How long one attempt may take; null: no limit.</summary>
    public TimeSpan? Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Attempts per record, the first included.</summary>
    public int MaxAttempts { get; set; } = 1;

    /// <summary>The wait before the second attempt; it doubles before each further one.</summary>
    public TimeSpan RetryBackoff { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Whether results leave in the order their records arrived (else in the order the calls completed).</summary>
    public bool Ordered { get; set; } = true;

    /// <summary>
    /// Whether batches are spread over every partition in turn (a rebalance) instead of staying in the partition that
    /// read them: for sources that read with fewer partitions than the pipeline has (one file, a topic with fewer
    /// partitions). Order across batches is then lost.
    /// </summary>
    public bool Spread { get; set; }

    /// <summary>The settings from an <see cref="AsyncOptionsAttribute"/>'s values (generated code).</summary>
    public static AsyncSettings From(int maxInFlight, int timeoutMilliseconds, int maxAttempts, int retryBackoffMilliseconds, bool ordered, bool spread = false) => new()
    {
        Spread = spread,
        MaxInFlight = maxInFlight,
        Timeout = timeoutMilliseconds > 0 ? TimeSpan.FromMilliseconds(timeoutMilliseconds) : null,
        MaxAttempts = maxAttempts,
        RetryBackoff = TimeSpan.FromMilliseconds(retryBackoffMilliseconds),
        Ordered = ordered,
    };

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings =>
    [
        Setting.Number(nameof(MaxInFlight), "Requests in flight per partition at most; a full partition stops reading", () => MaxInFlight, v => MaxInFlight = (int)v, 1, 1 << 16),
        Setting.Duration(nameof(Timeout), "How long one attempt may take before it fails with a timeout", () => Timeout, v => Timeout = v, optional: true),
        Setting.Number(nameof(MaxAttempts), "Attempts per record, the first included; a record that fails them all goes to the error policy", () => MaxAttempts, v => MaxAttempts = (int)v, 1, 100),
        Setting.Duration(nameof(RetryBackoff), "The wait before the second attempt; it doubles before each further one", () => RetryBackoff, v => RetryBackoff = v!.Value),
        Setting.Boolean(nameof(Ordered), "Results leave in the order their records arrived (true) or as their calls complete (false)", () => Ordered, v => Ordered = v),
        Setting.Boolean(nameof(Spread), "Spread batches over every partition in turn instead of calling in the partition that read them (order across batches is lost)", () => Spread, v => Spread = v),
    ];

    /// <summary>A one-line description for plans.</summary>
    public string Describe()
        => $"async, at most {MaxInFlight} in flight per partition, {(Ordered ? "ordered" : "unordered")}{(Spread ? ", spread over every partition" : "")}, timeout {(Timeout is { } t ? Setting.FormatDuration(t) : "none")}, {MaxAttempts} attempt{(MaxAttempts == 1 ? "" : "s")}";
}

/// <summary>What an asynchronous transform did, over all its partitions: read by the summary.</summary>
internal sealed class AsyncStatistics
{
    private long _calls;
    private long _retries;
    private long _timeouts;
    private long _failed;
    private int _peak;

    /// <summary>Calls made (attempts, retries included).</summary>
    public long Calls => Volatile.Read(ref _calls);

    /// <summary>Attempts that were a retry.</summary>
    public long Retries => Volatile.Read(ref _retries);

    /// <summary>Attempts that timed out.</summary>
    public long Timeouts => Volatile.Read(ref _timeouts);

    /// <summary>Records that failed every attempt (handed to the error policy).</summary>
    public long Failed => Volatile.Read(ref _failed);

    /// <summary>The most requests one partition had in flight at once.</summary>
    public int PeakInFlight => Volatile.Read(ref _peak);

    public void Retried() => Interlocked.Increment(ref _retries);

    public void TimedOut() => Interlocked.Increment(ref _timeouts);

    public void AddFailed(long count) => Interlocked.Add(ref _failed, count);

    public void Called() => Interlocked.Increment(ref _calls);

    /// <summary>A partition's count of requests in flight rose to <paramref name="inFlight"/>.</summary>
    public void InFlight(int inFlight)
    {
        var peak = Volatile.Read(ref _peak);
        while (inFlight > peak)
        {
            var seen = Interlocked.CompareExchange(ref _peak, inFlight, peak);
            if (seen == peak)
            {
                return;
            }

            peak = seen;
        }
    }
}
