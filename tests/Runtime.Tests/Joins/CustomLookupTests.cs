using Compiled.Connectors;
using Compiled.Testing;

namespace Compiled.Runtime.Tests.Joins;

public sealed record Tag([property: Key] int Id, string Name);

public readonly record struct Tagged(int Id, string? Tag);

/// <summary>
/// A lookup of one's own over a Dictionary, as the connector guide describes; <see cref="Misbehave"/> makes its reader
/// break the contract in one of the ways the runtime must name.
/// </summary>
public sealed class DictionaryLookup(Dictionary<int, string> rows) : Compiled.ILookup<int, Tag>
{
    private Dictionary<int, string> Rows { get; } = rows;

    public int Calls { get; private set; }

    public string Misbehave { get; set; } = "";

    public JoinKind Join { get; set; } = JoinKind.LeftOuter;

    public int CacheSize { get; set; } = 1000;

    public TimeSpan TimeToLive { get; set; }

    public ValueTask OpenAsync(LookupContext<Tag> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ILookupReader<int, Tag> CreateReader(int partition) => new Reader(this);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public string Describe() => "a dictionary";

    private sealed class Reader(DictionaryLookup lookup) : ILookupReader<int, Tag>
    {
        public ValueTask LookupAsync(ReadOnlyMemory<int> keys, ILookupResults<int, Tag> results, CancellationToken cancellationToken)
        {
            lookup.Calls++;
            switch (lookup.Misbehave)
            {
                case "cancel":
                    throw new OperationCanceledException("the reader's own timeout, not the run's");
                case "null row":
                    results.Add(keys.Span[0], null!);
                    break;
            }

            foreach (var key in keys.Span)
            {
                if (lookup.Rows.TryGetValue(key, out var name))
                {
                    results.Add(key, new Tag(key, name));
                }
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

[Pipeline(Name = "tagged")]
public sealed partial class TaggedNumbers
{
    [Source] public ISource<int> Input { get; set; } = new CollectionSource<int>();

    [KeyBy] static int Self(int x) => x;

    [Lookup] public DictionaryLookup Tags { get; set; } = new([]);

    [Transform] static Tagged Tag(Joined<int, Tag> j) => new(j.Left, j.Right?.Name);

    [Sink] public CollectionSink<Tagged> Out { get; set; } = new();
}

/// <summary>A lookup of one's own: the runtime's side of the contract (time-to-live, failures named after the lookup).</summary>
public sealed class CustomLookupTests
{
    [Fact]
    public async Task A_time_to_live_under_a_millisecond_expires_rather_than_meaning_never()
    {
        var pipeline = new TaggedNumbers { Tags = new DictionaryLookup(new() { [1] = "one" }) { TimeToLive = TimeSpan.FromTicks(1) } };
        await using (var driver = await PipelineTestDriver.StartAsync<int>(pipeline))
        {
            driver.Push(1);
            driver.AdvanceTime(TimeSpan.FromMilliseconds(1));
            driver.Push(1);
        }

        Assert.Equal(2, pipeline.Tags.Calls); // a tick is rounded up to 1 ms; zero would keep the key until it is evicted
        Assert.Equal([new Tagged(1, "one"), new Tagged(1, "one")], pipeline.Out.Items);
    }

    [Theory]
    [InlineData("cancel", false, "the reader's own timeout")]
    [InlineData("null row", true, "a row with a null row")]
    public async Task A_reader_breaking_the_contract_fails_the_run_naming_the_lookup(string misbehave, bool noRestartFixes, string cause)
    {
        var pipeline = new TaggedNumbers { Input = new CollectionSource<int>([1, 2, 3]), Tags = new DictionaryLookup(new() { [1] = "one" }) { Misbehave = misbehave } };

        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));

        Assert.Contains("connector 'Tags' failed to look up rows in partition 0", error.ToString(), StringComparison.Ordinal);
        Assert.Contains(cause, error.ToString(), StringComparison.Ordinal);
        Assert.Equal(noRestartFixes, NonRetryableException.IsCause(error));
    }
}
