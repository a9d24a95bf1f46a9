namespace Compiled;

/// <summary>
/// Marks a lookup join: a property or field whose type implements <see cref="ILookup{TKey, TRow}"/> (a
/// <c>SqliteLookup</c>, a <c>PostgresLookup</c>), declared right after the <see cref="KeyByAttribute"/> stage whose
/// key it looks up. Every record is joined with the table rows whose <c>[Key]</c> member equals its key and leaves as
/// <see cref="Joined{TLeft, TRight}"/>: one result per matching row; a record without a row is dropped
/// (<see cref="JoinKind.Inner"/>) or passed on alone (<see cref="JoinKind.LeftOuter"/>). Rows are cached per partition
/// and the keys a batch misses are fetched in one query.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class LookupAttribute : Attribute
{
}

/// <summary>Which records a join emits.</summary>
public enum JoinKind
{
    /// <summary>Only records with a match, once per match (SQL's <c>JOIN</c>).</summary>
    Inner,

    /// <summary>Every record: once per match, or once alone when nothing matches (SQL's <c>LEFT JOIN</c>).</summary>
    LeftOuter,
}

/// <summary>How records reach the partitions of a lookup join.</summary>
public enum LookupRouting
{
    /// <summary>
    /// By key: the <c>[KeyBy]</c> before the lookup is a hash exchange, so each key is looked up and cached by one
    /// partition only — the most distinct keys for a cache of a given size, at the price of moving every record.
    /// </summary>
    ByKey,

    /// <summary>
    /// Where the records are (Flink's default for lookup joins): each partition of the loop before looks up its own
    /// records, with no exchange and no thread hop; a key met by several partitions is fetched and cached by each.
    /// </summary>
    Local,
}

/// <summary>
/// A record joined with what matched it. <see cref="HasRight"/> is false for a left-outer result without a match;
/// <see cref="Right"/> is then <c>default</c>.
/// </summary>
/// <typeparam name="TLeft">The record that was looked up.</typeparam>
/// <typeparam name="TRight">The row it matched.</typeparam>
public readonly record struct Joined<TLeft, TRight>(TLeft Left, TRight? Right, bool HasRight);

/// <summary>
/// A table to look rows up in by key, for a <see cref="LookupAttribute"/> join. Like sources and sinks, a lookup is a
/// configuration object: its constructor opens nothing. The runtime opens it once per run, creates one reader per
/// partition, caches rows per partition (<see cref="CacheSize"/>, <see cref="TimeToLive"/>) and asks a reader only
/// for the keys its cache lacks, all of a batch's at once.
/// </summary>
/// <typeparam name="TKey">The key type; it equals the type of the row's <c>[Key]</c> member.</typeparam>
/// <typeparam name="TRow">The row type: its public fields and properties are the columns read, its <c>[Key]</c> member the column matched.</typeparam>
public interface ILookup<TKey, TRow>
    where TKey : notnull
{
    /// <summary>Inner (default) or left-outer.</summary>
    JoinKind Join { get; }

    /// <summary>How many keys a partition's cache holds at most (keys without a row count too); 0 turns caching off.</summary>
    int CacheSize { get; }

    /// <summary>How long a cached key is trusted before it is fetched again; <see cref="TimeSpan.Zero"/>: until it leaves the cache.</summary>
    TimeSpan TimeToLive { get; }

    /// <summary>How records reach the lookup's partitions: <see cref="LookupRouting.ByKey"/> unless the lookup says otherwise.</summary>
    LookupRouting Routing => LookupRouting.ByKey;

    /// <summary>Opens the table (checks that every column of <typeparamref name="TRow"/> exists), once per run.</summary>
    ValueTask OpenAsync(LookupContext<TRow> context, CancellationToken cancellationToken);

    /// <summary>Creates the reader of partition <paramref name="partition"/>; called after <see cref="OpenAsync"/>.</summary>
    ILookupReader<TKey, TRow> CreateReader(int partition);

    /// <summary>Releases what <see cref="OpenAsync"/> opened; called once, after every reader was disposed.</summary>
    ValueTask CloseAsync(CancellationToken cancellationToken);

    /// <summary>A one-line description for logs and plans, secrets masked.</summary>
    string Describe();
}

/// <summary>One partition's reader of a lookup table: used by one worker at a time.</summary>
public interface ILookupReader<TKey, TRow> : IAsyncDisposable
    where TKey : notnull
{
    /// <summary>
    /// Adds to <paramref name="results"/> every row whose key is one of <paramref name="keys"/> (distinct keys): once per
    /// row, any number of rows per key. Keys without rows are simply not reported. Throws when the table cannot be read.
    /// </summary>
    ValueTask LookupAsync(ReadOnlyMemory<TKey> keys, ILookupResults<TKey, TRow> results, CancellationToken cancellationToken);
}

/// <summary>Where a <see cref="ILookupReader{TKey, TRow}"/> reports the rows it found.</summary>
public interface ILookupResults<TKey, TRow>
    where TKey : notnull
{
    /// <summary>Reports <paramref name="row"/> as a match of <paramref name="key"/>.</summary>
    void Add(TKey key, TRow row);
}

/// <summary>What a lookup is told when the run opens it.</summary>
/// <typeparam name="TRow">The row type.</typeparam>
public sealed class LookupContext<TRow>
{
    /// <summary>Creates a context (the runtime does this).</summary>
    public LookupContext(string pipeline, string name, int partitions, RecordSchema<TRow>? schema)
    {
        Pipeline = pipeline;
        Name = name;
        Partitions = partitions;
        Schema = schema;
    }

    /// <summary>The pipeline's name.</summary>
    public string Pipeline { get; }

    /// <summary>The lookup member's name.</summary>
    public string Name { get; }

    /// <summary>How many readers will be created.</summary>
    public int Partitions { get; }

    /// <summary>The row type's compile-time schema: its columns, the <c>[Key]</c> one, and how to build a row (<see cref="RecordSchema{T}.Create"/>).</summary>
    public RecordSchema<TRow>? Schema { get; }

    /// <summary>
    /// Writes a warning to the run's log, naming the pipeline and the lookup: for a failure that is being retried, say.
    /// Null outside a run.
    /// </summary>
    public Action<string>? Warn { get; init; }
}
