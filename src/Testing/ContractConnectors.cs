namespace Compiled.Testing;

/// <summary>
/// The source of the sink checks: records in memory, a slice per partition, reported with positions (so the run
/// checkpoints its sinks and commits as behind Kafka). Every <c>checkpointEvery</c> batches a reader takes a checkpoint
/// and then reads the destination back: everything the reader handed out must be there.
/// </summary>
internal sealed class ContractSource<T>(T[] records, int checkpointEvery, Func<CancellationToken, Task<IReadOnlyList<T>>>? readBack) : ISource<T>
{
    private readonly List<string> _problems = [];
    private readonly int _checkpointEvery = checkpointEvery;
    private readonly Func<CancellationToken, Task<IReadOnlyList<T>>>? _readBack = readBack;
    private SourceContext<T>? _context;
    private int _firstBatch;

    /// <summary>Runs once, when the first batch has been handed out (the abort check cancels the run there).</summary>
    public Action? AfterFirstBatch { get; init; }

    public IEqualityComparer<T> Comparer { get; init; } = EqualityComparer<T>.Default;

    /// <summary>What the checkpoints found missing from the destination.</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_problems)
            {
                return [.. _problems];
            }
        }
    }

    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        _context = context;
        return ValueTask.CompletedTask;
    }

    public ISourceReader<T> CreateReader(int partition)
    {
        var context = _context!;
        var (start, length) = Compiled.Connectors.Splits.Range(records.Length, context.Parallelism, partition);
        return new Reader(this, partition, records.AsMemory((int)start, (int)length), context.BatchSize);
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public string Describe() => "the connector contract's records";

    private sealed class Reader(ContractSource<T> source, int partition, ReadOnlyMemory<T> slice, int batchSize) : ISourceReader<T>
    {
        private int _next;
        private int _batches;

        public bool CommitsPositions => true;

        public IReadOnlyList<SourcePosition> Positions => [new("contract", partition, _next)];

        public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            if (source.AfterFirstBatch is { } after && _next > 0 && Interlocked.Exchange(ref source._firstBatch, 1) == 0)
            {
                after();
            }

            if (source._checkpointEvery > 0 && _batches > 0 && _batches % source._checkpointEvery == 0)
            {
                await source._context!.CheckpointAsync(partition, cancellationToken).ConfigureAwait(false);
                await VerifyAsync(cancellationToken).ConfigureAwait(false);
            }

            if (_next >= slice.Length)
            {
                return SourceBatch<T>.End;
            }

            var count = Math.Min(batchSize, slice.Length - _next);
            var batch = slice.Slice(_next, count);
            _next += count;
            _batches++;
            return SourceBatch<T>.Of(batch);
        }

        /// <summary>After a checkpoint: every record this reader handed out is in the destination.</summary>
        private async Task VerifyAsync(CancellationToken cancellationToken)
        {
            var written = await source._readBack!(cancellationToken).ConfigureAwait(false);
            var present = new HashSet<Key>(written.Select(w => new Key(w, source.Comparer)));
            var missing = 0;
            foreach (var record in slice.Span[.._next])
            {
                if (!present.Contains(new Key(record, source.Comparer)))
                {
                    missing++;
                }
            }

            if (missing > 0)
            {
                lock (source._problems)
                {
                    source._problems.Add($"partition {partition}: a checkpoint after {_next} records completed with {missing} of them not in the destination");
                }
            }
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private readonly struct Key(T value, IEqualityComparer<T> comparer) : IEquatable<Key>
    {
        private readonly T _value = value;

        public bool Equals(Key other) => comparer.Equals(_value, other._value);

        public override bool Equals(object? obj) => obj is Key other && Equals(other);

        public override int GetHashCode() => _value is null ? 0 : comparer.GetHashCode(_value);
    }
}

/// <summary>The sink of the source checks: keeps what arrives (copied), inline; can act after the first batch or the n-th record.</summary>
internal sealed class ContractSink<T>(IEqualityComparer<T>? comparer = null, IEnumerable<T>? alreadySeen = null) : ISink<T>
{
    private readonly List<T> _items = [];
    private readonly HashSet<T> _seen = new(alreadySeen ?? [], comparer ?? EqualityComparer<T>.Default); // records that do not count
    private readonly HashSet<T> _distinct = new(comparer ?? EqualityComparer<T>.Default);
    private int _wanted = int.MaxValue;
    private Action? _reached;
    private int _first;

    public Action? AfterFirstBatch { get; init; }

    public SinkExecution Execution => SinkExecution.Inline;

    public IReadOnlyList<T> Items
    {
        get
        {
            lock (_items)
            {
                return [.. _items];
            }
        }
    }

    /// <summary>Calls <paramref name="action"/> once <paramref name="count"/> distinct records arrived, not counting those seen before (at once when it is zero).</summary>
    public void When(int count, Action action)
    {
        _wanted = count;
        _reached = action;
        if (count <= 0)
        {
            action();
        }
    }

    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public string Describe() => "the connector contract's collection";

    private sealed class Writer(ContractSink<T> sink) : ISinkWriter<T>
    {
        public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            int count;
            lock (sink._items)
            {
                sink._items.AddRange(records.Span);
                foreach (var record in records.Span)
                {
                    if (!sink._seen.Contains(record))
                    {
                        sink._distinct.Add(record);
                    }
                }

                count = sink._distinct.Count;
            }

            if (records.Length > 0 && sink.AfterFirstBatch is { } after && Interlocked.Exchange(ref sink._first, 1) == 0)
            {
                after();
            }

            if (count >= sink._wanted && Interlocked.Exchange(ref sink._reached, null) is { } reached)
            {
                reached();
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>
/// The source under test, watched: whether its readers commit positions, and whether every reader it created was
/// disposed and the source closed once the run ended (the runtime's side of the contract, checked so a source that
/// throws from its own dispose shows up).
/// </summary>
internal sealed class TrackedSource<T>(ISource<T> inner) : ISource<T>
{
    private int _opened;
    private int _closed;
    private int _readers;
    private int _disposed;

    public bool CommitsPositions { get; private set; }

    public async ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        await inner.OpenAsync(context, cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _opened);
    }

    public ISourceReader<T> CreateReader(int partition)
    {
        var reader = inner.CreateReader(partition);
        Interlocked.Increment(ref _readers);
        CommitsPositions |= reader.CommitsPositions;
        return new Reader(this, reader);
    }

    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _closed);
        await inner.CloseAsync(cancellationToken).ConfigureAwait(false);
    }

    public string Describe() => inner.Describe();

    /// <summary>What the run left open.</summary>
    public IEnumerable<string> Unreleased()
    {
        if (_opened > _closed)
        {
            yield return "the source was opened but not closed";
        }

        if (_readers > _disposed)
        {
            yield return $"{_readers - _disposed} of {_readers} readers were not disposed";
        }
    }

    private sealed class Reader(TrackedSource<T> source, ISourceReader<T> inner) : ISourceReader<T>
    {
        public bool CommitsPositions => inner.CommitsPositions;

        public bool CanCheckpoint => inner.CanCheckpoint;

        public IReadOnlyList<SourcePosition> Positions => inner.Positions;

        public object? CheckpointState => inner.CheckpointState;

        public ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken) => inner.ReadAsync(cancellationToken);

        public ValueTask CommitAsync(CancellationToken cancellationToken) => inner.CommitAsync(cancellationToken);

        public ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken) => inner.CommitAsync(positions, cancellationToken);

        public async ValueTask DisposeAsync()
        {
            Interlocked.Increment(ref source._disposed);
            await inner.DisposeAsync().ConfigureAwait(false);
        }
    }
}
