using CsCheck;

namespace Compiled.Runtime.Tests.Windows;

public class WindowOperatorTests
{
    private static readonly long[] Lateness = [0, 40, 250, 2_000];
    private static readonly long[] OutOfOrder = [0, 30, 200];

    private static WindowOperator<int, Reading, long> Create(Window window, long latenessMs)
        => WindowOperator.Create<int, Reading, Sum<Reading, ReadingValue, long>, long, long>(window, TimeSpan.FromMilliseconds(latenessMs));

    private static Keyed<int, Reading> K(Reading r) => new(r.Key, r.Time, r);

    /// <summary>
    /// Runs batches through <paramref name="parallelism"/> operators the way the exchange does (records routed by key
    /// hash, each batch followed by the bounded-out-of-orderness watermark), then the end-of-input watermark.
    /// The operators fire at most <paramref name="firingBatch"/> results at a time, drained batch by batch as the partition does.
    /// </summary>
    private static (Dictionary<int, List<Emitted>> Output, long Late) RunEngine(Window window, long latenessMs, long outOfOrderMs, int parallelism, List<Reading[]> batches, int firingBatch = int.MaxValue)
        => RunEngine(Enumerable.Range(0, parallelism).Select(_ => Create(window, latenessMs)).ToArray(), outOfOrderMs, batches, firingBatch);

    private static (Dictionary<int, List<Emitted>> Output, long Late) RunEngine(WindowOperator<int, Reading, long>[] operators, long outOfOrderMs, List<Reading[]> batches, int firingBatch)
    {
        var parallelism = operators.Length;
        foreach (var op in operators)
        {
            op.FiringBatch = firingBatch;
        }

        var routed = Enumerable.Range(0, parallelism).Select(_ => new List<Keyed<int, Reading>>()).ToArray();
        var output = new Dictionary<int, List<Emitted>>();
        var max = long.MinValue;
        foreach (var batch in batches)
        {
            foreach (var list in routed)
            {
                list.Clear();
            }

            foreach (var r in batch)
            {
                var keyed = K(r);
                routed[KeyHash.Partition(keyed.Hash, parallelism)].Add(keyed);
                max = Math.Max(max, r.Time);
            }

            for (var p = 0; p < parallelism; p++)
            {
                var records = routed[p].ToArray();
                operators[p].PrepareAsync(records, CancellationToken.None).AsTask().GetAwaiter().GetResult(); // a window on disk reads what the batch needs here
                operators[p].Add(records);
                operators[p].Advance(max - outOfOrderMs - 1);
                Collect(operators[p], output);
            }
        }

        foreach (var op in operators)
        {
            op.Advance(long.MaxValue);
            Collect(op, output);
        }

        return (output, operators.Sum(o => o.LateRecords));
    }

    private static void Collect(WindowOperator<int, Reading, long> op, Dictionary<int, List<Emitted>> output)
    {
        var resumed = false;
        while (true)
        {
            // A paused firing resumes with nothing waiting and stops once a batch is full; what Add and the first
            // batch emit together is not bounded here (late records re-fire as they arrive).
            Assert.True(!resumed || op.Results.Count <= op.FiringBatch, $"{op.Results.Count} results from one resumed batch, more than {op.FiringBatch}");
            foreach (var r in op.Results.Span)
            {
                if (!output.TryGetValue(r.Key, out var list))
                {
                    output[r.Key] = list = [];
                }

                list.Add(new Emitted(r.Start, r.End, r.Value, r.IsUpdate));
            }

            op.Results.Reset();
            if (!op.Firing)
            {
                return;
            }

            op.ContinueFiring();
            resumed = true;
        }
    }

    private static (Dictionary<int, List<Emitted>> Output, long Late) RunReference(Window window, long latenessMs, long outOfOrderMs, List<Reading[]> batches)
    {
        var reference = new WindowReference(window, latenessMs);
        var max = long.MinValue;
        foreach (var batch in batches)
        {
            foreach (var r in batch)
            {
                reference.Add(r);
                max = Math.Max(max, r.Time);
            }

            reference.Advance(max - outOfOrderMs - 1);
        }

        reference.Advance(long.MaxValue);
        return (reference.Output, reference.Late);
    }

    private static readonly Gen<Window> Windows = Gen.OneOf(
        Gen.Int[1, 40].Select(size => Window.Tumbling(TimeSpan.FromMilliseconds(size * 25))),
        Gen.Select(Gen.Int[1, 10], Gen.Int[1, 5]).Select((slide, factor) => Window.Sliding(TimeSpan.FromMilliseconds(slide * 20 * factor), TimeSpan.FromMilliseconds(slide * 20))),
        Gen.Select(Gen.Int[1, 12], Gen.Int[1, 4]).Where((slide, n) => n > 0).Select((slide, n) => Window.Sliding(TimeSpan.FromMilliseconds(slide * 30 + 7), TimeSpan.FromMilliseconds(slide * 10 + 3))),
        Gen.Int[1, 60].Select(gap => Window.Session(TimeSpan.FromMilliseconds(gap * 10))));

    /// <summary>Events mostly in time order, jittered back by up to <c>jitter</c> ms, a few of them very late.</summary>
    private static Gen<List<Reading[]>> Batches(long jitter) =>
        Gen.Select(Gen.Int[0, 6], Gen.Int[0, 40], Gen.Int[-1, 1_000], Gen.Int[1, 20]).Array[0, 300]
            .Select(steps =>
            {
                var events = new List<Reading>();
                var clock = 10_000L;
                foreach (var (key, advance, jitterDraw, value) in steps)
                {
                    clock += advance;
                    var time = jitterDraw < 0 ? clock - 3_000 : clock - (jitterDraw % (jitter + 1)); // -1: very late
                    events.Add(new Reading(key, time, value));
                }

                return events;
            })
            .SelectMany(events => Gen.Int[1, 25].Select(size => events.Chunk(size).ToList()));

    [Fact]
    public void Engine_matches_the_naive_reference_for_random_streams_windows_lateness_and_parallelism_1_to_4()
    {
        Gen.Select(Windows, Gen.Int[0, 3].Select(i => Lateness[i]), Gen.Int[0, 2].Select(i => OutOfOrder[i]), Gen.Int[1, 4])
            .SelectMany((window, lateness, outOfOrder, parallelism) => Batches(outOfOrder * 2).Select(batches => (window, lateness, outOfOrder, parallelism, batches)))
            .SelectMany(t => Gen.OneOf(Gen.Const(int.MaxValue), Gen.Int[1, 4]).Select(firingBatch => (t.window, t.lateness, t.outOfOrder, t.parallelism, t.batches, firingBatch)))
            .Sample(
                t =>
                {
                    var engine = RunEngine(t.window, t.lateness, t.outOfOrder, t.parallelism, t.batches, t.firingBatch);
                    var reference = RunReference(t.window, t.lateness, t.outOfOrder, t.batches);
                    Assert.Equal(reference.Late, engine.Late);
                    Assert.Equal(reference.Output.Keys.Order(), engine.Output.Keys.Order());
                    foreach (var (key, expected) in reference.Output)
                    {
                        Assert.Equal(expected, engine.Output[key]);
                    }
                },
                iter: 400,
                print: t => $"{t.window} lateness {t.lateness} ooo {t.outOfOrder} p {t.parallelism} firing batch {t.firingBatch} batches [{string.Join(" | ", t.batches.Select(b => string.Join(",", b.Select(r => $"{r.Key}@{r.Time}:{r.Value}"))))}]");
    }

    /// <summary>
    /// Tumbling and sliding windows on disk (<c>StateBackend=Disk</c>) with an in-memory table of 1 to 64 pane entries,
    /// so that nearly every entry is written to RocksDB and read back, and firings merge panes from disk: the same
    /// results as the naive reference, late re-firings and drops included.
    /// </summary>
    [Fact]
    public void Windows_on_disk_with_a_tiny_cache_match_the_naive_reference()
    {
        var folder = Directory.CreateTempSubdirectory("compiled-disk-windows-").FullName;
        try
        {
            var sample = 0;
            Gen.Select(Windows.Where(w => w.Kind != WindowKind.Session), Gen.Int[0, 3].Select(i => Lateness[i]), Gen.Int[0, 2].Select(i => OutOfOrder[i]), Gen.Int[1, 3])
                .SelectMany((window, lateness, outOfOrder, parallelism) => Batches(outOfOrder * 2).Select(batches => (window, lateness, outOfOrder, parallelism, batches)))
                .SelectMany(t => Gen.Select(Gen.OneOf(Gen.Const(int.MaxValue), Gen.Int[1, 4]), Gen.OneOf(Gen.Int[1, 4], Gen.Const(64))).Select((firingBatch, cache) => (t.window, t.lateness, t.outOfOrder, t.parallelism, t.batches, firingBatch, cache)))
                .Sample(
                    t =>
                    {
                        var root = Path.Combine(folder, (sample++).ToString(System.Globalization.CultureInfo.InvariantCulture));
                        var operators = Enumerable.Range(0, t.parallelism).Select(p => new DiskPaneWindowOperator<int, Reading, Sum<Reading, ReadingValue, long>, long, long>(
                            root, $"w-p{p}", (long)t.window.Size.TotalMilliseconds, (long)t.window.Slide.TotalMilliseconds, t.lateness, t.cache, StateCodecs.Unmanaged<int>(), StateCodecs.Unmanaged<long>())).ToArray();
                        try
                        {
                            var engine = RunEngine(operators, t.outOfOrder, t.batches, t.firingBatch);
                            var reference = RunReference(t.window, t.lateness, t.outOfOrder, t.batches);
                            Assert.Equal(reference.Late, engine.Late);
                            Assert.Equal(reference.Output.Keys.Order(), engine.Output.Keys.Order());
                            foreach (var (key, expected) in reference.Output)
                            {
                                Assert.Equal(expected, engine.Output[key]);
                            }

                            Assert.All(operators, o => Assert.Equal(0, o.StateEntries)); // the end of input purged every pane
                        }
                        finally
                        {
                            foreach (var o in operators)
                            {
                                o.Dispose();
                            }
                        }
                    },
                    iter: 150,
                    threads: 1,
                    print: t => $"{t.window} lateness {t.lateness} ooo {t.outOfOrder} p {t.parallelism} firing batch {t.firingBatch} cache {t.cache} batches [{string.Join(" | ", t.batches.Select(b => string.Join(",", b.Select(r => $"{r.Key}@{r.Time}:{r.Value}"))))}]");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Tumbling_window_fires_when_the_watermark_reaches_its_last_millisecond()
    {
        var op = Create(Window.Tumbling(TimeSpan.FromMilliseconds(100)), 0);
        op.Add([K(new(1, 10, 1)), K(new(1, 99, 2)), K(new(2, 100, 5))]);
        op.Advance(98);
        Assert.Equal(0, op.Results.Count);
        op.Advance(99);
        Assert.Equal([new WindowResult<int, long>(1, 0, 100, 3)], op.Results.Span.ToArray());
        Assert.Equal(1, op.StateEntries); // window [0, 100) dropped at once (no lateness); key 2's [100, 200) remains
    }

    [Fact]
    public void Late_record_within_lateness_refires_and_later_than_that_goes_to_the_side_output()
    {
        var op = Create(Window.Tumbling(TimeSpan.FromMilliseconds(100)), 50);
        op.Late = new RecordBuffer<Reading>();
        op.Add([K(new(1, 10, 1))]);
        op.Advance(120);
        op.Add([K(new(1, 20, 2))]); // [0, 100) fired at 99; cleanup at 149: still open
        op.Advance(149);
        op.Add([K(new(1, 30, 4))]); // past 99 + 50: too late for every window
        Assert.Equal(
            [new WindowResult<int, long>(1, 0, 100, 1), new WindowResult<int, long>(1, 0, 100, 3, true)],
            op.Results.Span.ToArray());
        Assert.Equal([new Reading(1, 30, 4)], op.Late.Span.ToArray());
        Assert.Equal(1, op.LateRecords);
        Assert.Equal(0, op.StateEntries);
    }

    [Fact]
    public void Sliding_window_adds_each_record_to_one_pane_and_merges_panes_when_firing()
    {
        var op = Create(Window.Sliding(TimeSpan.FromMilliseconds(30), TimeSpan.FromMilliseconds(10)), 0);
        op.Add([K(new(7, 5, 1)), K(new(7, 15, 10)), K(new(7, 25, 100))]);
        Assert.Equal(3, op.StateEntries); // three panes of 10 ms, not one entry per overlapping window
        op.Advance(long.MaxValue);
        var sums = op.Results.Span.ToArray().Select(r => (r.Start, r.End, r.Value)).ToArray();
        Assert.Equal([(-20L, 10L, 1L), (-10L, 20L, 11L), (0L, 30L, 111L), (10L, 40L, 110L), (20L, 50L, 100L)], sums);
    }

    [Fact]
    public void Sessions_merge_when_a_record_bridges_them_and_stay_apart_across_a_gap()
    {
        var op = Create(Window.Session(TimeSpan.FromMilliseconds(10)), 0);
        op.Add([K(new(1, 0, 1)), K(new(1, 30, 2))]); // two sessions: [0, 10) and [30, 40)
        Assert.Equal(2, op.StateEntries);
        op.Add([K(new(1, 15, 4))]); // [15, 25): touches neither (10 < 15, 25 < 30)
        Assert.Equal(3, op.StateEntries);
        op.Add([K(new(1, 8, 8))]); // [8, 18) touches [0, 10) and [15, 25): they merge into [0, 25)
        Assert.Equal(2, op.StateEntries);
        op.Add([K(new(1, 22, 16))]); // [22, 32) bridges [0, 25) and [30, 40): one session [0, 40)
        Assert.Equal(1, op.StateEntries);
        op.Add([K(new(2, 5, 100))]); // another key: its own session
        op.Advance(long.MaxValue);
        Assert.Equal(
            [new WindowResult<int, long>(1, 0, 40, 31), new WindowResult<int, long>(2, 5, 15, 100)],
            op.Results.Span.ToArray().OrderBy(r => r.Key).ToArray());
    }

    [Fact]
    public void Session_that_fired_reopens_when_a_late_record_extends_it_within_lateness()
    {
        var op = Create(Window.Session(TimeSpan.FromMilliseconds(10)), 100);
        op.Add([K(new(1, 0, 1))]);
        op.Advance(20); // [0, 10) fires
        op.Add([K(new(1, 15, 2))]); // [15, 25) is separate: opens a new session, fires when its time has passed
        op.Add([K(new(1, 9, 4))]); // [9, 19) bridges: merged [0, 25), whose end 24 > 20: not fired yet
        op.Advance(24);
        Assert.Equal(
            [new WindowResult<int, long>(1, 0, 10, 1), new WindowResult<int, long>(1, 0, 25, 7)],
            op.Results.Span.ToArray());
    }

    [Fact]
    public void Running_aggregate_emits_every_key_s_new_total_on_every_record_and_ignores_watermarks()
    {
        var op = Create(Window.Running(), 0);
        op.Add([K(new(1, 500, 1)), K(new(2, 10, 5)), K(new(1, 20, 2))]);
        op.Advance(1_000);
        op.Add([K(new(1, 5, 4))]); // far behind the watermark: a running aggregate has no late records
        op.Advance(long.MaxValue);
        Assert.Equal(
            [
                new WindowResult<int, long>(1, long.MinValue, long.MaxValue, 1),
                new WindowResult<int, long>(2, long.MinValue, long.MaxValue, 5),
                new WindowResult<int, long>(1, long.MinValue, long.MaxValue, 3, true),
                new WindowResult<int, long>(1, long.MinValue, long.MaxValue, 7, true),
            ],
            op.Results.Span.ToArray());
        Assert.Equal(0, op.LateRecords);
        Assert.Equal(2, op.StateEntries);
        Assert.Equal(DateTimeOffset.MinValue, op.Results.Span[0].StartTime);
        Assert.Equal(DateTimeOffset.MaxValue, op.Results.Span[0].EndTime);
    }

    [Fact]
    public void Watermark_is_the_minimum_over_inputs_and_an_idle_input_stops_holding_it_back()
    {
        var valve = new WatermarkValve(3, TimeSpan.FromMilliseconds(500), nowMs: 0);
        valve.Update(0, 1_000, 10, true);
        valve.Update(1, 2_000, 10, true);
        Assert.Equal(long.MinValue, valve.Combine(10)); // input 2 has said nothing yet
        valve.Update(2, 1_500, 20, true);
        Assert.Equal(1_000, valve.Combine(20));
        valve.Update(1, 3_000, 400, true);
        valve.Update(2, 3_500, 400, true);
        Assert.Equal(1_000, valve.Combine(499)); // input 0 quiet for 489 ms: not idle yet
        Assert.Equal(3_000, valve.Combine(510)); // quiet for 500 ms: idle, no longer counted
        Assert.True(valve.IsIdle(0, 510));
        Assert.Equal(3_500, valve.Combine(900)); // every input idle: the largest of their watermarks
        valve.Update(0, 1_200, 1_000, true); // back, behind the others: the combined watermark does not go back
        Assert.Equal(3_500, valve.Combine(1_000));
        valve.End(0);
        valve.End(1);
        valve.End(2);
        Assert.Equal(long.MaxValue, valve.Combine(700));
    }

    [Fact]
    public void What_the_inputs_reached_before_a_restart_moves_the_watermark_only_once_every_input_said_it_is_idle()
    {
        const long reached = 9_000; // restored: what the inputs had read before the restart
        var valve = new WatermarkValve(2, TimeSpan.FromMilliseconds(500), nowMs: 0);
        valve.Update(0, 1_000, 10, true);
        Assert.Equal(long.MinValue, valve.Combine(10, reached)); // input 1 has said nothing: it may still be catching up
        Assert.Equal(1_000, valve.Combine(600, reached)); // both quiet past the timeout: idle by a guess, not by their word
        valve.DeclareIdle(1);
        Assert.Equal(1_000, valve.Combine(700, reached)); // input 0 has not said so
        valve.DeclareIdle(0);
        Assert.Equal(reached, valve.Combine(800, reached)); // both have: the watermark a run that had gone on would have
        valve.Update(1, 2_000, 900, true); // records again: the combined watermark does not go back
        Assert.Equal(reached, valve.Combine(900, reached));
    }

    [Fact]
    public void Keyed_tumbling_count_over_an_int_key_allocates_nothing_per_record_in_steady_state()
    {
        var op = WindowOperator.Create<int, Reading, Count<Reading>, long, long>(Window.Tumbling(TimeSpan.FromMilliseconds(1_000)), TimeSpan.Zero);
        var batch = new Keyed<int, Reading>[1_024];
        var time = 0L;
        void RunBatches(int count)
        {
            for (var b = 0; b < count; b++)
            {
                for (var i = 0; i < batch.Length; i++)
                {
                    var key = (i * 7919) % 1_000;
                    batch[i] = new Keyed<int, Reading>(key, time, new Reading(key, time, 1));
                    time++;
                }

                op.Add(batch);
                op.Advance(time - 1);
                op.Results.Reset();
            }
        }

        RunBatches(200); // warm: tables and pane lists reach their steady size
        var before = GC.GetAllocatedBytesForCurrentThread();
        RunBatches(1_000); // a million records through ~1,000 windows of 1,000 keys
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated == 0, $"allocated {allocated} bytes over 1,024,000 records");
    }
}
