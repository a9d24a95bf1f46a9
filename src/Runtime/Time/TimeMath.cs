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

    /// <summary>The greatest common divisor: the pane length of windows of two lengths.</summary>
    public static long Gcd(long a, long b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return a;
    }

    /// <summary>
    /// <paramref name="watermark"/> held back by <paramref name="holdback"/> ms, saturating at the minimum; the end of
    /// input (<see cref="long.MaxValue"/>) stays the end.
    /// </summary>
    public static long HeldBack(long watermark, long holdback)
        => watermark == long.MaxValue ? long.MaxValue : watermark <= long.MinValue + holdback ? long.MinValue : watermark - holdback;
}
