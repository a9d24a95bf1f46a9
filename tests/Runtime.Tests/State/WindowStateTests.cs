using Compiled.Runtime.Tests.Windows;
using CsCheck;
using WindowReading = Compiled.Runtime.Tests.Windows.Reading;

namespace Compiled.Runtime.Tests.State;

/// <summary>
/// Window state through a checkpoint: a run at one parallelism is cut at a random batch, every partition's operator is
/// snapshotted, the snapshots are restored into another number of operators (keys re-hashed), and the run goes on.
/// What it emits before and after the cut together must equal an uninterrupted run's — the naive reference.
/// </summary>
public class WindowStateTests
{
    private static readonly long[] Lateness = [0, 15, 60, 400];
    private static readonly long[] OutOfOrder = [0, 20, 80];

    private static WindowOperator<int, WindowReading, long> Create(Window window, long latenessMs)
        => WindowOperator.Create<int, WindowReading, Sum<WindowReading, ReadingValue, long>, long, long>(window, TimeSpan.FromMilliseconds(latenessMs));

    private static IWindowState<int, long> State(WindowOperator<int, WindowReading, long> op) => (IWindowState<int, long>)op;

    private static readonly Gen<Window> Windows = Gen.OneOf(
        Gen.Int[1, 40].Select(size => Window.Tumbling(TimeSpan.FromMilliseconds(size * 25))),
        Gen.Select(Gen.Int[1, 10], Gen.Int[1, 5]).Select((slide, factor) => Window.Sliding(TimeSpan.FromMilliseconds(slide * 20 * factor), TimeSpan.FromMilliseconds(slide * 20))),
        Gen.Int[1, 60].Select(gap => Window.Session(TimeSpan.FromMilliseconds(gap * 10))),
        Gen.Const(Window.Running()));

    private static Gen<List<WindowReading[]>> Batches(long jitter) =>
        Gen.Select(Gen.Int[0, 9], Gen.Int[0, 40], Gen.Int[-1, 1_000], Gen.Int[1, 20]).Array[0, 300]
            .Select(steps =>
            {
                var events = new List<WindowReading>();
                var clock = 10_000L;
                foreach (var (key, advance, jitterDraw, value) in steps)
                {
                    clock += advance;
                    var time = jitterDraw < 0 ? clock - 3_000 : clock - (jitterDraw % (jitter + 1));
                    events.Add(new WindowReading(key, time, value));
                }

                return events;
            })
            .SelectMany(events => Gen.Int[1, 25].Select(size => events.Chunk(size).ToList()));

    /// <summary>
    /// Runs <paramref name="batches"/> through <paramref name="before"/> operators up to batch <paramref name="cut"/>,
    /// checkpoints them, restores into <paramref name="after"/> operators and runs the rest. The watermark is recomputed
    /// from the records read after the cut only, as a restarted run's sources do.
    /// </summary>
    private static (Dictionary<int, List<Emitted>> Output, long Late, long Entries) RunWithRestore(Window window, long latenessMs, long outOfOrderMs, int before, int after, int cut, List<WindowReading[]> batches)
    {
        var output = new Dictionary<int, List<Emitted>>();
        var operators = Enumerable.Range(0, before).Select(_ => Create(window, latenessMs)).ToArray();
        var max = long.MinValue;
        long late = 0;
        long entries = 0;
        for (var b = 0; b < batches.Count; b++)
        {
            if (b == cut)
            {
                var reached = max == long.MinValue ? long.MinValue : max - outOfOrderMs - 1;
                for (var p = 0; p < operators.Length; p++)
                {
                    operators[p].Reached = reached == long.MinValue ? long.MinValue : reached - p; // partitions heard of it at different barriers
                }

                var snapshots = operators.Select(op =>
                {
                    var writer = new StateWriter();
                    State(op).Snapshot(writer, checkpoint: 0, StateCodecs.Unmanaged<int>(), StateCodecs.Unmanaged<long>());
                    return writer.Written.ToArray().AsMemory();
                }).Select(m => (ReadOnlyMemory<byte>)m).ToList();
                entries = operators.Sum(o => o.StateEntries);
                late += operators.Sum(o => o.LateRecords);
                operators = Enumerable.Range(0, after).Select(_ => Create(window, latenessMs)).ToArray();
                WindowStateHeader.Restore(snapshots, StateCodecs.Unmanaged<int>(), StateCodecs.Unmanaged<long>(), operators.Select(State).ToArray());
                Assert.Equal(entries, operators.Sum(o => o.StateEntries));
                Assert.All(operators, o => Assert.Equal(reached, o.Reached)); // the largest: every new partition may hold any old one's keys
                max = long.MinValue; // a restarted source derives its watermark from what it reads again
            }

            var routed = Enumerable.Range(0, operators.Length).Select(_ => new List<Keyed<int, WindowReading>>()).ToArray();
            foreach (var r in batches[b])
            {
                var keyed = new Keyed<int, WindowReading>(r.Key, r.Time, r);
                routed[KeyHash.Partition(keyed.Hash, operators.Length)].Add(keyed);
                max = Math.Max(max, r.Time);
            }

            for (var p = 0; p < operators.Length; p++)
            {
                operators[p].Add(routed[p].ToArray());
                operators[p].Advance(max == long.MinValue ? long.MinValue : max - outOfOrderMs - 1);
                Collect(operators[p], output);
            }
        }

        foreach (var op in operators)
        {
            op.Advance(long.MaxValue);
            Collect(op, output);
        }

        return (output, late + operators.Sum(o => o.LateRecords), entries);
    }

    private static Dictionary<int, List<Emitted>> Reference(Window window, long latenessMs, long outOfOrderMs, List<WindowReading[]> batches, out long late)
    {
        var output = new Dictionary<int, List<Emitted>>();
        var op = Create(window, latenessMs);
        var max = long.MinValue;
        foreach (var batch in batches)
        {
            op.Add(batch.Select(r => new Keyed<int, WindowReading>(r.Key, r.Time, r)).ToArray());
            foreach (var r in batch)
            {
                max = Math.Max(max, r.Time);
            }

            op.Advance(max == long.MinValue ? long.MinValue : max - outOfOrderMs - 1);
            Collect(op, output);
        }

        op.Advance(long.MaxValue);
        Collect(op, output);
        late = op.LateRecords;
        return output;
    }

    private static void Collect(WindowOperator<int, WindowReading, long> op, Dictionary<int, List<Emitted>> output)
    {
        foreach (var r in op.Results.Span)
        {
            if (!output.TryGetValue(r.Key, out var list))
            {
                output[r.Key] = list = [];
            }

            list.Add(new Emitted(r.Start, r.End, r.Value, r.IsUpdate));
        }

        op.Results.Reset();
    }

    [Fact]
    public void A_checkpoint_restored_at_another_parallelism_emits_what_an_uninterrupted_run_emits()
    {
        Gen.Select(Windows, Gen.Int[0, 3].Select(i => Lateness[i]), Gen.Int[0, 2].Select(i => OutOfOrder[i]), Gen.Int[1, 4], Gen.Int[1, 4])
            .SelectMany((window, lateness, outOfOrder, before, after) => Batches(outOfOrder * 2)
                .SelectMany(batches => Gen.Int[0, Math.Max(0, batches.Count - 1)].Select(cut => (window, lateness, outOfOrder, before, after, cut, batches))))
            .Sample(
                t =>
                {
                    var expected = Reference(t.window, t.lateness, t.outOfOrder, t.batches, out var expectedLate);
                    var restored = RunWithRestore(t.window, t.lateness, t.outOfOrder, t.before, t.after, t.cut, t.batches);
                    Assert.Equal(expectedLate, restored.Late);
                    Assert.Equal(expected.Keys.Order(), restored.Output.Keys.Order());
                    foreach (var (key, emitted) in expected)
                    {
                        Assert.Equal(emitted, restored.Output[key]);
                    }
                },
                iter: 400,
                print: t => $"{t.window} lateness {t.lateness} ooo {t.outOfOrder} p {t.before}->{t.after} cut {t.cut} batches [{string.Join(" | ", t.batches.Select(b => string.Join(",", b.Select(r => $"{r.Key}@{r.Time}:{r.Value}"))))}]");
    }

    [Fact]
    public void A_snapshot_written_before_the_header_had_what_the_inputs_reached_restores_with_none()
    {
        var old = Create(Window.Tumbling(TimeSpan.FromMilliseconds(100)), 0);
        old.Add([new Keyed<int, WindowReading>(7, 1_050, new WindowReading(7, 1_050, 3))]);
        old.Reached = 5_000;
        var writer = new StateWriter();
        State(old).Snapshot(writer, checkpoint: 0, StateCodecs.Unmanaged<int>(), StateCodecs.Unmanaged<long>());
        var current = writer.Written.ToArray();
        Assert.Equal(WindowStateHeader.Version, current[0]);
        Assert.Null(WindowStateHeader.SplitStateOf(current));

        // Version 1: the same header without its last two fields (after the version, kind, watermark, clock and count:
        // what the inputs reached, 8 bytes, and the split state's length, 4 bytes: -1, none).
        var versionOne = current[..26].Concat(current[38..]).ToArray();
        versionOne[0] = 1;
        var restored = Create(Window.Tumbling(TimeSpan.FromMilliseconds(100)), 0);
        WindowStateHeader.Restore([versionOne], StateCodecs.Unmanaged<int>(), StateCodecs.Unmanaged<long>(), [State(restored)]);
        Assert.Equal(long.MinValue, restored.Reached);
        restored.Advance(long.MaxValue);
        Assert.Equal([(7, 1_000L, 3L)], restored.Results.Span.ToArray().Select(r => (r.Key, r.Start, r.Value)));

        var fromCurrent = Create(Window.Tumbling(TimeSpan.FromMilliseconds(100)), 0);
        WindowStateHeader.Restore([current], StateCodecs.Unmanaged<int>(), StateCodecs.Unmanaged<long>(), [State(fromCurrent)]);
        Assert.Equal(5_000, fromCurrent.Reached);

        // Version 2: without the split state.
        var versionTwo = current[..34].Concat(current[38..]).ToArray();
        versionTwo[0] = 2;
        Assert.Null(WindowStateHeader.SplitStateOf(versionTwo));
        var fromTwo = Create(Window.Tumbling(TimeSpan.FromMilliseconds(100)), 0);
        WindowStateHeader.Restore([versionTwo], StateCodecs.Unmanaged<int>(), StateCodecs.Unmanaged<long>(), [State(fromTwo)]);
        Assert.Equal(5_000, fromTwo.Reached);
        fromTwo.Advance(long.MaxValue);
        Assert.Equal([(7, 1_000L, 3L)], fromTwo.Results.Span.ToArray().Select(r => (r.Key, r.Start, r.Value)));
    }

    [Fact]
    public void A_snapshot_keeps_the_split_state_its_last_barrier_brought_in_its_header_and_restores_its_entries_as_before()
    {
        var old = Create(Window.Tumbling(TimeSpan.FromMilliseconds(100)), 0);
        old.Add([new Keyed<int, WindowReading>(7, 1_050, new WindowReading(7, 1_050, 3))]);
        old.SplitState = [1, 2, 3, 250];
        var writer = new StateWriter();
        State(old).Snapshot(writer, checkpoint: 0, StateCodecs.Unmanaged<int>(), StateCodecs.Unmanaged<long>());
        var snapshot = writer.Written.ToArray();
        Assert.Equal([1, 2, 3, 250], WindowStateHeader.SplitStateOf(snapshot));

        var restored = Create(Window.Tumbling(TimeSpan.FromMilliseconds(100)), 0);
        WindowStateHeader.Restore([snapshot], StateCodecs.Unmanaged<int>(), StateCodecs.Unmanaged<long>(), [State(restored)]);
        restored.Advance(long.MaxValue);
        Assert.Equal([(7, 1_000L, 3L)], restored.Results.Span.ToArray().Select(r => (r.Key, r.Start, r.Value)));
    }

    [Fact]
    public void String_and_tuple_keys_and_record_accumulators_round_trip_through_their_codecs()
    {
        var writer = new StateWriter();
        var tuple = StateCodecs.Tuple(StateCodecs.Utf8, StateCodecs.Unmanaged<long>());
        tuple.Write(writer, ("páge/ü", 42L));
        tuple.Write(writer, (string.Empty, -1L));
        StateCodecs.Unmanaged<DateTime>().Write(writer, new DateTime(2026, 12, 1, 3, 0, 0, DateTimeKind.Utc));
        var reader = new StateReader(writer.Written);
        Assert.Equal(("páge/ü", 42L), tuple.Read(ref reader));
        Assert.Equal((string.Empty, -1L), tuple.Read(ref reader));
        Assert.Equal(new DateTime(2026, 12, 1, 3, 0, 0, DateTimeKind.Utc), StateCodecs.Unmanaged<DateTime>().Read(ref reader));
        Assert.True(reader.End);
        Assert.Throws<InvalidDataException>(() =>
        {
            var truncated = new StateReader(writer.Written[..5]);
            return tuple.Read(ref truncated);
        });
    }
}
