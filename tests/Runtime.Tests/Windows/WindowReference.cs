namespace Compiled.Runtime.Tests.Windows;

/// <summary>One test event: a key, an event time and a value to sum.</summary>
public readonly record struct Reading(int Key, [property: EventTime] long Time, long Value);

/// <summary>Selects <see cref="Reading.Value"/>.</summary>
public readonly struct ReadingValue : IValueSelector<Reading, long>
{
    public static long ValueOf(in Reading record) => record.Value;
}

/// <summary>An emitted window, as the tests compare them.</summary>
public readonly record struct Emitted(long Start, long End, long Sum, bool IsUpdate);

/// <summary>
/// The naive model the engine is checked against: per key, a list of windows holding the records they got, walked
/// in arrival order with the same watermark and lateness rules — no panes, no hash tables, no timers.
/// </summary>
public sealed class WindowReference(Window window, long latenessMs)
{
    private sealed class Bucket
    {
        public long Start;
        public long End;
        public long Sum;
        public bool Fired;
    }

    private readonly Dictionary<int, List<Bucket>> _windows = [];
    private readonly long _size = (long)window.Size.TotalMilliseconds;
    private readonly long _slide = (long)window.Slide.TotalMilliseconds;

    public long Watermark { get; private set; } = long.MinValue;

    public long Late { get; private set; }

    public Dictionary<int, List<Emitted>> Output { get; } = [];

    public void Add(Reading r)
    {
        var list = ListOf(r.Key);
        if (window.Kind == WindowKind.Session)
        {
            AddSession(r, list);
            return;
        }

        var added = false;
        var first = FloorDiv(r.Time - _size + 1 + _slide - 1, _slide) * _slide; // smallest start s (multiple of slide) with s + size > t
        for (var start = first; start <= r.Time; start += _slide)
        {
            var end = start + _size;
            if (end - 1 + latenessMs <= Watermark)
            {
                continue;
            }

            var bucket = list.Find(b => b.Start == start);
            if (bucket is null)
            {
                bucket = new Bucket { Start = start, End = end };
                list.Add(bucket);
            }

            bucket.Sum += r.Value;
            added = true;
            if (end - 1 <= Watermark)
            {
                Emit(r.Key, bucket, true);
            }
        }

        if (!added)
        {
            Late++;
        }
    }

    private void AddSession(Reading r, List<Bucket> list)
    {
        var start = r.Time;
        var end = r.Time + _size;
        var touched = list.Where(b => b.Start <= end && b.End >= start).ToList();
        var mergedStart = touched.Select(b => b.Start).Append(start).Min();
        var mergedEnd = touched.Select(b => b.End).Append(end).Max();
        if (mergedEnd - 1 + latenessMs <= Watermark)
        {
            Late++;
            return;
        }

        list.RemoveAll(touched.Contains);
        var merged = new Bucket { Start = mergedStart, End = mergedEnd, Sum = touched.Sum(b => b.Sum) + r.Value };
        list.Add(merged);
        if (mergedEnd - 1 <= Watermark)
        {
            Emit(r.Key, merged, true);
        }
    }

    public void Advance(long watermark)
    {
        if (watermark <= Watermark)
        {
            return;
        }

        Watermark = watermark;
        foreach (var (key, list) in _windows)
        {
            foreach (var bucket in list.Where(b => !b.Fired && b.End - 1 <= watermark).OrderBy(b => b.End).ToList())
            {
                Emit(key, bucket, false);
            }

            list.RemoveAll(b => b.End - 1 + latenessMs <= watermark);
        }
    }

    private void Emit(int key, Bucket bucket, bool update)
    {
        bucket.Fired = true;
        if (!Output.TryGetValue(key, out var emitted))
        {
            Output[key] = emitted = [];
        }

        emitted.Add(new Emitted(bucket.Start, bucket.End, bucket.Sum, update));
    }

    private List<Bucket> ListOf(int key)
    {
        if (!_windows.TryGetValue(key, out var list))
        {
            _windows[key] = list = [];
        }

        return list;
    }

    private static long FloorDiv(long a, long b) => (long)Math.Floor((double)a / b);
}
