namespace Compiled.Nexmark;

/// <summary>
/// q0, q1, q2, q5 and q7 written by hand, as a C# developer would write them without an engine: one loop over the
/// generator's events, the query's work inline, results handed to a consumer. Single-threaded — the physical limit
/// the engine's fused loop at parallelism 1 is measured against.
/// </summary>
public static class HandWritten
{
    /// <summary>Runs query <paramref name="query"/> over <paramref name="config"/>'s events; returns the rows it produced.</summary>
    public static long Run(string query, NexmarkConfig config) => query switch
    {
        "q0" => Q0(config),
        "q1" => Q1(config),
        "q2" => Q2(config),
        "q5" => Q5(config),
        "q7" => Q7(config),
        _ => throw new ArgumentException($"No hand-written {query}.", nameof(query)),
    };

    /// <summary>The queries written here.</summary>
    public static IReadOnlyList<string> Queries { get; } = ["q0", "q1", "q2", "q5", "q7"];

    private static long Q0(NexmarkConfig config)
    {
        var generator = new NexmarkGenerator(config);
        var sink = new Consumer<Q0Row>();
        for (long id = 0; id < config.Events; id++)
        {
            if (NexmarkGenerator.KindOf(id) != EventKind.Bid)
            {
                Unread(generator, id);
            }
            else
            {
                var b = generator.Bid(id);
                sink.Add(new Q0Row(b.Auction, b.Bidder, b.Price, b.DateTime, b.Extra));
            }
        }

        return sink.Flush();
    }

    private static long Q1(NexmarkConfig config)
    {
        var generator = new NexmarkGenerator(config);
        var sink = new Consumer<Q1Row>();
        for (long id = 0; id < config.Events; id++)
        {
            if (NexmarkGenerator.KindOf(id) != EventKind.Bid)
            {
                Unread(generator, id);
            }
            else
            {
                var b = generator.Bid(id);
                sink.Add(new Q1Row(b.Auction, b.Bidder, 0.908m * b.Price, b.DateTime, b.Extra));
            }
        }

        return sink.Flush();
    }

    private static long Q2(NexmarkConfig config)
    {
        var generator = new NexmarkGenerator(config);
        var sink = new Consumer<Q2Row>();
        for (long id = 0; id < config.Events; id++)
        {
            if (NexmarkGenerator.KindOf(id) != EventKind.Bid)
            {
                Unread(generator, id);
            }
            else
            {
                var b = generator.Bid(id);
                if (b.Auction % 123 == 0)
                {
                    sink.Add(new Q2Row(b.Auction, b.Price));
                }
            }
        }

        return sink.Flush();
    }

    /// <summary>Counts per auction for each open 10-second window (one every 2 s); a window closes when the watermark (the newest time less the delay) passes its end.</summary>
    private static long Q5(NexmarkConfig config)
    {
        var generator = new NexmarkGenerator(config);
        var sink = new Consumer<Q5Row>();
        var windows = new SortedDictionary<long, Dictionary<long, long>>();
        var delay = (long)config.WatermarkDelay.TotalMilliseconds;
        var newest = long.MinValue;
        for (long id = 0; id < config.Events; id++)
        {
            if (NexmarkGenerator.KindOf(id) != EventKind.Bid)
            {
                Unread(generator, id);
                continue;
            }

            var b = generator.Bid(id);
            for (var start = b.DateTime - (b.DateTime % 2_000); start > b.DateTime - 10_000; start -= 2_000)
            {
                if (!windows.TryGetValue(start, out var counts))
                {
                    windows[start] = counts = [];
                }

                counts[b.Auction] = counts.GetValueOrDefault(b.Auction) + 1;
            }

            if (b.DateTime > newest)
            {
                newest = b.DateTime;
                Close(windows, 10_000, newest - delay, counts => Hottest(counts, sink));
            }
        }

        Close(windows, 10_000, long.MaxValue, counts => Hottest(counts, sink));
        return sink.Flush();

        static void Hottest(Dictionary<long, long> counts, Consumer<Q5Row> sink)
        {
            var max = counts.Values.Max();
            foreach (var (auction, count) in counts)
            {
                if (count == max)
                {
                    sink.Add(new Q5Row(auction, count));
                }
            }
        }
    }

    /// <summary>The bids at each 10-second window's highest price; a window closes when the watermark (the newest time less the delay) passes its end.</summary>
    private static long Q7(NexmarkConfig config)
    {
        var generator = new NexmarkGenerator(config);
        var sink = new Consumer<Q7Row>();
        var windows = new SortedDictionary<long, List<Bid>>();
        var delay = (long)config.WatermarkDelay.TotalMilliseconds;
        var newest = long.MinValue;
        for (long id = 0; id < config.Events; id++)
        {
            if (NexmarkGenerator.KindOf(id) != EventKind.Bid)
            {
                Unread(generator, id);
                continue;
            }

            var b = generator.Bid(id);
            var start = b.DateTime - (b.DateTime % 10_000);
            if (!windows.TryGetValue(start, out var highest))
            {
                windows[start] = highest = [];
            }

            if (highest.Count == 0 || b.Price > highest[0].Price)
            {
                highest.Clear();
                highest.Add(b);
            }
            else if (b.Price == highest[0].Price)
            {
                highest.Add(b);
            }

            if (b.DateTime > newest)
            {
                newest = b.DateTime;
                Close(windows, 10_000, newest - delay, bids => Emit(bids, sink));
            }
        }

        Close(windows, 10_000, long.MaxValue, bids => Emit(bids, sink));
        return sink.Flush();

        static void Emit(List<Bid> bids, Consumer<Q7Row> sink)
        {
            foreach (var b in bids)
            {
                sink.Add(new Q7Row(b.Auction, b.Price, b.Bidder, b.DateTime, b.Extra));
            }
        }
    }

    /// <summary>Closes, earliest first, the windows (by start, <paramref name="size"/> long) that end at or before <paramref name="watermark"/>.</summary>
    private static void Close<TWindow>(SortedDictionary<long, TWindow> windows, long size, long watermark, Action<TWindow> close)
    {
        while (windows.Count > 0 && windows.First() is var (start, window) && (watermark == long.MaxValue || start + size <= watermark))
        {
            close(window);
            windows.Remove(start);
        }
    }

    /// <summary>Makes a person or an auction the query does not read (as the engine's sources do: Nexmark counts generating every event).</summary>
    private static void Unread(NexmarkGenerator generator, long id)
    {
        if (generator.Config.MakeUnread)
        {
            generator.Make(id);
        }
    }

    /// <summary>Where a hand-written query puts its rows: a buffer handed on (here: counted) when full, as a sink would take it.</summary>
    private sealed class Consumer<T>
    {
        private readonly T[] _buffer = new T[1024];
        private int _count;
        private long _total;

        public void Add(in T row)
        {
            _buffer[_count++] = row;
            if (_count == _buffer.Length)
            {
                Flush();
            }
        }

        public long Flush()
        {
            _total += _count;
            _count = 0;
            return _total;
        }
    }
}
