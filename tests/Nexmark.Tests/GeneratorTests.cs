namespace Compiled.Nexmark.Tests;

/// <summary>The generator makes Nexmark's shapes, the same events whatever the partitioning, and bids without allocating.</summary>
public sealed class GeneratorTests
{
    private static readonly NexmarkConfig Config = new() { Events = 500_000, EventsPerSecond = 10_000, Seed = 7 };

    [Fact]
    public void One_person_three_auctions_and_46_bids_in_every_50_events_with_ids_and_time_that_follow_the_event_number()
    {
        var generator = new NexmarkGenerator(Config);
        var events = generator.Events().Take(5_000).ToList();
        foreach (var round in events.Chunk(50))
        {
            Assert.Equal(1, round.Count(e => e.Kind == EventKind.Person));
            Assert.Equal(3, round.Count(e => e.Kind == EventKind.Auction));
            Assert.Equal(46, round.Count(e => e.Kind == EventKind.Bid));
        }

        // Person ids and auction ids count up from 1000 without gaps; event time advances 1 ms per 10 events here.
        Assert.Equal(Enumerable.Range(1000, 100).Select(i => (long)i), events.Where(e => e.Kind == EventKind.Person).Select(e => e.Person.Id));
        Assert.Equal(Enumerable.Range(1000, 300).Select(i => (long)i), events.Where(e => e.Kind == EventKind.Auction).Select(e => e.Auction.Id));
        Assert.Equal(Config.BaseTime + 499, generator.TimeOf(4_999));
        Assert.All(events.Where(e => e.Kind == EventKind.Bid), e => Assert.Equal(generator.TimeOf(events.IndexOf(e)), e.Bid.DateTime));
    }

    [Fact]
    public void The_same_seed_makes_the_same_events_and_another_seed_other_ones()
    {
        var a = new NexmarkGenerator(Config);
        var b = new NexmarkGenerator(Config);
        var c = new NexmarkGenerator(Config with { Seed = 8 });
        for (long id = 0; id < 2_000; id++)
        {
            Assert.Equal(Show(a, id), Show(b, id));
        }

        Assert.NotEqual(Enumerable.Range(0, 100).Select(i => Show(a, i)), Enumerable.Range(0, 100).Select(i => Show(c, i)));

        static string Show(NexmarkGenerator g, long id) => NexmarkGenerator.KindOf(id) switch
        {
            EventKind.Person => g.Person(id).ToString(),
            EventKind.Auction => g.Auction(id).ToString(),
            _ => g.Bid(id).ToString(),
        };
    }

    [Fact]
    public void Hot_auctions_sellers_and_bidders_and_prices_have_the_reference_proportions()
    {
        var (persons, auctions, bids) = Reference.Events(Config);

        // Half the bids go to the hot auction of their time (the first of its block of 100 auctions: id ≡ 0 mod 100 after
        // the offset of 1000), three quarters come from the hot bidder (≡ 1 mod 100) and three quarters of the auctions
        // from the hot seller (≡ 0 mod 100); the rest are spread over recent ids.
        Assert.InRange(bids.Count(b => b.Auction % 100 == 0) / (double)bids.Count, 0.49, 0.53);
        Assert.InRange(bids.Count(b => b.Bidder % 100 == 1) / (double)bids.Count, 0.74, 0.77);
        Assert.InRange(auctions.Count(a => a.Seller % 100 == 0) / (double)auctions.Count, 0.73, 0.78);

        // Prices are log-uniform over [$1, $1,000,000): a third below $100, a third below $10,000, a third above.
        Assert.InRange(bids.Count(b => b.Price < 10_000) / (double)bids.Count, 0.32, 0.35);
        Assert.InRange(bids.Count(b => b.Price >= 1_000_000) / (double)bids.Count, 0.32, 0.35);
        Assert.All(bids, b => Assert.InRange(b.Price, 100, 100_000_000));

        Assert.All(auctions, a => Assert.InRange(a.Category, 10, 14));
        Assert.All(auctions, a => Assert.True(a.Expires > a.DateTime && a.Reserve >= a.InitialBid));
        Assert.Equal(6, persons.Select(p => p.State).Distinct().Count());
        Assert.All(persons, p => Assert.Matches(@"^\d{4} \d{4} \d{4} \d{4}$", p.CreditCard));

        // Half the bids are on the four hot channels; nine in ten of the others carry a channel_id in their url.
        Assert.InRange(bids.Count(b => b.Channel is "Google" or "Facebook" or "Baidu" or "Apple") / (double)bids.Count, 0.49, 0.51);
        var other = bids.Where(b => b.Channel.StartsWith("channel-", StringComparison.Ordinal)).ToList();
        Assert.InRange(other.Count(b => b.Url.Contains("&channel_id=", StringComparison.Ordinal)) / (double)other.Count, 0.88, 0.92);

        // Padding brings records to about their average size (bids 100 bytes: 54 to 81 bytes of extra).
        Assert.All(bids, b => Assert.InRange(b.Extra.Length, 54, 81));
    }

    [Fact]
    public void A_bid_is_made_without_allocating()
    {
        var generator = new NexmarkGenerator(Config);
        var sum = 0L;
        for (long id = 4; id < 50_000; id += 50)
        {
            sum += generator.Bid(id).Price; // warm up (the tables are made on first use)
        }

        // The fewest bytes of three passes: the runtime can allocate once on the thread while it compiles the loop anew
        // (a CI run saw 1,168 bytes in one pass); a bid that allocated would show in every pass (184,000 bids each).
        var allocated = long.MaxValue;
        for (var pass = 0; pass < 3; pass++)
        {
            allocated = Math.Min(allocated, AllocatedByBids(generator, ref sum));
        }

        Assert.True(sum > 0);
        Assert.True(allocated < 1_000, $"{allocated} bytes allocated for 184,000 bids");
    }

    private static long AllocatedByBids(NexmarkGenerator generator, ref long sum)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (long id = 0; id < 200_000; id++)
        {
            if (NexmarkGenerator.KindOf(id) == EventKind.Bid)
            {
                sum += generator.Bid(id).Extra.Length;
            }
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
