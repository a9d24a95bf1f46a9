namespace Compiled;

/// <summary>
/// Tunes an asynchronous transform — a <see cref="TransformAttribute"/> method returning <c>ValueTask&lt;U&gt;</c>
/// (or <c>ValueTask&lt;IEnumerable&lt;U&gt;&gt;</c>, whose elements leave one by one). Optional: without it the
/// defaults below apply. Each value is also a run setting (<c>{Method}.MaxInFlight</c>, <c>{Method}.Timeout</c>,
/// <c>{Method}.MaxAttempts</c>, <c>{Method}.RetryBackoff</c>, <c>{Method}.Ordered</c>) that configuration or
/// <c>--set</c> can change without a rebuild.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false, AllowMultiple = false)]
public sealed class AsyncOptionsAttribute : Attribute
{
    /// <summary>Requests one partition has in flight at most (Flink's capacity); a full partition stops reading. Default 100.</summary>
    public int MaxInFlight { get; set; } = 100;

    /// <summary>How long one attempt may take before it counts as failed (<see cref="TimeoutException"/>); 0: no limit. Default 30 000.</summary>
    public int TimeoutMilliseconds { get; set; } = 30_000;

    /// <summary>Attempts per record, the first included; a record that fails them all goes to the error policy. Default 1 (no retry).</summary>
    public int MaxAttempts { get; set; } = 1;

    /// <summary>The wait before the second attempt; it doubles before each further one. Default 100.</summary>
    public int RetryBackoffMilliseconds { get; set; } = 100;

    /// <summary>
    /// True (default): results leave in the order their records arrived. False: in the order the calls completed.
    /// </summary>
    public bool Ordered { get; set; } = true;

    /// <summary>
    /// False (default): a record is called for in the partition that read it (no hop, order kept). True: batches are
    /// spread over every partition in turn, so a source that reads with fewer partitions than the pipeline has (one
    /// file, a topic with fewer partitions) still uses every partition's calls; order across batches is lost.
    /// </summary>
    public bool Spread { get; set; }
}
