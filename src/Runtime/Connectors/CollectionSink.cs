namespace Compiled.Connectors;

/// <summary>
/// Keeps every record in memory, per partition and in arrival order: for tests, and for small results a program
/// reads after the run. Written inline on the partition's worker; <see cref="Items"/> and <see cref="Count"/> may be read
/// while a run writes (each partition's list is locked while it grows or is copied).
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class CollectionSink<T> : ISink<T>
{
    private List<T>[] _partitions = [];

    /// <summary>Every record received, partition 0's first, each partition's in arrival order.</summary>
    public IReadOnlyList<T> Items => [.. _partitions.SelectMany(Copy)];

    /// <summary>The records each partition received, in arrival order.</summary>
    public IReadOnlyList<IReadOnlyList<T>> Partitions => _partitions;

    /// <summary>The number of records received.</summary>
    public int Count => _partitions.Sum(p =>
    {
        lock (p)
        {
            return p.Count;
        }
    });

    private static List<T> Copy(List<T> partition)
    {
        lock (partition)
        {
            return [.. partition];
        }
    }

    /// <inheritdoc/>
    public SinkExecution Execution => SinkExecution.Inline;

    /// <inheritdoc/>
    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _partitions = Enumerable.Range(0, context.Parallelism).Select(_ => new List<T>()).ToArray();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition) => new Writer(_partitions[partition]);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe() => "memory";

    private sealed class Writer(List<T> items) : ISinkWriter<T>
    {
        public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            lock (items)
            {
                items.AddRange(records.Span);
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
