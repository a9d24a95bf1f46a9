using System.Buffers;

namespace Compiled.Runtime;

/// <summary>
/// The default dead-letter sink: one JSON Lines file, appended to, fsynced on flush. Each line is a
/// <see cref="DeadLetter"/> envelope. Its directory is created when the first dead letter arrives.
/// </summary>
public sealed class DeadLetterFile : ISink<DeadLetter>, IConfigurable, IDisposable
{
    private FileStream? _file;

    /// <summary>Writes dead letters to <paramref name="path"/>.</summary>
    public DeadLetterFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = path;
    }

    /// <summary>The file.</summary>
    public string Path { get; private set; }

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings => [Setting.Text(nameof(Path), "The JSON Lines file dead letters are appended to", () => Path, v => Path = v)];

    /// <inheritdoc/>
    public ValueTask OpenAsync(SinkContext<DeadLetter> context, CancellationToken cancellationToken)
    {
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        _file = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISinkWriter<DeadLetter> CreateWriter(int partition) => new Writer(this);

    /// <inheritdoc/>
    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        if (_file is not null)
        {
            await _file.DisposeAsync().ConfigureAwait(false);
            _file = null;
        }
    }

    /// <inheritdoc/>
    public string Describe() => $"dead letters {Path}";

    /// <summary>Closes the file if a run left it open.</summary>
    public void Dispose() => _file?.Dispose();

    private sealed class Writer(DeadLetterFile sink) : ISinkWriter<DeadLetter>
    {
        private readonly ArrayBufferWriter<byte> _buffer = new();

        public async ValueTask WriteAsync(ReadOnlyMemory<DeadLetter> records, CancellationToken cancellationToken)
        {
            _buffer.ResetWrittenCount();
            foreach (var letter in records.Span)
            {
                DeadLetter.JsonCodec.Encode(letter, _buffer);
                _buffer.Write("\n"u8);
            }

            await sink._file!.WriteAsync(_buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            sink._file!.Flush(flushToDisk: true);
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
