namespace Compiled.Connectors;

/// <summary>The lookup joins' common settings and their defaults.</summary>
public static class LookupDefaults
{
    /// <summary>Keys a partition's cache holds: 100,000.</summary>
    public const int CacheSize = 100_000;

    /// <summary>How long a cached key is trusted: one minute, so a changed row is seen within a minute.</summary>
    public static readonly TimeSpan TimeToLive = TimeSpan.FromMinutes(1);

    /// <summary>The settings <c>Join</c>, <c>CacheSize</c>, <c>TimeToLive</c> and <c>Routing</c> of <paramref name="lookup"/>.</summary>
    public static IEnumerable<Setting> Settings<TKey, TRow>(ILookup<TKey, TRow> lookup, Action<JoinKind> join, Action<int> cacheSize, Action<TimeSpan> timeToLive, Action<LookupRouting> routing)
        where TKey : notnull
    {
        ArgumentNullException.ThrowIfNull(lookup);
        return
        [
            Setting.Choice("Join", "Inner: drop records without a row; LeftOuter: pass them on alone", () => lookup.Join, join),
            Setting.Number("CacheSize", "Keys each partition's cache holds (0: no cache)", () => lookup.CacheSize, v => cacheSize((int)v), 0, int.MaxValue),
            Setting.Duration("TimeToLive", "How long a cached key is trusted before it is fetched again (0: until it leaves the cache)", () => lookup.TimeToLive, v => timeToLive(v ?? TimeSpan.Zero), zeroAllowed: true),
            Setting.Choice("Routing", "ByKey: records cross a hash exchange, each key is cached by one partition; Local: each partition looks up its own records, no exchange", () => lookup.Routing, routing),
        ];
    }
}
