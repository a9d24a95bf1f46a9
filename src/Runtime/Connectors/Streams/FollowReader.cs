using System.IO.Pipelines;

namespace Compiled.Connectors;

/// <summary>
/// Follow mode (<c>tail -F</c>) for one partition: tails each of its files through a pipe fed by a polling pump,
/// reads whichever has records first, and looks for new matching files at every poll.
/// </summary>
internal sealed class FollowReader<T, TCodec> : ISourceReader<T>
    where TCodec : IRecordCodec<T>
{
    private readonly string _path;
    private readonly FileSourceOptions _options;
    private readonly SourceContext<T> _context;
    private readonly int _partition;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Tail> _tails = [];
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private Tail? _lastServed;
    private DateTime _lastScan = DateTime.MinValue;
    private bool _saidIdle;

    public FollowReader(string path, FileSourceOptions options, SourceContext<T> context, int partition, IEnumerable<string> initialFiles)
    {
        _path = path;
        _options = options;
        _context = context;
        _partition = partition;
        foreach (var file in initialFiles)
        {
            Add(file);
        }
    }

    public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
    {
        // The batch served last is released now: start that tail's next read.
        if (_lastServed is { } last)
        {
            last.Pending = last.Reader.ReadBatchAsync(_stop.Token).AsTask();
            _lastServed = null;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        while (true)
        {
            ScanForNewFiles();
            if (_tails.Count == 0 && !_saidIdle)
            {
                // No file of this partition exists yet (one file at parallelism 2, say): until one appears, this
                // partition must not hold back the watermarks of the windows downstream.
                _saidIdle = true;
                return SourceBatch<T>.Idle;
            }

            var waits = _tails.Select(t => (Task)t.Pending!).Append(Task.Delay(_options.PollInterval, linked.Token)).ToArray();
            var done = await Task.WhenAny(waits).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            var tail = _tails.FirstOrDefault(t => t.Pending == done);
            if (tail is null)
            {
                continue; // the poll timer: look for new files again
            }

            var batch = await tail.Pending!.ConfigureAwait(false);
            if (batch.IsEnd)
            {
                if (!_stop.IsCancellationRequested && await tail.Pump.ConfigureAwait(false))
                {
                    // The file was replaced or truncated: its old content is read to its end (an unterminated last
                    // line counted as a record); the new content is a new file, header and line numbers included.
                    _tails.Remove(tail);
                    Open(tail.File);
                    continue;
                }

                tail.Pending = Task.Delay(Timeout.Infinite, _stop.Token).ContinueWith(_ => SourceBatch<T>.End, TaskScheduler.Default);
                continue;
            }

            _lastServed = tail;
            return batch;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var tail in _tails)
        {
            try
            {
                await tail.Pump.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // stopping
            }
        }

        _stop.Dispose();
    }

    private void ScanForNewFiles()
    {
        if (DateTime.UtcNow - _lastScan < _options.PollInterval)
        {
            return;
        }

        _lastScan = DateTime.UtcNow;
        foreach (var file in FilePattern.Resolve(_path))
        {
            if (!_known.Contains(file) && FilePattern.PartitionOf(file, _context.Parallelism) == _partition)
            {
                Add(file);
            }
        }
    }

    private void Add(string file)
    {
        _known.Add(file);
        Open(file);
    }

    /// <summary>Starts tailing <paramref name="file"/> from its start.</summary>
    private void Open(string file)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: RecordSourceOptions.DefaultReadBufferBytes * 16, resumeWriterThreshold: RecordSourceOptions.DefaultReadBufferBytes * 8));
        var reader = new RecordStreamReader<T, TCodec>(pipe.Reader, new RecordStreamSettings(
            _context.SourceName,
            file,
            _partition,
            _context.BatchSize,
            _options,
            _context.DeadLetters,
            ExpectHeader: _options.HasHeader,
            LastRecordMayBeUnterminated: false));
        var tail = new Tail(file, reader, Task.Run(() => PumpAsync(file, pipe.Writer, reader, _options.PollInterval, _stop.Token)));
        tail.Pending = reader.ReadBatchAsync(_stop.Token).AsTask();
        _tails.Add(tail);
    }

    /// <summary>
    /// Copies a growing file into the pipe; at its end, polls for more. Returns true when the file shrank or was
    /// replaced (its old content is in the pipe, complete): the caller reads the new content as a new file.
    /// </summary>
    private static async Task<bool> PumpAsync(string file, PipeWriter writer, RecordStreamReader<T, TCodec> reader, TimeSpan poll, CancellationToken stop)
    {
        FileStream? stream = null;
        long position = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (stream is null)
                {
                    stream = TryOpen(file);
                    if (stream is null) // not there yet, or a link to a file not there
                    {
                        await Task.Delay(poll, stop).ConfigureAwait(false);
                        continue;
                    }
                }

                var read = await stream.ReadAsync(writer.GetMemory(RecordSourceOptions.DefaultReadBufferBytes), stop).ConfigureAwait(false);
                if (read > 0)
                {
                    writer.Advance(read);
                    position += read;
                    var flushed = await writer.FlushAsync(stop).ConfigureAwait(false);
                    if (flushed.IsCompleted)
                    {
                        break;
                    }

                    continue;
                }

                if (FilePattern.FileBehind(file) is not { } info || info.Length < position || Replaced(file, info, stream))
                {
                    // Gone, truncated, or replaced (log rotation: a new file renamed over it, a link pointed elsewhere),
                    // once the old one is read to its end: that content ends here, and whatever the name holds next is
                    // read from its start through a reader of its own — never joined to an unterminated last line of
                    // the old content, and its header read as a header.
                    reader.EndIsFinal();
                    return true;
                }

                await Task.Delay(poll, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // the run is stopping
        }
        finally
        {
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }

            await writer.CompleteAsync().ConfigureAwait(false);
        }

        return false;
    }

    /// <summary>
    /// Whether <paramref name="file"/> now names another file than the one open (<paramref name="named"/>, looked at
    /// before the open file is): the open one cannot have shrunk since, so a longer named file is another one; one of
    /// the same length is another one if it was last written at another time, looked at again after the open file (so
    /// that the same file touched between the two looks is not taken for a new one).
    /// </summary>
    private static bool Replaced(string file, FileInfo named, FileStream open)
    {
        var length = RandomAccess.GetLength(open.SafeFileHandle);
        if (named.Length != length)
        {
            return named.Length > length; // shorter: the open file grew since the look, read on
        }

        var written = File.GetLastWriteTimeUtc(open.SafeFileHandle);
        return named.LastWriteTimeUtc != written && FilePattern.FileBehind(file) is { } again && again.LastWriteTimeUtc != written;
    }

    private static FileStream? TryOpen(string file)
    {
        if (FilePattern.FileBehind(file) is null)
        {
            return null;
        }

        try
        {
            return new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null; // removed between the look and the open (a rotation)
        }
    }

    private sealed class Tail(string file, RecordStreamReader<T, TCodec> reader, Task<bool> pump)
    {
        public string File { get; } = file;

        public RecordStreamReader<T, TCodec> Reader { get; } = reader;

        public Task<bool> Pump { get; } = pump;

        public Task<SourceBatch<T>>? Pending { get; set; }
    }
}
