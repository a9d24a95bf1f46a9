using Compiled.Connectors;

namespace Compiled.Runtime.Tests;

/// <summary>A mutable struct sink operator: its fields stay in registers inside the fused loop.</summary>
public struct Tally
{
    public long Count { get; private set; }

    public long Sum { get; private set; }

    public void Add(long value)
    {
        Count++;
        Sum += value;
    }

    public readonly Tally Plus(Tally other) => new() { Count = Count + other.Count, Sum = Sum + other.Sum };
}

/// <summary>
/// The pattern docs/concepts.md describes for reading a struct sink operator's result at parallelism above 1: every
/// other partition's pipeline object is disposed by the runtime when its partition ends, and hands its state in;
/// the object that was run is partition 0.
/// </summary>
[Pipeline]
public sealed partial class TallyPipeline : IDisposable
{
    private readonly Lock _lock = new();
    private Tally _others;

    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] static bool IsEven(long x) => x % 2 == 0;

    [Sink] public Tally Total { get; set; }

    /// <summary>Where partitions 1..P-1 hand in their tallies: one run at a time (set by <see cref="RunAndTallyAsync"/>).</summary>
    private static TallyPipeline? s_collector;

    /// <summary>Runs the pipeline and returns every partition's tally, combined.</summary>
    public async Task<Tally> RunAndTallyAsync(int parallelism)
    {
        s_collector = this;
        try
        {
            await RunAsync(new PipelineOptions { Parallelism = parallelism });
            lock (_lock)
            {
                return Total.Plus(_others); // partition 0 (this object) plus the others
            }
        }
        finally
        {
            s_collector = null;
        }
    }

    /// <summary>Called by the runtime for the pipeline objects it created for partitions 1..P-1, once each partition ended.</summary>
    public void Dispose()
    {
        if (s_collector is { } collector && !ReferenceEquals(collector, this))
        {
            lock (collector._lock)
            {
                collector._others = collector._others.Plus(Total);
            }
        }
    }
}

/// <summary>Reading a result out of a struct sink operator at parallelism > 1 (issue 18, item 16).</summary>
public sealed class StructSinkResultTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public async Task The_documented_pattern_combines_every_partitions_struct_sink(int parallelism)
    {
        var numbers = Enumerable.Range(0, 100_000).Select(i => (long)i).ToArray();
        var pipeline = new TallyPipeline { Numbers = new CollectionSource<long>(numbers) };
        var tally = await pipeline.RunAndTallyAsync(parallelism);
        Assert.Equal(numbers.Count(n => n % 2 == 0), tally.Count);
        Assert.Equal(numbers.Where(n => n % 2 == 0).Sum(), tally.Sum);
        if (parallelism > 1)
        {
            Assert.True(pipeline.Total.Count < tally.Count, "the root object alone holds only partition 0's share");
        }
    }
}
