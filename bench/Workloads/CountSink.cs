namespace Compiled.Bench;

/// <summary>
/// Counts records and nothing else (Flink's <c>blackhole</c> connector): a source's own ceiling, and the sink of every
/// Nexmark query the benchmark times.
/// </summary>
public sealed class CountSink<T> : ISink<T>
{
    private long _count;

    public long Count => Interlocked.Read(ref _count);

    public SinkExecution Execution => SinkExecution.Inline;

    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Writer(CountSink<T> sink) : ISinkWriter<T>
    {
        public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            Interlocked.Add(ref sink._count, records.Length);
            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
