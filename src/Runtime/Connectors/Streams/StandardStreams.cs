using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace Compiled.Connectors;

/// <summary>
/// Reads records from standard input (or a given stream), so a pipeline binary can sit in a shell pipe:
/// <c>zcat access.log.gz | etl | gzip</c>. One stream is one split: partition 0 reads it, the others end at once.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
/// <typeparam name="TCodec">The record format.</typeparam>
public sealed class StdinSource<T, TCodec> : ISource<T>
    where TCodec : IRecordCodec<T>
{
    private readonly Stream? _input;
    private readonly RecordSourceOptions _options;
    private SourceContext<T>? _context;

    /// <summary>Reads <paramref name="input"/>, or standard input when null.</summary>
    public StdinSource(Stream? input = null, RecordSourceOptions? options = null)
    {
        _input = input;
        _options = options ?? new RecordSourceOptions();
        _options.Validate();
    }

    /// <inheritdoc/>
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        _context = context;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISourceReader<T> CreateReader(int partition)
    {
        var context = _context ?? throw new InvalidOperationException("The source is not open.");
        if (partition != 0)
        {
            return EmptyReader<T>.Instance;
        }

        // Console streams (and many others) ignore the token of a pending read: a stop would wait for input that may
        // never come. Reads go through a stream that stops waiting when asked; a memory stream never blocks.
        Stream input = _input is MemoryStream memory ? memory : new InterruptibleReadStream(_input ?? Console.OpenStandardInput(), RecordSourceOptions.DefaultReadBufferBytes, leaveOpen: _input is not null);
        var pipe = PipeReader.Create(input, new StreamPipeReaderOptions(bufferSize: RecordSourceOptions.DefaultReadBufferBytes, leaveOpen: _input is not null));
        return new StreamReader(new RecordStreamReader<T, TCodec>(pipe, new RecordStreamSettings(context.SourceName, "stdin", 0, context.BatchSize, _options, context.DeadLetters, ExpectHeader: _options.HasHeader)), pipe);
    }

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe() => $"{TCodec.Format} from {(_input is null ? "standard input" : "a stream")}";

    private sealed class StreamReader(RecordStreamReader<T, TCodec> reader, PipeReader pipe) : ISourceReader<T>
    {
        public ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken) => reader.ReadBatchAsync(cancellationToken);

        public async ValueTask DisposeAsync() => await pipe.CompleteAsync().ConfigureAwait(false);
    }
}

/// <summary>
/// Reads a stream whose reads may ignore cancellation (the console's): each read of the inner stream goes into a buffer
/// of its own, and a cancelled caller stops waiting for it — the read stays pending, and a later call takes its bytes,
/// so nothing is lost, and no late read writes into memory its caller has given back.
/// </summary>
internal sealed class InterruptibleReadStream(Stream inner, int bufferSize, bool leaveOpen) : Stream
{
    private readonly byte[] _buffer = new byte[bufferSize];
    private Task<int>? _pending;
    private int _start;
    private int _end;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_start == _end && !buffer.IsEmpty)
        {
            _pending ??= inner.ReadAsync(_buffer, 0, _buffer.Length, CancellationToken.None);
            var read = await _pending.WaitAsync(cancellationToken).ConfigureAwait(false);
            _pending = null;
            (_start, _end) = (0, read);
        }

        return Take(buffer.Span);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_start == _end && !buffer.IsEmpty)
        {
            var read = _pending is { } pending ? pending.GetAwaiter().GetResult() : inner.Read(_buffer, 0, _buffer.Length);
            _pending = null;
            (_start, _end) = (0, read);
        }

        return Take(buffer);
    }

    private int Take(Span<byte> into)
    {
        var count = Math.Min(into.Length, _end - _start);
        _buffer.AsSpan(_start, count).CopyTo(into);
        _start += count;
        return count;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !leaveOpen)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>A reader with nothing to read: partitions a source has no split for.</summary>
internal sealed class EmptyReader<T> : ISourceReader<T>
{
    public static EmptyReader<T> Instance { get; } = new();

    public ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken) => ValueTask.FromResult(SourceBatch<T>.End);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>
/// Writes records to standard output (or a given stream), encoded by <typeparamref name="TCodec"/>, one batch at a
/// time so batches of different partitions never interleave within a record.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
/// <typeparam name="TCodec">The record format.</typeparam>
public sealed class StdoutSink<T, TCodec> : ISink<T>
    where TCodec : IRecordCodec<T>
{
    private readonly Stream? _output;
    private readonly Lock _lock = new();
    private Stream? _stream;
    private bool _headerWritten;

    /// <summary>Writes to <paramref name="output"/>, or standard output when null.</summary>
    public StdoutSink(Stream? output = null) => _output = output;

    /// <inheritdoc/>
    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken)
    {
        _stream = _output ?? Console.OpenStandardOutput();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    /// <inheritdoc/>
    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        if (_stream is not null)
        {
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (_output is null)
            {
                await _stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc/>
    public string Describe() => $"{TCodec.Format} to {(_output is null ? "standard output" : "a stream")}";

    private sealed class Writer(StdoutSink<T, TCodec> sink) : ISinkWriter<T>
    {
        private readonly ArrayBufferWriter<byte> _buffer = new();
        private readonly ArrayBufferWriter<byte> _scratch = new();

        public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            _buffer.ResetWrittenCount();
            foreach (var record in records.Span)
            {
                if (TCodec.Framing == RecordFraming.LengthPrefixed)
                {
                    _scratch.ResetWrittenCount();
                    TCodec.Encode(record, _scratch);
                    BinaryPrimitives.WriteInt32LittleEndian(_buffer.GetSpan(sizeof(int)), _scratch.WrittenCount);
                    _buffer.Advance(sizeof(int));
                    _buffer.Write(_scratch.WrittenSpan);
                }
                else
                {
                    TCodec.Encode(record, _buffer);
                    _buffer.Write("\n"u8);
                }
            }

            lock (sink._lock)
            {
                if (!sink._headerWritten && !TCodec.Header.IsEmpty)
                {
                    sink._stream!.Write(TCodec.Header);
                    sink._stream.Write("\n"u8);
                }

                sink._headerWritten = true;
                sink._stream!.Write(_buffer.WrittenSpan);
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            lock (sink._lock)
            {
                sink._stream!.Flush();
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
