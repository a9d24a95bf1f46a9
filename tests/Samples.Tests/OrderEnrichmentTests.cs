using System.Globalization;
using System.Text.RegularExpressions;

namespace Compiled.Samples.Tests;

/// <summary>
/// The OrderEnrichment sample's one-command demo: orders and an exchange-rate changelog on the Kafka mock cluster,
/// customers in a throwaway PostgreSQL, a stream–table join and a lookup into an exactly-once table that must equal a
/// SQL JOIN of the inputs.
/// </summary>
[Collection(nameof(SdkBuilds))]
public sealed class OrderEnrichmentTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-enrichment-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task The_demo_prices_every_order_at_the_rate_of_its_time_and_matches_a_sql_join()
    {
        var result = await Processes.DotnetAsync([Repository.SampleDll("OrderEnrichment"), "--demo", "--demo-orders", "8000", "-p", "3"], _work, Timeout);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("demo: produced 8000 orders", result.Error, StringComparison.Ordinal);
        var verdict = Regex.Match(result.Output, @"table enriched_orders matches a SQL JOIN of the inputs: (\d+) orders, each at the rate of its time, (\d+) of unknown customers");
        Assert.True(verdict.Success, result.ToString());
        Assert.Equal(8000, int.Parse(verdict.Groups[1].Value, CultureInfo.InvariantCulture));
        Assert.True(int.Parse(verdict.Groups[2].Value, CultureInfo.InvariantCulture) > 0, "some orders are of customers the CRM does not know");
        Assert.Contains("delivery: exactly-once", result.Error, StringComparison.Ordinal);
        Assert.Matches(@"lookup Customers: [\d,]+ records from the cache, 200 keys fetched in \d+ quer(y|ies)", result.Error);
    }
}
