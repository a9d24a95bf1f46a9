using System.Text;

namespace Compiled.Connectors;

/// <summary>
/// Writes each record as a line of text (its <c>ToString()</c>, or a formatter's result) to standard output, or to a
/// given writer. Lines of one batch stay together; batches of different partitions may interleave.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class ConsoleSink<T> : ISink<T>
{
    private readonly Func<T, string>? _format;
    private readonly TextWriter? _writer;
    private readonly Lock _lock = new();

    /// <summary>Creates a sink that writes to standard output.</summary>
    public ConsoleSink(Func<T, string>? format = null, TextWriter? writer = null)
    {
        _format = format;
        _writer = writer;
    }

    /// <inheritdoc/>
    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe() => _writer is null ? "console" : "text writer";

    private sealed class Writer(ConsoleSink<T> sink) : ISinkWriter<T>
    {
        private readonly StringBuilder _text = new();

        public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            _text.Clear();
            foreach (var record in records.Span)
            {
                _text.Append(sink._format is null ? record?.ToString() : sink._format(record)).Append('\n');
            }

            var target = sink._writer ?? Console.Out;
            lock (sink._lock)
            {
                target.Write(_text);
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            lock (sink._lock)
            {
                (sink._writer ?? Console.Out).Flush();
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
