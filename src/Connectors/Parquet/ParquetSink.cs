using System.Globalization;
using System.Text;
using Compiled.Connectors;
using Parquet;
using Parquet.Schema;

namespace Compiled.Parquet;

/// <summary>How Parquet pages are compressed.</summary>
public enum ParquetCompression
{
    /// <summary>Zstandard at its fastest level: about the size of gzip at close to the speed of no compression.</summary>
    Zstd,

    /// <summary>Snappy: what many older readers expect.</summary>
    Snappy,

    /// <summary>Gzip.</summary>
    Gzip,

    /// <summary>No compression.</summary>
    None,
}

/// <summary>Options of a <see cref="ParquetSink{T}"/>; every one is also a setting.</summary>
public sealed class ParquetSinkOptions
{
    /// <summary>Rows per row group: 100 000, enough for compression and column statistics to work well.</summary>
    public const int DefaultRowGroupRows = 100_000;

    /// <summary>A file is completed once it passes 128 MiB.</summary>
    public const long DefaultRollBytes = 128L * 1024 * 1024;

    /// <summary>The lake's root directory (created if missing).</summary>
    public string Directory { get; set; } = "";

    /// <summary>
    /// Hive-style partition directories under <see cref="Directory"/>, as a template of record members:
    /// <c>dt={PlacedAt:yyyy-MM-dd}/hour={PlacedAt:HH}</c> or <c>country={Country}</c>. A placeholder is a member name
    /// (or its column name) with an optional .NET format; <c>DateTimeOffset</c> values are formatted in UTC; a null value
    /// is <c>__HIVE_DEFAULT_PARTITION__</c>; characters Hive escapes (<c>/ = : % #</c> …) are written as <c>%XX</c>.
    /// Empty (the default): every file directly in <see cref="Directory"/>.
    /// </summary>
    public string PartitionBy { get; set; } = "";

    /// <summary>The start of file names: <c>{prefix}-{run}-{partition}-{sequence}.parquet</c>. Default: <c>part</c>.</summary>
    public string Prefix { get; set; } = "part";

    /// <summary>Page compression. Default: <see cref="ParquetCompression.Zstd"/>.</summary>
    public ParquetCompression Compression { get; set; }

    /// <summary>Rows per row group. Default: <see cref="DefaultRowGroupRows"/>.</summary>
    public int RowGroupRows { get; set; } = DefaultRowGroupRows;

    /// <summary>Complete a file once it reaches this size (checked after each row group). Default: <see cref="DefaultRollBytes"/>; null: never.</summary>
    public long? RollBytes { get; set; } = DefaultRollBytes;

    /// <summary>Complete a file once it is this old (checked when records arrive). Default: null, never (checkpoints still complete files).</summary>
    public TimeSpan? RollInterval { get; set; }

    /// <summary>How member names become column names. Default: snake_case.</summary>
    public ColumnNaming ColumnNaming { get; set; }

    /// <summary>The precision of <c>decimal</c> columns (at most 38). Default: 38.</summary>
    public int DecimalPrecision { get; set; } = 38;

    /// <summary>The scale of <c>decimal</c> columns; a value with more digits after the point fails rather than being rounded. Default: 18.</summary>
    public int DecimalScale { get; set; } = 18;

    /// <summary>
    /// Commit files and the source's positions together (exactly-once with a Kafka source): the positions are kept in
    /// the lake (<c>_compiled/</c>) and the source resumes from them. The sink must then be the pipeline's only sink.
    /// </summary>
    public bool ExactlyOnce { get; set; }

    /// <summary>The options as settings.</summary>
    public IEnumerable<Setting> Settings() =>
    [
        Setting.Text(nameof(Directory), "The lake's root directory (created if missing)", () => Directory, v => Directory = v),
        Setting.Text(nameof(PartitionBy), "Partition directories from record members, e.g. dt={PlacedAt:yyyy-MM-dd}/hour={PlacedAt:HH}", () => PartitionBy, v => PartitionBy = v),
        Setting.Text(nameof(Prefix), "The start of file names", () => Prefix, v => Prefix = v),
        Setting.Choice(nameof(Compression), "Page compression", () => Compression, v => Compression = v),
        Setting.Number(nameof(RowGroupRows), "Rows per row group", () => RowGroupRows, v => RowGroupRows = (int)v, 1, int.MaxValue),
        Setting.OptionalNumber(nameof(RollBytes), "Complete a file once it reaches this many bytes", () => RollBytes, v => RollBytes = v),
        Setting.Duration(nameof(RollInterval), "Complete a file once it is this old", () => RollInterval, v => RollInterval = v, optional: true),
        Setting.Choice(nameof(ColumnNaming), "How member names become column names", () => ColumnNaming, v => ColumnNaming = v),
        Setting.Number(nameof(DecimalPrecision), "The precision of decimal columns", () => DecimalPrecision, v => DecimalPrecision = (int)v, 1, 38),
        Setting.Number(nameof(DecimalScale), "The scale of decimal columns", () => DecimalScale, v => DecimalScale = (int)v, 0, 38),
        Setting.Boolean(nameof(ExactlyOnce), "Commit files and source positions together, and resume from them", () => ExactlyOnce, v => ExactlyOnce = v),
    ];

    /// <summary>Checks the options, naming the bad one.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Directory))
        {
            throw new ArgumentException("Directory is required.", nameof(Directory));
        }

        ArgumentException.ThrowIfNullOrWhiteSpace(Prefix);
        if (Prefix.IndexOfAny(['/', '\\']) >= 0)
        {
            throw new ArgumentException("Prefix is a file name start, not a path.", nameof(Prefix));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(RowGroupRows, 1, nameof(RowGroupRows));
        if (RollBytes is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(RollBytes), RollBytes, "RollBytes must be positive.");
        }

        if (RollInterval is { } interval && interval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RollInterval), RollInterval, "RollInterval must be positive.");
        }

        if (DecimalPrecision is < 1 or > 38 || DecimalScale < 0 || DecimalScale > DecimalPrecision)
        {
            throw new ArgumentOutOfRangeException(nameof(DecimalScale), $"DECIMAL({DecimalPrecision}, {DecimalScale}) is not a Parquet decimal: the precision must be 1 to 38 and the scale 0 to the precision.");
        }
    }
}

/// <summary>
/// Writes records to Parquet files in a lake directory — columns from the record type at compile time, Hive-style
/// partition directories from record members, row groups of <see cref="ParquetSinkOptions.RowGroupRows"/> rows, files
/// rolled by size and age. A file is written as <c>*.parquet.inprogress</c> and gets its final name only when it is
/// committed: at a checkpoint (Kafka), a roll or the end of the run — so a reader of <c>**/*.parquet</c> never sees a
/// partial file.
/// </summary>
/// <remarks>
/// With <see cref="ParquetSinkOptions.ExactlyOnce"/>, files wait for the checkpoint even when they roll, and a
/// checkpoint commits them together with the source positions they cover: the partition writes a manifest (files and
/// positions) under <c>_compiled/</c> — the commit point — then renames the files and stores the positions; a run that
/// starts finishes any manifest a crash left behind, and the source resumes from the stored positions. Files of a
/// checkpoint that never committed stay <c>*.inprogress</c> (readers skip them) and their records are written again.
/// </remarks>
/// <typeparam name="T">The record type.</typeparam>
public sealed partial class ParquetSink<T> : ISink<T>, IConfigurable, ITransactionalSink
{
    /// <summary>The directory under the lake's root where the sink keeps its commit manifests and source positions.</summary>
    public const string StateDirectory = "_compiled";

    private readonly ParquetSinkOptions _options;
    private RecordSchema<T>? _schema;
    private ParquetColumn[] _columns = [];
    private ParquetSchema? _parquetSchema;
    private PartitionTemplate? _template;
    private string _pipeline = "";
    private string _run = "";
    private long _filesCommitted;
    private long _rowsCommitted;

    /// <summary>Creates a sink with <paramref name="options"/>.</summary>
    public ParquetSink(ParquetSinkOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <summary>Writes into <paramref name="directory"/>, partitioned by <paramref name="partitionBy"/> (see <see cref="ParquetSinkOptions.PartitionBy"/>).</summary>
    public ParquetSink(string directory, string partitionBy = "", bool exactlyOnce = false)
        : this(new ParquetSinkOptions { Directory = directory, PartitionBy = partitionBy, ExactlyOnce = exactlyOnce })
    {
    }

    /// <summary>The options (settings apply to this object).</summary>
    public ParquetSinkOptions Options => _options;

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings => _options.Settings();

    /// <inheritdoc/>
    public bool IsTransactional => _options.ExactlyOnce;

    /// <inheritdoc/>
    public bool CommitsSourcePositions => false;

    /// <summary>Files given their final name so far.</summary>
    public long FilesCommitted => Interlocked.Read(ref _filesCommitted);

    /// <summary>Rows in files given their final name so far.</summary>
    public long RowsCommitted => Interlocked.Read(ref _rowsCommitted);

    /// <inheritdoc/>
    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            _options.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new NonRetryableException(ex.Message, ex); // a bad setting: exit code 2, no restart will fix it
        }

        _schema = context.Schema ?? throw new InvalidOperationException(
            $"ParquetSink<{typeof(T).Name}> needs a record type with public fields or properties to make columns from; '{typeof(T).Name}' has none.");
        _columns = ParquetColumn.Of(_schema, _options.ColumnNaming, _options.DecimalPrecision, _options.DecimalScale);
        _parquetSchema = new ParquetSchema(_columns.Select(c => (Field)c.Data));
        _template = PartitionTemplate.Parse(_options.PartitionBy, _schema, _columns);
        _pipeline = context.PipelineName;
        _run = Guid.NewGuid().ToString("N")[..8];
        System.IO.Directory.CreateDirectory(_options.Directory);
        if (_options.ExactlyOnce)
        {
            Recover();
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this, partition);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe()
        => $"parquet files {Path.Combine(_options.Directory, _options.PartitionBy.Length == 0 ? "" : _options.PartitionBy, _options.Prefix)}-*.parquet ({_options.Compression.ToString().ToLowerInvariant()}{(_options.ExactlyOnce ? ", exactly-once" : "")})";

    private ParquetOptions WriterOptions() => new()
    {
        CompressionMethod = _options.Compression switch
        {
            ParquetCompression.Snappy => CompressionMethod.Snappy,
            ParquetCompression.Gzip => CompressionMethod.Gzip,
            ParquetCompression.None => CompressionMethod.None,
            _ => CompressionMethod.Zstd,
        },

        // Zstandard's "optimal" level writes 20× slower for a file 4 % smaller (measured here; bench/RESULTS.md).
        CompressionLevel = System.IO.Compression.CompressionLevel.Fastest,
    };

    /// <summary>Counts a file that got its final name.</summary>
    private void Committed(long rows)
    {
        Interlocked.Increment(ref _filesCommitted);
        Interlocked.Add(ref _rowsCommitted, rows);
    }

    /// <summary>Fills a file's column buffers from one record.</summary>
    private readonly struct RowVisitor(ColumnBuffer[] buffers, int scale) : IFieldVisitor
    {
        public void Visit<TField>(int ordinal, TField value) => buffers[ordinal].Add(value, scale);
    }

    /// <summary>A file being written: its buffers, its Parquet writer, and where it goes when committed.</summary>
    private sealed class OpenFile(string inProgress, string final, FileStream stream, ParquetWriter writer, ColumnBuffer[] buffers) : IAsyncDisposable
    {
        public string InProgress { get; } = inProgress;

        public string Final { get; } = final;

        public FileStream Stream { get; } = stream;

        public ParquetWriter Writer { get; } = writer;

        public ColumnBuffer[] Buffers { get; } = buffers;

        public DateTime OpenedAt { get; } = DateTime.UtcNow;

        public long Rows { get; set; }

        public int Buffered => Buffers.Length == 0 ? 0 : Buffers[0].Count;

        public async Task WriteRowGroupAsync(CancellationToken cancellationToken)
        {
            if (Buffered == 0)
            {
                return;
            }

            using (var rowGroup = Writer.CreateRowGroup())
            {
                foreach (var buffer in Buffers)
                {
                    await buffer.WriteAsync(rowGroup, cancellationToken).ConfigureAwait(false);
                }

                rowGroup.CompleteValidate();
            }

            Rows += Buffered;
            foreach (var buffer in Buffers)
            {
                buffer.Clear();
            }
        }

        /// <summary>Writes what is buffered and the footer, and makes the file durable.</summary>
        public async Task CompleteAsync(CancellationToken cancellationToken)
        {
            await WriteRowGroupAsync(cancellationToken).ConfigureAwait(false);
            await Writer.DisposeAsync().ConfigureAwait(false);
            Stream.Flush(flushToDisk: true);
            await Stream.DisposeAsync().ConfigureAwait(false);
        }

        public async ValueTask DisposeAsync()
        {
            await Writer.DisposeAsync().ConfigureAwait(false);
            await Stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One partition's writer: open files by partition directory, and the completed ones awaiting their commit.</summary>
    private sealed class Writer(ParquetSink<T> sink, int partition) : ISinkWriter<T>
    {
        private readonly Dictionary<string, OpenFile> _open = new(StringComparer.Ordinal);
        private readonly List<(string InProgress, string Final, long Rows)> _completed = [];
        private readonly StringBuilder _path = new();
        private readonly string[] _pathValues = new string[sink._template!.Parts];
        private int _sequence;
        private long _commits;

        public async ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            var schema = sink._schema!;
            var options = sink._options;
            for (var i = 0; i < records.Length; i++)
            {
                var record = records.Span[i];
                var directory = sink._template!.DirectoryOf(record, schema, _path, _pathValues);
                if (!_open.TryGetValue(directory, out var file))
                {
                    file = await OpenAsync(directory, cancellationToken).ConfigureAwait(false);
                    _open[directory] = file;
                }

                var visitor = new RowVisitor(file.Buffers, options.DecimalScale);
                schema.Visit(record, ref visitor);
                if (file.Buffered >= options.RowGroupRows)
                {
                    await file.WriteRowGroupAsync(cancellationToken).ConfigureAwait(false);
                    if (options.RollBytes is { } limit && file.Stream.Length >= limit)
                    {
                        await CompleteAsync(directory, file, cancellationToken).ConfigureAwait(false);
                    }
                }

                if (options.RollInterval is { } age && DateTime.UtcNow - file.OpenedAt >= age && _open.ContainsKey(directory))
                {
                    await CompleteAsync(directory, file, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        /// <summary>At-least-once: completes and commits every open file. Exactly-once: files wait for the checkpoint.</summary>
        public async ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            if (!sink._options.ExactlyOnce)
            {
                await CompleteAllAsync(cancellationToken).ConfigureAwait(false);
                CommitCompleted();
            }
        }

        public async ValueTask CommitAsync(Checkpoint checkpoint, CancellationToken cancellationToken)
        {
            await CompleteAllAsync(cancellationToken).ConfigureAwait(false);
            if (sink._options.ExactlyOnce)
            {
                sink.CommitExactlyOnce(checkpoint, partition, _commits++, _completed);
                _completed.Clear();
            }
            else
            {
                CommitCompleted();
            }
        }

        /// <summary>
        /// The end of a run. At-least-once, everything written is committed. Exactly-once, the last checkpoint committed
        /// what counts; anything after it is deleted, as its records are read again from the stored positions.
        /// </summary>
        public async ValueTask DisposeAsync()
        {
            if (sink._options.ExactlyOnce)
            {
                await AbortAsync().ConfigureAwait(false);
                return;
            }

            await CompleteAllAsync(CancellationToken.None).ConfigureAwait(false);
            CommitCompleted();
        }

        /// <summary>The run failed or was aborted: what is open is closed and stays in progress (never a final name).</summary>
        public async ValueTask AbortAsync()
        {
            foreach (var file in _open.Values)
            {
                try
                {
                    await file.DisposeAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or ParquetException or InvalidOperationException)
                {
                    // An abandoned file that cannot even be closed cleanly (the disk failed, a row group half
                    // written): it keeps its in-progress name either way, and the run's own failure is what counts.
                }
            }

            _open.Clear();
            if (sink._options.ExactlyOnce)
            {
                foreach (var (inProgress, _, _) in _completed)
                {
                    File.Delete(inProgress);
                }
            }

            _completed.Clear();
        }

        private async Task<OpenFile> OpenAsync(string directory, CancellationToken cancellationToken)
        {
            var root = Path.GetFullPath(sink._options.Directory);
            var path = Path.GetFullPath(Path.Combine(root, directory));
            if (!path.StartsWith(root, StringComparison.Ordinal) || path.Length > root.Length && path[root.Length] != Path.DirectorySeparatorChar)
            {
                // Values are escaped so that this cannot happen; a guard, not a code path.
                throw new InvalidOperationException($"Partition directory '{directory}' is outside the lake {root}.");
            }

            System.IO.Directory.CreateDirectory(path);
            string final;
            string inProgress;
            do
            {
                final = Path.Combine(path, string.Create(CultureInfo.InvariantCulture, $"{sink._options.Prefix}-{sink._run}-{partition:D3}-{_sequence++:D5}.parquet"));
                inProgress = final + ".inprogress";
            }
            while (File.Exists(final) || File.Exists(inProgress));

            var stream = new FileStream(inProgress, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, bufferSize: 1 << 16);
            try
            {
                var writer = await ParquetWriter.CreateAsync(sink._parquetSchema!, stream, sink.WriterOptions(), false, cancellationToken).ConfigureAwait(false);
                return new OpenFile(inProgress, final, stream, writer, [.. sink._columns.Select(c => c.NewBuffer())]);
            }
            catch
            {
                await stream.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        private async Task CompleteAsync(string directory, OpenFile file, CancellationToken cancellationToken)
        {
            _open.Remove(directory);
            await file.CompleteAsync(cancellationToken).ConfigureAwait(false);
            _completed.Add((file.InProgress, file.Final, file.Rows));
            if (!sink._options.ExactlyOnce)
            {
                CommitCompleted(); // at-least-once: a completed file is final at once, as the file sink's are
            }
        }

        private async Task CompleteAllAsync(CancellationToken cancellationToken)
        {
            foreach (var (directory, file) in _open.ToList())
            {
                await CompleteAsync(directory, file, cancellationToken).ConfigureAwait(false);
            }
        }

        private void CommitCompleted()
        {
            foreach (var (inProgress, final, rows) in _completed)
            {
                File.Move(inProgress, final, overwrite: false);
                sink.Committed(rows);
            }

            _completed.Clear();
        }
    }
}
