namespace Compiled;

/// <summary>
/// Marks a <see cref="JoinSpec{TLeft, TRight}"/> member of a pipeline as a join of two keyed streams: the records of
/// <c>TLeft</c> and of <c>TRight</c> that share a key and meet in time leave as
/// <see cref="Joined{TLeft, TRight}"/>. The pipeline reads both record types (a <c>[Source]</c> of each); the join reads
/// the nearest <c>[KeyBy]</c> above it that takes <c>TLeft</c> records and the nearest that takes <c>TRight</c>
/// records, whose keys must have one type.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class JoinAttribute : Attribute
{
}

/// <summary>How a join of two streams decides that two records meet.</summary>
public enum JoinTime
{
    /// <summary>
    /// An interval join (Flink's <c>intervalJoin</c>): a right record meets every left record with the same key whose
    /// event time <c>l</c> satisfies <c>l + LowerBound ≤ r ≤ l + UpperBound</c>.
    /// </summary>
    Interval,

    /// <summary>A window join (Flink's window join): records with the same key meet when they fall into the same tumbling or sliding window.</summary>
    Window,

    /// <summary>
    /// A stream–table join (Flink's temporal join, Kafka Streams' KStream–KTable join): the right records are the
    /// changes of a table keyed like the left stream, and each left record meets the row its key has — as of the left
    /// record's event time (<see cref="JoinSpec{TLeft, TRight}.Versioned"/>), or the latest one.
    /// </summary>
    Table,
}

/// <summary>
/// A join of two keyed streams on event time, declared with <see cref="JoinAttribute"/> and created by
/// <see cref="Join.Interval{TLeft, TRight}"/> or <see cref="Join.Windowed{TLeft, TRight}"/>; set the rest with
/// <c>with</c>: <c>Join.Interval&lt;Order, Payment&gt;(TimeSpan.Zero, TimeSpan.FromMinutes(15)) with { Kind = JoinKind.LeftOuter }</c>.
/// </summary>
/// <typeparam name="TLeft">The left records (every one is kept by a left-outer join).</typeparam>
/// <typeparam name="TRight">The right records.</typeparam>
public sealed record JoinSpec<TLeft, TRight>
{
    internal JoinSpec(JoinTime time, TimeSpan lowerBound, TimeSpan upperBound, Window window)
    {
        Time = time;
        LowerBound = lowerBound;
        UpperBound = upperBound;
        Window = window;
    }

    /// <summary>Interval or window.</summary>
    public JoinTime Time { get; }

    /// <summary>For an interval join: how far the right record's time may lie from the left one's, at least (may be negative).</summary>
    public TimeSpan LowerBound { get; }

    /// <summary>For an interval join: how far the right record's time may lie from the left one's, at most.</summary>
    public TimeSpan UpperBound { get; }

    /// <summary>For a window join: the windows records meet in (tumbling or sliding).</summary>
    public Window Window { get; }

    /// <summary>Inner (default: only pairs) or left-outer (a left record that met nothing leaves alone, once its time has passed).</summary>
    public JoinKind Kind { get; init; } = JoinKind.Inner;

    /// <summary>
    /// For a stream–table join: true (default) joins each left record with the row valid at its event time — the last
    /// change at or before it — once the watermark has passed it; false joins it at once with the latest row the table
    /// holds when it arrives.
    /// </summary>
    public bool Versioned { get; init; } = true;

    /// <summary>How far behind the largest event time seen the watermark stays (records arriving that much out of order still join).</summary>
    public TimeSpan OutOfOrderness { get; init; }

    /// <summary>How long an input may stay silent before it stops holding the watermark back; zero: forever.</summary>
    public TimeSpan IdleTimeout { get; init; }

    /// <inheritdoc/>
    public override string ToString() => Time switch
    {
        JoinTime.Interval => $"interval join [{LowerBound}, {UpperBound}], {Kind}",
        JoinTime.Window => $"window join {Window}, {Kind}",
        _ => $"{(Versioned ? "versioned " : "")}table join, {Kind}",
    };
}

/// <summary>Creates joins of two streams.</summary>
public static class Join
{
    /// <summary>
    /// An interval join: a left record <c>l</c> and a right record <c>r</c> with the same key meet when
    /// <c>l.Time + lowerBound ≤ r.Time ≤ l.Time + upperBound</c> (both bounds inclusive, as Flink's).
    /// </summary>
    public static JoinSpec<TLeft, TRight> Interval<TLeft, TRight>(TimeSpan lowerBound, TimeSpan upperBound)
    {
        if (lowerBound > upperBound)
        {
            throw new ArgumentException($"The lower bound ({lowerBound}) is after the upper bound ({upperBound}); no record could meet another.", nameof(lowerBound));
        }

        return new JoinSpec<TLeft, TRight>(JoinTime.Interval, lowerBound, upperBound, default);
    }

    /// <summary>
    /// A stream–table join: the right records are a table's changes (a changelog: a compacted topic, a file, a CDC
    /// source) keyed like the left records; each left record meets its key's row as of its event time (set
    /// <c>Versioned = false</c> for the latest row instead). A right record whose <see cref="ChangeKind"/> member is
    /// <see cref="ChangeKind.Delete"/> removes the row; <see cref="ChangeKind.UpdateBefore"/> images are ignored.
    /// </summary>
    public static JoinSpec<TLeft, TRight> Table<TLeft, TRight>() => new(JoinTime.Table, TimeSpan.Zero, TimeSpan.Zero, default);

    /// <summary>A window join: records with the same key meet when they fall into the same window of <paramref name="window"/> (tumbling or sliding).</summary>
    public static JoinSpec<TLeft, TRight> Windowed<TLeft, TRight>(Window window)
    {
        if (window.Kind is not (WindowKind.Tumbling or WindowKind.Sliding))
        {
            throw new ArgumentException($"A window join meets records in tumbling or sliding windows, not in {window.Kind.ToString().ToLowerInvariant()} windows.", nameof(window));
        }

        return new JoinSpec<TLeft, TRight>(JoinTime.Window, TimeSpan.Zero, TimeSpan.Zero, window);
    }
}

/// <summary>
/// A record of one of two types: what the two inputs of a join carry through its exchange, and what a pipeline that
/// reads two record types reads from its sources.
/// </summary>
/// <typeparam name="TLeft">The first type.</typeparam>
/// <typeparam name="TRight">The second type.</typeparam>
public readonly struct Either<TLeft, TRight>
{
    private Either(bool isLeft, TLeft left, TRight right)
    {
        IsLeft = isLeft;
        Left = left;
        Right = right;
    }

    /// <summary>Whether the record is a <typeparamref name="TLeft"/>.</summary>
    public bool IsLeft { get; }

    /// <summary>The record when <see cref="IsLeft"/>; otherwise <c>default</c>.</summary>
    public TLeft Left { get; }

    /// <summary>The record when not <see cref="IsLeft"/>; otherwise <c>default</c>.</summary>
    public TRight Right { get; }

    /// <summary>A left record.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000:Do not declare static members on generic types", Justification = "Generated code builds values the way Nullable<T> and ImmutableArray<T> are built.")]
    public static Either<TLeft, TRight> FromLeft(TLeft left) => new(true, left, default!);

    /// <summary>A right record.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000:Do not declare static members on generic types", Justification = "Generated code builds values the way Nullable<T> and ImmutableArray<T> are built.")]
    public static Either<TLeft, TRight> FromRight(TRight right) => new(false, default!, right);

    /// <inheritdoc/>
    public override string ToString() => IsLeft ? $"Left({Left})" : $"Right({Right})";
}
