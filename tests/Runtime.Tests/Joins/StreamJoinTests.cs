using Compiled.Connectors;
using Compiled.Runtime.Tests.State;
using Compiled.Testing;
using CsCheck;

namespace Compiled.Runtime.Tests.Joins;

[Record]
public readonly partial record struct Purchase(int Id, int Customer, long Amount, [property: EventTime] long Time);

[Record]
public readonly partial record struct Payment(int Purchase, long Amount, [property: EventTime] long Time);

/// <summary>Purchases with the payments that arrive within ten seconds after them (declared source by source).</summary>
[Pipeline(Name = "paid-purchases")]
public sealed partial class PaidPurchases
{
    [Source] public ISource<Purchase> Purchases { get; set; } = new CollectionSource<Purchase>();

    [KeyBy] static int PurchaseId(Purchase p) => p.Id;

    [Source] public ISource<Payment> Payments { get; set; } = new CollectionSource<Payment>();

    [Transform] static bool Positive(Payment p) => p.Amount > 0;

    [KeyBy] static int PaidPurchase(Payment p) => p.Purchase;

    [Join] public JoinSpec<Purchase, Payment> Paid { get; set; } = Join.Interval<Purchase, Payment>(TimeSpan.Zero, TimeSpan.FromSeconds(10));

    [Sink] public CollectionSink<Joined<Purchase, Payment>> Out { get; set; } = new();

    [LateData] public CollectionSink<Either<Purchase, Payment>> Late { get; set; } = new();
}

/// <summary>The same join with both sources declared first, and a window join's spec set by the test.</summary>
[Pipeline(Name = "purchases-by-window")]
public sealed partial class PurchasesByWindow
{
    [Source] public ISource<Payment> Payments { get; set; } = new CollectionSource<Payment>();

    [Source] public ISource<Purchase> Purchases { get; set; } = new CollectionSource<Purchase>();

    [KeyBy] static int PurchaseId(Purchase p) => p.Id;

    [KeyBy] static int PaidPurchase(Payment p) => p.Purchase;

    [Join] public JoinSpec<Purchase, Payment> Paid { get; set; } = Join.Windowed<Purchase, Payment>(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Transform] static (int Purchase, long Paid, bool HasPayment) Flatten(Joined<Purchase, Payment> j) => (j.Left.Id, j.HasRight ? j.Right.Amount : -1, j.HasRight);

    [Sink] public CollectionSink<(int Purchase, long Paid, bool HasPayment)> Out { get; set; } = new();
}

/// <summary>Paid purchases per customer and second, counted by a window behind the join.</summary>
[Pipeline(Name = "paid-per-second")]
public sealed partial class PaidPerSecond
{
    [Source] public ISource<Purchase> Purchases { get; set; } = new CollectionSource<Purchase>();

    [KeyBy] static int PurchaseId(Purchase p) => p.Id;

    [Source] public ISource<Payment> Payments { get; set; } = new CollectionSource<Payment>();

    [KeyBy] static int PaidPurchase(Payment p) => p.Purchase;

    [Join] public JoinSpec<Purchase, Payment> Paid { get; set; } = Join.Interval<Purchase, Payment>(TimeSpan.Zero, TimeSpan.FromSeconds(2)) with { OutOfOrderness = TimeSpan.FromSeconds(1) };

    [KeyBy] static int Customer(Joined<Purchase, Payment> j) => j.Left.Customer;

    [Window] public WindowSpec<Joined<Purchase, Payment>, Count<Joined<Purchase, Payment>>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] public CollectionSink<WindowResult<int, long>> Out { get; set; } = new();
}

[Record]
public readonly partial record struct Trade(int Id, string Currency, long Amount, [property: EventTime] long Time);

[Record]
public readonly partial record struct Rate(string Currency, long Value, [property: EventTime] long Time, ChangeKind Op = ChangeKind.Insert);

/// <summary>Trades at the exchange rate of their time: a stream–table join over a changelog of rates.</summary>
[Pipeline(Name = "trades-at-rate")]
public sealed partial class TradesAtRate
{
    [Source] public ISource<Trade> Trades { get; set; } = new CollectionSource<Trade>();

    [Source] public ISource<Rate> Rates { get; set; } = new CollectionSource<Rate>();

    [KeyBy] static string TradeCurrency(Trade t) => t.Currency;

    [KeyBy] static string RateCurrency(Rate r) => r.Currency;

    [Join] public JoinSpec<Trade, Rate> AtRate { get; set; } = Join.Table<Trade, Rate>();

    [Transform] static (int Trade, long Rate) Priced(Joined<Trade, Rate> j) => (j.Left.Id, j.HasRight ? j.Right.Value : -1);

    [Sink] public CollectionSink<(int Trade, long Rate)> Out { get; set; } = new();
}

/// <summary>Joins of two streams: interval and window joins against a naive reference.</summary>
public sealed class StreamJoinTests
{
    /// <summary>Every pair the interval join must emit, computed the obvious way.</summary>
    private static IEnumerable<(int, long, long)> IntervalReference(Purchase[] purchases, Payment[] payments, long lower, long upper, bool leftOuter)
    {
        foreach (var p in purchases)
        {
            var matches = payments.Where(q => q.Amount > 0 && q.Purchase == p.Id && q.Time >= p.Time + lower && q.Time <= p.Time + upper).ToList();
            foreach (var q in matches)
            {
                yield return (p.Id, p.Time, q.Time);
            }

            if (matches.Count == 0 && leftOuter)
            {
                yield return (p.Id, p.Time, -1);
            }
        }
    }

    private static IEnumerable<(int, long, bool)> WindowReference(Purchase[] purchases, Payment[] payments, long size, long slide, bool leftOuter)
    {
        foreach (var p in purchases)
        {
            for (var start = p.Time - p.Time % slide; start > p.Time - size; start -= slide)
            {
                var end = start + size;
                var matches = payments.Where(q => q.Purchase == p.Id && q.Time >= start && q.Time < end).ToList();
                foreach (var q in matches)
                {
                    yield return (p.Id, q.Amount, true);
                }

                if (matches.Count == 0 && leftOuter)
                {
                    yield return (p.Id, -1, false);
                }
            }
        }
    }

    private static (Purchase[], Payment[]) Orders(int count, int seed, int keys = 50)
    {
        var random = new Random(seed);
        var purchases = Enumerable.Range(0, count).Select(i => new Purchase(i % keys, i % 7, 10 + i, i * 100L + random.Next(0, 50))).ToArray();
        var payments = Enumerable.Range(0, count * 2).Select(i => new Payment(random.Next(0, keys), random.Next(-2, 100), i * 50L + random.Next(0, 50))).ToArray();
        return (purchases, payments);
    }

    [Theory]
    [InlineData(1, JoinKind.Inner)]
    [InlineData(3, JoinKind.Inner)]
    [InlineData(2, JoinKind.LeftOuter)]
    public async Task An_interval_join_emits_exactly_the_pairs_that_meet(int parallelism, JoinKind kind)
    {
        var (purchases, payments) = Orders(2_000, 7);
        var pipeline = new PaidPurchases
        {
            Purchases = new CollectionSource<Purchase>(purchases),
            Payments = new CollectionSource<Payment>(payments),
            Paid = Join.Interval<Purchase, Payment>(TimeSpan.FromMilliseconds(-300), TimeSpan.FromSeconds(2)) with { Kind = kind, OutOfOrderness = TimeSpan.FromMinutes(10) },
        };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 64 });
        var expected = IntervalReference(purchases, payments, -300, 2_000, kind == JoinKind.LeftOuter).Order().ToList();
        var actual = pipeline.Out.Items.Select(j => (j.Left.Id, j.Left.Time, j.HasRight ? j.Right.Time : -1)).Order().ToList();
        Assert.NotEmpty(expected);
        Assert.Equal(expected, actual);
        Assert.Equal(purchases.Length + payments.Length, result.RecordsRead);
    }

    [Theory]
    [InlineData(1, 1000, 1000, JoinKind.Inner)]
    [InlineData(2, 1000, 1000, JoinKind.LeftOuter)]
    [InlineData(2, 1000, 250, JoinKind.Inner)]
    [InlineData(1, 600, 200, JoinKind.LeftOuter)]
    public async Task A_window_join_pairs_the_records_of_each_window(int parallelism, long size, long slide, JoinKind kind)
    {
        var (purchases, payments) = Orders(1_000, 11);
        var window = size == slide ? Window.Tumbling(TimeSpan.FromMilliseconds(size)) : Window.Sliding(TimeSpan.FromMilliseconds(size), TimeSpan.FromMilliseconds(slide));
        var pipeline = new PurchasesByWindow
        {
            Purchases = new CollectionSource<Purchase>(purchases),
            Payments = new CollectionSource<Payment>(payments),
            Paid = Join.Windowed<Purchase, Payment>(window) with { Kind = kind, OutOfOrderness = TimeSpan.FromMinutes(10) },
        };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 50 });
        var expected = WindowReference(purchases, payments, size, slide, kind == JoinKind.LeftOuter).Order().ToList();
        Assert.NotEmpty(expected);
        Assert.Equal(expected, pipeline.Out.Items.Order().ToList());
    }

    private static Either<Purchase, Payment> P(int id, long time) => Either<Purchase, Payment>.FromLeft(new Purchase(id, 0, 0, time));

    private static Either<Purchase, Payment> Q(int id, long time, long amount = 1) => Either<Purchase, Payment>.FromRight(new Payment(id, amount, time));

    [Fact]
    public async Task Both_bounds_of_an_interval_are_inclusive()
    {
        var pipeline = new PaidPurchases { Paid = Join.Interval<Purchase, Payment>(TimeSpan.FromMilliseconds(-100), TimeSpan.FromMilliseconds(200)) };
        await using (var driver = await PipelineTestDriver.StartAsync<Either<Purchase, Payment>>(pipeline))
        {
            driver.Push(P(1, 1_000), Q(1, 899), Q(1, 900), Q(1, 1_200), Q(1, 1_201), Q(2, 1_000));
        }

        Assert.Equal([900L, 1_200], pipeline.Out.Items.Select(j => j.Right.Time).Order());
    }

    [Fact]
    public async Task A_left_record_leaves_alone_once_no_right_record_can_meet_it_and_late_records_are_counted()
    {
        var pipeline = new PaidPurchases { Paid = Join.Interval<Purchase, Payment>(TimeSpan.Zero, TimeSpan.FromMilliseconds(500)) with { Kind = JoinKind.LeftOuter } };
        await using var driver = await PipelineTestDriver.StartAsync<Either<Purchase, Payment>>(pipeline);
        driver.Push(P(1, 1_000), P(2, 1_000), Q(2, 1_300));
        Assert.Equal([(2, true)], pipeline.Out.Items.Select(j => (j.Left.Id, j.HasRight))); // a pair leaves when its second record arrives
        driver.AdvanceWatermark(1_499);
        Assert.Single(pipeline.Out.Items); // purchase 1 may still meet a payment at 1,500
        driver.AdvanceWatermark(1_500 + 250); // it leaves within half the interval's width after that (the join keeps its records in panes of that length)
        Assert.Equal([(2, true), (1, false)], pipeline.Out.Items.Select(j => (j.Left.Id, j.HasRight)));
        driver.Push(Q(1, 1_400), P(3, 1_500)); // both at or behind the watermark: late, and not joined
        Assert.Equal(2, driver.LateRecords);
        await driver.CompleteAsync();
        Assert.Equal(2, pipeline.Out.Items.Count);
        Assert.Equal(["Right(Payment { Purchase = 1, Amount = 1, Time = 1400 })", "Left(Purchase { Id = 3, Customer = 0, Amount = 0, Time = 1500 })"], pipeline.Late.Items.Select(e => e.ToString()));
    }

    [Fact]
    public async Task A_window_join_fires_each_window_when_the_watermark_reaches_its_end()
    {
        var pipeline = new PurchasesByWindow { Paid = Join.Windowed<Purchase, Payment>(Window.Tumbling(TimeSpan.FromSeconds(1))) with { Kind = JoinKind.LeftOuter } };
        await using var driver = await PipelineTestDriver.StartAsync<Either<Purchase, Payment>>(pipeline);
        driver.Push(P(1, 100), Q(1, 999, 5), P(2, 500)); // the watermark follows the records to 998
        Assert.Empty(pipeline.Out.Items);
        driver.AdvanceWatermark(999);
        Assert.Equal([(1, 5L, true), (2, -1, false)], pipeline.Out.Items.Order());
        driver.Push(Q(1, 1_000, 7), P(1, 1_999), P(3, 1_500));
        driver.Push(Q(1, 999, 9)); // its only window fired: late
        Assert.Equal(2, pipeline.Out.Items.Count);
        driver.AdvanceWatermark(1_999);
        Assert.Equal([(1, 5L, true), (1, 7, true), (2, -1, false), (3, -1, false)], pipeline.Out.Items.Order());
        Assert.Equal(1, driver.LateRecords);
    }

    [Theory]
    [InlineData(1, JoinKind.Inner)]
    [InlineData(2, JoinKind.Inner)]
    [InlineData(1, JoinKind.LeftOuter)]
    [InlineData(2, JoinKind.LeftOuter)]
    public async Task A_window_behind_a_join_counts_every_pair_none_late(int parallelism, JoinKind kind)
    {
        // A pair happens when its purchase does, up to 3 s before the payment that completes it: the join holds its
        // watermark back by its upper bound, so the window behind it (no out-of-orderness of its own) gets none late.
        // A left-outer join's unpaid purchases leave when their pane of time goes, up to a pane after 3 s: it holds
        // the watermark back by that pane too.
        var random = new Random(5);
        var purchases = Enumerable.Range(0, 3_000).Select(i => new Purchase(i, i % 5, 1, i * 20L + random.Next(0, 500))).ToArray();
        var payments = purchases.Where(p => p.Id % 4 != 0).Select(p => new Payment(p.Id, 1, p.Time + random.Next(0, 2_000))).OrderBy(q => q.Time).ToArray();
        var pipeline = new PaidPerSecond { Purchases = new CollectionSource<Purchase>(purchases), Payments = new CollectionSource<Payment>(payments) };
        // [0, 3 s]: the join's panes of time (1.5 s) do not line up with the window's seconds.
        pipeline.Paid = Join.Interval<Purchase, Payment>(TimeSpan.Zero, TimeSpan.FromSeconds(3)) with { Kind = kind, OutOfOrderness = TimeSpan.FromSeconds(1) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 32 });
        Assert.Equal(0, result.LateRecords);
        var counted = kind == JoinKind.LeftOuter ? purchases : purchases.Where(p => p.Id % 4 != 0);
        var expected = counted.GroupBy(p => (p.Customer, Start: p.Time / 1000 * 1000)).Select(g => (g.Key.Customer, g.Key.Start, (long)g.Count())).Order();
        Assert.Equal(expected, pipeline.Out.Items.Select(w => (w.Key, w.Start, w.Value)).Order());
    }

    [Fact]
    public void The_plan_shows_both_inputs_of_the_join_and_each_source_is_a_connector_of_its_own()
    {
        var pipeline = new PaidPurchases();
        var job = ((ICompiledPipeline)pipeline).CreateJob();
        var text = PlanExplainer.Text(job, new PipelineOptions { Parallelism = 2 });
        Assert.Contains("reads the hash exchange both keyBy 'PurchaseId' and keyBy 'PaidPurchase' (loop 0) write into", text, StringComparison.Ordinal);
        var stages = job.Descriptor.Stages;
        var join = stages.Single(s => s.Kind == StageKind.Join);
        Assert.Equal(["PurchaseId", "PaidPurchase"], new[] { stages[join.Input].Name, stages[join.SecondInput].Name });
        var mermaid = PlanExplainer.Mermaid(job, new PipelineOptions { Parallelism = 2 });
        Assert.Contains($"s{join.SecondInput} == \"hash exchange\" ==> s{join.Index}", mermaid, StringComparison.Ordinal);
        Assert.Equal(["Purchases", "Payments", "Out", "Late"], job.Connectors.Select(c => c.Name));
        Assert.Same(pipeline.Purchases, job.Connectors[0].Connector); // the member's own source, with its own settings
        Assert.Same(pipeline.Payments, job.Connectors[1].Connector);
    }

    /// <summary>What a versioned table join must emit: each trade with the last change of its currency at or before it.</summary>
    private static IEnumerable<(int, long)> TableReference(Trade[] trades, Rate[] rates, bool leftOuter)
    {
        foreach (var t in trades)
        {
            var row = rates.Where(r => r.Currency == t.Currency && r.Time <= t.Time && r.Op != ChangeKind.UpdateBefore).OrderBy(r => r.Time).LastOrDefault();
            if (row.Currency is not null && row.Op != ChangeKind.Delete)
            {
                yield return (t.Id, row.Value);
            }
            else if (leftOuter)
            {
                yield return (t.Id, -1);
            }
        }
    }

    [Theory]
    [InlineData(1, JoinKind.Inner)]
    [InlineData(3, JoinKind.LeftOuter)]
    public async Task A_versioned_table_join_meets_each_record_with_the_row_of_its_time(int parallelism, JoinKind kind)
    {
        // Rates change, are deleted and come back; their changes arrive up to 3 s out of order, as do the trades.
        var random = new Random(parallelism);
        string[] currencies = ["usd", "gbp", "chf", "jpy", "sek"];
        var rates = Enumerable.Range(0, 3_000).Select(i =>
        {
            var op = random.Next(0, 20) switch { 0 => ChangeKind.Delete, 1 => ChangeKind.UpdateBefore, 2 => ChangeKind.Snapshot, _ => ChangeKind.UpdateAfter };
            return new Rate(currencies[random.Next(currencies.Length)], random.Next(1, 1_000), i * 10L + 1, op);
        }).OrderBy(r => r.Time + random.Next(0, 3_000)).ToArray();
        var trades = Enumerable.Range(0, 5_000).Select(i => new Trade(i, currencies[random.Next(currencies.Length)], 1, i * 6L)).OrderBy(t => t.Time + random.Next(0, 3_000)).ToArray();
        var pipeline = new TradesAtRate
        {
            Trades = new CollectionSource<Trade>(trades),
            Rates = new CollectionSource<Rate>(rates),
            AtRate = Join.Table<Trade, Rate>() with { Kind = kind, OutOfOrderness = TimeSpan.FromSeconds(10) },
        };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 50 });
        Assert.Equal(0, result.LateRecords);
        var expected = TableReference(trades, rates, kind == JoinKind.LeftOuter).Order().ToList();
        Assert.True(expected.Count > 1_000);
        Assert.Equal(expected, pipeline.Out.Items.Order().ToList());
    }

    private static Either<Trade, Rate> T(int id, long time) => Either<Trade, Rate>.FromLeft(new Trade(id, "usd", 1, time));

    private static Either<Trade, Rate> R(long value, long time, ChangeKind op = ChangeKind.Insert) => Either<Trade, Rate>.FromRight(new Rate("usd", value, time, op));

    [Fact]
    public async Task A_versioned_table_join_waits_for_the_watermark_and_counts_a_change_that_arrives_late_but_is_older()
    {
        var pipeline = new TradesAtRate { AtRate = Join.Table<Trade, Rate>() with { Kind = JoinKind.LeftOuter, OutOfOrderness = TimeSpan.FromSeconds(1) } };
        await using var driver = await PipelineTestDriver.StartAsync<Either<Trade, Rate>>(pipeline);
        driver.Push(R(10, 1_000), T(1, 2_000));
        Assert.Empty(pipeline.Out.Items); // the watermark has not reached the trade's time
        driver.Push(R(11, 1_500)); // arrives after the trade, but the row changed before it
        driver.AdvanceWatermark(2_000);
        Assert.Equal([(1, 11L)], pipeline.Out.Items);
        driver.Push(R(0, 2_500, ChangeKind.Delete), T(2, 3_000), R(12, 3_500), T(3, 3_600));
        driver.AdvanceWatermark(4_000);
        Assert.Equal([(1, 11L), (2, -1), (3, 12)], pipeline.Out.Items);
        driver.Push(T(4, 3_900)); // behind the watermark: late
        driver.Push(R(9, 3_000)); // behind the watermark and older than the row valid there: ignored
        driver.Push(T(5, 5_000));
        driver.AdvanceWatermark(5_000);
        Assert.Equal([(1, 11L), (2, -1), (3, 12), (5, 12)], pipeline.Out.Items);
        Assert.Equal(1, driver.LateRecords);
        Assert.Equal(1, driver.StateEntries); // the row valid at the watermark, and nothing older
    }

    [Fact]
    public async Task A_latest_row_table_join_meets_each_record_at_once_with_the_row_of_the_moment()
    {
        var pipeline = new TradesAtRate { AtRate = Join.Table<Trade, Rate>() with { Versioned = false, Kind = JoinKind.LeftOuter } };
        await using var driver = await PipelineTestDriver.StartAsync<Either<Trade, Rate>>(pipeline);
        driver.Push(T(1, 1_000), R(10, 500), T(2, 1_100), R(11, 400), T(3, 1_200), R(0, 1_300, ChangeKind.Delete), T(4, 1_400));
        Assert.Equal([(1, -1L), (2, 10), (3, 11), (4, -1)], pipeline.Out.Items); // the row as processed, in arrival order
        Assert.Equal(0, driver.StateEntries);
    }

    [Fact]
    public void Interval_joins_agree_with_the_reference_on_random_streams()
    {
        // Random keys, times and bounds, records in random order within the out-of-orderness: fused execution vs the reference.
        var purchaseGen = Gen.Select(Gen.Int[0, 5], Gen.Long[0, 5_000]).Array[0, 40];
        var paymentGen = Gen.Select(Gen.Int[0, 5], Gen.Long[-3, 20], Gen.Long[0, 5_000]).Array[0, 60];
        Gen.Select(purchaseGen, paymentGen, Gen.Long[-1_000, 1_000], Gen.Long[0, 1_500], Gen.Bool, Gen.Int[1, 3]).Sample((ps, qs, lower, width, outer, parallelism) =>
        {
            var purchases = ps.Select((p, i) => new Purchase(p.Item1, 0, i, p.Item2)).ToArray();
            var payments = qs.Select(q => new Payment(q.Item1, q.Item2, q.Item3)).ToArray();
            var upper = lower + width;
            var pipeline = new PaidPurchases
            {
                Purchases = new CollectionSource<Purchase>(purchases),
                Payments = new CollectionSource<Payment>(payments),
                Paid = Join.Interval<Purchase, Payment>(TimeSpan.FromMilliseconds(lower), TimeSpan.FromMilliseconds(upper)) with { Kind = outer ? JoinKind.LeftOuter : JoinKind.Inner, OutOfOrderness = TimeSpan.FromSeconds(10) },
            };
            pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 7 }).GetAwaiter().GetResult();
            var expected = IntervalReference(purchases, payments, lower, upper, outer).Order().ToList();
            var actual = pipeline.Out.Items.Select(j => (j.Left.Id, j.Left.Time, j.HasRight ? j.Right.Time : -1)).Order().ToList();
            return expected.SequenceEqual(actual);
        }, iter: 60);
    }
}

/// <summary>A join's state in checkpoints: stopped with a final checkpoint, restored at another parallelism.</summary>
public sealed class StreamJoinCheckpointTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(1);
    private readonly string _state = Directory.CreateTempSubdirectory("compiled-join-state-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    [Theory]
    [InlineData(3, 1, JoinKind.Inner, false)]
    [InlineData(2, 4, JoinKind.LeftOuter, false)]
    [InlineData(1, 3, JoinKind.Inner, true)]
    [InlineData(4, 2, JoinKind.LeftOuter, true)]
    public async Task A_join_stopped_with_a_final_checkpoint_and_restarted_at_another_parallelism_emits_every_pair_once(int before, int after, JoinKind kind, bool windowed)
    {
        var random = new Random(before * 10 + after);
        var purchases = Enumerable.Range(0, 4_000).Select(i => new Purchase(i % 300, 0, i, 1_000_000 + i * 10L + random.Next(0, 40))).ToArray();
        var payments = Enumerable.Range(0, 6_000).Select(i => new Payment(random.Next(0, 300), 1 + random.Next(0, 50), 1_000_000 + i * 7L + random.Next(0, 40))).ToArray();
        var purchaseLog = new Partitioned<Purchase>(purchases, partitions: 4) { Topic = "purchases" };
        var paymentLog = new Partitioned<Payment>(payments, partitions: 4) { Topic = "payments" };
        var spec = (windowed
            ? Join.Windowed<Purchase, Payment>(Window.Sliding(TimeSpan.FromMilliseconds(400), TimeSpan.FromMilliseconds(100)))
            : Join.Interval<Purchase, Payment>(TimeSpan.FromMilliseconds(-50), TimeSpan.FromMilliseconds(400))) with { Kind = kind, OutOfOrderness = windowed ? TimeSpan.FromSeconds(10) : TimeSpan.FromMinutes(10) }; // windows fire in the first run too (its inputs pause ~5 s of event time apart)
        PipelineOptions Options(int parallelism) => new() { Parallelism = parallelism, BatchSize = 64, StateDirectory = _state, CheckpointInterval = TimeSpan.FromMilliseconds(20) };

        var first = new PaidPurchases { Purchases = purchaseLog.Source(pauseAt: 0.5), Payments = paymentLog.Source(pauseAt: 0.6), Paid = spec };
        using var stop = new CancellationTokenSource();
        var run = first.RunAsync(Options(before), stop.Token);
        await Task.WhenAll(purchaseLog.Paused, paymentLog.Paused).WaitAsync(Patience);
        await stop.CancelAsync();
        var stopped = await run.WaitAsync(Patience);
        Assert.True(stopped.State!.KeptOpen, "stopped with a final checkpoint");
        Assert.NotEmpty(first.Out.Items);

        var second = new PaidPurchases { Purchases = purchaseLog.Source(pauseAt: null), Payments = paymentLog.Source(pauseAt: null), Paid = spec };
        var finished = await second.RunAsync(Options(after)).WaitAsync(Patience);
        Assert.Equal(stopped.State.Written, finished.State!.Restored);

        // Interval: each payment within [-50, 400] ms of the purchase. Window: per sliding window (400 ms every 100 ms;
        // ends on the 100 ms grid after the time, four of them) the payments in it, or the purchase alone once per window.
        static IEnumerable<long> Ends(long time) => Enumerable.Range(1, 4).Select(k => ((time / 100) + k) * 100);
        var expected = purchases
            .SelectMany(p => windowed
                ? Ends(p.Time).SelectMany(end => Met(p, payments.Where(q => q.Purchase == p.Id && q.Time >= end - 400 && q.Time < end)))
                : Met(p, payments.Where(q => q.Purchase == p.Id && q.Time >= p.Time - 50 && q.Time <= p.Time + 400)))
            .Order().ToList();
        List<(int, long, long)> Met(Purchase p, IEnumerable<Payment> met)
        {
            var pairs = met.Select(q => (p.Id, p.Amount, q.Time)).ToList();
            return pairs.Count == 0 && kind == JoinKind.LeftOuter ? [(p.Id, p.Amount, -1L)] : pairs;
        }

        var emitted = first.Out.Items.Concat(second.Out.Items).Select(j => (j.Left.Id, j.Left.Amount, j.HasRight ? j.Right.Time : -1)).Order().ToList();
        Assert.Equal(0, stopped.LateRecords + finished.LateRecords);
        Assert.Equal(expected, emitted); // every pair once: none lost with the state, none repeated
    }

    /// <summary>
    /// A run restored from a checkpoint whose one input has not yet learnt its partitions (a Kafka reader assigns them
    /// in its first poll, which can lag behind the other input's) stops with a checkpoint of its own: that input's
    /// restored positions must be in it, else the next run reads it again from the start — into state that already
    /// holds it, pairing every held record a second time.
    /// </summary>
    [Fact]
    public async Task A_checkpoint_taken_before_an_input_knows_its_partitions_keeps_that_inputs_restored_positions()
    {
        var random = new Random(7);
        var purchases = Enumerable.Range(0, 3_000).Select(i => new Purchase(i % 200, 0, i, 1_000_000 + i * 10L + random.Next(0, 40))).ToArray();
        var payments = Enumerable.Range(0, 4_000).Select(i => new Payment(random.Next(0, 200), 1 + random.Next(0, 50), 1_000_000 + i * 7L + random.Next(0, 40))).ToArray();
        var purchaseLog = new Partitioned<Purchase>(purchases, partitions: 4) { Topic = "purchases", ResumeFromCommitted = false };
        var paymentLog = new Partitioned<Payment>(payments, partitions: 4) { Topic = "payments", ResumeFromCommitted = false };
        var spec = Join.Interval<Purchase, Payment>(TimeSpan.FromMilliseconds(-50), TimeSpan.FromMilliseconds(400)) with { Kind = JoinKind.LeftOuter, OutOfOrderness = TimeSpan.FromMinutes(10) };
        PipelineOptions Options(int parallelism) => new() { Parallelism = parallelism, BatchSize = 64, StateDirectory = _state, CheckpointInterval = TimeSpan.FromMilliseconds(20) };

        async Task<(PaidPurchases Run, PipelineResult Result)> StopWhenPaused(double purchasesAt, ISource<Payment> paymentSource, Task paused, int parallelism)
        {
            var app = new PaidPurchases { Purchases = purchaseLog.Source(pauseAt: purchasesAt), Payments = paymentSource, Paid = spec };
            using var stop = new CancellationTokenSource();
            var run = app.RunAsync(Options(parallelism), stop.Token);
            await Task.WhenAll(purchaseLog.Paused, paused).WaitAsync(Patience);
            await stop.CancelAsync();
            return (app, await run.WaitAsync(Patience));
        }

        var (first, _) = await StopWhenPaused(0.5, paymentLog.Source(pauseAt: 0.6), paymentLog.Paused, 2);

        // The second run's payment readers never learn their partitions: every checkpoint it takes is taken without them.
        var never = new TaskCompletionSource();
        var (second, stopped) = await StopWhenPaused(0.8, paymentLog.Source(pauseAt: 0.8, assigned: never.Task), Task.CompletedTask, 2);
        Assert.True(stopped.State!.KeptOpen, "stopped with a final checkpoint");

        var third = new PaidPurchases { Purchases = purchaseLog.Source(pauseAt: null), Payments = paymentLog.Source(pauseAt: null), Paid = spec };
        await third.RunAsync(Options(3)).WaitAsync(Patience);

        var expected = purchases
            .SelectMany(p =>
            {
                var met = payments.Where(q => q.Purchase == p.Id && q.Time >= p.Time - 50 && q.Time <= p.Time + 400).Select(q => (p.Id, p.Amount, q.Time)).ToList();
                return met.Count == 0 ? [(p.Id, p.Amount, -1L)] : met;
            })
            .Order().ToList();
        var emitted = first.Out.Items.Concat(second.Out.Items).Concat(third.Out.Items).Select(j => (j.Left.Id, j.Left.Amount, j.HasRight ? j.Right.Time : -1)).Order().ToList();
        Assert.Equal(expected, emitted);
        Assert.Equal(0, paymentLog.ReadAgain); // no payment read twice
    }

    [Fact]
    public async Task A_table_join_keeps_its_rows_and_waiting_records_across_a_stop_and_restore()
    {
        var random = new Random(3);
        string[] currencies = ["usd", "gbp", "chf"];
        var rates = Enumerable.Range(0, 2_000).Select(i => new Rate(currencies[random.Next(3)], random.Next(1, 500), 1_000_000 + i * 10L, random.Next(0, 10) == 0 ? ChangeKind.Delete : ChangeKind.UpdateAfter)).ToArray();
        var trades = Enumerable.Range(0, 4_000).Select(i => new Trade(i, currencies[random.Next(3)], 1, 1_000_000 + i * 5L + 3)).ToArray();
        var tradeLog = new Partitioned<Trade>(trades, partitions: 4) { Topic = "trades" };
        var rateLog = new Partitioned<Rate>(rates, partitions: 4) { Topic = "rates" };
        var spec = Join.Table<Trade, Rate>() with { Kind = JoinKind.LeftOuter, OutOfOrderness = TimeSpan.FromMinutes(10) };
        PipelineOptions Options(int parallelism) => new() { Parallelism = parallelism, BatchSize = 32, StateDirectory = _state, CheckpointInterval = TimeSpan.FromMilliseconds(20) };

        var first = new TradesAtRate { Trades = tradeLog.Source(pauseAt: 0.5), Rates = rateLog.Source(pauseAt: 0.4), AtRate = spec };
        using var stop = new CancellationTokenSource();
        var run = first.RunAsync(Options(2), stop.Token);
        await Task.WhenAll(tradeLog.Paused, rateLog.Paused).WaitAsync(Patience);
        await stop.CancelAsync();
        var stopped = await run.WaitAsync(Patience);
        Assert.True(stopped.State!.KeptOpen);

        var second = new TradesAtRate { Trades = tradeLog.Source(pauseAt: null), Rates = rateLog.Source(pauseAt: null), AtRate = spec };
        await second.RunAsync(Options(3)).WaitAsync(Patience);

        var expected = trades.Select(t =>
        {
            var row = rates.Where(r => r.Currency == t.Currency && r.Time <= t.Time).OrderBy(r => r.Time).LastOrDefault();
            return (t.Id, row.Currency is not null && row.Op != ChangeKind.Delete ? row.Value : -1);
        }).Order().ToList();
        Assert.Equal(expected, first.Out.Items.Concat(second.Out.Items).Order().ToList());
    }
}
