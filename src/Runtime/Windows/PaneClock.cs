using System.Runtime.CompilerServices;

namespace Compiled.Runtime;

/// <summary>
/// The time arithmetic of tumbling and sliding windows cut into panes of gcd(size, slide) (in memory and on disk):
/// which windows a pane belongs to, which the watermark completes, and when a pane's state can go.
/// Window ends are counted in panes; window k covers panes [k·slide, k·slide + size).
/// </summary>
internal readonly struct PaneClock
{
    public PaneClock(long sizeMs, long slideMs)
    {
        PaneMs = TimeMath.Gcd(sizeMs, slideMs);
        SizePanes = sizeMs / PaneMs;
        SlidePanes = slideMs / PaneMs;
    }

    /// <summary>A pane's length, milliseconds.</summary>
    public long PaneMs { get; }

    /// <summary>A window's length, in panes.</summary>
    public long SizePanes { get; }

    /// <summary>The distance between window starts, in panes.</summary>
    public long SlidePanes { get; }

    /// <summary>The pane <paramref name="timestamp"/> falls in.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long PaneOf(long timestamp) => TimeMath.FloorDiv(timestamp, PaneMs);

    /// <summary>The first and last window (by index) that contain <paramref name="pane"/>.</summary>
    public (long First, long Last) WindowsOf(long pane) => (TimeMath.CeilDiv(pane - SizePanes + 1, SlidePanes), TimeMath.FloorDiv(pane, SlidePanes));

    /// <summary>The end of window <paramref name="window"/> (by index), in panes.</summary>
    public long EndOf(long window) => (window * SlidePanes) + SizePanes;

    /// <summary>The end of the first window that contains <paramref name="pane"/>.</summary>
    public long FirstEndContaining(long pane) => EndOf(WindowsOf(pane).First);

    /// <summary>The end of the last window that contains <paramref name="pane"/>: once it is past the lateness, the pane can go.</summary>
    public long LastEndContaining(long pane) => EndOf(WindowsOf(pane).Last);

    /// <summary>Whether the window ending at <paramref name="endPane"/> is past the allowed lateness at <paramref name="watermark"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsLate(long endPane, long latenessMs, long watermark) => (endPane * PaneMs) - 1 + latenessMs <= watermark;

    /// <summary>Whether the window ending at <paramref name="endPane"/> has fired at <paramref name="watermark"/>.</summary>
    public bool HasFired(long endPane, long watermark) => (endPane * PaneMs) - 1 <= watermark;

    /// <summary>The last window end <paramref name="watermark"/> completes: window [e - size, e) fires once e · pane - 1 ≤ watermark.</summary>
    public long LastEndFiredBy(long watermark) => watermark >= long.MaxValue - 1 ? long.MaxValue / PaneMs : TimeMath.FloorDiv(watermark + 1, PaneMs);

    /// <summary>The first window end after <paramref name="lastEnd"/> (window ends are k · slide + size).</summary>
    public long NextEndAfter(long lastEnd) => lastEnd >= long.MaxValue / 2 ? lastEnd : EndOf(TimeMath.FloorDiv(lastEnd - SizePanes, SlidePanes) + 1);
}
