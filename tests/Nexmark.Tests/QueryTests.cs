namespace Compiled.Nexmark.Tests;

/// <summary>
/// Every Nexmark query the engine runs, on 200,000 generated events (20 s of event time at 10,000 events/s: several
/// windows of every size the queries use), against the naive LINQ reference of its SQL — at parallelism 2, and at 1
/// for the queries with keyed stages (the results must not depend on it). The full-size check (≥ 1,000,000 events) is
/// the runner's <c>--verify</c>.
/// </summary>
public sealed class QueryTests(QueryTests.Data data) : IClassFixture<QueryTests.Data>
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    /// <summary>The events, made once for every test.</summary>
    public sealed class Data
    {
        public NexmarkConfig Config { get; } = new() { Events = 200_000, EventsPerSecond = 10_000, Seed = 2026 };

        public (List<Person> Persons, List<Auction> Auctions, List<Bid> Bids) Events { get; }

        public Data() => Events = Reference.Events(Config);
    }

    public static TheoryData<string> Queries => [.. Verification.Queries];

    public static TheoryData<string> KeyedQueries => ["q3", "q4", "q5", "q7", "q8", "q11", "q17", "q20"];

    [Theory]
    [MemberData(nameof(Queries))]
    public async Task A_query_emits_what_its_SQL_selects_at_parallelism_2(string query)
    {
        var verdict = await Verification.RunAsync(query, data.Config, data.Events, parallelism: 2).WaitAsync(Patience);
        Assert.Null(verdict.Difference);
        Assert.True(verdict.Rows > 0);
    }

    [Theory]
    [MemberData(nameof(KeyedQueries))]
    public async Task A_keyed_query_emits_the_same_at_parallelism_1(string query)
    {
        var verdict = await Verification.RunAsync(query, data.Config, data.Events, parallelism: 1).WaitAsync(Patience);
        Assert.Null(verdict.Difference);
    }
}
