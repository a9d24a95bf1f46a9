using System.Buffers;

namespace Compiled.Runtime;

/// <summary>
/// The default dead-letter sink: one JSON Lines file, appended to, fsynced on flush. Each line is a
/// <see cref="DeadLetter"/> envelope. A run checks that it can be written when it starts (<see cref="Probe"/>), but
/// creates the file and its directory only when the first dead letter arrives: a clean run leaves nothing behind.
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

    /// <summary>
    /// Checks, without creating anything, that the file can be written: it is writable if it exists, else the nearest
    /// existing directory above it is a directory that accepts a new file. Throws <see cref="NonRetryableException"/>
    /// naming the path otherwise, so that a run fails at its start rather than at its first dead letter.
    /// </summary>
    public void Probe()
    {
        var full = System.IO.Path.GetFullPath(Path);
        try
        {
            if (Directory.Exists(full))
            {
                throw new IOException("it is a directory");
            }

            if (File.Exists(full))
            {
                using var existing = new FileStream(full, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
                return;
            }

            if (WritablePaths.NearestDirectory(System.IO.Path.GetDirectoryName(full)) is { } ancestor)
            {
                WritablePaths.ProbeWrite(ancestor);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new NonRetryableException($"Dead letters cannot be written to '{Path}': {ex.Message}", ex);
        }
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
