using System.Globalization;

namespace Compiled.Connectors;

/// <summary>Produces the record at a position, for <see cref="GeneratorSource{T, TGenerator}"/>.</summary>
/// <typeparam name="T">The record type.</typeparam>
public interface IRecordGenerator<T>
{
    /// <summary>The record at <paramref name="index"/> (0-based). Called once per index; must be thread-safe across partitions.</summary>
    T Generate(long index);
}

/// <summary>
/// A bounded synthetic source of <c>count</c> records made by a generator struct: records are produced in batches,
/// partitions take contiguous index ranges, and the generator call is specialised and inlined (no delegate), so the
/// source itself costs what the generator costs. Meant for benchmarks and load tests.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
/// <typeparam name="TGenerator">The generator.</typeparam>
public sealed class GeneratorSource<T, TGenerator> : ISource<T>, IConfigurable, ISourceProgress
    where TGenerator : struct, IRecordGenerator<T>
{
    private readonly TGenerator _generator;
    private long _count;
    private long _produced;
    private SourceContext<T>? _context;

    /// <summary>Creates a source of <paramref name="count"/> records from <paramref name="generator"/>.</summary>
    public GeneratorSource(long count, TGenerator generator = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _count = count;
        _generator = generator;
    }

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings => [Setting.Number("Count", "How many records to generate", () => _count, v => _count = v, 0)];

    /// <inheritdoc/>
    public SourceProgress Progress => new(Interlocked.Read(ref _produced), _count, "records");

    /// <inheritdoc/>
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        _context = context;
        Interlocked.Exchange(ref _produced, 0);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISourceReader<T> CreateReader(int partition)
    {
        var context = _context ?? throw new InvalidOperationException("The source is not open.");
        var (start, length) = Splits.Range(_count, context.Parallelism, partition);
        return new Reader(this, start, start + length, context.BatchSize);
    }

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe() => string.Create(CultureInfo.InvariantCulture, $"generator ({_count:N0} records)");

    private sealed class Reader(GeneratorSource<T, TGenerator> source, long next, long end, int batchSize) : ISourceReader<T>
    {
        private readonly T[] _buffer = new T[(int)Math.Min(batchSize, Math.Max(end - next, 1))];
        private readonly TGenerator _generator = source._generator;
        private long _next = next;

        public ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            if (_next >= end)
            {
                return ValueTask.FromResult(SourceBatch<T>.End);
            }

            var count = (int)Math.Min(_buffer.Length, end - _next);
            var buffer = _buffer.AsSpan(0, count);
            var first = _next;
            var generate = _generator; // a local copy: no defensive copy per call, and the JIT keeps it in registers
            for (var i = 0; i < buffer.Length; i++)
            {
                buffer[i] = generate.Generate(first + i);
            }

            _next += count;
            Interlocked.Add(ref source._produced, count);
            return ValueTask.FromResult(SourceBatch<T>.Of(new ReadOnlyMemory<T>(_buffer, 0, count)));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>
/// A bounded synthetic source of <c>count</c> records made by a function of the index. Convenient; for benchmarks
/// prefer <see cref="GeneratorSource{T, TGenerator}"/>, whose generator call is inlined.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class GeneratorSource<T> : ISource<T>, IConfigurable, ISourceProgress
{
    private readonly GeneratorSource<T, FunctionGenerator> _inner;

    /// <summary>Creates a source of <paramref name="count"/> records, the i-th being <paramref name="generate"/>(i).</summary>
    public GeneratorSource(long count, Func<long, T> generate)
    {
        ArgumentNullException.ThrowIfNull(generate);
        _inner = new GeneratorSource<T, FunctionGenerator>(count, new FunctionGenerator(generate));
    }

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings => _inner.Settings;

    /// <inheritdoc/>
    public SourceProgress Progress => _inner.Progress;

    /// <inheritdoc/>
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken) => _inner.OpenAsync(context, cancellationToken);

    /// <inheritdoc/>
    public ISourceReader<T> CreateReader(int partition) => _inner.CreateReader(partition);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => _inner.CloseAsync(cancellationToken);

    /// <inheritdoc/>
    public string Describe() => _inner.Describe();

    /// <summary>Adapts a function to <see cref="IRecordGenerator{T}"/>.</summary>
    public readonly struct FunctionGenerator(Func<long, T> generate) : IRecordGenerator<T>
    {
        /// <inheritdoc/>
        public T Generate(long index) => generate(index);
    }
}
