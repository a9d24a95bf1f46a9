using Compiled.Connectors;

namespace Compiled.Runtime.Tests;

public readonly record struct Reading(long Sensor, double Value);

[Pipeline]
public sealed partial class SquarePipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] static long Square(long x) => x * x;

    [Sink] public TrackingSink<long> Output { get; set; } = new();
}

[Pipeline(Name = "endless")]
public sealed partial class EndlessPipeline
{
    [Source] public EndlessSource Numbers { get; set; } = new();

    [Transform] static long Increment(long x) => x + 1;

    [Sink] public TrackingSink<long> Output { get; set; } = new();
}

[Pipeline(Name = "fragile", ErrorPolicy = ErrorPolicy.FailFast)]
public sealed partial class FragilePipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] static long Identity(long x) => x;

    [Transform] static long Explode(long x) => x == 4242 ? throw new InvalidOperationException("boom at 4242") : x;

    [Sink] public TrackingSink<long> Output { get; set; } = new();
}

[Pipeline(Name = "first-fails", ErrorPolicy = ErrorPolicy.FailFast)]
public sealed partial class FirstStageFails
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] static long Check(long x) => x == 7 ? throw new ArgumentOutOfRangeException(nameof(x), "seven") : x;

    [Transform] static long Double(long x) => x * 2;

    [Sink] public CollectionSink<long> Output { get; } = new();
}

[Pipeline(Name = "replayed", ErrorPolicy = ErrorPolicy.FailFast)]
public sealed partial class PrefixFailsAfterMarkedStage
{
    private long _seen;

    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform]
    static void Twice(long x, Emitter<long> output)
    {
        output.Emit(x);
        output.Emit(x + 1);
    }

    [Transform] static bool Check(long x) => x == 5 ? throw new InvalidOperationException("five") : true;

    [Transform] long Count(long x) => x + (0 * _seen++);

    [Sink] public CollectionSink<long> Output { get; } = new();
}

[Pipeline]
public sealed partial class ReadingsPipeline
{
    [Source] public GeneratorSource<Reading> Readings { get; set; } = new(0, i => new Reading(i % 10, i));

    [Transform] static bool Valid(Reading r) => r.Value >= 0;

    [Sink] public CollectionSink<Reading> Output { get; } = new();
}

[Pipeline]
public sealed partial class NullSourcePipeline
{
    [Source] public CollectionSource<long>? Numbers { get; set; }

    [Sink] public CollectionSink<long> Output { get; } = new();
}
