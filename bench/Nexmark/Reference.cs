namespace Compiled.Nexmark;

/// <summary>
/// Each query computed the naive way — plain LINQ over every generated event, straight from its SQL, sharing nothing
/// with the pipelines but the generator — to check the pipelines' output (tests, and the runner's <c>--verify</c>).
/// </summary>
public static class Reference
{
    private const long Second = 1000;

    /// <summary>Every event of <paramref name="config"/>, split by kind (in id order).</summary>
    public static (List<Person> Persons, List<Auction> Auctions, List<Bid> Bids) Events(NexmarkConfig config)
    {
        var (persons, auctions, bids) = (new List<Person>(), new List<Auction>(), new List<Bid>());
        foreach (var (kind, person, auction, bid) in new NexmarkGenerator(config).Events())
        {
            switch (kind)
            {
                case EventKind.Person: persons.Add(person); break;
                case EventKind.Auction: auctions.Add(auction); break;
                default: bids.Add(bid); break;
            }
        }

        return (persons, auctions, bids);
    }

    public static IEnumerable<Q0Row> Q0(List<Bid> bids) => bids.Select(b => new Q0Row(b.Auction, b.Bidder, b.Price, b.DateTime, b.Extra));

    public static IEnumerable<Q1Row> Q1(List<Bid> bids) => bids.Select(b => new Q1Row(b.Auction, b.Bidder, b.Price * 0.908m, b.DateTime, b.Extra));

    public static IEnumerable<Q2Row> Q2(List<Bid> bids) => bids.Where(b => b.Auction % 123 == 0).Select(b => new Q2Row(b.Auction, b.Price));

    public static IEnumerable<Q3Row> Q3(List<Auction> auctions, List<Person> persons)
        => from a in auctions
           join p in persons on a.Seller equals p.Id
           where a.Category == 10 && (p.State == "OR" || p.State == "ID" || p.State == "CA")
           select new Q3Row(p.Name, p.City, p.State, a.Id);

    /// <summary>q4's final row per category, and how many (auction, bid) pairs the join makes — one update each.</summary>
    public static (IEnumerable<Q4Row> Rows, long Pairs) Q4(List<Auction> auctions, List<Bid> bids)
    {
        var pairs = (from a in auctions
                     join b in bids on a.Id equals b.Auction
                     where b.DateTime >= a.DateTime && b.DateTime <= a.Expires
                     select (a.Id, a.Category, b.Price)).ToList();
        var rows = from w in pairs.GroupBy(p => (p.Id, p.Category)).Select(g => (g.Key.Category, Final: g.Max(p => p.Price)))
                   group w by w.Category into c
                   select new Q4Row(c.Key, c.Sum(w => w.Final) / c.Count());
        return (rows, pairs.Count);
    }

    public static IEnumerable<Q5Row> Q5(List<Bid> bids)
    {
        // HOP(size 10 s, slide 2 s): a bid at t is in the windows starting at the multiples of 2 s in (t - 10 s, t].
        var counts = from b in bids
                     from start in HopStarts(b.DateTime, 10 * Second, 2 * Second)
                     group b by (b.Auction, Start: start) into g
                     select (g.Key.Auction, g.Key.Start, Num: (long)g.Count());
        var all = counts.ToList();
        var max = all.GroupBy(c => c.Start).ToDictionary(g => g.Key, g => g.Max(c => c.Num));
        return all.Where(c => c.Num >= max[c.Start]).Select(c => new Q5Row(c.Auction, c.Num));
    }

    public static IEnumerable<Q7Row> Q7(List<Bid> bids)
    {
        var maxima = bids.GroupBy(b => Math.DivRem(b.DateTime, 10 * Second).Quotient).Select(g => (MaxPrice: g.Max(b => b.Price), End: (g.Key + 1) * 10 * Second)).ToList();
        return from b in bids
               from m in maxima
               where b.Price == m.MaxPrice && b.DateTime >= m.End - (10 * Second) && b.DateTime <= m.End
               select new Q7Row(b.Auction, b.Price, b.Bidder, b.DateTime, b.Extra);
    }

    public static IEnumerable<Q8Row> Q8(List<Person> persons, List<Auction> auctions)
    {
        var people = persons.Select(p => (p.Id, p.Name, Start: TumbleStart(p.DateTime, 10 * Second))).Distinct();
        var sellers = auctions.Select(a => (a.Seller, Start: TumbleStart(a.DateTime, 10 * Second))).Distinct();
        return from p in people
               join a in sellers on (p.Id, p.Start) equals (a.Seller, a.Start)
               select new Q8Row(p.Id, p.Name, p.Start);
    }

    public static IEnumerable<Q11Row> Q11(List<Bid> bids)
    {
        // SESSION(gap 10 s): a bidder's bids at most 10 s apart (each bid's [t, t + 10 s) touching the next) are one session.
        foreach (var bidder in bids.GroupBy(b => b.Bidder))
        {
            var times = bidder.Select(b => b.DateTime).Order().ToList();
            var (start, last, count) = (times[0], times[0], 0L);
            foreach (var t in times)
            {
                if (t > last + (10 * Second))
                {
                    yield return new Q11Row(bidder.Key, count, start, last + (10 * Second));
                    (start, count) = (t, 0);
                }

                last = t;
                count++;
            }

            yield return new Q11Row(bidder.Key, count, start, last + (10 * Second));
        }
    }

    /// <summary>q12's windows depend on the wall clock; what does not: every bidder's bids, counted once over all windows.</summary>
    public static Dictionary<long, long> Q12Totals(List<Bid> bids) => bids.GroupBy(b => b.Bidder).ToDictionary(g => g.Key, g => (long)g.Count());

    public static IEnumerable<Q13Row> Q13(List<Bid> bids, Dictionary<long, SideRow> side)
        => from b in bids
           where side.ContainsKey(b.Auction % 10_000)
           select new Q13Row(b.Auction, b.Bidder, b.Price, b.DateTime, side[b.Auction % 10_000].Value);

    public static IEnumerable<Q14Row> Q14(List<Bid> bids)
        => from b in bids
           let price = 0.908m * b.Price
           where price > 1_000_000m && price < 50_000_000m
           let hour = DateTimeOffset.FromUnixTimeMilliseconds(b.DateTime).UtcDateTime.Hour
           let type = hour >= 8 && hour <= 18 ? "dayTime" : hour <= 6 || hour >= 20 ? "nightTime" : "otherTime"
           select new Q14Row(b.Auction, b.Bidder, price, type, b.DateTime, b.Extra, b.Extra.ToString().Count(c => c == 'c'));

    /// <summary>q17's final row per (auction, day) — what the last update of each group says.</summary>
    public static IEnumerable<Q17Row> Q17(List<Bid> bids)
        => from b in bids
           group b by (b.Auction, Day: DateOnly.FromDateTime(DateTimeOffset.FromUnixTimeMilliseconds(b.DateTime).UtcDateTime)) into g
           let sum = g.Sum(b => b.Price)
           select new Q17Row(
               g.Key.Auction, g.Key.Day, g.Count(),
               g.Count(b => b.Price < 10_000), g.Count(b => b.Price >= 10_000 && b.Price < 1_000_000), g.Count(b => b.Price >= 1_000_000),
               g.Min(b => b.Price), g.Max(b => b.Price), sum / g.Count(), sum);

    public static IEnumerable<Q20Row> Q20(List<Bid> bids, List<Auction> auctions)
        => from b in bids
           join a in auctions on b.Auction equals a.Id
           where a.Category == 10
           select new Q20Row(b.Auction, b.Bidder, b.Price, b.Channel, b.Url, b.DateTime, b.Extra, a.ItemName, a.Description, a.InitialBid, a.Reserve, a.DateTime, a.Expires, a.Seller, a.Category, a.Extra);

    public static IEnumerable<Q21Row> Q21(List<Bid> bids)
    {
        foreach (var b in bids)
        {
            var fromUrl = System.Text.RegularExpressions.Regex.Match(b.Url, "(&|^)channel_id=([^&]*)");
            string? id = b.Channel.ToLowerInvariant() switch
            {
                "apple" => "0",
                "google" => "1",
                "facebook" => "2",
                "baidu" => "3",
                _ => fromUrl.Success ? fromUrl.Groups[2].Value : null,
            };
            if (fromUrl.Success || b.Channel.ToLowerInvariant() is "apple" or "google" or "facebook" or "baidu")
            {
                yield return new Q21Row(b.Auction, b.Bidder, b.Price, b.Channel, id!);
            }
        }
    }

    public static IEnumerable<Q22Row> Q22(List<Bid> bids)
        => bids.Select(b =>
        {
            string? Piece(int k) => b.Url.Split('/').ElementAtOrDefault(k);
            return new Q22Row(b.Auction, b.Bidder, b.Price, b.Channel, Piece(3), Piece(4), Piece(5));
        });

    private static long TumbleStart(long time, long size) => time - (((time % size) + size) % size);

    private static IEnumerable<long> HopStarts(long time, long size, long slide)
    {
        for (var start = TumbleStart(time, slide); start > time - size; start -= slide)
        {
            yield return start;
        }
    }
}
