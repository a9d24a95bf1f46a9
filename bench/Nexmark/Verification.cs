using Compiled.Connectors;
using Compiled.Runtime;

namespace Compiled.Nexmark;

/// <summary>What a query's check found: the rows it compared, and the first difference from the reference (null: none).</summary>
public sealed record Verdict(string Query, long Rows, string? Difference);

/// <summary>
/// Runs a query's pipeline into memory and compares its rows with <see cref="Reference"/>'s (the same rows, as many
/// times each, in any order): the tests do this on a small run, the runner's <c>--verify</c> on a large one.
/// </summary>
public static class Verification
{
    /// <summary>The queries this checks (every one the engine runs).</summary>
    public static IReadOnlyList<string> Queries { get; } = ["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q11", "q12", "q13", "q14", "q17", "q20", "q21", "q22"];

    /// <summary>Checks <paramref name="query"/> on <paramref name="events"/> (made by <see cref="Reference.Events"/> from the same config).</summary>
    public static async Task<Verdict> RunAsync(string query, NexmarkConfig config, (List<Person> Persons, List<Auction> Auctions, List<Bid> Bids) events, int parallelism, CancellationToken cancellationToken = default)
    {
        var options = new PipelineOptions { Parallelism = parallelism };
        var (persons, auctions, bids) = events;
        switch (query)
        {
            case "q0": return Compare(query, Reference.Q0(bids), await Run(new Q0(config), q => q.Out = new CollectionSink<Q0Row>()));
            case "q1": return Compare(query, Reference.Q1(bids), await Run(new Q1(config), q => q.Out = new CollectionSink<Q1Row>()));
            case "q2": return Compare(query, Reference.Q2(bids), await Run(new Q2(config), q => q.Out = new CollectionSink<Q2Row>()));
            case "q3": return Compare(query, Reference.Q3(auctions, persons), await Run(new Q3(config), q => q.Out = new CollectionSink<Q3Row>()));
            case "q5": return Compare(query, Reference.Q5(bids), await Run(new Q5(config), q => q.Out = new CollectionSink<Q5Row>()));
            case "q7": return Compare(query, Reference.Q7(bids), await Run(new Q7(config), q => q.Out = new CollectionSink<Q7Row>()));
            case "q8": return Compare(query, Reference.Q8(persons, auctions), await Run(new Q8(config), q => q.Out = new CollectionSink<Q8Row>()));
            case "q11": return Compare(query, Reference.Q11(bids), await Run(new Q11(config), q => q.Out = new CollectionSink<Q11Row>()));
            case "q14": return Compare(query, Reference.Q14(bids), await Run(new Q14(config), q => q.Out = new CollectionSink<Q14Row>()));
            case "q20": return Compare(query, Reference.Q20(bids, auctions), await Run(new Q20(config), q => q.Out = new CollectionSink<Q20Row>()));
            case "q21": return Compare(query, Reference.Q21(bids), await Run(new Q21(config), q => q.Out = new CollectionSink<Q21Row>()));
            case "q22": return Compare(query, Reference.Q22(bids), await Run(new Q22(config), q => q.Out = new CollectionSink<Q22Row>()));
            case "q12":
            {
                // The windows follow the wall clock; what does not: one row per bidder and window, each bid counted once.
                var rows = await Run(new Q12(config), q => q.Out = new CollectionSink<Q12Row>());
                var odd = rows.Select(r => r.WindowEnd - r.WindowStart).FirstOrDefault(length => length != 10_000);
                var difference = odd != 0 ? $"a window of {odd} ms"
                    : rows.DistinctBy(r => (r.Bidder, r.WindowStart)).Count() != rows.Count ? "a bidder's window emitted twice"
                    : Different(Reference.Q12Totals(bids).Select(p => $"{p.Key}: {p.Value}"), rows.GroupBy(r => r.Bidder).Select(g => $"{g.Key}: {g.Sum(r => r.BidCount)}"));
                return new Verdict(query, rows.Count, difference);
            }

            case "q13":
            {
                var path = Path.Combine(Path.GetTempPath(), $"nexmark-side-input-{Guid.NewGuid():N}.csv");
                SideInput.WriteDefault(path);
                try
                {
                    return Compare(query, Reference.Q13(bids, SideInput.Read(path)), await Run(new Q13(config, path), q => q.Out = new CollectionSink<Q13Row>()));
                }
                finally
                {
                    File.Delete(path);
                }
            }

            case "q4":
            {
                // An update per (auction, bid) pair; the last one of each category is its final average.
                var rows = await Run(new Q4(config), q => q.Out = new CollectionSink<Q4Row>());
                var (expected, pairs) = Reference.Q4(auctions, bids);
                if (rows.Count != pairs)
                {
                    return new Verdict(query, rows.Count, $"{rows.Count:N0} updates for {pairs:N0} pairs of an auction and a bid while it was open");
                }

                return Compare(query, expected, [.. rows.GroupBy(r => r.Category).Select(g => g.Last())]);
            }

            case "q17":
            {
                // An update per bid; the last one of each (auction, day) is the group's final row.
                var rows = await Run(new Q17(config), q => q.Out = new CollectionSink<Q17Row>());
                if (rows.Count != bids.Count)
                {
                    return new Verdict(query, rows.Count, $"{rows.Count:N0} updates for {bids.Count:N0} bids");
                }

                return Compare(query, Reference.Q17(bids), [.. rows.GroupBy(r => (r.Auction, r.Day)).Select(g => g.Last())]);
            }

            default:
                throw new ArgumentException($"Unknown query '{query}'; the queries are {string.Join(", ", Queries)}.", nameof(query));
        }

        async Task<IReadOnlyList<TRow>> Run<TQuery, TRow>(TQuery pipeline, Func<TQuery, ISink<TRow>> into)
            where TQuery : ICompiledPipeline
        {
            var sink = (CollectionSink<TRow>)into(pipeline);
            await pipeline.CreateJob().RunAsync(options, cancellationToken, default);
            return sink.Items;
        }
    }

    private static Verdict Compare<TRow>(string query, IEnumerable<TRow> expected, IReadOnlyList<TRow> actual)
        => new(query, actual.Count, Different(expected.Select(r => r!.ToString()!), actual.Select(r => r!.ToString()!)));

    /// <summary>The first difference between two multisets of rows (as text), or null.</summary>
    private static string? Different(IEnumerable<string> expected, IEnumerable<string> actual)
    {
        var want = expected.Order(StringComparer.Ordinal).ToList();
        var got = actual.Order(StringComparer.Ordinal).ToList();
        if (want.Count == 0)
        {
            return "the reference selects nothing from these events: the check would prove nothing";
        }

        for (var i = 0; i < Math.Min(want.Count, got.Count); i++)
        {
            if (want[i] != got[i])
            {
                return $"row {i:N0} in order: expected {want[i]}, got {got[i]}";
            }
        }

        return want.Count == got.Count ? null : $"{got.Count:N0} rows, expected {want.Count:N0}";
    }
}
