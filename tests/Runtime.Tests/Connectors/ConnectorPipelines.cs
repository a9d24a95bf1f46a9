using Compiled.Connectors;

namespace Compiled.Runtime.Tests.Connectors;

[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct LogLine(long Seq, string Path, int Status);

[Pipeline(Name = "files")]
public sealed partial class JsonFilePipeline
{
    [Source] public FileSource<LogLine, LogLine.JsonCodec> Input { get; set; } = new("unused");

    [Transform] static bool NotHealth(LogLine line) => line.Path != "/health";

    [Transform] static LogLine Check(LogLine line) => line.Status == 999 ? throw new ArgumentException("status 999 is not a status") : line;

    [Sink] public CollectionSink<LogLine> Output { get; set; } = new();
}

[Pipeline(Name = "csv")]
public sealed partial class CsvFilePipeline
{
    [Source] public FileSource<LogLine, LogLine.CsvCodec> Input { get; set; } = new("unused");

    [Sink] public CollectionSink<LogLine> Output { get; set; } = new();
}

[Pipeline(Name = "follow")]
public sealed partial class FollowPipeline
{
    [Source] public FileSource<LogLine, LogLine.JsonCodec> Input { get; set; } = new("unused");

    [Sink] public NotifyingSink<LogLine> Output { get; set; } = new();
}

[Pipeline(Name = "follow-csv")]
public sealed partial class FollowCsvPipeline
{
    [Source] public FileSource<LogLine, LogLine.CsvCodec> Input { get; set; } = new("unused");

    [Sink] public NotifyingSink<LogLine> Output { get; set; } = new();
}

/// <summary>A line whose body stays in the source's buffer (<see cref="Utf8Text"/>) while its batch is processed.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct BigLine(long Seq, Utf8Text Body);

public readonly record struct CopiedLine(long Seq, string Body);

[Pipeline(Name = "big-lines")]
public sealed partial class BigLinePipeline
{
    [Source] public FileSource<BigLine, BigLine.JsonCodec> Input { get; set; } = new("unused");

    [Transform] static CopiedLine Copy(BigLine line) => new(line.Seq, line.Body.ToString());

    [Sink] public NotifyingSink<CopiedLine> Output { get; set; } = new();
}

[Pipeline(Name = "copy")]
public sealed partial class FileCopyPipeline
{
    [Source] public FileSource<LogLine, LogLine.JsonCodec> Input { get; set; } = new("unused");

    [Sink] public FileSink<LogLine, LogLine.CsvCodec> Output { get; set; } = new("unused");
}

[Pipeline(Name = "socket")]
public sealed partial class SocketPipeline
{
    [Source] public SocketSource<LogLine, LogLine.JsonCodec> Input { get; set; } = new(0);

    [Sink] public NotifyingSink<LogLine> Output { get; set; } = new();
}

[Pipeline(Name = "shell")]
public sealed partial class ShellPipeline
{
    [Source] public StdinSource<LogLine, LogLine.JsonCodec> Input { get; set; } = new();

    [Transform] static LogLine Bump(LogLine line) => line with { Status = line.Status + 1 };

    [Sink] public StdoutSink<LogLine, LogLine.CsvCodec> Output { get; set; } = new();
}

/// <summary>Keeps records in memory and completes a task once it holds a given number: waiting without sleeping.</summary>
public sealed class NotifyingSink<T> : ISink<T>
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<T> _items = new();
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];

    public IReadOnlyCollection<T> Items => _items;

    /// <summary>The most records one write brought (an inline sink is written once per batch).</summary>
    public int LargestBatch { get; private set; }

    public SinkExecution Execution => SinkExecution.Inline;

    /// <summary>Completes when the sink holds at least <paramref name="count"/> records.</summary>
    public Task WhenCount(int count)
    {
        lock (_lock)
        {
            if (_items.Count >= count)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, done));
            return done.Task;
        }
    }

    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Writer(NotifyingSink<T> sink) : ISinkWriter<T>
    {
        public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            lock (sink._lock)
            {
                sink.LargestBatch = Math.Max(sink.LargestBatch, records.Length);
                foreach (var record in records.Span)
                {
                    sink._items.Enqueue(record);
                }

                foreach (var waiter in sink._waiters.Where(w => sink._items.Count >= w.Count).ToList())
                {
                    waiter.Done.TrySetResult();
                    sink._waiters.Remove(waiter);
                }
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
