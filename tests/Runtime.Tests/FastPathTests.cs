using Compiled.Connectors;

namespace Compiled.Runtime.Tests;

/// <summary>Numbers every record it sees: a mutable struct operator, kept in registers by the loop.</summary>
public struct Numbering
{
    private long _seen;

    public long Apply(long x) => (x * 1_000_000) + _seen++;

    public readonly long Seen => _seen;
}

/// <summary>A struct operator before a stage that throws now and then, a flatMap and a connector sink: the loop runs without bookkeeping until a record fails.</summary>
[Pipeline(Name = "fast-path", ErrorPolicy = ErrorPolicy.DeadLetter)]
public sealed partial class FastPathPipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] public Numbering Number { get; set; }

    [Transform] static long Check(long x) => (x / 1_000_000) % 97 == 0 ? throw new InvalidOperationException("a multiple of 97") : x;

    [Transform]
    static void Thrice(long x, Emitter<long> output)
    {
        // More records out than in: the sink's buffer grows in the middle of a batch.
        output.Emit(x);
        output.Emit(-x);
        output.Emit(x + 1);
    }

    [Sink] public CollectionSink<long> Output { get; set; } = new();
}

/// <summary>An operator object that cannot change (sealed, readonly fields of values): the loop keeps its fast path.</summary>
public sealed class Shift(long by, string label)
{
    private readonly long _by = by;
    private readonly string _label = label;

    public long Apply(long x) => x + _by + (_label.Length - _label.Length);
}

/// <summary>A class operator that cannot change before a stage that throws now and then, and one after it.</summary>
[Pipeline(Name = "fast-path-class", ErrorPolicy = ErrorPolicy.DeadLetter)]
public sealed partial class FastPathClassPipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] public Shift Before { get; } = new(1_000, "before");

    [Transform] static long Check(long x) => x % 89 == 0 ? throw new InvalidOperationException("a multiple of 89") : x;

    [Transform] public Shift After { get; } = new(-1_000, "after");

    [Sink] public CollectionSink<long> Output { get; set; } = new();
}

/// <summary>Numbers every record it sees and remembers the last: an operator object whose state is fields of values (one an auto-property's).</summary>
public sealed class Numberer
{
    private long _seen;
    private string _last = "";

    public long Calls { get; private set; }

    public long Seen => _seen;

    public string Last => _last;

    public long Apply(long x)
    {
        Calls++;
        _last = x.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return (x * 1_000_000) + _seen++;
    }
}

/// <summary>A sink operator object whose state is fields of values: the sum and count of what reached it.</summary>
public sealed class Totals
{
    public long Sum { get; private set; }

    public long Count { get; private set; }

    public void Add(long x)
    {
        Sum += x;
        Count++;
    }
}

/// <summary>Operator objects with state on both sides of a stage that throws now and then: the loop keeps its fast path and sets their fields back when a record fails.</summary>
[Pipeline(Name = "fast-path-class-state", ErrorPolicy = ErrorPolicy.DeadLetter)]
public sealed partial class FastPathClassStatePipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] public Numberer Number { get; } = new();

    [Transform] static long Check(long x) => (x / 1_000_000) % 97 == 0 ? throw new InvalidOperationException("a multiple of 97") : x;

    [Sink] public Totals Total { get; } = new();
}

/// <summary>
/// Instance methods of the pipeline with state in its own fields, on both sides of a stage that throws now and then, the
/// sink method throwing too: the loop keeps its fast path and sets the pipeline's fields back when a record fails.
/// </summary>
[Pipeline(Name = "fast-path-pipeline-state", ErrorPolicy = ErrorPolicy.DeadLetter)]
public sealed partial class FastPathPipelineStatePipeline
{
    private long _seen;

    public long Seen => _seen;

    public long Sum { get; private set; }

    public long Count { get; private set; }

    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] long Number(long x) => (x * 1_000_000) + _seen++;

    [Transform] static long Check(long x) => (x / 1_000_000) % 97 == 0 ? throw new InvalidOperationException("a multiple of 97") : x;

    [Sink]
    void Add(long x)
    {
        if (x % 89 == 0)
        {
            throw new InvalidOperationException("a multiple of 89"); // before it changes anything
        }

        Sum += x;
        Count++;
    }
}

/// <summary>
/// An instance sink method that also counts in a static member (windows.md's way out of a later loop at parallelism 1):
/// its effects are not the pipeline object's, so the loop keeps its bookkeeping and counts each record once.
/// </summary>
[Pipeline(Name = "fast-path-static-effects", ErrorPolicy = ErrorPolicy.DeadLetter)]
public sealed partial class FastPathStaticEffectsPipeline
{
    private static long s_calls;

    public static long Calls { get => s_calls; set => s_calls = value; }

    public long Count { get; private set; }

    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] static long Check(long x) => x % 97 == 0 ? throw new InvalidOperationException("a multiple of 97") : x;

    [Sink]
    void Add(long x)
    {
        s_calls++;
        Count++;
    }
}

/// <summary>A flatMap whose second copy fails a later stage: the record must go whole to the dead letters, none of its copies to the sink.</summary>
[Pipeline(Name = "flat-whole", ErrorPolicy = ErrorPolicy.DeadLetter)]
public sealed partial class FlatWholePipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform]
    static void Thrice(long x, Emitter<long> output)
    {
        output.Emit(x);
        output.Emit(-x);
        output.Emit(x + 1_000);
    }

    [Transform] static long Check(long x) => x < 0 && -x % 7 == 0 ? throw new InvalidOperationException("a negative multiple of 7") : x;

    [Sink] public CollectionSink<long> Output { get; set; } = new();
}

/// <summary>Two branches to two sinks; the second fails now and then after the first has taken the record.</summary>
[Pipeline(Name = "branches-whole", ErrorPolicy = ErrorPolicy.DeadLetter)]
public sealed partial class BranchesWholePipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] static long Doubled(long x) => x * 2;

    [Sink] public CollectionSink<long> First { get; set; } = new();

    [Transform(Input = nameof(Doubled))] static long Checked(long x) => x % 22 == 0 ? throw new InvalidOperationException("a multiple of 11") : x;

    [Sink] public CollectionSink<long> Second { get; set; } = new();
}

/// <summary>
/// The fused loop runs a batch without bookkeeping first and, when a record fails, sets its outputs back and runs the
/// batch again marked: the error policy must see each failing record once, at its stage, and the operators' state and
/// outputs must count every other record exactly once.
/// </summary>
public sealed class FastPathTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(100)]
    [InlineData(4096)]
    public async Task A_failing_record_is_dead_lettered_once_and_nothing_is_counted_or_written_twice(int batchSize)
    {
        var input = Enumerable.Range(1, 5_000).Select(i => (long)i).ToArray();
        var deadLetters = new CollectionSink<DeadLetter>();
        var pipeline = new FastPathPipeline { Numbers = new CollectionSource<long>(input) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = batchSize, DeadLetterSink = deadLetters });

        // The struct numbered every record (failing ones too: they failed after it), once each, in order.
        var expected = input.Select((x, n) => (x * 1_000_000) + n).Where(v => (v / 1_000_000) % 97 != 0).SelectMany(v => new[] { v, -v, v + 1 });
        Assert.Equal(expected, pipeline.Output.Items);
        Assert.Equal(input.Length, pipeline.Number.Seen);
        Assert.Equal(input.Count(x => x % 97 == 0), deadLetters.Items.Count);
        Assert.All(deadLetters.Items, letter => Assert.Equal("Check", letter.Stage));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(4096)]
    public async Task A_record_failing_between_class_operators_that_cannot_change_is_dead_lettered_once_at_its_stage(int batchSize)
    {
        var input = Enumerable.Range(1, 5_000).Select(i => (long)i).ToArray();
        var deadLetters = new CollectionSink<DeadLetter>();
        var pipeline = new FastPathClassPipeline { Numbers = new CollectionSource<long>(input) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = batchSize, DeadLetterSink = deadLetters });

        Assert.Equal(input.Where(x => (x + 1_000) % 89 != 0), pipeline.Output.Items);
        Assert.Equal(input.Count(x => (x + 1_000) % 89 == 0), deadLetters.Items.Count);
        Assert.All(deadLetters.Items, letter => Assert.Equal("Check", letter.Stage));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(100)]
    [InlineData(4096)]
    public async Task Operator_objects_with_state_around_a_failing_record_count_every_record_once(int batchSize)
    {
        var input = Enumerable.Range(1, 5_000).Select(i => (long)i).ToArray();
        var deadLetters = new CollectionSink<DeadLetter>();
        var pipeline = new FastPathClassStatePipeline { Numbers = new CollectionSource<long>(input) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = batchSize, DeadLetterSink = deadLetters });

        // The tally numbered every record once, in order (a failed fast attempt's calls were set back, not kept);
        // the sink saw every record that passed once.
        var numbered = input.Select((x, n) => (x * 1_000_000) + n).Where(v => (v / 1_000_000) % 97 != 0).ToList();
        Assert.Equal(input.Length, pipeline.Number.Seen);
        Assert.Equal(input.Length, pipeline.Number.Calls);
        Assert.Equal("5000", pipeline.Number.Last);
        Assert.Equal(numbered.Count, pipeline.Total.Count);
        Assert.Equal(numbered.Sum(), pipeline.Total.Sum);
        Assert.Equal(input.Count(x => x % 97 == 0), deadLetters.Items.Count);
        Assert.All(deadLetters.Items, letter => Assert.Equal("Check", letter.Stage));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(100)]
    [InlineData(4096)]
    public async Task Pipeline_methods_with_state_in_the_pipeline_count_every_record_once_around_failing_records(int batchSize)
    {
        var input = Enumerable.Range(1, 5_000).Select(i => (long)i).ToArray();
        var deadLetters = new CollectionSink<DeadLetter>();
        var pipeline = new FastPathPipelineStatePipeline { Numbers = new CollectionSource<long>(input) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = batchSize, DeadLetterSink = deadLetters });

        // Numbered once each, in order, failing records too (they fail after it); a failed fast attempt's calls were
        // set back, so the sink method added each record that reached it once.
        var numbered = input.Select((x, n) => (x * 1_000_000) + n).Where(v => (v / 1_000_000) % 97 != 0).ToList();
        var added = numbered.Where(v => v % 89 != 0).ToList();
        Assert.Equal(input.Length, pipeline.Seen);
        Assert.Equal(added.Count, pipeline.Count);
        Assert.Equal(added.Sum(), pipeline.Sum);
        Assert.Equal(input.Length - added.Count, deadLetters.Items.Count);
        Assert.Equal(input.Count(x => x % 97 == 0), deadLetters.Items.Count(letter => letter.Stage == "Check"));
        Assert.Equal(numbered.Count - added.Count, deadLetters.Items.Count(letter => letter.Stage == "Add"));
        Assert.True(numbered.Count - added.Count > 10, "the input must fail in the sink method now and then");
    }

    [Theory]
    [InlineData(7)]
    [InlineData(4096)]
    public async Task A_pipeline_method_that_changes_a_static_member_counts_each_record_once(int batchSize)
    {
        FastPathStaticEffectsPipeline.Calls = 0;
        var input = Enumerable.Range(1, 5_000).Select(i => (long)i).ToArray();
        var pipeline = new FastPathStaticEffectsPipeline { Numbers = new CollectionSource<long>(input) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = batchSize, DeadLetterSink = new CollectionSink<DeadLetter>() });

        var passing = input.Count(x => x % 97 != 0);
        Assert.Equal(passing, pipeline.Count);
        Assert.Equal(passing, FastPathStaticEffectsPipeline.Calls); // a fast attempt's calls set back could not undo this one
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1024)]
    public async Task A_record_whose_later_flatmap_copy_fails_is_dead_lettered_whole_and_none_of_its_copies_is_delivered(int batchSize)
    {
        var input = Enumerable.Range(1, 2_000).Select(i => (long)i).ToArray();
        var deadLetters = new CollectionSink<DeadLetter>();
        var pipeline = new FlatWholePipeline { Numbers = new CollectionSource<long>(input) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = batchSize, DeadLetterSink = deadLetters });

        // Delivered whole or not at all: a dead letter replayed later must not repeat a copy, nor may one be lost.
        Assert.Equal(input.Where(x => x % 7 != 0).SelectMany(x => new[] { x, -x, x + 1_000 }), pipeline.Output.Items);
        Assert.Equal(input.Count(x => x % 7 == 0), deadLetters.Items.Count);
        Assert.All(deadLetters.Items, letter => Assert.Equal("Check", letter.Stage));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1024)]
    public async Task A_record_failing_in_one_branch_is_not_delivered_by_the_other(int batchSize)
    {
        var input = Enumerable.Range(1, 2_000).Select(i => (long)i).ToArray();
        var deadLetters = new CollectionSink<DeadLetter>();
        var pipeline = new BranchesWholePipeline { Numbers = new CollectionSource<long>(input) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = batchSize, DeadLetterSink = deadLetters });

        var passing = input.Where(x => x % 11 != 0).Select(x => x * 2).ToList();
        Assert.Equal(passing, pipeline.First.Items);
        Assert.Equal(passing, pipeline.Second.Items);
        Assert.Equal(input.Count(x => x % 11 == 0), deadLetters.Items.Count);
        Assert.All(deadLetters.Items, letter => Assert.Equal("Checked", letter.Stage));
    }
}
