using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Pipelines;
using Compiled.Runtime;

namespace Compiled.Connectors;

/// <summary>Options of <see cref="FileSink{T, TCodec}"/>.</summary>
public sealed class FileSinkOptions
{
    /// <summary>
    /// A file is closed and a new one started past 128 MiB: small enough to hand over downstream in pieces, large
    /// enough that a long run does not make thousands of files.
    /// </summary>
    public const long DefaultRollBytes = 128L * 1024 * 1024;

    /// <summary>The start of file names: <c>{prefix}-{partition}-{sequence}.{format}</c>. Default: <c>part</c>.</summary>
    public string Prefix { get; set; } = "part";

    /// <summary>Start a new file when the current one reaches this size. Default: <see cref="DefaultRollBytes"/>; null: never.</summary>
    public long? RollBytes { get; set; } = DefaultRollBytes;

    /// <summary>Start a new file when the current one is this old (checked when records arrive). Default: null, never.</summary>
    public TimeSpan? RollInterval { get; set; }

    /// <summary>For formats with a header (CSV): write it at the start of each file. Default: true.</summary>
    public bool WriteHeader { get; set; } = true;

    /// <summary>The options as settings; <paramref name="hasHeader"/>: whether the format has a header row.</summary>
    public IEnumerable<Setting> Settings(bool hasHeader)
    {
        yield return Setting.Text(nameof(Prefix), "The start of file names: {prefix}-{partition}-{sequence}.{format}", () => Prefix, v => Prefix = v);
        yield return Setting.OptionalNumber(nameof(RollBytes), "Start a new file when the current one reaches this many bytes", () => RollBytes, v => RollBytes = v);
        yield return Setting.Duration(nameof(RollInterval), "Start a new file when the current one is this old", () => RollInterval, v => RollInterval = v, optional: true);
        if (hasHeader)
        {
            yield return Setting.Boolean(nameof(WriteHeader), "Write the header row at the start of each file", () => WriteHeader, v => WriteHeader = v);
        }
    }

    /// <summary>Checks the options, naming the bad one.</summary>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(Prefix);
        if (RollBytes is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(RollBytes), RollBytes, "RollBytes must be positive.");
        }

        if (RollInterval is { } interval && interval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RollInterval), RollInterval, "RollInterval must be positive.");
        }
    }
}

/// <summary>
/// Writes records to files in a directory, one file at a time per partition, encoded by <typeparamref name="TCodec"/>.
/// A file is written as <c>*.inprogress</c> and renamed to its final name only when it is complete (rolled, a
/// checkpoint, or the end of the run): a reader listing the directory never sees half a file. Files roll by size
/// and/or age, and at every checkpoint of a source that commits its position (Kafka), so that a committed record is
/// always in a complete file.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
/// <typeparam name="TCodec">The record format.</typeparam>
public sealed class FileSink<T, TCodec> : ISink<T>, IConfigurable
    where TCodec : IRecordCodec<T>
{
    private string _directory;
    private readonly FileSinkOptions _options;
    private long _filesCompleted;

    /// <summary>Writes into <paramref name="directory"/> (created if missing).</summary>
    public FileSink(string directory, FileSinkOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        _directory = directory;
        _options = options ?? new FileSinkOptions();
        _options.Validate();
    }

    /// <summary>The directory written to.</summary>
    public string Directory => _directory;

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings =>
    [
        Setting.Text(nameof(Directory), "The directory written to (created if missing)", () => _directory, v => _directory = v),
        .. _options.Settings(!TCodec.Header.IsEmpty),
    ];

    /// <summary>Files completed (renamed to their final name) so far.</summary>
    public long FilesCompleted => Interlocked.Read(ref _filesCompleted);

    /// <inheritdoc/>
    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken)
    {
        _options.Validate();
        try
        {
            WritablePaths.NearestDirectory(_directory); // names a file in the way
            System.IO.Directory.CreateDirectory(_directory);
            WritablePaths.ProbeWrite(_directory); // a directory the process cannot write fails here, before any record
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new NonRetryableException($"Directory '{_directory}' cannot be written: {ex.Message}", ex); // a bad path: exit code 2
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this, partition);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe() => $"{TCodec.Format} files {Path.Combine(_directory, _options.Prefix)}-*";

    private sealed class Writer(FileSink<T, TCodec> sink, int partition) : ISinkWriter<T>
    {
        private readonly ArrayBufferWriter<byte> _scratch = new();
        private FileStream? _stream;
        private PipeWriter? _pipe;
        private string? _inProgress;
        private string? _final;
        private long _bytes;
        private DateTime _openedAt;
        private int _sequence;

        public async ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            var options = sink._options;
            for (var i = 0; i < records.Length; i++)
            {
                if (_pipe is not null && (options.RollBytes is { } limit && _bytes >= limit || options.RollInterval is { } age && DateTime.UtcNow - _openedAt >= age))
                {
                    await CompleteFileAsync(cancellationToken).ConfigureAwait(false);
                }

                if (_pipe is null)
                {
                    Open();
                }

                _bytes += Encode(records.Span[i], _pipe!);
            }

            await _pipe!.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        public async ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            if (_pipe is not null)
            {
                await _pipe.FlushAsync(cancellationToken).ConfigureAwait(false);
                _stream!.Flush(flushToDisk: true);
            }
        }

        /// <summary>
        /// A checkpoint (the source is about to commit its position past these records) completes the current file:
        /// a record the source will not send again must be in a file under its final name, not in an
        /// <c>*.inprogress</c> file that a crash would leave behind. With a source that commits (Kafka) a file ends
        /// at least every checkpoint interval.
        /// </summary>
        public ValueTask CommitAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => CompleteFileAsync(cancellationToken);

        public async ValueTask DisposeAsync() => await CompleteFileAsync(CancellationToken.None).ConfigureAwait(false);

        /// <summary>
        /// The partition did not complete (the run failed or was aborted): what was written is flushed to the
        /// <c>*.inprogress</c> file, which keeps that name — partial output is never presented as a complete file.
        /// </summary>
        public async ValueTask AbortAsync()
        {
            if (_pipe is null)
            {
                return;
            }

            try
            {
                await _pipe.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                await _pipe.CompleteAsync().ConfigureAwait(false);
            }
            finally
            {
                await _stream!.DisposeAsync().ConfigureAwait(false);
                _pipe = null;
                _stream = null;
            }
        }

        private long Encode(in T record, PipeWriter output)
        {
            if (TCodec.Framing == RecordFraming.LengthPrefixed)
            {
                _scratch.ResetWrittenCount();
                TCodec.Encode(record, _scratch);
                var prefix = output.GetSpan(sizeof(int));
                BinaryPrimitives.WriteInt32LittleEndian(prefix, _scratch.WrittenCount);
                output.Advance(sizeof(int));
                output.Write(_scratch.WrittenSpan);
                return sizeof(int) + _scratch.WrittenCount;
            }

            var before = output.UnflushedBytes;
            TCodec.Encode(record, output);
            output.Write("\n"u8);
            return output.UnflushedBytes - before;
        }

        private void Open()
        {
            // The next sequence number free for both the final and the in-progress name.
            do
            {
                _final = Path.Combine(sink._directory, string.Create(CultureInfo.InvariantCulture, $"{sink._options.Prefix}-{partition:D3}-{_sequence++:D5}.{TCodec.Format}"));
                _inProgress = _final + ".inprogress";
            }
            while (File.Exists(_final) || File.Exists(_inProgress));

            _stream = new FileStream(_inProgress, FileMode.CreateNew, FileAccess.Write, FileShare.Read, bufferSize: 1);
            _pipe = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: RecordSourceOptions.DefaultReadBufferBytes, leaveOpen: true));
            _openedAt = DateTime.UtcNow;
            _bytes = 0;
            if (sink._options.WriteHeader && !TCodec.Header.IsEmpty)
            {
                _pipe.Write(TCodec.Header);
                _pipe.Write("\n"u8);
                _bytes += TCodec.Header.Length + 1;
            }
        }

        /// <summary>Flushes, fsyncs and closes the current file, then renames it to its final name.</summary>
        private async ValueTask CompleteFileAsync(CancellationToken cancellationToken)
        {
            if (_pipe is null)
            {
                return;
            }

            await _pipe.FlushAsync(cancellationToken).ConfigureAwait(false);
            await _pipe.CompleteAsync().ConfigureAwait(false);
            _stream!.Flush(flushToDisk: true);
            await _stream.DisposeAsync().ConfigureAwait(false);
            File.Move(_inProgress!, _final!, overwrite: false);
            Interlocked.Increment(ref sink._filesCompleted);
            _pipe = null;
            _stream = null;
        }
    }
}
