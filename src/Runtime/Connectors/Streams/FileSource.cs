using System.Globalization;
using System.IO.Pipelines;
using System.Text;

namespace Compiled.Connectors;

/// <summary>Options of <see cref="FileSource{T, TCodec}"/>.</summary>
public sealed class FileSourceOptions : RecordSourceOptions
{
    /// <summary>
    /// Files larger than this are split into chunks read by different partitions: 64 MiB, so that opening and aligning
    /// a chunk costs nothing next to reading it, while a large file still spreads over every core.
    /// </summary>
    public const long DefaultChunkBytes = 64L * 1024 * 1024;

    /// <summary>How often follow mode looks for appended data and new files: often enough to feel live, rarely enough to cost nothing.</summary>
    public static readonly TimeSpan DefaultPollInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>The chunk size for splitting large files (line-framed formats only). Default: <see cref="DefaultChunkBytes"/>.</summary>
    public long ChunkBytes { get; set; } = DefaultChunkBytes;

    /// <summary>
    /// Keep reading like <c>tail -F</c>: wait at the end of each file for appended lines, pick up new files that
    /// match the path, and start over when a file shrinks (truncated or replaced). The source then never ends on its
    /// own; stop the run to end it. A last line still being written (no line break yet) is left unread.
    /// </summary>
    public bool Follow { get; set; }

    /// <summary>How often follow mode polls. Default: <see cref="DefaultPollInterval"/>.</summary>
    public TimeSpan PollInterval { get; set; } = DefaultPollInterval;

    /// <inheritdoc/>
    public override IEnumerable<Setting> Settings(bool hasHeader)
    {
        foreach (var setting in base.Settings(hasHeader))
        {
            yield return setting;
        }

        yield return Setting.Number(nameof(ChunkBytes), "Files larger than this are split into chunks read by different partitions", () => ChunkBytes, v => ChunkBytes = v, 1024);
        yield return Setting.Boolean(nameof(Follow), "Keep reading like tail -F: appended lines and new files; the run never ends on its own", () => Follow, v => Follow = v);
        yield return Setting.Duration(nameof(PollInterval), "How often follow mode looks for appended data and new files", () => PollInterval, v => PollInterval = v!.Value);
    }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (ChunkBytes < 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(ChunkBytes), ChunkBytes, "ChunkBytes must be at least 1024.");
        }

        if (PollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(PollInterval), PollInterval, "PollInterval must be positive.");
        }
    }
}

/// <summary>
/// Reads records from a file, a directory, or files matching a pattern (<c>logs/*.jsonl</c>, <c>logs/**/*.csv</c>),
/// decoded by <typeparamref name="TCodec"/>. Files are spread over the partitions; a file larger than
/// <see cref="FileSourceOptions.ChunkBytes"/> is split into chunks at line boundaries (line-framed formats), each
/// line read by exactly one partition. Malformed records go to the dead-letter channel with their file and line
/// (or byte offset, in chunks after the first).
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
/// <typeparam name="TCodec">The record format.</typeparam>
public sealed class FileSource<T, TCodec> : ISource<T>, IConfigurable, ISourceProgress
    where TCodec : IRecordCodec<T>
{
    private string _path;
    private readonly FileSourceOptions _options;
    private SourceContext<T>? _context;
    private List<FileSplit>[] _assignments = [];
    private long _bytes;
    private long _bytesDone;

    /// <summary>Reads <paramref name="path"/>: a file, a directory (its files), or a pattern with <c>*</c>, <c>?</c>, <c>**</c>.</summary>
    public FileSource(string path, FileSourceOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        _path = path;
        _options = options ?? new FileSourceOptions();
        _options.Validate();
    }

    /// <summary>The path or pattern read.</summary>
    public string Path => _path;

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings =>
    [
        Setting.Text(nameof(Path), "The file, directory or pattern (*, ?, **) to read", () => _path, v => _path = v),
        .. _options.Settings(!TCodec.Header.IsEmpty),
    ];

    /// <inheritdoc/>
    public SourceProgress Progress => new(Interlocked.Read(ref _bytesDone), _options.Follow ? null : _bytes, "bytes");

    /// <inheritdoc/>
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        _options.Validate();
        _bytes = 0;
        Interlocked.Exchange(ref _bytesDone, 0);
        var files = FilePattern.Resolve(_path);
        if (files.Count == 0 && !_options.Follow)
        {
            throw new FileNotFoundException($"No file matches '{_path}'.", _path);
        }

        var splits = new List<FileSplit>();
        foreach (var file in files)
        {
            var behind = FilePattern.FileBehind(file);
            if (behind is null && !_options.Follow)
            {
                // Listed, but a symbolic link to nothing: refused before a record is read, not after the other files' output.
                throw new FileNotFoundException($"'{file}' is a symbolic link to '{new FileInfo(file).LinkTarget}', which does not exist (or the links loop).", file);
            }

            var length = behind?.Length ?? 0;
            _bytes += length;
            if (TCodec.Framing == RecordFraming.Lines && !_options.Follow && length > _options.ChunkBytes)
            {
                for (long start = 0; start < length; start += _options.ChunkBytes)
                {
                    splits.Add(new FileSplit(file, start, Math.Min(start + _options.ChunkBytes, length)));
                }
            }
            else
            {
                splits.Add(new FileSplit(file, 0, long.MaxValue));
            }
        }

        // Follow mode places files by a hash of their path, so that a partition finding a new file knows it is its own.
        _assignments = _options.Follow
            ? Enumerable.Range(0, context.Parallelism).Select(p => splits.Where(s => FilePattern.PartitionOf(s.File, context.Parallelism) == p).ToList()).ToArray()
            : FileSplit.Assign(splits, context.Parallelism);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISourceReader<T> CreateReader(int partition)
    {
        var context = _context ?? throw new InvalidOperationException("The source is not open.");
        return _options.Follow
            ? new FollowReader<T, TCodec>(_path, _options, context, partition, _assignments[partition].Select(s => s.File))
            : new SplitReader(this, context, partition, _assignments[partition]);
    }

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe() => string.Create(CultureInfo.InvariantCulture, $"{TCodec.Format} files {_path}{(_options.Follow ? " (follow)" : _context is null ? "" : $" ({_bytes:N0} bytes)")}");

    internal static RecordStreamReader<T, TCodec> OpenSplit(FileSplit split, SourceContext<T> context, RecordSourceOptions options, int partition, out FileStream stream)
    {
        stream = new FileStream(split.File, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1, FileOptions.SequentialScan);
        var aligned = split.Start > 0;
        if (aligned)
        {
            // Start one byte early: the reader skips to the first line break at or after it, so a line that
            // straddles the chunk's start is left to the chunk before.
            stream.Seek(split.Start - 1, SeekOrigin.Begin);
        }

        var pipe = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: RecordSourceOptions.DefaultReadBufferBytes, minimumReadSize: RecordSourceOptions.DefaultReadBufferBytes / 4, leaveOpen: true));
        return new RecordStreamReader<T, TCodec>(pipe, new RecordStreamSettings(
            context.SourceName,
            split.File,
            partition,
            context.BatchSize,
            options,
            context.DeadLetters,
            StartOffset: aligned ? split.Start - 1 : 0,
            EndOffset: split.End,
            AlignToLine: aligned,
            LinesKnown: !aligned,
            ExpectHeader: !aligned && options.HasHeader,
            FillBatches: true));
    }

    /// <summary>Reads a partition's splits one after another.</summary>
    private sealed class SplitReader(FileSource<T, TCodec> source, SourceContext<T> context, int partition, List<FileSplit> splits) : ISourceReader<T>
    {
        private int _next;
        private RecordStreamReader<T, TCodec>? _current;
        private FileStream? _stream;
        private long _reported;

        public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                if (_current is null)
                {
                    if (_next >= splits.Count)
                    {
                        return SourceBatch<T>.End;
                    }

                    _current = OpenSplit(splits[_next++], context, source._options, partition, out _stream);
                    _reported = _current.Offset;
                }

                var batch = await _current.ReadBatchAsync(cancellationToken).ConfigureAwait(false);
                var offset = _current.Offset;
                Interlocked.Add(ref source._bytesDone, offset - _reported);
                _reported = offset;
                if (!batch.IsEnd)
                {
                    return batch;
                }

                await CloseCurrentAsync().ConfigureAwait(false);
            }
        }

        public async ValueTask DisposeAsync() => await CloseCurrentAsync().ConfigureAwait(false);

        private async ValueTask CloseCurrentAsync()
        {
            _current = null;
            if (_stream is not null)
            {
                await _stream.DisposeAsync().ConfigureAwait(false);
                _stream = null;
            }
        }
    }
}

/// <summary>A file, or a chunk of one: the lines that start in [Start, End).</summary>
internal sealed record FileSplit(string File, long Start, long End)
{
    public long Length => End == long.MaxValue ? FilePattern.LengthOf(File) : End - Start;

    /// <summary>Spreads splits over partitions, largest first onto the least loaded; each partition reads its own in file order.</summary>
    public static List<FileSplit>[] Assign(List<FileSplit> splits, int parallelism)
    {
        var partitions = Enumerable.Range(0, parallelism).Select(_ => new List<FileSplit>()).ToArray();
        var load = new long[parallelism];
        foreach (var split in splits.OrderByDescending(s => s.Length).ThenBy(s => s.File, StringComparer.Ordinal).ThenBy(s => s.Start))
        {
            var least = Array.IndexOf(load, load.Min());
            partitions[least].Add(split);
            load[least] += Math.Max(split.Length, 1);
        }

        foreach (var list in partitions)
        {
            list.Sort((a, b) => a.File == b.File ? a.Start.CompareTo(b.Start) : string.CompareOrdinal(a.File, b.File));
        }

        return partitions;
    }
}

/// <summary>Resolves a file, a directory, or a pattern to files (sorted; hidden and in-progress files left out).</summary>
internal static class FilePattern
{
    public static List<string> Resolve(string path)
    {
        if (Directory.Exists(path))
        {
            return Visible(Directory.EnumerateFiles(path));
        }

        if (path.IndexOfAny(['*', '?']) < 0)
        {
            return File.Exists(path) ? [path] : [];
        }

        var recursive = path.Contains("**", StringComparison.Ordinal);
        var pattern = System.IO.Path.GetFileName(path);
        var directory = System.IO.Path.GetDirectoryName(path) ?? ".";
        if (recursive)
        {
            // "logs/**/*.csv": below logs, at any depth; "logs/**": every file below logs.
            var at = directory.IndexOf("**", StringComparison.Ordinal);
            directory = at >= 0 ? directory[..at].TrimEnd('/', '\\') : directory;
            pattern = pattern.Replace("**", "*", StringComparison.Ordinal);
        }

        directory = directory.Length == 0 ? "." : directory;
        return Directory.Exists(directory)
            ? Visible(Directory.EnumerateFiles(directory, pattern, recursive ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly))
            : [];
    }

    private static List<string> Visible(IEnumerable<string> files) => files
        .Where(f => !System.IO.Path.GetFileName(f).StartsWith('.') && !f.EndsWith(".inprogress", StringComparison.Ordinal))
        .Order(StringComparer.Ordinal)
        .ToList();

    /// <summary>
    /// The file <paramref name="path"/> reads, following symbolic links (a <see cref="FileInfo"/> of a link describes the
    /// link: its length is that of the target's name); null when it does not exist, a link points nowhere, or links loop.
    /// </summary>
    public static FileInfo? FileBehind(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is null)
        {
            return info.Exists ? info : null;
        }

        try
        {
            return info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo { Exists: true } target ? target : null;
        }
        catch (IOException)
        {
            return null; // too many levels of links
        }
    }

    /// <summary>The length of the file <paramref name="path"/> reads (through links); 0 when there is none.</summary>
    public static long LengthOf(string path) => FileBehind(path)?.Length ?? 0;

    /// <summary>A stable partition for a file discovered later (follow mode).</summary>
    public static int PartitionOf(string file, int parallelism)
    {
        var hash = 0u;
        foreach (var b in Encoding.UTF8.GetBytes(System.IO.Path.GetFullPath(file)))
        {
            hash = (hash * 31) + b;
        }

        return (int)(hash % (uint)parallelism);
    }
}
