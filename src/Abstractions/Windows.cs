// Aggregators implement static abstract interface members (CA1000 does not apply: callers go through the interface,
// resolved at compile time), and accumulators are plain mutable structs updated once per record (CA1051).
#pragma warning disable CA1000, CA1051

using System.Numerics;
using System.Runtime.CompilerServices;

namespace Compiled;

/// <summary>
/// Marks a key selector: a method <c>TKey M(T)</c>. It ends the fused loop before it: every record's key is computed
/// in that loop and the record crosses a hash exchange to the partition that owns the key. The
/// <see cref="WindowAttribute"/> stage declared right after it reads from it. A pipeline may key its stream several
/// times: a second key selector may read what a window emitted (count per page and minute, then the top pages per
/// minute), or a branch of the same stream (<see cref="Input"/>).
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false, AllowMultiple = false)]
public sealed class KeyByAttribute : Attribute
{
    /// <summary>The stage this key selector reads from, by member name; by default the stage declared just above (see <see cref="TransformAttribute.Input"/>).</summary>
    public string? Input { get; set; }
}

/// <summary>
/// Marks a keyed window: a property or field of type <see cref="WindowSpec{TIn, TAggregator}"/> declared right after
/// the <see cref="KeyByAttribute"/> stage it reads from. Records leave it as <see cref="WindowResult{TKey, TValue}"/>,
/// whose event time is <c>End - 1</c> (the last instant of the window, as in Flink), so a window may follow another.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class WindowAttribute : Attribute
{
}

/// <summary>
/// Marks the event time of a record type: a property or field of type <see cref="long"/> (Unix milliseconds),
/// <see cref="DateTime"/> or <see cref="DateTimeOffset"/>. Event-time windows read it; without one a window must
/// use <see cref="TimeMode.Processing"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter, Inherited = true, AllowMultiple = false)]
public sealed class EventTimeAttribute : Attribute
{
}

/// <summary>
/// Marks the side output of a keyed window: an <see cref="ISink{T}"/> of the window's input records that receives
/// the records that arrived too late for every window they belong to (later than the allowed lateness). Records
/// dropped as late are counted (and shown in the summary) whether or not a pipeline declares one.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class LateDataAttribute : Attribute
{
    /// <summary>The window whose late records this sink receives, by member name (<c>Window = nameof(PerMinute)</c>); may be omitted when the pipeline has one window.</summary>
    public string? Window { get; set; }
}

/// <summary>Which clock a window runs on.</summary>
public enum TimeMode
{
    /// <summary>The records' <see cref="EventTimeAttribute"/> member, with watermarks.</summary>
    Event,

    /// <summary>The wall clock when the window receives a record; nothing is ever late.</summary>
    Processing,
}

/// <summary>The shape of a window: tumbling, sliding (hopping) or session.</summary>
public readonly record struct Window
{
    private Window(WindowKind kind, TimeSpan size, TimeSpan slide)
    {
        Kind = kind;
        Size = size;
        Slide = slide;
    }

    /// <summary>Tumbling, sliding or session.</summary>
    public WindowKind Kind { get; }

    /// <summary>The length of a tumbling or sliding window; the inactivity gap of a session window.</summary>
    public TimeSpan Size { get; }

    /// <summary>How far consecutive sliding windows are apart (equal to <see cref="Size"/> for tumbling windows).</summary>
    public TimeSpan Slide { get; }

    /// <summary>Fixed, non-overlapping windows of <paramref name="size"/>, aligned to the Unix epoch.</summary>
    public static Window Tumbling(TimeSpan size) => new(WindowKind.Tumbling, Positive(size), size);

    /// <summary>Windows of <paramref name="size"/> starting every <paramref name="slide"/>; a record belongs to size/slide of them.</summary>
    public static Window Sliding(TimeSpan size, TimeSpan slide)
    {
        Positive(size);
        Positive(slide);
        if (slide > size)
        {
            throw new ArgumentOutOfRangeException(nameof(slide), slide, "A sliding window's slide must not exceed its size.");
        }

        return new(WindowKind.Sliding, size, slide);
    }

    /// <summary>Per-key sessions: a session ends after <paramref name="gap"/> without records of its key.</summary>
    public static Window Session(TimeSpan gap) => new(WindowKind.Session, Positive(gap), TimeSpan.Zero);

    /// <summary>
    /// A running aggregate per key (Flink's keyed <c>reduce</c>): every record updates its key's accumulator and emits
    /// the new result at once. No window closes, so no watermark is needed and no record is late; state is kept per key
    /// until the end of input.
    /// </summary>
    public static Window Running() => new(WindowKind.Running, TimeSpan.MaxValue, TimeSpan.Zero);

    private static TimeSpan Positive(TimeSpan value, [CallerArgumentExpression(nameof(value))] string? name = null)
        => value.Ticks >= TimeSpan.TicksPerMillisecond && value.Ticks % TimeSpan.TicksPerMillisecond == 0
            ? value
            : throw new ArgumentOutOfRangeException(name, value, "Window lengths are whole milliseconds, at least 1 ms.");

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        WindowKind.Tumbling => $"tumbling {Size}",
        WindowKind.Sliding => $"sliding {Size} every {Slide}",
        WindowKind.Running => "running aggregate",
        _ => $"session gap {Size}",
    };
}

/// <summary>The kinds of windows.</summary>
public enum WindowKind
{
    /// <summary>Fixed, non-overlapping.</summary>
    Tumbling,

    /// <summary>Fixed size, overlapping, starting every slide.</summary>
    Sliding,

    /// <summary>Per key, closed by a gap of inactivity.</summary>
    Session,

    /// <summary>No window: a running aggregate per key, emitted on every record.</summary>
    Running,
}

/// <summary>
/// A keyed window declared on a pipeline: its shape, the aggregate (the type <typeparamref name="TAggregator"/>,
/// resolved at compile time and inlined), and its watermark and lateness rules.
/// <code>
/// [Window] public WindowSpec&lt;Event, Count&lt;Event&gt;&gt; PerMinute { get; } =
///     new(Window.Tumbling(TimeSpan.FromMinutes(1))) { OutOfOrderness = TimeSpan.FromSeconds(5) };
/// </code>
/// </summary>
/// <typeparam name="TIn">The records the window receives.</typeparam>
/// <typeparam name="TAggregator">How records are aggregated (<see cref="Count{T}"/>, <see cref="Sum{T, TValue, TNumber}"/>, or yours).</typeparam>
public sealed class WindowSpec<TIn, TAggregator>(Window window)
{
    /// <summary>The window's shape.</summary>
    public Window Window { get; } = window.Size > TimeSpan.Zero ? window : throw new ArgumentException("Create the window with Window.Tumbling, Window.Sliding, Window.Session or Window.Running.", nameof(window));

    /// <summary>Event time (watermarks from the records) or processing time. Default: event time.</summary>
    public TimeMode Time { get; init; } = TimeMode.Event;

    /// <summary>How far out of order records may arrive: the watermark trails the largest event time seen by this much. Default: zero.</summary>
    public TimeSpan OutOfOrderness { get; init; }

    /// <summary>
    /// How long a window keeps accepting records after it fired: a record within it updates the window and the
    /// window is emitted again (<see cref="WindowResult{TKey, TValue}.IsUpdate"/>). Later records go to the
    /// <see cref="LateDataAttribute"/> output. Default: zero.
    /// </summary>
    public TimeSpan AllowedLateness { get; init; }

    /// <summary>
    /// After this long without records, an input partition stops holding back the watermark (so one quiet Kafka
    /// partition does not stall every window). Default: never (<see cref="TimeSpan.Zero"/>).
    /// </summary>
    public TimeSpan IdleTimeout { get; init; }

    /// <summary>
    /// Running aggregates (<see cref="Window.Running"/>) only: a key whose accumulator has not been updated for this long
    /// (processing time) is dropped and counted, so a job over an unbounded key space keeps bounded memory; its next
    /// record starts from the aggregate's initial value. Time windows need none: their state goes when they fire.
    /// Default: never (<see cref="TimeSpan.Zero"/>).
    /// </summary>
    public TimeSpan StateTimeToLive { get; init; }

    /// <inheritdoc/>
    public override string ToString() => $"{Window}, {Time} time, out-of-orderness {OutOfOrderness}, lateness {AllowedLateness}";
}

/// <summary>
/// One window's result for one key, emitted when the watermark passes the window's end (and again, with
/// <see cref="IsUpdate"/>, for each record that arrives within the allowed lateness).
/// </summary>
/// <param name="Key">The key.</param>
/// <param name="Start">The window's start, inclusive, in Unix milliseconds.</param>
/// <param name="End">The window's end, exclusive, in Unix milliseconds.</param>
/// <param name="Value">The aggregate.</param>
/// <param name="IsUpdate">Whether this result is a late firing (the window had fired before, or its time had passed).</param>
public readonly record struct WindowResult<TKey, TValue>(TKey Key, long Start, long End, TValue Value, bool IsUpdate = false)
{
    /// <summary>The window's start as a UTC time (<see cref="DateTimeOffset.MinValue"/> for a running aggregate).</summary>
    public DateTimeOffset StartTime => Start <= MinUnixMilliseconds ? DateTimeOffset.MinValue : DateTimeOffset.FromUnixTimeMilliseconds(Start);

    /// <summary>The window's end as a UTC time (<see cref="DateTimeOffset.MaxValue"/> for a running aggregate).</summary>
    public DateTimeOffset EndTime => End >= MaxUnixMilliseconds ? DateTimeOffset.MaxValue : DateTimeOffset.FromUnixTimeMilliseconds(End);

    private const long MinUnixMilliseconds = -62_135_596_800_000;
    private const long MaxUnixMilliseconds = 253_402_300_799_999;
}

/// <summary>
/// A window aggregate, as static methods over an accumulator struct that starts as <c>default</c>. The window
/// operator is generic over the aggregator type, so these calls are direct and inlined.
/// </summary>
/// <typeparam name="TIn">The records aggregated.</typeparam>
/// <typeparam name="TAcc">The accumulator: window state per key (keep it small and unmanaged where you can).</typeparam>
/// <typeparam name="TOut">The result.</typeparam>
public interface IAggregator<TIn, TAcc, TOut>
{
    /// <summary>Adds one record.</summary>
    static abstract void Add(ref TAcc accumulator, in TIn input);

    /// <summary>Merges another accumulator into this one (panes of a sliding window, merged sessions).</summary>
    static abstract void Merge(ref TAcc accumulator, in TAcc other);

    /// <summary>The result of an accumulator.</summary>
    static abstract TOut Result(in TAcc accumulator);
}

/// <summary>Selects the number a <see cref="Sum{T, TValue, TNumber}"/>, <see cref="Min{T, TValue, TNumber}"/>, <see cref="Max{T, TValue, TNumber}"/> or <see cref="Average{T, TValue, TNumber}"/> aggregates.</summary>
public interface IValueSelector<T, TNumber>
{
    /// <summary>The number of <paramref name="record"/>.</summary>
    static abstract TNumber ValueOf(in T record);
}

/// <summary>Counts records.</summary>
public readonly struct Count<T> : IAggregator<T, long, long>
{
    /// <inheritdoc/>
    public static void Add(ref long accumulator, in T input) => accumulator++;

    /// <inheritdoc/>
    public static void Merge(ref long accumulator, in long other) => accumulator += other;

    /// <inheritdoc/>
    public static long Result(in long accumulator) => accumulator;
}

/// <summary>Sums a number selected by <typeparamref name="TValue"/>.</summary>
public readonly struct Sum<T, TValue, TNumber> : IAggregator<T, TNumber, TNumber>
    where TValue : IValueSelector<T, TNumber>
    where TNumber : struct, INumber<TNumber>
{
    /// <inheritdoc/>
    public static void Add(ref TNumber accumulator, in T input) => accumulator = accumulator + TValue.ValueOf(input);

    /// <inheritdoc/>
    public static void Merge(ref TNumber accumulator, in TNumber other) => accumulator = accumulator + other;

    /// <inheritdoc/>
    public static TNumber Result(in TNumber accumulator) => accumulator;
}

/// <summary>An accumulator that may be empty: for <see cref="Min{T, TValue, TNumber}"/> and <see cref="Max{T, TValue, TNumber}"/>.</summary>
public struct Extreme<TNumber>
{
    /// <summary>Whether a value has been seen.</summary>
    public bool HasValue;

    /// <summary>The extreme so far.</summary>
    public TNumber Value;
}

/// <summary>The smallest number selected by <typeparamref name="TValue"/>.</summary>
public readonly struct Min<T, TValue, TNumber> : IAggregator<T, Extreme<TNumber>, TNumber>
    where TValue : IValueSelector<T, TNumber>
    where TNumber : struct, INumber<TNumber>
{
    /// <inheritdoc/>
    public static void Add(ref Extreme<TNumber> accumulator, in T input) => Merge(ref accumulator, new Extreme<TNumber> { HasValue = true, Value = TValue.ValueOf(input) });

    /// <inheritdoc/>
    public static void Merge(ref Extreme<TNumber> accumulator, in Extreme<TNumber> other)
    {
        if (other.HasValue && (!accumulator.HasValue || other.Value < accumulator.Value))
        {
            accumulator = other;
        }
    }

    /// <inheritdoc/>
    public static TNumber Result(in Extreme<TNumber> accumulator) => accumulator.Value;
}

/// <summary>The largest number selected by <typeparamref name="TValue"/>.</summary>
public readonly struct Max<T, TValue, TNumber> : IAggregator<T, Extreme<TNumber>, TNumber>
    where TValue : IValueSelector<T, TNumber>
    where TNumber : struct, INumber<TNumber>
{
    /// <inheritdoc/>
    public static void Add(ref Extreme<TNumber> accumulator, in T input) => Merge(ref accumulator, new Extreme<TNumber> { HasValue = true, Value = TValue.ValueOf(input) });

    /// <inheritdoc/>
    public static void Merge(ref Extreme<TNumber> accumulator, in Extreme<TNumber> other)
    {
        if (other.HasValue && (!accumulator.HasValue || other.Value > accumulator.Value))
        {
            accumulator = other;
        }
    }

    /// <inheritdoc/>
    public static TNumber Result(in Extreme<TNumber> accumulator) => accumulator.Value;
}

/// <summary>The sum and count behind an <see cref="Average{T, TValue, TNumber}"/>.</summary>
public struct SumCount<TNumber>
    where TNumber : struct
{
    /// <summary>The sum.</summary>
    public TNumber Sum;

    /// <summary>The count.</summary>
    public long Count;
}

/// <summary>The mean of a number selected by <typeparamref name="TValue"/>, as a <see cref="double"/>.</summary>
public readonly struct Average<T, TValue, TNumber> : IAggregator<T, SumCount<TNumber>, double>
    where TValue : IValueSelector<T, TNumber>
    where TNumber : struct, INumber<TNumber>
{
    /// <inheritdoc/>
    public static void Add(ref SumCount<TNumber> accumulator, in T input)
    {
        accumulator.Sum = accumulator.Sum + TValue.ValueOf(input);
        accumulator.Count++;
    }

    /// <inheritdoc/>
    public static void Merge(ref SumCount<TNumber> accumulator, in SumCount<TNumber> other)
    {
        accumulator.Sum = accumulator.Sum + other.Sum;
        accumulator.Count += other.Count;
    }

    /// <inheritdoc/>
    public static double Result(in SumCount<TNumber> accumulator)
        => accumulator.Count == 0 ? 0 : double.CreateChecked(accumulator.Sum) / accumulator.Count;
}
