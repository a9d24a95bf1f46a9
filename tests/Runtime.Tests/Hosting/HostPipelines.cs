using Compiled.Connectors;
using Compiled.Runtime.Tests.Connectors;

namespace Compiled.Runtime.Tests.Hosting;

/// <summary>A pipeline whose plan has a chain break (a decoupled file sink) and an inline sink, for --explain.</summary>
[Pipeline(Name = "explained")]
public sealed partial class ExplainedPipeline
{
    [Source] public FileSource<LogLine, LogLine.JsonCodec> Input { get; set; } = new("in/*.jsonl");

    [Transform] static bool NotHealth(LogLine line) => line.Path != "/health";

    [Transform] static LogLine Normalize(LogLine line) => line with { Path = line.Path.ToLowerInvariant() };

    [Sink] public FileSink<LogLine, LogLine.CsvCodec> Files { get; set; } = new("out/lines", new FileSinkOptions { Prefix = "lines" });

    [Sink] public CollectionSink<LogLine> Memory { get; } = new();
}

/// <summary>A pipeline with a connector holding secrets.</summary>
[Pipeline(Name = "secretive")]
public sealed partial class SecretivePipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new(1, 2, 3);

    [Sink] public SecretSink Store { get; } = new();
}

/// <summary>A pipeline reported on by metrics: some records filtered, some failing in an operator.</summary>
[Pipeline(Name = "metered")]
public sealed partial class MeteredPipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Transform] static long Check(long x) => x % 10 == 0 ? throw new InvalidOperationException($"{x} is a multiple of ten") : x;

    [Transform] static bool IsOdd(long x) => x % 2 == 1;

    [Sink] public TrackingSink<long> Output { get; set; } = new();
}

/// <summary>A sink configured with a connection string that has a password, and an API key.</summary>
public sealed class SecretSink : ISink<long>, IConfigurable
{
    public const string Password = "hunter2-Pa55";
    public const string ApiKey = "key-4f9c2e7d1b";

    public string ConnectionString { get; set; } = $"Host=db.internal;Username=etl;Password={Password}";

    public string Key { get; set; } = ApiKey;

    private long _written;

    public long Written => Interlocked.Read(ref _written);

    public IEnumerable<Setting> Settings =>
    [
        Setting.ConnectionString(nameof(ConnectionString), "Where to write", () => ConnectionString, v => ConnectionString = v),
        Setting.Text(nameof(Key), "The API key", () => Key, v => Key = v, secret: true),
    ];

    public ValueTask OpenAsync(SinkContext<long> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISinkWriter<long> CreateWriter(int partition) => new Writer(this);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public string Describe() => "secret store " + Secrets.RedactConnectionString(ConnectionString);

    private sealed class Writer(SecretSink sink) : ISinkWriter<long>
    {
        public ValueTask WriteAsync(ReadOnlyMemory<long> records, CancellationToken cancellationToken)
        {
            Interlocked.Add(ref sink._written, records.Length);
            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>A bounded collection into a sink a test can watch, to stop a run part-way or after its last record.</summary>
[Pipeline(Name = "bounded")]
public sealed partial class BoundedPipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Sink] public TrackingSink<long> Output { get; set; } = new();
}

/// <summary>Files that are not followed (a bounded input) into a sink a test can watch.</summary>
[Pipeline(Name = "bounded-files")]
public sealed partial class BoundedFilePipeline
{
    [Source] public FileSource<LogLine, LogLine.JsonCodec> Input { get; set; } = new("in/*.jsonl");

    [Sink] public TrackingSink<LogLine> Output { get; set; } = new();
}
