using Compiled.Connectors;
using Compiled.Runtime;

namespace Compiled.Nexmark.Tests;

/// <summary>
/// Every Nexmark query the engine runs, on 200,000 generated events (20 s of event time at 10,000 events/s: several
/// windows of every size the queries use) at parallelism 2, against the naive LINQ reference of its SQL. The full-size
/// check (≥ 1,000,000 events) is the runner's <c>--verify</c>.
/// </summary>
public sealed class QueryTests : IClassFixture<QueryTests.Data>
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);
    private readonly Data _data;

    public QueryTests(Data data) => _data = data;

    /// <summary>The events, made once for every test.</summary>
    public sealed class Data
    {
        public NexmarkConfig Config { get; } = new() { Events = 200_000, EventsPerSecond = 10_000, Seed = 2026 };

        public List<Person> Persons { get; }

        public List<Auction> Auctions { get; }

        public List<Bid> Bids { get; }

        public Data() => (Persons, Auctions, Bids) = Reference.Events(Config);
    }

    private static PipelineOptions Options => new() { Parallelism = 2 };

    /// <summary>The same rows, as many times each, in any order.</summary>
    private static void Same<T>(IEnumerable<T> expected, IReadOnlyList<T> actual)
    {
        var want = expected.Select(r => r!.ToString()!).Order(StringComparer.Ordinal).ToList();
        var got = actual.Select(r => r!.ToString()!).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(want); // a query that selects nothing here would prove nothing
        Assert.Equal(want.Count, got.Count);
        Assert.Equal(want, got);
    }

    [Fact]
    public async Task Q0_passes_every_bid_through()
    {
        var q = new Q0(_data.Config) { Out = new CollectionSink<Q0Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q0(_data.Bids), ((CollectionSink<Q0Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q1_converts_every_price()
    {
        var q = new Q1(_data.Config) { Out = new CollectionSink<Q1Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q1(_data.Bids), ((CollectionSink<Q1Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q2_selects_the_auctions_divisible_by_123()
    {
        var q = new Q2(_data.Config) { Out = new CollectionSink<Q2Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q2(_data.Bids), ((CollectionSink<Q2Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q3_joins_category_ten_auctions_with_their_far_west_sellers()
    {
        var q = new Q3(_data.Config) { Out = new CollectionSink<Q3Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q3(_data.Auctions, _data.Persons), ((CollectionSink<Q3Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q5_finds_the_hottest_auctions_of_each_sliding_window()
    {
        var q = new Q5(_data.Config) { Out = new CollectionSink<Q5Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q5(_data.Bids), ((CollectionSink<Q5Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q7_finds_the_highest_bids_of_each_window()
    {
        var q = new Q7(_data.Config) { Out = new CollectionSink<Q7Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q7(_data.Bids), ((CollectionSink<Q7Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q8_finds_the_persons_who_sold_in_the_window_they_joined()
    {
        var q = new Q8(_data.Config) { Out = new CollectionSink<Q8Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q8(_data.Persons, _data.Auctions), ((CollectionSink<Q8Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q11_counts_each_bidders_sessions()
    {
        var q = new Q11(_data.Config) { Out = new CollectionSink<Q11Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q11(_data.Bids), ((CollectionSink<Q11Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q12_counts_every_bid_once_in_processing_time_windows()
    {
        var q = new Q12(_data.Config) { Out = new CollectionSink<Q12Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        var rows = ((CollectionSink<Q12Row>)q.Out).Items;
        Assert.All(rows, r => Assert.Equal(10_000, r.WindowEnd - r.WindowStart));
        Assert.Equal(rows.Count, rows.DistinctBy(r => (r.Bidder, r.WindowStart)).Count()); // one row per bidder and window
        var totals = rows.GroupBy(r => r.Bidder).ToDictionary(g => g.Key, g => g.Sum(r => r.BidCount));
        Assert.Equal(Reference.Q12Totals(_data.Bids).OrderBy(p => p.Key), totals.OrderBy(p => p.Key));
    }

    [Fact]
    public async Task Q13_joins_every_bid_with_its_side_input_row()
    {
        var path = Path.Combine(Path.GetTempPath(), $"nexmark-side-{Guid.NewGuid():N}.csv");
        SideInput.WriteDefault(path);
        try
        {
            var q = new Q13(_data.Config, path) { Out = new CollectionSink<Q13Row>() };
            await q.RunAsync(Options).WaitAsync(Patience);
            Same(Reference.Q13(_data.Bids, SideInput.Read(path)), ((CollectionSink<Q13Row>)q.Out).Items);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Q14_converts_filters_labels_and_counts()
    {
        var q = new Q14(_data.Config) { Out = new CollectionSink<Q14Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q14(_data.Bids), ((CollectionSink<Q14Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q17_updates_each_auctions_statistics_with_every_bid()
    {
        var q = new Q17(_data.Config) { Out = new CollectionSink<Q17Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        var rows = ((CollectionSink<Q17Row>)q.Out).Items;
        Assert.Equal(_data.Bids.Count, rows.Count); // one update per bid
        Same(Reference.Q17(_data.Bids), [.. rows.GroupBy(r => (r.Auction, r.Day)).Select(g => g.Last())]);
    }

    [Fact]
    public async Task Q20_expands_bids_with_their_category_ten_auctions()
    {
        var q = new Q20(_data.Config) { Out = new CollectionSink<Q20Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q20(_data.Bids, _data.Auctions), ((CollectionSink<Q20Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q21_adds_the_channel_id()
    {
        var q = new Q21(_data.Config) { Out = new CollectionSink<Q21Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q21(_data.Bids), ((CollectionSink<Q21Row>)q.Out).Items);
    }

    [Fact]
    public async Task Q22_splits_the_url()
    {
        var q = new Q22(_data.Config) { Out = new CollectionSink<Q22Row>() };
        await q.RunAsync(Options).WaitAsync(Patience);
        Same(Reference.Q22(_data.Bids), ((CollectionSink<Q22Row>)q.Out).Items);
    }
}
