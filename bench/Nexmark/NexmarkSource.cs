using System.Globalization;

namespace Compiled.Nexmark;

/// <summary>The three Nexmark streams as sources. Two sources of one config make the same events (joins read two).</summary>
public static class Nexmark
{
    /// <summary>The bids of <paramref name="config"/>'s events; the events of the kinds in <paramref name="alsoMake"/> are made and dropped.</summary>
    public static NexmarkSource<Bid> Bids(NexmarkConfig config, params EventKind[] alsoMake) => new(config, alsoMake);

    /// <summary>The auctions of <paramref name="config"/>'s events; the events of the kinds in <paramref name="alsoMake"/> are made and dropped.</summary>
    public static NexmarkSource<Auction> Auctions(NexmarkConfig config, params EventKind[] alsoMake) => new(config, alsoMake);

    /// <summary>The persons of <paramref name="config"/>'s events; the events of the kinds in <paramref name="alsoMake"/> are made and dropped.</summary>
    public static NexmarkSource<Person> Persons(NexmarkConfig config, params EventKind[] alsoMake) => new(config, alsoMake);
}

/// <summary>
/// The events of one kind among a Nexmark run's events, made as they are read: partition p of P takes the chunks
/// p, p + P, p + 2P, … of <see cref="NexmarkConfig.ChunkSize"/> ids, so every partition's event time advances at the
/// same pace and its own records come in event-time order. Events of the kinds a query reads from no source are made
/// too and dropped (<c>alsoMake</c>), unless <see cref="NexmarkConfig.MakeUnread"/> is off: Nexmark's figures include
/// the cost of generating every event, as a Flink job's source makes all three kinds and its views filter them.
/// </summary>
/// <typeparam name="T">The record type: <see cref="Bid"/>, <see cref="Auction"/> or <see cref="Person"/>.</typeparam>
public sealed class NexmarkSource<T> : ISource<T>, ISourceProgress
    where T : INexmarkEvent<T>
{
    private readonly NexmarkGenerator _generator;
    private readonly bool[] _alsoMake = new bool[3];
    private SourceContext<T>? _context;
    private long _covered;
    private long _dropped;

    /// <summary>A source of the records of kind <typeparamref name="T"/> among <paramref name="config"/>'s events; those of the kinds in <paramref name="alsoMake"/> are made and dropped.</summary>
    public NexmarkSource(NexmarkConfig config, params EventKind[] alsoMake)
    {
        _generator = new NexmarkGenerator(config);
        foreach (var kind in config.MakeUnread ? alsoMake : [])
        {
            _alsoMake[(int)kind] = true;
        }
    }

    /// <summary>A checksum of the events made and dropped (so that making them is work no compiler can leave out).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Event ids gone through so far, of every kind (the events a Nexmark figure counts).</summary>
    public long Covered => Interlocked.Read(ref _covered);

    /// <inheritdoc/>
    public SourceProgress Progress => new(Covered, _generator.Config.Events, "events");

    /// <inheritdoc/>
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        _context = context;
        Interlocked.Exchange(ref _covered, 0);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISourceReader<T> CreateReader(int partition)
    {
        var context = _context ?? throw new InvalidOperationException("The source is not open.");
        return new Reader(this, partition, context.Parallelism, context.BatchSize);
    }

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe() => string.Create(CultureInfo.InvariantCulture, $"nexmark {typeof(T).Name.ToLowerInvariant()}s ({_generator.Config.Events:N0} events at {_generator.Config.EventsPerSecond:N0}/s of event time)");

    private sealed class Reader(NexmarkSource<T> source, int partition, int partitions, int batchSize) : ISourceReader<T>
    {
        private readonly T[] _buffer = new T[batchSize];
        private readonly bool[] _alsoMake = source._alsoMake;
        private readonly NexmarkGenerator _generator = source._generator;
        private readonly long _chunk = source._generator.Config.ChunkSize;
        private readonly long _end = source._generator.Config.Events;
        private long _next = partition * source._generator.Config.ChunkSize;

        public ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            if (_next >= _end)
            {
                return ValueTask.FromResult(SourceBatch<T>.End);
            }

            var count = 0;
            var from = _next;
            var covered = 0L;
            var dropped = 0L;
            while (count < _buffer.Length && from < _end)
            {
                if (T.IsKind(from))
                {
                    _buffer[count++] = T.Create(_generator, from);
                }
                else if (_alsoMake[(int)NexmarkGenerator.KindOf(from)])
                {
                    dropped += _generator.Make(from);
                }

                covered++;
                from++;
                if (from % _chunk == 0)
                {
                    from += _chunk * (partitions - 1); // this partition's next chunk
                }
            }

            _next = from;
            Interlocked.Add(ref source._covered, covered);
            Interlocked.Add(ref source._dropped, dropped);
            return ValueTask.FromResult(SourceBatch<T>.Of(_buffer.AsMemory(0, count)));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
