namespace Compiled.Connectors;

/// <summary>How bounded sources divide their input among partitions.</summary>
public static class Splits
{
    /// <summary>
    /// The contiguous range of <paramref name="total"/> items that partition <paramref name="partition"/> of
    /// <paramref name="parallelism"/> reads: sizes differ by at most one, and the ranges in partition order cover
    /// the input exactly once, in order.
    /// </summary>
    public static (long Start, long Length) Range(long total, int parallelism, int partition)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, parallelism);
        var size = total / parallelism;
        var remainder = total % parallelism;
        var start = (partition * size) + Math.Min(partition, remainder);
        var length = size + (partition < remainder ? 1 : 0);
        return (start, length);
    }
}
