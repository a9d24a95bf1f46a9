using System.Globalization;
using Compiled;
using Compiled.Connectors;
using Compiled.Runtime;

// Reads line records from TCP connections until BURST_EXPECTED of them have arrived, then stops gracefully and
// prints its summary; a lost line keeps it running until the test gives up. With BURST_HOLD set, the host's setup
// waits for a line on standard input before the run starts.
var expected = long.Parse(Environment.GetEnvironmentVariable("BURST_EXPECTED") ?? "0", CultureInfo.InvariantCulture);
using var done = new CancellationTokenSource();
SocketBurst.Burst.Arrived = total =>
{
    if (total >= expected)
    {
        done.Cancel();
    }
};
if (Environment.GetEnvironmentVariable("BURST_HOLD") is null)
{
    return await SocketBurst.Burst.RunAsync(args, done.Token);
}

// Held before the run, while the host sets up: the signal test stops it there.
return await PipelineHost.RunAsync(new SocketBurst.Burst(), args, new PipelineHostContext { Extensions = [new SocketBurst.Hold()] }, done.Token);

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

    /// <summary>A host extension that says "holding" and waits for a line on standard input before the run starts.</summary>
    public sealed class Hold : IHostExtension
    {
        public string Name => "Hold";

        public bool Enabled => true;

        public IEnumerable<Setting> Settings => [];

        public IAsyncDisposable Start(IPipelineJob job)
        {
            Console.Error.WriteLine("holding");
            Console.In.ReadLine();
            return new Nothing();
        }

        public string Describe() => "hold";

        private sealed class Nothing : IAsyncDisposable
        {
            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
