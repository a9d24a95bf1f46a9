using System.Text.RegularExpressions;
using Compiled.Bench;

namespace Compiled.Nexmark;

// The Nexmark queries as Compiled pipelines, each beside the SQL it comes from (nexmark/nexmark's nexmark-flink
// queries). Sources and sinks are settable: the runner reads a generator into a blackhole, the tests into memory.
// Event-time stages hold the watermark NexmarkConfig.WatermarkDelay (4 s) behind the newest event, as the benchmark's
// table definition does (WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND).

/// <summary>What the queries share.</summary>
public static class Queries
{
    /// <summary>The price in dollars as SQL's <c>0.908 * price</c> (a DECIMAL).</summary>
    public static decimal Dollars(long price) => 0.908m * price;
}

/// <summary>q0 — pass through: <c>SELECT auction, bidder, price, dateTime, extra FROM bid</c>.</summary>
[Pipeline(Name = "nexmark-q0")]
public sealed partial class Q0(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [Transform] static Q0Row Select(Bid b) => new(b.Auction, b.Bidder, b.Price, b.DateTime, b.Extra);

    [Sink] public ISink<Q0Row> Out { get; set; } = new CountSink<Q0Row>();
}

/// <summary>A row of q0.</summary>
public readonly record struct Q0Row(long Auction, long Bidder, long Price, long DateTime, Utf8Text Extra);

/// <summary>q1 — currency conversion: <c>SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid</c>.</summary>
[Pipeline(Name = "nexmark-q1")]
public sealed partial class Q1(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [Transform] static Q1Row Euros(Bid b) => new(b.Auction, b.Bidder, Queries.Dollars(b.Price), b.DateTime, b.Extra);

    [Sink] public ISink<Q1Row> Out { get; set; } = new CountSink<Q1Row>();
}

/// <summary>A row of q1.</summary>
public readonly record struct Q1Row(long Auction, long Bidder, decimal Price, long DateTime, Utf8Text Extra);

/// <summary>q2 — selection: <c>SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0</c>.</summary>
[Pipeline(Name = "nexmark-q2")]
public sealed partial class Q2(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [Transform] static bool Selected(Bid b) => b.Auction % 123 == 0;

    [Transform] static Q2Row Select(Bid b) => new(b.Auction, b.Price);

    [Sink] public ISink<Q2Row> Out { get; set; } = new CountSink<Q2Row>();
}

/// <summary>A row of q2.</summary>
public readonly record struct Q2Row(long Auction, long Price);

/// <summary>
/// q3 — local item suggestion: <c>SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P on
/// A.seller = P.id WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')</c>.
/// </summary>
/// <remarks>
/// SQL's join is unbounded (both sides kept for ever). Here it is an interval join whose bounds hold every pair the
/// generator can make — a seller is one of the last 1,000 persons or one of the next 10 — so the results are the
/// regular join's (the tests compare them with one) with state bounded by time.
/// </remarks>
[Pipeline(Name = "nexmark-q3")]
public sealed partial class Q3(NexmarkConfig config)
{
    [Source] public ISource<Auction> Auctions { get; set; } = Nexmark.Auctions(config, EventKind.Bid);

    [Transform] static bool CategoryTen(Auction a) => a.Category == 10;

    [KeyBy] static long Seller(Auction a) => a.Seller;

    [Source] public ISource<Person> Persons { get; set; } = Nexmark.Persons(config);

    [Transform] static bool InOregonIdahoOrCalifornia(Person p) => p.State is "OR" or "ID" or "CA";

    [KeyBy] static long Id(Person p) => p.Id;

    [Join] public JoinSpec<Auction, Person> Sellers { get; set; } = Join.Interval<Auction, Person>(-Horizon.Persons(config), Horizon.Ahead(config)) with { OutOfOrderness = config.WatermarkDelay };

    [Transform] static Q3Row Select(Joined<Auction, Person> j) => new(j.Right.Name, j.Right.City, j.Right.State, j.Left.Id);

    [Sink] public ISink<Q3Row> Out { get; set; } = new CountSink<Q3Row>();
}

/// <summary>A row of q3.</summary>
public readonly record struct Q3Row(string Name, string City, string State, long Id);

/// <summary>
/// q4 — average price for a category: the average, per category, of the winning (highest) bid of each auction among
/// the bids made while it was open.
/// <code>
/// SELECT Q.category, AVG(Q.final) FROM (
///   SELECT MAX(B.price) AS final, A.category FROM auction A, bid B
///   WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
///   GROUP BY A.id, A.category) Q
/// GROUP BY Q.category
/// </code>
/// An interval join of auctions and their bids bounded by the longest auction the generator makes, a filter on each
/// auction's own expiry, then a running aggregate per category that keeps each auction's highest bid and replaces it in
/// the sum when a higher one comes (what Flink does by retracting the old maximum): one updated row per pair, as
/// Flink's updating GROUP BY emits.
/// </summary>
[Pipeline(Name = "nexmark-q4")]
public sealed partial class Q4(NexmarkConfig config)
{
    [Source] public ISource<Auction> Auctions { get; set; } = Nexmark.Auctions(config, EventKind.Person);

    [KeyBy] static long Id(Auction a) => a.Id;

    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config);

    [KeyBy] static long Auction(Bid b) => b.Auction;

    [Join] public JoinSpec<Auction, Bid> WhileOpen { get; set; } = Join.Interval<Auction, Bid>(TimeSpan.Zero, Horizon.AuctionLength(config)) with { OutOfOrderness = config.WatermarkDelay };

    [Transform] static bool BeforeExpiry(Joined<Auction, Bid> j) => j.Right.DateTime <= j.Left.Expires;

    [Transform] static AuctionBid Price(Joined<Auction, Bid> j) => new(j.Left.Id, j.Left.Category, j.Right.Price, j.Left.DateTime);

    [KeyBy] static long Category(AuctionBid b) => b.Category;

    [Window] WindowSpec<AuctionBid, AverageOfWinningBids> Average { get; } = new(Window.Running());

    [Transform] static Q4Row Select(WindowResult<long, WinningBids> r) => new(r.Key, r.Value.Sum / r.Value.Auctions.Count);

    [Sink] public ISink<Q4Row> Out { get; set; } = new CountSink<Q4Row>();
}

/// <summary>A bid for an auction while it was open (q4).</summary>
public readonly record struct AuctionBid(long Auction, long Category, long Price, [property: EventTime] long Time);

/// <summary>Each auction's highest bid so far, and their sum.</summary>
public sealed class WinningBids
{
    public Dictionary<long, long> Auctions { get; } = [];

    public long Sum { get; set; }
}

/// <summary>Keeps each auction's highest bid and the sum of those (the running form of AVG(MAX(price)) per category).</summary>
public readonly struct AverageOfWinningBids : IAggregator<AuctionBid, WinningBids, WinningBids>
{
    public static void Add(ref WinningBids acc, in AuctionBid b)
    {
        acc ??= new WinningBids();
        if (!acc.Auctions.TryGetValue(b.Auction, out var highest))
        {
            acc.Auctions[b.Auction] = b.Price;
            acc.Sum += b.Price;
        }
        else if (b.Price > highest)
        {
            acc.Auctions[b.Auction] = b.Price;
            acc.Sum += b.Price - highest;
        }
    }

    public static void Merge(ref WinningBids acc, in WinningBids other)
    {
        foreach (var (auction, price) in other.Auctions)
        {
            Add(ref acc, new AuctionBid(auction, 0, price, 0));
        }
    }

    public static WinningBids Result(in WinningBids acc) => acc;
}

/// <summary>A row of q4 (SQL's AVG of a BIGINT is a BIGINT, truncated).</summary>
public readonly record struct Q4Row(long Category, long Average);

/// <summary>
/// q5 — hot items: the auctions with the most bids in each 10-second window sliding every 2 seconds.
/// <code>
/// SELECT AuctionBids.auction, AuctionBids.num FROM (
///   SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
///   FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
///   GROUP BY auction, window_start, window_end) AS AuctionBids
/// JOIN (SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime FROM (…the same counts…) AS CountBids
///   GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids
/// ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime AND AuctionBids.num >= MaxBids.maxn
/// </code>
/// The join of the counts with their window's maximum is a second window over the counts, keyed by window, that keeps
/// the auctions at the maximum.
/// </summary>
[Pipeline(Name = "nexmark-q5")]
public sealed partial class Q5(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [KeyBy] static long Auction(Bid b) => b.Auction;

    [Window] WindowSpec<Bid, Count<Bid>> BidsPerAuction { get; } = new(Window.Sliding(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(2))) { OutOfOrderness = config.WatermarkDelay };

    [Transform] static AuctionCount Counted(WindowResult<long, long> r) => new(r.Key, r.Value, r.Start, r.End - 1);

    [KeyBy] static long WindowOf(AuctionCount c) => c.Start;

    // Each sliding window's counts carry its last instant, so they fall into one 2-second tumbling window of their own.
    [Window] WindowSpec<AuctionCount, MostBids> Hottest { get; } = new(Window.Tumbling(TimeSpan.FromSeconds(2)));

    [Transform]
    static void Hot(WindowResult<long, Leaders> r, Emitter<Q5Row> output)
    {
        foreach (var auction in r.Value.Auctions)
        {
            output.Emit(new Q5Row(auction, r.Value.Count));
        }
    }

    [Sink] public ISink<Q5Row> Out { get; set; } = new CountSink<Q5Row>();
}

/// <summary>An auction's bid count in one window (q5), timed at the window's last instant.</summary>
public readonly record struct AuctionCount(long Auction, long Count, long Start, [property: EventTime] long Time);

/// <summary>The auctions with the most bids in a window, and that many.</summary>
public record struct Leaders(long Count, List<long> Auctions);

/// <summary>Keeps the auctions whose count is the window's highest (ties all kept).</summary>
public readonly struct MostBids : IAggregator<AuctionCount, Leaders, Leaders>
{
    public static void Add(ref Leaders acc, in AuctionCount c)
    {
        if (acc.Auctions is null || c.Count > acc.Count)
        {
            acc = new Leaders(c.Count, [c.Auction]);
        }
        else if (c.Count == acc.Count)
        {
            acc.Auctions.Add(c.Auction);
        }
    }

    public static void Merge(ref Leaders acc, in Leaders other)
    {
        foreach (var auction in other.Auctions ?? [])
        {
            Add(ref acc, new AuctionCount(auction, other.Count, 0, 0));
        }
    }

    public static Leaders Result(in Leaders acc) => acc;
}

/// <summary>A row of q5.</summary>
public readonly record struct Q5Row(long Auction, long Num);

/// <summary>
/// q7 — highest bid: the bids at the highest price of each 10-second tumbling window.
/// <code>
/// SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra FROM bid B
/// JOIN (SELECT MAX(price) AS maxprice, window_end AS dateTime
///       FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) GROUP BY window_start, window_end) B1
/// ON B.price = B1.maxprice WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime
/// </code>
/// The join of each bid with its window's maximum is one window whose accumulator keeps the bids at the maximum. (SQL's
/// BETWEEN also includes a bid at the very end instant, which belongs to the next window: one at exactly the previous
/// window's maximum price would be a second match there; the generated data has none, as the tests check.)
/// </summary>
[Pipeline(Name = "nexmark-q7")]
public sealed partial class Q7(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [KeyBy] static long TenSeconds(Bid b) => b.DateTime / 10_000;

    [Window] WindowSpec<Bid, HighestBids> Highest { get; } = new(Window.Tumbling(TimeSpan.FromSeconds(10))) { OutOfOrderness = config.WatermarkDelay };

    [Transform]
    static void Winners(WindowResult<long, List<Bid>> r, Emitter<Q7Row> output)
    {
        foreach (var b in r.Value)
        {
            output.Emit(new Q7Row(b.Auction, b.Price, b.Bidder, b.DateTime, b.Extra));
        }
    }

    [Sink] public ISink<Q7Row> Out { get; set; } = new CountSink<Q7Row>();
}

/// <summary>Keeps the bids at the highest price seen (ties all kept).</summary>
public readonly struct HighestBids : IAggregator<Bid, List<Bid>, List<Bid>>
{
    public static void Add(ref List<Bid> acc, in Bid b)
    {
        if (acc is null || acc.Count == 0 || b.Price > acc[0].Price)
        {
            acc ??= [];
            acc.Clear();
            acc.Add(b);
        }
        else if (b.Price == acc[0].Price)
        {
            acc.Add(b);
        }
    }

    public static void Merge(ref List<Bid> acc, in List<Bid> other)
    {
        acc = acc is null ? [] : [.. acc]; // a copy: a sliding window's panes share theirs
        foreach (var b in other ?? [])
        {
            Add(ref acc, b);
        }
    }

    public static List<Bid> Result(in List<Bid> acc) => acc;
}

/// <summary>A row of q7.</summary>
public readonly record struct Q7Row(long Auction, long Price, long Bidder, long DateTime, Utf8Text Extra);

/// <summary>
/// q8 — monitor new users: persons who opened an auction in the 10-second window in which they registered.
/// <code>
/// SELECT P.id, P.name, P.starttime FROM
///   (SELECT id, name, window_start AS starttime, window_end AS endtime FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
///    GROUP BY id, name, window_start, window_end) P
/// JOIN
///   (SELECT seller, window_start AS starttime, window_end AS endtime FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
///    GROUP BY seller, window_start, window_end) A
/// ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime
/// </code>
/// A window join, then one row per person and window (SQL's GROUP BY on each side makes the pairs distinct).
/// </summary>
[Pipeline(Name = "nexmark-q8")]
public sealed partial class Q8(NexmarkConfig config)
{
    [Source] public ISource<Person> Persons { get; set; } = Nexmark.Persons(config, EventKind.Bid);

    [KeyBy] static long Id(Person p) => p.Id;

    [Source] public ISource<Auction> Auctions { get; set; } = Nexmark.Auctions(config);

    [KeyBy] static long Seller(Auction a) => a.Seller;

    [Join] JoinSpec<Person, Auction> NewSellers { get; } = Join.Windowed<Person, Auction>(Window.Tumbling(TimeSpan.FromSeconds(10))) with { OutOfOrderness = config.WatermarkDelay };

    [KeyBy] static long Distinct(Joined<Person, Auction> j) => j.Left.Id;

    [Window] WindowSpec<Joined<Person, Auction>, FirstName> Once { get; } = new(Window.Tumbling(TimeSpan.FromSeconds(10)));

    [Transform] static Q8Row Select(WindowResult<long, string> r) => new(r.Key, r.Value, r.Start);

    [Sink] public ISink<Q8Row> Out { get; set; } = new CountSink<Q8Row>();
}

/// <summary>The name of the person in a window's pairs (one person per key).</summary>
public readonly struct FirstName : IAggregator<Joined<Person, Auction>, string, string>
{
    public static void Add(ref string acc, in Joined<Person, Auction> j) => acc ??= j.Left.Name;

    public static void Merge(ref string acc, in string other) => acc ??= other;

    public static string Result(in string acc) => acc;
}

/// <summary>A row of q8.</summary>
public readonly record struct Q8Row(long Id, string Name, long StartTime);

/// <summary>
/// q11 — user sessions: bids per bidder in sessions of activity that end after 10 seconds without a bid.
/// <code>
/// SELECT B.bidder, count(*) AS bid_count, SESSION_START(B.dateTime, INTERVAL '10' SECOND) AS starttime,
///        SESSION_END(B.dateTime, INTERVAL '10' SECOND) AS endtime
/// FROM bid B GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND)
/// </code>
/// </summary>
[Pipeline(Name = "nexmark-q11")]
public sealed partial class Q11(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [KeyBy] static long Bidder(Bid b) => b.Bidder;

    [Window] WindowSpec<Bid, Count<Bid>> Sessions { get; } = new(Window.Session(TimeSpan.FromSeconds(10))) { OutOfOrderness = config.WatermarkDelay };

    [Transform] static Q11Row Select(WindowResult<long, long> r) => new(r.Key, r.Value, r.Start, r.End);

    [Sink] public ISink<Q11Row> Out { get; set; } = new CountSink<Q11Row>();
}

/// <summary>A row of q11.</summary>
public readonly record struct Q11Row(long Bidder, long BidCount, long StartTime, long EndTime);

/// <summary>
/// q12 — processing-time windows: bids per bidder in 10-second windows of the wall clock.
/// <code>
/// SELECT B.bidder, count(*) AS bid_count, window_start, window_end
/// FROM TABLE(TUMBLE(TABLE (SELECT *, PROCTIME() AS p_time FROM bid) B, DESCRIPTOR(p_time), INTERVAL '10' SECOND))
/// GROUP BY B.bidder, window_start, window_end
/// </code>
/// </summary>
[Pipeline(Name = "nexmark-q12")]
public sealed partial class Q12(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [KeyBy] static long Bidder(Bid b) => b.Bidder;

    [Window] WindowSpec<Bid, Count<Bid>> TenSeconds { get; } = new(Window.Tumbling(TimeSpan.FromSeconds(10))) { Time = TimeMode.Processing };

    [Transform] static Q12Row Select(WindowResult<long, long> r) => new(r.Key, r.Value, r.Start, r.End);

    [Sink] public ISink<Q12Row> Out { get; set; } = new CountSink<Q12Row>();
}

/// <summary>A row of q12.</summary>
public readonly record struct Q12Row(long Bidder, long BidCount, long WindowStart, long WindowEnd);

/// <summary>
/// q13 — bounded side input join: each bid with its row of a side table read from a file.
/// <code>
/// SELECT B.auction, B.bidder, B.price, B.dateTime, S.value
/// FROM (SELECT *, PROCTIME() as p_time FROM bid) B
/// JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S ON mod(B.auction, 10000) = S.key
/// </code>
/// </summary>
[Pipeline(Name = "nexmark-q13")]
public sealed partial class Q13(NexmarkConfig config, string sideInput)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [KeyBy] static long SideKey(Bid b) => b.Auction % 10_000;

    [Lookup] public SideInput Side { get; set; } = new(sideInput);

    [Transform] static Q13Row Select(Joined<Bid, SideRow> j) => new(j.Left.Auction, j.Left.Bidder, j.Left.Price, j.Left.DateTime, j.Right!.Value);

    [Sink] public ISink<Q13Row> Out { get; set; } = new CountSink<Q13Row>();
}

/// <summary>A row of q13.</summary>
public readonly record struct Q13Row(long Auction, long Bidder, long Price, long DateTime, string Value);

/// <summary>
/// q14 — calculation: bids converted, filtered by value, labelled by the time of day, with a scalar function.
/// <code>
/// SELECT auction, bidder, 0.908 * price as price,
///   CASE WHEN HOUR(dateTime) &gt;= 8 AND HOUR(dateTime) &lt;= 18 THEN 'dayTime'
///        WHEN HOUR(dateTime) &lt;= 6 OR HOUR(dateTime) &gt;= 20 THEN 'nightTime' ELSE 'otherTime' END AS bidTimeType,
///   dateTime, extra, count_char(extra, 'c') AS c_counts
/// FROM bid WHERE 0.908 * price &gt; 1000000 AND 0.908 * price &lt; 50000000
/// </code>
/// </summary>
[Pipeline(Name = "nexmark-q14")]
public sealed partial class Q14(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [Transform] static bool InRange(Bid b) => Queries.Dollars(b.Price) is > 1_000_000m and < 50_000_000m;

    [Transform] static Q14Row Calculate(Bid b) => new(b.Auction, b.Bidder, Queries.Dollars(b.Price), TimeOfDay(b.DateTime), b.DateTime, b.Extra, CountChar(b.Extra, (byte)'c'));

    /// <summary>The benchmark's <c>count_char</c>: how many bytes of <paramref name="text"/> are <paramref name="c"/>.</summary>
    public static long CountChar(Utf8Text text, byte c) => text.Span.Count(c);

    /// <summary>'dayTime' from 8:00 to 18:59, 'nightTime' to 6:59 and from 20:00, 'otherTime' between (UTC hours).</summary>
    public static string TimeOfDay(long time)
    {
        var hour = (int)(time / 3_600_000 % 24);
        return hour is >= 8 and <= 18 ? "dayTime" : hour is <= 6 or >= 20 ? "nightTime" : "otherTime";
    }

    [Sink] public ISink<Q14Row> Out { get; set; } = new CountSink<Q14Row>();
}

/// <summary>A row of q14.</summary>
public readonly record struct Q14Row(long Auction, long Bidder, decimal Price, string BidTimeType, long DateTime, Utf8Text Extra, long CCounts);

/// <summary>
/// q17 — auction statistics: per auction and day, counts by price band and price statistics, updated with every bid.
/// <code>
/// SELECT auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd') as day, count(*) AS total_bids,
///   count(*) filter (where price &lt; 10000) AS rank1_bids,
///   count(*) filter (where price &gt;= 10000 and price &lt; 1000000) AS rank2_bids,
///   count(*) filter (where price &gt;= 1000000) AS rank3_bids,
///   min(price) AS min_price, max(price) AS max_price, avg(price) AS avg_price, sum(price) AS sum_price
/// FROM bid GROUP BY auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd')
/// </code>
/// A running aggregate: like Flink's unbounded GROUP BY, every bid updates its group and emits the new row.
/// </summary>
[Pipeline(Name = "nexmark-q17")]
public sealed partial class Q17(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [KeyBy] static (long Auction, long Day) AuctionDay(Bid b) => (b.Auction, b.DateTime / 86_400_000);

    [Window] WindowSpec<Bid, AuctionStatistics> Statistics { get; } = new(Window.Running());

    [Transform]
    static Q17Row Select(WindowResult<(long Auction, long Day), PriceStatistics> r)
        => new(r.Key.Auction, DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + (int)r.Key.Day), r.Value.Total, r.Value.Rank1, r.Value.Rank2, r.Value.Rank3, r.Value.Min, r.Value.Max, r.Value.Sum / r.Value.Total, r.Value.Sum);

    [Sink] public ISink<Q17Row> Out { get; set; } = new CountSink<Q17Row>();
}

/// <summary>q17's aggregate of an auction's bids in a day.</summary>
public record struct PriceStatistics(long Total, long Rank1, long Rank2, long Rank3, long Min, long Max, long Sum);

/// <summary>Counts bids by price band (below $100, below $10,000, above) and keeps min, max and sum of the prices.</summary>
public readonly struct AuctionStatistics : IAggregator<Bid, PriceStatistics, PriceStatistics>
{
    public static void Add(ref PriceStatistics acc, in Bid b)
    {
        acc.Min = acc.Total == 0 ? b.Price : Math.Min(acc.Min, b.Price);
        acc.Max = acc.Total == 0 ? b.Price : Math.Max(acc.Max, b.Price);
        acc.Total++;
        acc.Sum += b.Price;
        if (b.Price < 10_000)
        {
            acc.Rank1++;
        }
        else if (b.Price < 1_000_000)
        {
            acc.Rank2++;
        }
        else
        {
            acc.Rank3++;
        }
    }

    public static void Merge(ref PriceStatistics acc, in PriceStatistics other)
    {
        if (other.Total == 0)
        {
            return;
        }

        acc.Min = acc.Total == 0 ? other.Min : Math.Min(acc.Min, other.Min);
        acc.Max = acc.Total == 0 ? other.Max : Math.Max(acc.Max, other.Max);
        acc.Total += other.Total;
        acc.Sum += other.Sum;
        acc.Rank1 += other.Rank1;
        acc.Rank2 += other.Rank2;
        acc.Rank3 += other.Rank3;
    }

    public static PriceStatistics Result(in PriceStatistics acc) => acc;
}

/// <summary>A row of q17 (avg_price is SQL's integer average of a BIGINT).</summary>
public readonly record struct Q17Row(long Auction, DateOnly Day, long TotalBids, long Rank1Bids, long Rank2Bids, long Rank3Bids, long MinPrice, long MaxPrice, long AvgPrice, long SumPrice);

/// <summary>
/// q20 — expand bid with auction: <c>SELECT auction, bidder, price, channel, url, B.dateTime, B.extra, itemName,
/// description, initialBid, reserve, A.dateTime, expires, seller, category, A.extra FROM bid AS B INNER JOIN auction AS A
/// on B.auction = A.id WHERE A.category = 10</c>.
/// </summary>
/// <remarks>
/// SQL's join is unbounded. Here it is an interval join whose bounds hold every pair the generator can make (a bid is
/// for one of the last 100 or so auctions or one of the next 10), so the results are the regular join's (the tests
/// compare them with one) with state bounded by time.
/// </remarks>
[Pipeline(Name = "nexmark-q20")]
public sealed partial class Q20(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person);

    [KeyBy] static long Auction(Bid b) => b.Auction;

    [Source] public ISource<Auction> Auctions { get; set; } = Nexmark.Auctions(config);

    [Transform] static bool CategoryTen(Auction a) => a.Category == 10;

    [KeyBy] static long Id(Auction a) => a.Id;

    [Join] public JoinSpec<Bid, Auction> Expanded { get; set; } = Join.Interval<Bid, Auction>(-Horizon.Auctions(config), Horizon.Ahead(config)) with { OutOfOrderness = config.WatermarkDelay };

    [Transform]
    static Q20Row Select(Joined<Bid, Auction> j)
    {
        var (b, a) = (j.Left, j.Right);
        return new(b.Auction, b.Bidder, b.Price, b.Channel, b.Url, b.DateTime, b.Extra, a.ItemName, a.Description, a.InitialBid, a.Reserve, a.DateTime, a.Expires, a.Seller, a.Category, a.Extra);
    }

    [Sink] public ISink<Q20Row> Out { get; set; } = new CountSink<Q20Row>();
}

/// <summary>A row of q20.</summary>
public readonly record struct Q20Row(long Auction, long Bidder, long Price, string Channel, string Url, long DateTime, Utf8Text Extra, string ItemName, string Description, long InitialBid, long Reserve, long AuctionDateTime, long Expires, long Seller, long Category, Utf8Text AuctionExtra);

/// <summary>
/// q21 — add channel id: <c>SELECT auction, bidder, price, channel, CASE WHEN lower(channel) = 'apple' THEN '0' WHEN
/// lower(channel) = 'google' THEN '1' WHEN lower(channel) = 'facebook' THEN '2' WHEN lower(channel) = 'baidu' THEN '3'
/// ELSE REGEXP_EXTRACT(url, '(&amp;|^)channel_id=([^&amp;]*)', 2) END AS channel_id FROM bid WHERE
/// REGEXP_EXTRACT(url, '(&amp;|^)channel_id=([^&amp;]*)', 2) is not null or lower(channel) in ('apple', 'google',
/// 'facebook', 'baidu')</c>.
/// </summary>
[Pipeline(Name = "nexmark-q21")]
public sealed partial class Q21(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [Transform]
    static void WithChannelId(Bid b, Emitter<Q21Row> output)
    {
        var id = KnownChannel(b.Channel);
        if (id is null && ChannelIdPattern.ChannelId().Match(b.Url) is { Success: true } match)
        {
            id = match.Groups[2].Value;
        }

        if (id is not null)
        {
            output.Emit(new Q21Row(b.Auction, b.Bidder, b.Price, b.Channel, id));
        }
    }

    /// <summary>The id of one of the four named channels (any case), else null.</summary>
    public static string? KnownChannel(string channel)
        => channel.Equals("apple", StringComparison.OrdinalIgnoreCase) ? "0"
            : channel.Equals("google", StringComparison.OrdinalIgnoreCase) ? "1"
            : channel.Equals("facebook", StringComparison.OrdinalIgnoreCase) ? "2"
            : channel.Equals("baidu", StringComparison.OrdinalIgnoreCase) ? "3"
            : null;

    [Sink] public ISink<Q21Row> Out { get; set; } = new CountSink<Q21Row>();
}

/// <summary>q21's pattern.</summary>
public static partial class ChannelIdPattern
{
    /// <summary><c>(&amp;|^)channel_id=([^&amp;]*)</c>.</summary>
    [GeneratedRegex("(&|^)channel_id=([^&]*)", RegexOptions.CultureInvariant)]
    public static partial Regex ChannelId();
}

/// <summary>A row of q21.</summary>
public readonly record struct Q21Row(long Auction, long Bidder, long Price, string Channel, string ChannelId);

/// <summary>
/// q22 — get URL directories: <c>SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) as dir1,
/// SPLIT_INDEX(url, '/', 4) as dir2, SPLIT_INDEX(url, '/', 5) as dir3 FROM bid</c>.
/// </summary>
[Pipeline(Name = "nexmark-q22")]
public sealed partial class Q22(NexmarkConfig config)
{
    [Source] public ISource<Bid> Bids { get; set; } = Nexmark.Bids(config, EventKind.Person, EventKind.Auction);

    [Transform]
    static Q22Row Directories(Bid b)
    {
        var parts = b.Url.Split('/');
        return new(b.Auction, b.Bidder, b.Price, b.Channel, Part(parts, 3), Part(parts, 4), Part(parts, 5));
    }

    private static string? Part(string[] parts, int index) => index < parts.Length ? parts[index] : null;

    [Sink] public ISink<Q22Row> Out { get; set; } = new CountSink<Q22Row>();
}

/// <summary>A row of q22.</summary>
public readonly record struct Q22Row(long Auction, long Bidder, long Price, string Channel, string? Dir1, string? Dir2, string? Dir3);

/// <summary>How far apart in event time two events that refer to each other can be (the joins' bounds).</summary>
public static class Horizon
{
    /// <summary>How far back a seller or bidder can be: the last 1,000 persons (one per 50 events), and a margin.</summary>
    public static TimeSpan Persons(NexmarkConfig config) => Span(config, (1_000 + 10) * NexmarkGenerator.Round);

    /// <summary>How far back an auction a bid is for can be: the last 100 auctions or the hot one (three per 50 events), and a margin.</summary>
    public static TimeSpan Auctions(NexmarkConfig config) => Span(config, (200 + 10) * NexmarkGenerator.Round / 3);

    /// <summary>How long an auction can last: up to twice the time the next 1,666 events take (a margin added).</summary>
    public static TimeSpan AuctionLength(NexmarkConfig config) => 2 * Span(config, 1_700) + TimeSpan.FromMilliseconds(1);

    /// <summary>How far ahead a person or an auction referred to can be: the next 10, and a margin.</summary>
    public static TimeSpan Ahead(NexmarkConfig config) => Span(config, 20 * NexmarkGenerator.Round);

    private static TimeSpan Span(NexmarkConfig config, long events) => TimeSpan.FromMilliseconds(Math.Ceiling(events * 1000.0 / config.EventsPerSecond) + 1);
}
