using System.Runtime.CompilerServices;

namespace Compiled.Runtime;

/// <summary>
/// A record on its way through a hash exchange: its key, the key's hash (computed once, in the loop before the
/// exchange), its event time in Unix milliseconds, and the record. Generated loops create these; the partition that
/// owns the key reads them.
/// </summary>
public readonly struct Keyed<TKey, T>
    where TKey : notnull
{
    /// <summary>Creates the exchange entry of <paramref name="record"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Keyed(TKey key, long timestamp, T record)
    {
        Key = key;
        Hash = KeyHash.Of(key);
        Timestamp = timestamp;
        Record = record;
    }

    /// <summary>The key.</summary>
    public TKey Key { get; }

    /// <summary>The key's mixed hash: it picks the partition and the hash-table bucket.</summary>
    public int Hash { get; }

    /// <summary>Event time, Unix milliseconds (0 under processing time until the window stamps it).</summary>
    public long Timestamp { get; init; }

    /// <summary>The record.</summary>
    public T Record { get; }
}

/// <summary>Hashes keys for exchanges and keyed state.</summary>
public static class KeyHash
{
    /// <summary>
    /// The key's hash, mixed (a multiply and a rotate) so that keys with sequential hashes — small integers — spread
    /// over partitions and buckets.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Of<TKey>(TKey key)
        where TKey : notnull
    {
        var h = (uint)EqualityComparer<TKey>.Default.GetHashCode(key) * 0x9E3779B1u;
        return (int)(h ^ (h >> 15));
    }

    /// <summary>The partition of <paramref name="hash"/> among <paramref name="partitions"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Partition(int hash, int partitions) => (int)((uint)hash % (uint)partitions);
}

/// <summary>Converts <c>[EventTime]</c> members to Unix milliseconds (generated loops call these).</summary>
public static class EventTimes
{
    /// <summary>Already Unix milliseconds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Millis(long unixMilliseconds) => unixMilliseconds;

    /// <summary>A point in time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Millis(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    /// <summary>A <see cref="DateTime"/>: UTC, or local when its kind says so; unspecified counts as UTC.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Millis(DateTime time)
        => time.Kind == DateTimeKind.Local ? new DateTimeOffset(time).ToUnixTimeMilliseconds() : new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc)).ToUnixTimeMilliseconds();
}

/// <summary>Integer division that rounds toward negative infinity (window arithmetic on times before the epoch).</summary>
internal static class TimeMath
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long FloorDiv(long value, long divisor)
    {
        var q = value / divisor;
        return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? q - 1 : q;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long CeilDiv(long value, long divisor) => -FloorDiv(-value, divisor);

    public static long Millis(TimeSpan span) => span.Ticks / TimeSpan.TicksPerMillisecond;
}
