using System.Globalization;
using Compiled;
using Compiled.Connectors;

// Reads line records from TCP connections until BURST_EXPECTED of them have arrived, then stops gracefully and
// prints its summary; a lost line keeps it running until the test gives up.
var expected = long.Parse(Environment.GetEnvironmentVariable("BURST_EXPECTED") ?? "0", CultureInfo.InvariantCulture);
using var done = new CancellationTokenSource();
SocketBurst.Burst.Arrived = total =>
{
    if (total >= expected)
    {
        done.Cancel();
    }
};
return await SocketBurst.Burst.RunAsync(args, done.Token);

namespace SocketBurst
{
    /// <summary>One line a client sends.</summary>
    [Record(Naming = FieldNaming.CamelCase)]
    public readonly partial record struct Hit(long Seq, string Client);

    /// <summary>A socket source into a counting sink operator.</summary>
    [Pipeline(Name = "socket-burst")]
    public sealed partial class Burst
    {
        private static long _count;

        public static Action<long>? Arrived { get; set; }

        [Source] SocketSource<Hit, Hit.JsonCodec> Input { get; } = new(0);

        [Sink] static void Count(Hit hit) => Arrived?.Invoke(Interlocked.Increment(ref _count));
    }
}
