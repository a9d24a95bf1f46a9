using System.Globalization;
using System.Text.RegularExpressions;

namespace Compiled.Samples.Tests;

/// <summary>The CdcToLake sample's one-command demo: a throwaway PostgreSQL under a write load, captured into a lake and a replica.</summary>
[Collection(nameof(SdkBuilds))]
public sealed partial class CdcToLakeTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-cdc-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task The_demo_ends_with_the_replica_equal_to_the_table_and_duckdb_reading_the_lake()
    {
        var result = await Processes.DotnetAsync([Repository.SampleDll("CdcToLake"), "--demo", "--demo-transactions", "500"], _work, Timeout);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Matches(ReplicaEqual(), result.Output);

        // DuckDB's counts per change kind: the 50 000 seeded rows (less the few deleted before the snapshot read them)
        // as snapshot rows, then the 500 transactions' inserts (one each) and updates.
        var counts = Counts().Matches(result.Output).ToDictionary(m => m.Groups["op"].Value, m => long.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture));
        Assert.InRange(counts.GetValueOrDefault("Snapshot"), 49_800, 50_500);
        Assert.InRange(counts.GetValueOrDefault("Insert"), 1, 500);
        Assert.True(counts.GetValueOrDefault("UpdateAfter") > 0, result.ToString());
        Assert.True(File.Exists(Path.Combine(_work, "lake", "_compiled", "orders-cdc-lake", "positions", "Orders", "cdc-wal-0")), "the lake stores its positions");
    }

    [GeneratedRegex(@"replica equals the source: \d+ rows")]
    private static partial Regex ReplicaEqual();

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}\s+(?<op>\w+)\s+(?<n>\d+)$", RegexOptions.Multiline)]
    private static partial Regex Counts();
}
