using Compiled.Connectors;
using Compiled.Testing;
using CsCheck;

namespace Compiled.Runtime.Tests.Joins;

[Record]
public readonly partial record struct LeftEvent(int Key, int Id, [property: EventTime] long Time);

[Record]
public readonly partial record struct RightEvent(int Key, int Id, [property: EventTime] long Time, ChangeKind Op = ChangeKind.Insert);

/// <summary>The smallest join of two streams, for property tests: its spec is set by each test.</summary>
[Pipeline(Name = "left-right")]
public sealed partial class LeftRight
{
    [Source] public ISource<LeftEvent> Lefts { get; set; } = new CollectionSource<LeftEvent>();

    [Source] public ISource<RightEvent> Rights { get; set; } = new CollectionSource<RightEvent>();

    [KeyBy] static int LeftKey(LeftEvent e) => e.Key;

    [KeyBy] static int RightKey(RightEvent e) => e.Key;

    [Join] public JoinSpec<LeftEvent, RightEvent> Joined { get; set; } = Join.Interval<LeftEvent, RightEvent>(TimeSpan.Zero, TimeSpan.Zero);

    [Sink] public CollectionSink<Joined<LeftEvent, RightEvent>> Out { get; set; } = new();

    [LateData] public CollectionSink<Either<LeftEvent, RightEvent>> Late { get; set; } = new();
}

/// <summary>
/// Joins against naive references over random streams: several keys, records out of order, some of them late, pushed
/// one at a time through the test driver at 1–4 keyed partitions. The references simulate only what a user can know:
/// the watermark after each record is the largest event time so far less the out-of-orderness and 1 ms, and a
/// record at or behind the watermark when it arrives is late.
/// </summary>
public sealed class JoinPropertyTests
{
    // The batch size is also the most results a join emits on a watermark before it pauses (1 and 2 pause often).
    private static readonly Gen<(Either<LeftEvent, RightEvent>[] Events, long OutOfOrderness, int Parallelism, bool Outer, int BatchSize)> Streams =
        Gen.Select(
            Gen.Select(Gen.Bool, Gen.Int[0, 3], Gen.Long[0, 3_000], Gen.Int[0, 9]).Array[0, 50],
            Gen.Long[0, 800],
            Gen.Int[1, 4],
            Gen.Bool,
            Gen.OneOf(Gen.Int[1, 2], Gen.Const(PipelineOptions.DefaultBatchSize)))
        .Select((raw, ooo, parallelism, outer, batchSize) => (raw.Select((e, i) => e.Item1
            ? Either<LeftEvent, RightEvent>.FromLeft(new LeftEvent(e.Item2, i, e.Item3))
            : Either<LeftEvent, RightEvent>.FromRight(new RightEvent(e.Item2, i, e.Item3, e.Item4 switch { 0 => ChangeKind.Delete, 1 => ChangeKind.UpdateBefore, _ => ChangeKind.UpdateAfter })))
            .ToArray(), ooo, parallelism, outer, batchSize));

    private static long Time(Either<LeftEvent, RightEvent> e) => e.IsLeft ? e.Left.Time : e.Right.Time;

    private static int Key(Either<LeftEvent, RightEvent> e) => e.IsLeft ? e.Left.Key : e.Right.Key;

    private static int Id(Either<LeftEvent, RightEvent> e) => e.IsLeft ? e.Left.Id : e.Right.Id;

    /// <summary>The watermark each record met on arrival, and the one after it.</summary>
    private static (long[] Before, long[] After) Watermarks(Either<LeftEvent, RightEvent>[] events, long outOfOrderness)
    {
        var before = new long[events.Length];
        var after = new long[events.Length];
        long watermark = long.MinValue, max = long.MinValue;
        for (var i = 0; i < events.Length; i++)
        {
            before[i] = watermark;
            max = Math.Max(max, Time(events[i]));
            watermark = Math.Max(watermark, max - outOfOrderness - 1);
            after[i] = watermark;
        }

        return (before, after);
    }

    /// <summary>Runs <paramref name="spec"/> over the events, one push each; returns the pairs (left id, right id or -1) and the late ids.</summary>
    private static (List<(int, int)> Pairs, List<int> Late) Run(Either<LeftEvent, RightEvent>[] events, JoinSpec<LeftEvent, RightEvent> spec, int parallelism, int batchSize)
    {
        var pipeline = new LeftRight { Joined = spec };
        var driver = PipelineTestDriver.StartAsync<Either<LeftEvent, RightEvent>>(pipeline, new PipelineOptions { Parallelism = parallelism, BatchSize = batchSize }).GetAwaiter().GetResult();
        foreach (var e in events)
        {
            driver.Push(e);
        }

        driver.CompleteAsync().GetAwaiter().GetResult();
        return (
            [.. pipeline.Out.Items.Select(j => (j.Left.Id, j.HasRight ? j.Right.Id : -1)).Order()],
            [.. pipeline.Late.Items.Select(Id).Order()]);
    }

    [Fact]
    public void Interval_joins_agree_with_the_reference_with_late_records()
    {
        Gen.Select(Streams, Gen.Long[-500, 500], Gen.Long[0, 700]).Sample((stream, lower, width) =>
        {
            var (events, ooo, parallelism, outer, batchSize) = stream;
            var upper = lower + width;
            var (before, _) = Watermarks(events, ooo);
            var onTime = Enumerable.Range(0, events.Length).Where(i => Time(events[i]) > before[i]).Select(i => events[i]).ToList();
            var expected = new List<(int, int)>();
            foreach (var l in onTime.Where(e => e.IsLeft).Select(e => e.Left))
            {
                var met = onTime.Where(e => !e.IsLeft && e.Right.Key == l.Key && e.Right.Time >= l.Time + lower && e.Right.Time <= l.Time + upper).Select(e => e.Right.Id).ToList();
                expected.AddRange(met.Select(r => (l.Id, r)));
                if (met.Count == 0 && outer)
                {
                    expected.Add((l.Id, -1));
                }
            }

            var late = Enumerable.Range(0, events.Length).Where(i => Time(events[i]) <= before[i]).Select(i => Id(events[i])).Order().ToList();
            var spec = Join.Interval<LeftEvent, RightEvent>(TimeSpan.FromMilliseconds(lower), TimeSpan.FromMilliseconds(upper)) with { Kind = outer ? JoinKind.LeftOuter : JoinKind.Inner, OutOfOrderness = TimeSpan.FromMilliseconds(ooo) };
            var (pairs, lateIds) = Run(events, spec, parallelism, batchSize);
            return pairs.SequenceEqual(expected.Order()) && lateIds.SequenceEqual(late);
        }, iter: 400);
    }

    [Fact]
    public void Window_joins_agree_with_the_reference_with_late_records()
    {
        Gen.Select(Streams, Gen.Long[1, 1_000], Gen.Int[1, 3]).Sample((stream, size, slides) =>
        {
            var (events, ooo, parallelism, outer, batchSize) = stream;
            return WindowJoinAgrees(events, ooo, parallelism, outer, batchSize, size, slides == 1 ? size : Math.Max(1, size / slides));
        }, iter: 400);
    }

    [Fact]
    public void Window_joins_over_many_panes_agree_with_the_reference()
    {
        // Dense streams under sliding windows whose panes are 1 ms or a few: a window covers dozens of panes with
        // records, and the join finds a right record's pane among them by binary search (past 8 panes).
        var dense = Gen.Select(Gen.Select(Gen.Bool, Gen.Int[0, 2], Gen.Long[0, 400]).Array[100, 200], Gen.Long[0, 50], Gen.Int[1, 4], Gen.Bool)
            .Select((raw, ooo, parallelism, outer) => (raw.Select((e, i) => e.Item1
                ? Either<LeftEvent, RightEvent>.FromLeft(new LeftEvent(e.Item2, i, e.Item3))
                : Either<LeftEvent, RightEvent>.FromRight(new RightEvent(e.Item2, i, e.Item3))).ToArray(), ooo, parallelism, outer));
        Gen.Select(dense, Gen.Long[40, 120], Gen.Int[1, 9], Gen.Int[1, 2]).Sample((stream, size, slide, batchSize) =>
        {
            var (events, ooo, parallelism, outer) = stream;
            return WindowJoinAgrees(events, ooo, parallelism, outer, batchSize == 1 ? 1 : PipelineOptions.DefaultBatchSize, size, slide);
        }, iter: 40);
    }

    /// <summary>Whether a window join of <paramref name="size"/> every <paramref name="slide"/> ms over the events emits what the reference does.</summary>
    private static bool WindowJoinAgrees(Either<LeftEvent, RightEvent>[] events, long ooo, int parallelism, bool outer, int batchSize, long size, long slide)
    {
        var (before, _) = Watermarks(events, ooo);

        // Window ends on the grid that hold t: (t, t + size], ends ≡ size (mod slide).
        IEnumerable<long> Ends(long t)
        {
            var last = (long)Math.Floor((double)t / slide) * slide + size;
            for (var end = last; end > t; end -= slide)
            {
                yield return end;
            }
        }

        // A record takes part in each of its windows that had not fired when it arrived; late when none is left.
        var parts = Enumerable.Range(0, events.Length)
            .SelectMany(i => Ends(Time(events[i])).Where(end => end - 1 > before[i]).Select(end => (End: end, Event: events[i])))
            .ToList();
        var expected = new List<(int, int)>();
        foreach (var group in parts.GroupBy(p => (p.End, Key(p.Event))))
        {
            var rights = group.Where(p => !p.Event.IsLeft).Select(p => p.Event.Right.Id).ToList();
            foreach (var l in group.Where(p => p.Event.IsLeft).Select(p => p.Event.Left))
            {
                expected.AddRange(rights.Select(r => (l.Id, r)));
                if (rights.Count == 0 && outer)
                {
                    expected.Add((l.Id, -1));
                }
            }
        }

        var late = Enumerable.Range(0, events.Length).Where(i => !Ends(Time(events[i])).Any(end => end - 1 > before[i])).Select(i => Id(events[i])).Order().ToList();
        var window = slide == size ? Window.Tumbling(TimeSpan.FromMilliseconds(size)) : Window.Sliding(TimeSpan.FromMilliseconds(size), TimeSpan.FromMilliseconds(slide));
        var spec = Join.Windowed<LeftEvent, RightEvent>(window) with { Kind = outer ? JoinKind.LeftOuter : JoinKind.Inner, OutOfOrderness = TimeSpan.FromMilliseconds(ooo) };
        var (pairs, lateIds) = Run(events, spec, parallelism, batchSize);
        return pairs.SequenceEqual(expected.Order()) && lateIds.SequenceEqual(late);
    }

    [Fact]
    public void Versioned_table_joins_agree_with_the_reference_with_late_records()
    {
        Streams.Sample(stream =>
        {
            var (events, ooo, parallelism, outer, batchSize) = stream;
            var (before, after) = Watermarks(events, ooo);
            var expected = new List<(int, int)>();
            for (var a = 0; a < events.Length; a++)
            {
                if (!events[a].IsLeft || Time(events[a]) <= before[a])
                {
                    continue;
                }

                // Met once the watermark reaches its time (or at the end), with the last change of its key at or before
                // it among those that had arrived by then; of one time, the last to arrive.
                var l = events[a].Left;
                var met = Enumerable.Range(a, events.Length - a).Where(e => after[e] >= l.Time).DefaultIfEmpty(events.Length - 1).First();
                var row = Enumerable.Range(0, met + 1)
                    .Where(i => !events[i].IsLeft && events[i].Right.Key == l.Key && events[i].Right.Time <= l.Time && events[i].Right.Op != ChangeKind.UpdateBefore)
                    .Select(i => (RightEvent?)events[i].Right)
                    .OrderBy(r => r!.Value.Time).ThenBy(r => r!.Value.Id)
                    .LastOrDefault();
                if (row is { Op: not ChangeKind.Delete } found)
                {
                    expected.Add((l.Id, found.Id));
                }
                else if (outer)
                {
                    expected.Add((l.Id, -1));
                }
            }

            var late = Enumerable.Range(0, events.Length).Where(i => events[i].IsLeft && Time(events[i]) <= before[i]).Select(i => Id(events[i])).Order().ToList();
            var spec = Join.Table<LeftEvent, RightEvent>() with { Kind = outer ? JoinKind.LeftOuter : JoinKind.Inner, OutOfOrderness = TimeSpan.FromMilliseconds(ooo) };
            var (pairs, lateIds) = Run(events, spec, parallelism, batchSize);
            Same(expected, pairs, late, lateIds);
        }, iter: 400);
    }

    /// <summary>Fails with both sides in the message (CsCheck reports the shrunk input with it).</summary>
    private static void Same(List<(int, int)> expected, List<(int, int)> pairs, List<int> late, List<int> lateIds)
    {
        var want = expected.Order().ToList();
        if (!pairs.SequenceEqual(want) || !lateIds.SequenceEqual(late))
        {
            throw new InvalidOperationException($"expected pairs {string.Join(" ", want)}, got {string.Join(" ", pairs)}; expected late {string.Join(" ", late)}, got {string.Join(" ", lateIds)}");
        }
    }
}
