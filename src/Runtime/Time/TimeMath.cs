using System.Runtime.CompilerServices;

namespace Compiled.Runtime;

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
