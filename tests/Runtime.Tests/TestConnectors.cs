using System.Collections.Concurrent;

namespace Compiled.Runtime.Tests;

/// <summary>An unbounded source of consecutive numbers; each partition counts from its index in steps of the parallelism.</summary>
public sealed class EndlessSource : ISource<long>
{
    private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _signalAfter;
    private SourceContext<long>? _context;
    private long _produced;

    public EndlessSource(long signalAfter = 10_000) => _signalAfter = signalAfter;

    /// <summary>Completes once the source has produced <c>signalAfter</c> records.</summary>
    public Task Reached => _reached.Task;

    public long Produced => Interlocked.Read(ref _produced);

    private int _readersDisposed;

    public bool Closed { get; private set; }

    public int ReadersDisposed => Volatile.Read(ref _readersDisposed);

    /// <summary>Called with the running total after each batch, on the partition's worker.</summary>
    public Action<long>? OnBatch { get; set; }

    public ValueTask OpenAsync(SourceContext<long> context, CancellationToken cancellationToken)
    {
        _context = context;
        return ValueTask.CompletedTask;
    }

    public ISourceReader<long> CreateReader(int partition) => new Reader(this, partition);

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        Closed = true;
        return ValueTask.CompletedTask;
    }

    private sealed class Reader(EndlessSource source, int partition) : ISourceReader<long>
    {
        private readonly long[] _buffer = new long[source._context!.BatchSize];
        private long _next = partition;

        public ValueTask<SourceBatch<long>> ReadAsync(CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (var i = 0; i < _buffer.Length; i++)
            {
                _buffer[i] = _next;
                _next += source._context!.Parallelism;
            }

            var total = Interlocked.Add(ref source._produced, _buffer.Length);
            source.OnBatch?.Invoke(total);
            if (total >= source._signalAfter)
            {
                source._reached.TrySetResult();
            }

            return ValueTask.FromResult(SourceBatch<long>.Of(_buffer));
        }

        public ValueTask DisposeAsync()
        {
            Interlocked.Increment(ref source._readersDisposed);
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A decoupled sink that records its lifecycle and what it received; writes can be made slow or failing.</summary>
public sealed class TrackingSink<T> : ISink<T>
{
    private readonly ConcurrentQueue<T> _items = new();
    private long _written;

    private int _opened;
    private int _closed;
    private int _writersCreated;
    private int _writersDisposed;
    private int _flushes;

    public int Opened => Volatile.Read(ref _opened);

    public int Closed => Volatile.Read(ref _closed);

    public int WritersCreated => Volatile.Read(ref _writersCreated);

    /// <summary>Writers released, whether disposed (complete) or aborted.</summary>
    public int WritersDisposed => Volatile.Read(ref _writersDisposed);

    /// <summary>Writers released through AbortAsync: their partition did not complete.</summary>
    public int WritersAborted => Volatile.Read(ref _writersAborted);

    private int _writersAborted;

    public int Flushes => Volatile.Read(ref _flushes);

    /// <summary>Runs before each batch is stored; may delay or throw.</summary>
    public Func<ReadOnlyMemory<T>, ValueTask>? BeforeWrite { get; set; }

    /// <summary>Runs before each batch is stored, with the write's cancellation token: a way to stall a writer until the run aborts.</summary>
    public Func<CancellationToken, ValueTask>? Stall { get; set; }

    public SinkExecution Execution { get; init; } = SinkExecution.Decoupled;

    /// <summary>The partition whose writer cannot be created (-1: none).</summary>
    public int FailWriterAt { get; init; } = -1;

    /// <summary>The partition whose writes fail (-1: none).</summary>
    public int FailWritesAt { get; init; } = -1;

    public long Written => Interlocked.Read(ref _written);

    public IReadOnlyCollection<T> Items => _items;

    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _opened);
        return ValueTask.CompletedTask;
    }

    public ISinkWriter<T> CreateWriter(int partition)
    {
        if (partition == FailWriterAt)
        {
            throw new InvalidOperationException($"no writer for partition {partition}");
        }

        Interlocked.Increment(ref _writersCreated);
        return new Writer(this, partition);
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _closed);
        return ValueTask.CompletedTask;
    }

    private sealed class Writer(TrackingSink<T> sink, int partition) : ISinkWriter<T>
    {
        public async ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            if (partition == sink.FailWritesAt)
            {
                throw new IOException($"disk full (partition {partition})");
            }

            if (sink.BeforeWrite is { } before)
            {
                await before(records);
            }

            if (sink.Stall is { } stall)
            {
                await stall(cancellationToken);
            }

            foreach (var record in records.Span)
            {
                sink._items.Enqueue(record);
            }

            Interlocked.Add(ref sink._written, records.Length);
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref sink._flushes);
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            Interlocked.Increment(ref sink._writersDisposed);
            return ValueTask.CompletedTask;
        }

        public ValueTask AbortAsync()
        {
            Interlocked.Increment(ref sink._writersAborted);
            return DisposeAsync();
        }
    }
}
