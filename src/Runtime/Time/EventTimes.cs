using System.ComponentModel;
using System.Runtime.CompilerServices;

namespace Compiled.Runtime.CompilerServices;

/// <summary>Converts <c>[EventTime]</c> members to Unix milliseconds (generated loops call these).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
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
