using System.Globalization;
using Compiled.Connectors;
using Compiled.Runtime;

namespace Compiled.Throughput;

/// <summary>An order, with its event time (ms).</summary>
[Record]
public readonly partial record struct JoinOrder(int Id, double Amount, [property: EventTime] long Time);

/// <summary>A payment of an order, with its event time (ms).</summary>
[Record]
public readonly partial record struct JoinPayment(int OrderId, double Amount, [property: EventTime] long Time);

/// <summary>Orders with the payments made within 10 s after them (an interval join), into a sink that sums them.</summary>
[Pipeline(Name = "bench-interval-join")]
public sealed partial class IntervalJoinBench
{
    [Source] public ISource<JoinOrder> Orders { get; set; } = new CollectionSource<JoinOrder>();

    [Source] public ISource<JoinPayment> Payments { get; set; } = new CollectionSource<JoinPayment>();

    [KeyBy] static int OrderId(JoinOrder o) => o.Id;

    [KeyBy] static int PaidOrder(JoinPayment p) => p.OrderId;

    [Join] public JoinSpec<JoinOrder, JoinPayment> Paid { get; set; } = Join.Interval<JoinOrder, JoinPayment>(TimeSpan.Zero, TimeSpan.FromSeconds(10)) with { OutOfOrderness = TimeSpan.FromSeconds(1) };

    [Sink] public PairSink Total { get; set; } = new();
}

/// <summary>Counts the pairs and sums both amounts (inline), so nothing is optimised away.</summary>
public sealed class PairSink : ISink<Joined<JoinOrder, JoinPayment>>
{
    private readonly Lock _lock = new();

    public long Pairs { get; private set; }

    public double Amount { get; private set; }

    public SinkExecution Execution => SinkExecution.Inline;

    public ValueTask OpenAsync(SinkContext<Joined<JoinOrder, JoinPayment>> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISinkWriter<Joined<JoinOrder, JoinPayment>> CreateWriter(int partition) => new Writer(this);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Writer(PairSink sink) : ISinkWriter<Joined<JoinOrder, JoinPayment>>
    {
        public ValueTask WriteAsync(ReadOnlyMemory<Joined<JoinOrder, JoinPayment>> records, CancellationToken cancellationToken)
        {
            double amount = 0;
            foreach (ref readonly var pair in records.Span)
            {
                amount += pair.Left.Amount + pair.Right.Amount;
            }

            lock (sink._lock)
            {
                sink.Pairs += records.Length;
                sink.Amount += amount;
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>
/// Joins of two streams against hand-written C#: the same interval join over the same orders and payments, written
/// as a user would without a framework — two Dictionaries of waiting records, matched on arrival, swept behind a
/// watermark — and the goal of ≥ 0.6× its rate.
/// </summary>
internal static class JoinScenario
{
    private const long UpperMs = 10_000;

    public static async Task RunAsync(int orders, int warmups, int repetitions, List<(string, string)> results)
    {
        // An order every 0.1 ms of event time; 80% are paid once, 0-8 s later; both streams ~50 ms out of order.
        var random = new Random(42);
        var orderData = Enumerable.Range(0, orders).Select(i => new JoinOrder(i, i % 100, i / 10L + random.Next(0, 50))).ToArray();
        var paymentData = orderData.Where(o => o.Id % 5 != 0).Select(o => new JoinPayment(o.Id, 1, o.Time + random.Next(0, 8_000))).OrderBy(p => p.Time + random.Next(0, 50)).ToArray();
        var expected = ((long)paymentData.Length, orderData.Where(o => o.Id % 5 != 0).Sum(o => o.Amount) + paymentData.Length);
        var records = orders + paymentData.Length;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scenario: interval join [0, 10 s]: {orders:N0} orders + {paymentData.Length:N0} payments -> pairs -> sum"));

        // The hand loop reads the two streams merged by time, as one consumer of both topics would.
        var merged = Merge(orderData, paymentData);
        var hand = new Measurement("hand-written: two Dictionaries, swept by watermark", records, 24);
        var handQueue = new Measurement("hand-written: two Dictionaries, expired through a PriorityQueue", records, 24);
        var p1 = new Measurement("Compiled interval join, parallelism 1", records, 24);
        var p2 = new Measurement("Compiled interval join, parallelism 2", records, 24);
        for (var rep = 0; rep < warmups + repetitions; rep++)
        {
            var measure = rep >= warmups;
            await hand.RunAsync(() => { Verify(Hand(merged), expected, hand.Name); return Task.CompletedTask; }, measure);
            await handQueue.RunAsync(() => { Verify(HandExpiring(merged), expected, handQueue.Name); return Task.CompletedTask; }, measure);
            foreach (var (measurement, parallelism) in new[] { (p1, 1), (p2, 2) })
            {
                await measurement.RunAsync(
                    async () =>
                    {
                        var pipeline = new IntervalJoinBench { Orders = new CollectionSource<JoinOrder>(orderData), Payments = new CollectionSource<JoinPayment>(paymentData) };
                        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism });
                        Verify((pipeline.Total.Pairs, pipeline.Total.Amount), expected, measurement.Name);
                    },
                    measure);
            }
        }

        // The ratios are against the faster of the hand-written joins.
        var fastest = Math.Min(hand.MedianSeconds, handQueue.MedianSeconds);
        foreach (var m in new[] { hand, handQueue, p1, p2 })
        {
            Console.WriteLine(m.Row(fastest));
        }

        results.Add(("join_interval_p1_vs_hand", (fastest / p1.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
        results.Add(("join_interval_p2_vs_hand", (fastest / p2.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));

        // The same streams through a tumbling 10 s window join: an order meets its payment when both fall into one window.
        Console.WriteLine();
        Console.WriteLine("scenario: window join, tumbling 10 s: the same orders and payments");
        var paidOrders = orderData.Where(o => o.Id % 5 != 0).ToDictionary(o => o.Id);
        var sameWindow = paymentData.Where(p => paidOrders[p.OrderId].Time / WindowMs == p.Time / WindowMs).ToList();
        var windowExpected = ((long)sameWindow.Count, sameWindow.Sum(p => paidOrders[p.OrderId].Amount + p.Amount));
        var handWindow = new Measurement("hand-written: a Dictionary per key and window, fired by watermark", records, 24);
        var handByWindow = new Measurement("hand-written: a Dictionary of keys per window, fired by watermark", records, 24);
        var w1 = new Measurement("Compiled window join, parallelism 1", records, 24);
        var w2 = new Measurement("Compiled window join, parallelism 2", records, 24);
        for (var rep = 0; rep < warmups + repetitions; rep++)
        {
            var measure = rep >= warmups;
            await handWindow.RunAsync(() => { Verify(HandWindow(merged), windowExpected, handWindow.Name); return Task.CompletedTask; }, measure);
            await handByWindow.RunAsync(() => { Verify(HandByWindow(merged), windowExpected, handByWindow.Name); return Task.CompletedTask; }, measure);
            foreach (var (measurement, parallelism) in new[] { (w1, 1), (w2, 2) })
            {
                await measurement.RunAsync(
                    async () =>
                    {
                        var pipeline = new IntervalJoinBench
                        {
                            Orders = new CollectionSource<JoinOrder>(orderData),
                            Payments = new CollectionSource<JoinPayment>(paymentData),
                            Paid = Join.Windowed<JoinOrder, JoinPayment>(Window.Tumbling(TimeSpan.FromMilliseconds(WindowMs))) with { OutOfOrderness = TimeSpan.FromSeconds(1) },
                        };
                        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism });
                        Verify((pipeline.Total.Pairs, pipeline.Total.Amount), windowExpected, measurement.Name);
                    },
                    measure);
            }
        }

        var fastestWindow = Math.Min(handWindow.MedianSeconds, handByWindow.MedianSeconds);
        foreach (var m in new[] { handWindow, handByWindow, w1, w2 })
        {
            Console.WriteLine(m.Row(fastestWindow));
        }

        results.Add(("join_window_p1_vs_hand", (fastestWindow / w1.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
        results.Add(("join_window_p2_vs_hand", (fastestWindow / w2.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
    }

    private const long WindowMs = 10_000;

    /// <summary>
    /// A window join by hand: the records of each (key, window) in a Dictionary; every 4,096 records, the windows the
    /// watermark (largest time − 1 s) has passed are paired and removed.
    /// </summary>
    private static (long Pairs, double Amount) HandWindow((bool IsOrder, JoinOrder Order, JoinPayment Payment)[] events)
    {
        var windows = new Dictionary<(int Key, long Start), (List<JoinOrder> Orders, List<JoinPayment> Payments)>();
        var fired = new List<(int, long)>();
        long pairs = 0;
        double amount = 0;
        long max = long.MinValue;

        void Fire(long watermark)
        {
            fired.Clear();
            foreach (var (window, (orders, payments)) in windows)
            {
                if (window.Start + WindowMs - 1 > watermark)
                {
                    continue;
                }

                foreach (var o in orders)
                {
                    foreach (var p in payments)
                    {
                        pairs++;
                        amount += o.Amount + p.Amount;
                    }
                }

                fired.Add(window);
            }

            foreach (var window in fired)
            {
                windows.Remove(window);
            }
        }

        for (var n = 0; n < events.Length; n++)
        {
            var (isOrder, order, payment) = events[n];
            var (key, time) = isOrder ? (order.Id, order.Time) : (payment.OrderId, payment.Time);
            max = Math.Max(max, time);
            var start = time / WindowMs * WindowMs;
            if (!windows.TryGetValue((key, start), out var lists))
            {
                windows[(key, start)] = lists = ([], []);
            }

            if (isOrder)
            {
                lists.Orders.Add(order);
            }
            else
            {
                lists.Payments.Add(payment);
            }

            if ((n & 4095) == 4095)
            {
                Fire(max - 1_000);
            }
        }

        Fire(long.MaxValue);
        return (pairs, amount);
    }

    /// <summary>
    /// A window join by hand, organised by window: each window's keys in a Dictionary of their own; every 4,096
    /// records the windows the watermark (largest time − 1 s) has passed are paired and dropped whole.
    /// </summary>
    private static (long Pairs, double Amount) HandByWindow((bool IsOrder, JoinOrder Order, JoinPayment Payment)[] events)
    {
        var windows = new SortedDictionary<long, Dictionary<int, (List<JoinOrder> Orders, List<JoinPayment> Payments)>>();
        long pairs = 0;
        double amount = 0;
        long max = long.MinValue;

        void Fire(long watermark)
        {
            while (windows.Count > 0)
            {
                var (start, keys) = windows.First();
                if (start + WindowMs - 1 > watermark)
                {
                    return;
                }

                foreach (var (orders, payments) in keys.Values)
                {
                    foreach (var o in orders)
                    {
                        foreach (var p in payments)
                        {
                            pairs++;
                            amount += o.Amount + p.Amount;
                        }
                    }
                }

                windows.Remove(start);
            }
        }

        for (var n = 0; n < events.Length; n++)
        {
            var (isOrder, order, payment) = events[n];
            var (key, time) = isOrder ? (order.Id, order.Time) : (payment.OrderId, payment.Time);
            max = Math.Max(max, time);
            var start = time / WindowMs * WindowMs;
            if (!windows.TryGetValue(start, out var keys))
            {
                windows[start] = keys = [];
            }

            if (!keys.TryGetValue(key, out var lists))
            {
                keys[key] = lists = ([], []);
            }

            if (isOrder)
            {
                lists.Orders.Add(order);
            }
            else
            {
                lists.Payments.Add(payment);
            }

            if ((n & 4095) == 4095)
            {
                Fire(max - 1_000);
            }
        }

        Fire(long.MaxValue);
        return (pairs, amount);
    }

    private static (bool IsOrder, JoinOrder Order, JoinPayment Payment)[] Merge(JoinOrder[] orders, JoinPayment[] payments)
    {
        var merged = new List<(bool, JoinOrder, JoinPayment)>(orders.Length + payments.Length);
        int i = 0, j = 0;
        while (i < orders.Length || j < payments.Length)
        {
            if (j >= payments.Length || (i < orders.Length && orders[i].Time <= payments[j].Time))
            {
                merged.Add((true, orders[i++], default));
            }
            else
            {
                merged.Add((false, default, payments[j++]));
            }
        }

        return [.. merged];
    }

    /// <summary>
    /// The same by hand with expiry through a PriorityQueue instead of a sweep: each held record queues its key at the
    /// time no later record can meet it; every 4,096 records the due keys drop their expired records.
    /// </summary>
    private static (long Pairs, double Amount) HandExpiring((bool IsOrder, JoinOrder Order, JoinPayment Payment)[] events)
    {
        var orders = new Dictionary<int, List<JoinOrder>>();
        var payments = new Dictionary<int, List<JoinPayment>>();
        var expiry = new PriorityQueue<(int Key, bool IsOrder), long>();
        long pairs = 0;
        double amount = 0;
        long max = long.MinValue;
        for (var n = 0; n < events.Length; n++)
        {
            var (isOrder, order, payment) = events[n];
            if (isOrder)
            {
                max = Math.Max(max, order.Time);
                if (payments.TryGetValue(order.Id, out var paid))
                {
                    foreach (var p in paid)
                    {
                        if (p.Time >= order.Time && p.Time <= order.Time + UpperMs)
                        {
                            pairs++;
                            amount += order.Amount + p.Amount;
                        }
                    }
                }

                if (!orders.TryGetValue(order.Id, out var waiting))
                {
                    orders[order.Id] = waiting = [];
                }

                waiting.Add(order);
                expiry.Enqueue((order.Id, true), order.Time + UpperMs);
            }
            else
            {
                max = Math.Max(max, payment.Time);
                if (orders.TryGetValue(payment.OrderId, out var placed))
                {
                    foreach (var o in placed)
                    {
                        if (payment.Time >= o.Time && payment.Time <= o.Time + UpperMs)
                        {
                            pairs++;
                            amount += o.Amount + payment.Amount;
                        }
                    }
                }

                if (!payments.TryGetValue(payment.OrderId, out var waiting))
                {
                    payments[payment.OrderId] = waiting = [];
                }

                waiting.Add(payment);
                expiry.Enqueue((payment.OrderId, false), payment.Time);
            }

            if ((n & 4095) == 4095)
            {
                var watermark = max - 1_000;
                while (expiry.TryPeek(out var due, out var at) && at < watermark)
                {
                    expiry.Dequeue();
                    if (due.IsOrder && orders.TryGetValue(due.Key, out var list))
                    {
                        list.RemoveAll(o => o.Time + UpperMs < watermark);
                        if (list.Count == 0)
                        {
                            orders.Remove(due.Key);
                        }
                    }
                    else if (!due.IsOrder && payments.TryGetValue(due.Key, out var paid))
                    {
                        paid.RemoveAll(p => p.Time < watermark);
                        if (paid.Count == 0)
                        {
                            payments.Remove(due.Key);
                        }
                    }
                }
            }
        }

        return (pairs, amount);
    }

    /// <summary>
    /// What a user writes by hand: waiting orders and payments per key; each arrival looks at the other side's waiting
    /// records; every 4,096 records, records no later record can meet are swept away (watermark = largest time − 1 s).
    /// </summary>
    private static (long Pairs, double Amount) Hand((bool IsOrder, JoinOrder Order, JoinPayment Payment)[] events)
    {
        var orders = new Dictionary<int, List<JoinOrder>>();
        var payments = new Dictionary<int, List<JoinPayment>>();
        long pairs = 0;
        double amount = 0;
        long max = long.MinValue;
        for (var n = 0; n < events.Length; n++)
        {
            var (isOrder, order, payment) = events[n];
            if (isOrder)
            {
                max = Math.Max(max, order.Time);
                if (payments.TryGetValue(order.Id, out var paid))
                {
                    foreach (var p in paid)
                    {
                        if (p.Time >= order.Time && p.Time <= order.Time + UpperMs)
                        {
                            pairs++;
                            amount += order.Amount + p.Amount;
                        }
                    }
                }

                if (!orders.TryGetValue(order.Id, out var waiting))
                {
                    orders[order.Id] = waiting = [];
                }

                waiting.Add(order);
            }
            else
            {
                max = Math.Max(max, payment.Time);
                if (orders.TryGetValue(payment.OrderId, out var placed))
                {
                    foreach (var o in placed)
                    {
                        if (payment.Time >= o.Time && payment.Time <= o.Time + UpperMs)
                        {
                            pairs++;
                            amount += o.Amount + payment.Amount;
                        }
                    }
                }

                if (!payments.TryGetValue(payment.OrderId, out var waiting))
                {
                    payments[payment.OrderId] = waiting = [];
                }

                waiting.Add(payment);
            }

            if ((n & 4095) == 4095)
            {
                var watermark = max - 1_000;
                foreach (var (key, list) in orders)
                {
                    list.RemoveAll(o => o.Time + UpperMs < watermark);
                    if (list.Count == 0)
                    {
                        orders.Remove(key);
                    }
                }

                foreach (var (key, list) in payments)
                {
                    list.RemoveAll(p => p.Time < watermark);
                    if (list.Count == 0)
                    {
                        payments.Remove(key);
                    }
                }
            }
        }

        return (pairs, amount);
    }

    private static void Verify((long Pairs, double Amount) actual, (long Pairs, double Amount) expected, string name)
    {
        if (actual.Pairs != expected.Pairs || Math.Abs(actual.Amount - expected.Amount) > 1e-6 * Math.Max(1, expected.Amount))
        {
            throw new InvalidOperationException($"{name}: {actual.Pairs} pairs, amount {actual.Amount}; expected {expected.Pairs}, {expected.Amount}");
        }
    }
}
