namespace Compiled.Nexmark;

/// <summary>Flink's <c>blackhole</c> connector: counts what it is given and keeps nothing (the benchmark's sink).</summary>
public sealed class Blackhole<T> : ISink<T>
{
    private long _count;

    /// <summary>Records written.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <inheritdoc/>
    public SinkExecution Execution => SinkExecution.Inline;

    /// <inheritdoc/>
    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe() => "blackhole";

    private sealed class Writer(Blackhole<T> sink) : ISinkWriter<T>
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
