using System.Globalization;
using Compiled;
using Compiled.Connectors;
using Compiled.Kafka;

var exit = Environment.GetEnvironmentVariable("DISK_COUNTS_PIPELINE") switch
{
    "kafka" => await DiskCounts.KafkaCounts.RunAsync(args),
    "tumbling" => await DiskCounts.TumblingCounts.RunAsync(args),
    _ => await DiskCounts.Counts.RunAsync(args),
};
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"tally firsts={DiskCounts.Tally.Firsts} updates={DiskCounts.Tally.Updates} wrong={DiskCounts.Tally.Wrong} sum={DiskCounts.Tally.Sum}"));
return exit;

namespace DiskCounts
{
    /// <summary>A hit on a key.</summary>
    [Record(Naming = FieldNaming.CamelCase)]
    public readonly partial record struct Hit(int Key);

    /// <summary>A key's count so far.</summary>
    [Record(Naming = FieldNaming.CamelCase)]
    public readonly partial record struct KeyCount(int Key, long Count);

    /// <summary>
    /// <c>Count</c> hits over <c>Keys</c> distinct keys (<c>Count</c> between Keys and 2 × Keys): the first Keys hits
    /// visit every key once in a scattered order, the rest visit the first Count − Keys keys of another scattered order
    /// a second time. So a key's count is 1 or 2, and which it is follows from the index alone.
    /// </summary>
    public readonly struct Hits : IRecordGenerator<Hit>
    {
        /// <summary>Distinct keys (the DISK_COUNTS_KEYS environment variable; 1,000,000 by default).</summary>
        public static readonly int Keys = int.Parse(Environment.GetEnvironmentVariable("DISK_COUNTS_KEYS") ?? "1000000", CultureInfo.InvariantCulture);

        // Odd multipliers prime to any Keys the tests use (powers of 2 and 10): i -> i * m mod Keys is a bijection.
        private const long First = 1_000_003;
        private const long Second = 7_000_033;

        public Hit Generate(long index)
            => new((int)(index < Keys ? index * First % Keys : (index - Keys) * Second % Keys));
    }

    /// <summary>What the results say, without holding a result per key: firsts (not updates) must be Keys, each 1; updates each 2.</summary>
    public static class Tally
    {
        private static long _firsts;
        private static long _updates;
        private static long _wrong;

        public static long Firsts => Interlocked.Read(ref _firsts);

        public static long Updates => Interlocked.Read(ref _updates);

        public static long Wrong => Interlocked.Read(ref _wrong);

        private static long _sum;

        /// <summary>The sum of a tumbling window's counts: the number of records.</summary>
        public static long Sum => Interlocked.Read(ref _sum);

        /// <summary>A tumbling window's count: at least 1, never an update; the counts must add up to the records and the windows to the keys (checked by the caller).</summary>
        public static bool CountWindow(WindowResult<int, long> result)
        {
            Interlocked.Increment(ref _firsts);
            Interlocked.Add(ref _sum, result.Value);
            if (result.IsUpdate || result.Value < 1)
            {
                Interlocked.Increment(ref _wrong);
            }

            return false;
        }

        public static bool Count(WindowResult<int, long> result)
        {
            if (result.IsUpdate)
            {
                Interlocked.Increment(ref _updates);
                if (result.Value != 2)
                {
                    Interlocked.Increment(ref _wrong);
                }
            }
            else
            {
                Interlocked.Increment(ref _firsts);
                if (result.Value != 1)
                {
                    Interlocked.Increment(ref _wrong);
                }
            }

            return false;
        }
    }

    [Pipeline(Name = "disk-counts")]
    public sealed partial class Counts
    {
        [Source] GeneratorSource<Hit, Hits> Hits { get; } = new(1_250_000);

        [KeyBy] static int Key(Hit hit) => hit.Key;

        [Window] WindowSpec<Hit, Count<Hit>> Total { get; } = new(Window.Running());

        [Transform] static bool Check(WindowResult<int, long> result) => Tally.Count(result);

        [Sink] CollectionSink<WindowResult<int, long>> Nothing { get; } = new();
    }

    /// <summary>The same hits counted per key in one-hour tumbling windows on the wall clock: a window's whole key set fires at once (at the end of input).</summary>
    [Pipeline(Name = "tumbling-counts")]
    public sealed partial class TumblingCounts
    {
        [Source] GeneratorSource<Hit, Hits> Hits { get; } = new(1_250_000);

        [KeyBy] static int Key(Hit hit) => hit.Key;

        [Window] WindowSpec<Hit, Count<Hit>> PerHour { get; } = new(Window.Tumbling(TimeSpan.FromHours(1))) { Time = TimeMode.Processing };

        [Transform] static bool Check(WindowResult<int, long> result) => Tally.CountWindow(result);

        [Sink] CollectionSink<WindowResult<int, long>> Nothing { get; } = new();
    }

    /// <summary>
    /// Hits from Kafka counted per key for ever, each new count written to JSON Lines files (at-least-once: a file is
    /// complete once the checkpoint after it is): the kill/restore test of state on disk.
    /// </summary>
    [Pipeline(Name = "kafka-counts")]
    public sealed partial class KafkaCounts
    {
        [Source] KafkaSource<Hit, Hit.JsonCodec> Hits { get; } = new(new KafkaSourceOptions { Topics = "hits" });

        [KeyBy] static int Key(Hit hit) => hit.Key;

        [Window] WindowSpec<Hit, Count<Hit>> Total { get; } = new(Window.Running());

        [Transform] static KeyCount Row(WindowResult<int, long> result) => new(result.Key, result.Value);

        [Sink] FileSink<KeyCount, KeyCount.JsonCodec> Output { get; } = new("out");
    }
}
