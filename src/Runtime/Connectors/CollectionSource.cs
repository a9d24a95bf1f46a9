using System.Globalization;

namespace Compiled.Connectors;

/// <summary>
/// A bounded source over records in memory. The records are split into one contiguous slice per partition, and each
/// slice is read in batches that point into the collection: nothing is copied.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class CollectionSource<T> : ISource<T>, ISourceProgress
{
    private readonly IEnumerable<T> _items;
    private long _read;
    private T[] _records = [];
    private SourceContext<T>? _context;

    /// <summary>Creates a source over <paramref name="items"/> (enumerated once, when the run starts).</summary>
    public CollectionSource(IEnumerable<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        _items = items;
    }

    /// <summary>Creates a source over <paramref name="items"/>.</summary>
    public CollectionSource(params T[] items)
        : this((IEnumerable<T>)items)
    {
    }

    /// <inheritdoc/>
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        _records = _items as T[] ?? [.. _items];
        Interlocked.Exchange(ref _read, 0);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISourceReader<T> CreateReader(int partition)
    {
        var context = _context ?? throw new InvalidOperationException("The source is not open.");
        var (start, length) = Splits.Range(_records.Length, context.Parallelism, partition);
        return new Reader(this, new ReadOnlyMemory<T>(_records, (int)start, (int)length), context.BatchSize);
    }

    /// <inheritdoc/>
    public SourceProgress Progress => new(Interlocked.Read(ref _read), _context is null ? null : _records.Length, "records");

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe() => _context is null
        ? "collection"
        : string.Create(CultureInfo.InvariantCulture, $"collection ({_records.Length:N0} records)");

    private sealed class Reader(CollectionSource<T> source, ReadOnlyMemory<T> slice, int batchSize) : ISourceReader<T>
    {
        private ReadOnlyMemory<T> _remaining = slice;

        public ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            if (_remaining.IsEmpty)
            {
                return ValueTask.FromResult(SourceBatch<T>.End);
            }

            var take = Math.Min(batchSize, _remaining.Length);
            var batch = _remaining[..take];
            _remaining = _remaining[take..];
            Interlocked.Add(ref source._read, take);
            return ValueTask.FromResult(SourceBatch<T>.Of(batch));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
