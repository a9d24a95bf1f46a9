using System.Diagnostics;
using Compiled.Connectors;
using Compiled.Runtime;
using Npgsql;

namespace Compiled.Postgres;

/// <summary>How a <see cref="PostgresSink{T}"/> writes rows.</summary>
public enum PostgresWriteMode
{
    /// <summary>Insert every record, through binary COPY: the fastest way into PostgreSQL.</summary>
    Append,

    /// <summary>
    /// Insert or update by the record's <c>[Key]</c> members (<c>INSERT … SELECT FROM unnest(…) ON CONFLICT DO
    /// UPDATE</c>); within a batch the last record of a key wins. Idempotent: replaying records changes nothing.
    /// </summary>
    Upsert,

    /// <summary>
    /// Apply change records (a <c>PostgresCdcSource</c>'s) to a replica: the record's <see cref="ChangeKind"/> member
    /// says what happened — snapshot rows, inserts and updates are upserted by the <c>[Key]</c> members, deletes (and
    /// the old key of an update that changed it) delete. The <see cref="ChangeKind"/> member is not a column.
    /// </summary>
    ApplyChanges,
}

/// <summary>Options of a <see cref="PostgresSink{T}"/>; every one is also a setting.</summary>
public sealed class PostgresSinkOptions
{
    /// <summary>
    /// At-least-once: rows are written once this many have gathered (or <see cref="FlushInterval"/> passed): 50 000, so
    /// that a COPY or an upsert statement carries enough rows to run at full speed, while a batch stays a few MB.
    /// </summary>
    public const int DefaultFlushRows = 50_000;

    /// <summary>At-least-once: rows wait at most 1 s before they are written.</summary>
    public static readonly TimeSpan DefaultFlushInterval = TimeSpan.FromSeconds(1);

    /// <summary>Attempts of a write that fails transiently (connection loss, deadlock, server restart): 10, about 25 s with backoff.</summary>
    public const int DefaultMaxAttempts = 10;

    /// <summary>
    /// Exactly-once appends: 0, off — a checkpoint's rows are copied at the checkpoint. Streaming them into the open
    /// transaction as they arrive measured no gain where the database shares the machine's cores (bench/RESULTS.md).
    /// </summary>
    public const int DefaultStreamRows = 0;

    /// <summary>The Npgsql connection string; shown with its password masked.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>The table, optionally schema-qualified (<c>sales.orders</c>).</summary>
    public string Table { get; set; } = "";

    /// <summary>Append (binary COPY), upsert, or apply change records. Default: <see cref="PostgresWriteMode.Append"/>.</summary>
    public PostgresWriteMode Mode { get; set; }

    /// <summary>What to do with the table at start. Default: create it if missing.</summary>
    public TableMode TableMode { get; set; } = TableMode.CreateIfMissing;

    /// <summary>How member names become column names. Default: snake_case.</summary>
    public ColumnNaming ColumnNaming { get; set; }

    /// <summary>
    /// Store the source's positions (Kafka offsets) in table <c>compiled_offsets</c> in the same transaction as the rows,
    /// and let the source resume from them: exactly-once. The sink must then be the pipeline's only sink.
    /// </summary>
    public bool ExactlyOnce { get; set; }

    /// <summary>Default: <see cref="DefaultFlushRows"/>.</summary>
    public int FlushRows { get; set; } = DefaultFlushRows;

    /// <summary>Default: <see cref="DefaultFlushInterval"/>.</summary>
    public TimeSpan FlushInterval { get; set; } = DefaultFlushInterval;

    /// <summary>Default: <see cref="DefaultMaxAttempts"/>.</summary>
    public int MaxAttempts { get; set; } = DefaultMaxAttempts;

    /// <summary>
    /// Exactly-once appends: copy rows into the partition's open transaction once this many have gathered, while the
    /// pipeline reads on, so only the offsets and the COMMIT wait for the checkpoint (0: copy them at the checkpoint).
    /// Default: <see cref="DefaultStreamRows"/>.
    /// </summary>
    public int StreamRows { get; set; } = DefaultStreamRows;

    /// <summary>The options as settings.</summary>
    public IEnumerable<Setting> Settings() =>
    [
        Setting.ConnectionString(nameof(ConnectionString), "The PostgreSQL connection string (Host=…;Database=…;Username=…;Password=…)", () => ConnectionString, v => ConnectionString = v),
        Setting.Text(nameof(Table), "The table written to (schema.table allowed)", () => Table, v => Table = v),
        Setting.Choice(nameof(Mode), "Append rows through binary COPY, upsert by the record's [Key] members, or apply change records (CDC)", () => Mode, v => Mode = v),
        Setting.Choice(nameof(TableMode), "What to do with the table at start", () => TableMode, v => TableMode = v),
        Setting.Boolean(nameof(ExactlyOnce), "Store source positions with the rows in one transaction, and resume from them", () => ExactlyOnce, v => ExactlyOnce = v),
        Setting.Number(nameof(FlushRows), "At-least-once: write once this many rows have gathered", () => FlushRows, v => FlushRows = (int)v, 1, int.MaxValue),
        Setting.Duration(nameof(FlushInterval), "At-least-once: the longest rows wait before they are written", () => FlushInterval, v => FlushInterval = v!.Value),
        Setting.Number(nameof(MaxAttempts), "Attempts of a write that fails transiently before the run fails", () => MaxAttempts, v => MaxAttempts = (int)v, 1, 1000),
        Setting.Number(nameof(StreamRows), "Exactly-once appends: copy rows into the open transaction once this many have gathered (0: at the checkpoint)", () => StreamRows, v => StreamRows = (int)v, 0, int.MaxValue),
    ];

    /// <summary>Checks the options, naming the bad one.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            throw new ArgumentException("ConnectionString is required.", nameof(ConnectionString));
        }

        if (string.IsNullOrWhiteSpace(Table))
        {
            throw new ArgumentException("Table is required.", nameof(Table));
        }
    }
}

/// <summary>
/// Writes records to a PostgreSQL table — appended through binary COPY, or upserted by their <c>[Key]</c> members —
/// with columns derived at compile time from the record type. Rows are written in transactions of many batches;
/// transient failures (a lost connection, a deadlock, a server restart) are retried with backoff, permanent ones
/// (authentication, a missing table) stop the run with PostgreSQL's own message.
/// </summary>
/// <remarks>
/// In <see cref="PostgresSinkOptions.ExactlyOnce"/> mode each pipeline partition writes the rows of a checkpoint and
/// the source positions they came from in one transaction, and the source resumes from the stored positions, so
/// every input record's rows are committed exactly once — across crashes, restarts and rebalances. Positions are
/// claimed with an epoch when a reader is assigned partitions; a transaction whose epoch is no longer current (its
/// reader lost the partitions without knowing) is rolled back, so a zombie never overwrites its successor's work.
/// </remarks>
/// <typeparam name="T">The record type.</typeparam>
public sealed partial class PostgresSink<T> : ISink<T>, IConfigurable, ITransactionalSink, IAsyncDisposable
{
    /// <summary>The table of stored source positions (exactly-once).</summary>
    public const string OffsetsTable = "compiled_offsets";

    private readonly PostgresSinkOptions _options;
    private NpgsqlDataSource? _dataSource;
    private RecordSchema<T>? _schema;
    private PgColumn[] _columns = [];
    private string _copySql = "";
    private string _upsertSql = "";
    private string _upsertLatestSql = "";
    private int _singleKey = -1;
    private string _pipeline = "";
    private string _sinkName = "";
    private Action<string>? _warn;
    private volatile bool _checkpointsState; // a run with window state: rows wait for the whole checkpoint (Stage), never stream

    /// <summary>Creates a sink with <paramref name="options"/>.</summary>
    public PostgresSink(PostgresSinkOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <summary>Appends to <paramref name="table"/> through <paramref name="connectionString"/>.</summary>
    public PostgresSink(string connectionString, string table, PostgresWriteMode mode = PostgresWriteMode.Append, bool exactlyOnce = false)
        : this(new PostgresSinkOptions { ConnectionString = connectionString, Table = table, Mode = mode, ExactlyOnce = exactlyOnce })
    {
    }

    /// <summary>The options (settings apply to this object).</summary>
    public PostgresSinkOptions Options => _options;

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings => _options.Settings();

    /// <inheritdoc/>
    public bool IsTransactional => _options.ExactlyOnce;

    /// <inheritdoc/>
    public bool CommitsSourcePositions => false;

    /// <summary>Transient failures retried so far (connection losses, deadlocks, restarts).</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Rows committed to the table so far (all partitions).</summary>
    public long RowsCommitted => Interlocked.Read(ref _rowsCommitted);

    private long _retries;
    private long _rowsCommitted;

    /// <inheritdoc/>
    public async ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken)
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

        PgErrors.CheckConnectionString(_options.ConnectionString, $"Sink '{context.SinkName}'");

        _pipeline = context.PipelineName;
        _sinkName = context.SinkName;
        _warn = context.Warn;
        _schema = context.Schema ?? throw new InvalidOperationException(
            $"PostgresSink<{typeof(T).Name}> needs a record type with public fields or properties to make columns from; '{typeof(T).Name}' has none.");
        _columns = PgColumn.Of(_schema, _options.ColumnNaming);
        var keys = _columns.Where(c => c.IsKey).ToList();
        if (_options.Mode != PostgresWriteMode.Append && keys.Count == 0)
        {
            throw new NonRetryableException($"{_options.Mode} mode needs the record type '{typeof(T).Name}' to mark its key members with [Key].");
        }

        _kindField = _options.Mode == PostgresWriteMode.ApplyChanges
            ? _schema.Fields.FirstOrDefault(f => f.ClrType == typeof(ChangeKind))?.Ordinal
                ?? throw new NonRetryableException($"ApplyChanges mode needs the record type '{typeof(T).Name}' to have a member of type ChangeKind (what happened to the row).")
            : -1;

        _dataSource?.Dispose();
        _dataSource = NpgsqlDataSource.Create(_options.ConnectionString);
        NpgsqlConnection opened;
        try
        {
            opened = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (!IsTransient(ex))
        {
            throw Permanent("connect", ex);
        }

        await using (var connection = opened)
        {
            // Copies of a pipeline open together (a distributed run, a consumer group): PostgreSQL does not serialise
            // concurrent CREATE TABLE IF NOT EXISTS of one table (the loser fails with 23505 on pg_type), so they take turns.
            await ExecuteAsync(connection, null, $"SELECT pg_advisory_lock({DdlLock})", cancellationToken).ConfigureAwait(false);
            try
            {
                await PrepareTablesAsync(connection, cancellationToken).ConfigureAwait(false);
                if (_options.ExactlyOnce)
                {
                    if (await OtherTableAsync(connection, null, _pipeline, cancellationToken).ConfigureAwait(false) is { } other)
                    {
                        throw OtherTable(_pipeline, other);
                    }
                }
            }
            finally
            {
                await ExecuteAsync(connection, null, $"SELECT pg_advisory_unlock({DdlLock})", CancellationToken.None).ConfigureAwait(false);
            }
        }

        var table = PgColumn.Quote(_options.Table);
        var names = string.Join(", ", DataColumns.Select(c => c.Quoted));
        _copySql = $"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)";
        var parameters = string.Join(", ", DataColumns.Select(c => $"@c{c.Ordinal}"));
        var keyList = string.Join(", ", keys.Select(c => c.Quoted));
        var updates = DataColumns.Where(c => !c.IsKey).Select(c => $"{c.Quoted} = EXCLUDED.{c.Quoted}").ToList();
        // Within one statement a key may appear once: when a batch has a key twice, keep the last record of each key
        // (ordinality), as a stream would. The server sorts for that, so batches without repeats skip it.
        var conflict = $"ON CONFLICT ({keyList}) DO {(updates.Count == 0 ? "NOTHING" : "UPDATE SET " + string.Join(", ", updates))}";
        _upsertSql = $"""
            INSERT INTO {table} ({names})
            SELECT {names} FROM unnest({parameters}) AS u({names})
            {conflict}
            """;
        _upsertLatestSql = $"""
            INSERT INTO {table} ({names})
            SELECT {names} FROM (
                SELECT DISTINCT ON ({keyList}) {names} FROM unnest({parameters}) WITH ORDINALITY AS u({names}, "__ord")
                ORDER BY {keyList}, "__ord" DESC) AS latest
            {conflict}
            """;
        _singleKey = keys.Count == 1 ? Array.IndexOf(_columns, keys[0]) : -1;
        _deleteSql = $"DELETE FROM {table} AS t USING unnest({string.Join(", ", keys.Select(c => $"@c{c.Ordinal}"))}) AS d({keyList}) WHERE {string.Join(" AND ", keys.Select(c => $"t.{c.Quoted} = d.{c.Quoted}"))}";
    }

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => DisposeAsync();

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync().ConfigureAwait(false);
            _dataSource = null;
        }
    }

    /// <inheritdoc/>
    public string Describe()
    {
        var retries = Retries;
        var retried = retries == 0 ? "" : $", {retries} transient {(retries == 1 ? "failure" : "failures")} retried";
        return $"postgresql {Secrets.RedactConnectionString(_options.ConnectionString)} table {_options.Table} ({_options.Mode.ToString().ToLowerInvariant()}{(_options.ExactlyOnce ? ", exactly-once" : "")}{retried})";
    }

    /// <summary>The SQL that creates the table for the record type: columns from its schema, its [Key] members as the primary key.</summary>
    public string CreateTableSql()
    {
        var keys = _columns.Where(c => c.IsKey).Select(c => c.Quoted).ToList();
        var columns = DataColumns.Select(c => $"{c.Quoted} {c.SqlType}{(c.IsNullable ? "" : " NOT NULL")}").ToList();
        if (keys.Count > 0)
        {
            columns.Add($"PRIMARY KEY ({string.Join(", ", keys)})");
        }

        return $"CREATE TABLE IF NOT EXISTS {PgColumn.Quote(_options.Table)} ({string.Join(", ", columns)})";
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<SourcePosition>?> ClaimPositionsAsync(string pipeline, string source, IReadOnlyList<SourcePosition> partitions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        var dataSource = _dataSource ?? throw new InvalidOperationException("The sink is not open.");
        if (partitions.Count == 0)
        {
            return [];
        }

        return await WithRetriesAsync(
            "claim source positions",
            async () =>
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using var command = new NpgsqlCommand(
                    $"""
                    INSERT INTO {OffsetsTable} AS o (pipeline, source, stream, partition, next_offset, epoch)
                    SELECT @pipeline, @source, s, p, -1, 1 FROM unnest(@streams, @partitions) AS u(s, p)
                    ON CONFLICT (pipeline, source, stream, partition) DO UPDATE SET epoch = o.epoch + 1, updated_at = now()
                    RETURNING stream, partition, next_offset, epoch
                    """,
                    connection);
                command.Parameters.Add(new NpgsqlParameter<string>("pipeline", pipeline));
                command.Parameters.Add(new NpgsqlParameter<string>("source", source));
                command.Parameters.Add(new NpgsqlParameter<string[]>("streams", [.. partitions.Select(p => p.Stream)]));
                command.Parameters.Add(new NpgsqlParameter<int[]>("partitions", [.. partitions.Select(p => p.Partition)]));
                var claimed = new List<SourcePosition>(partitions.Count);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    claimed.Add(new SourcePosition(reader.GetString(0), reader.GetInt32(1), reader.GetInt64(2), reader.GetInt64(3)));
                }

                return (IReadOnlyList<SourcePosition>?)claimed;
            },
            cancellationToken).ConfigureAwait(false);
    }

    private async Task PrepareTableAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        switch (_options.TableMode)
        {
            case TableMode.Recreate:
                await ExecuteAsync(connection, null, $"DROP TABLE IF EXISTS {PgColumn.Quote(_options.Table)}", cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, null, CreateTableSql(), cancellationToken).ConfigureAwait(false);
                if (_options.ExactlyOnce)
                {
                    // A new table means no rows: positions (and window state) stored for it would skip records.
                    await ExecuteAsync(connection, null, $"DROP TABLE IF EXISTS {OffsetsTable}, {CheckpointsTable}, {StateTable}", cancellationToken).ConfigureAwait(false);
                }

                break;
            case TableMode.CreateIfMissing:
                await ExecuteAsync(connection, null, CreateTableSql(), cancellationToken).ConfigureAwait(false);
                break;
            case TableMode.MustExist:
                await using (var command = new NpgsqlCommand("SELECT to_regclass(@table) IS NOT NULL", connection))
                {
                    command.Parameters.Add(new NpgsqlParameter<string>("table", PgColumn.Quote(_options.Table)));
                    if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not true)
                    {
                        throw new NonRetryableException($"Table {_options.Table} does not exist (TableMode is MustExist; set it to CreateIfMissing to create it).");
                    }
                }

                break;
        }
    }

    /// <summary>The advisory lock copies of a pipeline take turns on while they create tables (a constant of ours).</summary>
    private const long DdlLock = 0x436F6D70696C6564; // "Compiled"

    /// <summary>The sink's table, and with exactly-once the tables of positions and checkpoints.</summary>
    private async Task PrepareTablesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await PrepareTableAsync(connection, cancellationToken).ConfigureAwait(false);
        if (_options.ExactlyOnce)
        {
            await ExecuteAsync(connection, null, CheckpointTablesSql, cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, null, PartitionTablesSql, cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, null, $"""
                CREATE TABLE IF NOT EXISTS {OffsetsTable} (
                    pipeline text NOT NULL, source text NOT NULL, stream text NOT NULL, partition integer NOT NULL,
                    next_offset bigint NOT NULL, epoch bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (pipeline, source, stream, partition))
                """, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="action"/>, retrying transient failures with exponential backoff (100 ms doubling to 5 s).</summary>
    private async Task<TResult> WithRetriesAsync<TResult>(string what, Func<Task<TResult>> action, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await action().ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransient(ex) && attempt < _options.MaxAttempts && !cancellationToken.IsCancellationRequested)
            {
                Interlocked.Increment(ref _retries);
                CompiledMeter.ConnectorRetried(_pipeline, _sinkName);
                _dataSource?.Clear(); // pooled connections to a restarted server are dead
                var delay = TimeSpan.FromMilliseconds(Math.Min(5000, 100 * Math.Pow(2, attempt - 1)));
                _warn?.Invoke($"PostgreSQL: could not {what} (attempt {attempt} of {_options.MaxAttempts}): {ex.GetType().Name}: {Reason(ex)}; retrying in {Setting.FormatDuration(delay)}");
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                // Out of attempts: the run fails, and says it was PostgreSQL, after how many attempts.
                throw new IOException($"PostgreSQL: could not {what} after {_options.MaxAttempts} attempts (MaxAttempts): {Reason(ex)}", ex);
            }
            catch (PostgresException ex) when (!IsTransient(ex))
            {
                throw Permanent(what, ex);
            }
        }
    }

    /// <summary>
    /// A failure no retry fixes, in words: refused credentials, a missing database or table, missing privileges are
    /// <see cref="NonRetryableException"/> (the binary exits 2); others (a constraint violation) stay run-time failures.
    /// </summary>
    private Exception Permanent(string what, PostgresException ex) => ex.SqlState switch
    {
        PostgresErrorCodes.UndefinedTable => new NonRetryableException($"Could not {what}: table {_options.Table} does not exist ({ex.MessageText}). Set TableMode to CreateIfMissing, or create it.", ex),
        PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification => new NonRetryableException($"Could not {what}: PostgreSQL refused the credentials ({ex.MessageText}).", ex),
        PostgresErrorCodes.InvalidCatalogName => new NonRetryableException($"Could not {what}: the database does not exist ({ex.MessageText}).", ex),
        PostgresErrorCodes.InsufficientPrivilege => new NonRetryableException($"Could not {what} in table {_options.Table}: {ex.MessageText} (SQLSTATE {ex.SqlState}).", ex),
        _ => new InvalidOperationException($"Could not {what} in table {_options.Table}: {ex.MessageText} (SQLSTATE {ex.SqlState}).", ex),
    };

    private static string Reason(Exception ex) => PgErrors.Reason(ex);

    private static bool IsTransient(Exception exception) => PgErrors.IsTransient(exception);

    /// <summary>
    /// Appends (COPY) or upserts <paramref name="rows"/> inside <paramref name="transaction"/>; appends may start at row
    /// <paramref name="start"/> (the rows before it were streamed into the same transaction already).
    /// </summary>
    private async Task WriteRowsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<T> rows, int start, PgColumnBuffer?[] buffers, CancellationToken cancellationToken)
    {
        var schema = _schema!;
        if (_options.Mode == PostgresWriteMode.Append)
        {
            await using var importer = await connection.BeginBinaryImportAsync(_copySql, cancellationToken).ConfigureAwait(false);
            var copy = new CopyVisitor(importer, _columns);
            for (var i = start; i < rows.Count; i++)
            {
                importer.StartRow();
                schema.Visit(rows[i], ref copy);
            }

            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        Debug.Assert(start == 0, "only appends stream into an open transaction");
        if (_options.Mode == PostgresWriteMode.ApplyChanges)
        {
            await ApplyChangesAsync(connection, transaction, rows, buffers, cancellationToken).ConfigureAwait(false);
            return;
        }

        foreach (var buffer in buffers)
        {
            buffer?.Clear();
        }

        var visitor = new ArrayVisitor(buffers, _columns);
        foreach (var row in rows)
        {
            schema.Visit(row, ref visitor);
        }

        var repeats = _singleKey < 0 || buffers[_singleKey]!.HasDuplicates();
        await using var command = new NpgsqlCommand(repeats ? _upsertLatestSql : _upsertSql, connection, transaction);
        foreach (var column in DataColumns)
        {
            command.Parameters.Add(buffers[column.Ordinal]!.ToParameter());
        }

        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// How long the server keeps a streaming writer's transaction open while nothing is sent on it
    /// (<see cref="PostgresSinkOptions.StreamRows"/>): a writer that stopped without closing its connection (a paused
    /// process) then releases its rows' locks, and a live one whose checkpoint takes longer than this retries the
    /// transaction from its start.
    /// </summary>
    internal static readonly TimeSpan IdleTransactionTimeout = TimeSpan.FromSeconds(60);

    /// <summary>One partition's writer: it gathers rows and writes them in transactions, with the positions when exactly-once.</summary>
    private sealed class Writer(PostgresSink<T> sink) : ISinkWriter<T>
    {
        private readonly List<T> _rows = [];
        private NpgsqlConnection? _connection; // exactly-once appends: the open transaction rows[0.._streamed) went into
        private NpgsqlTransaction? _transaction;
        private int _streamed;
        private readonly Stopwatch _age = new();
        private readonly SemaphoreSlim _turn = new(1, 1); // the interval timer's flush and the runtime's calls take turns
        private readonly CancellationTokenSource _closing = new();
        private ITimer? _timer;
        private Exception? _timerFailure;
        private PgColumnBuffer?[]? _buffers;

        public async ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ThrowIfTimerFailed();
                if (_rows.Count == 0)
                {
                    _age.Restart();
                }

                _rows.AddRange(records.Span);
                if (Streams && _rows.Count - _streamed >= sink._options.StreamRows)
                {
                    await StreamRowsAsync(cancellationToken).ConfigureAwait(false);
                }
                else if (!sink._options.ExactlyOnce && (_rows.Count >= sink._options.FlushRows || _age.Elapsed >= sink._options.FlushInterval))
                {
                    await WriteRowsAsync(null, cancellationToken).ConfigureAwait(false);
                }
                else if (!sink._options.ExactlyOnce && _rows.Count > 0 && _timer is null)
                {
                    // A quiet stream (follow mode, a window that fired last) must not keep rows past FlushInterval:
                    // the timer writes them even if no record arrives after them.
                    _timer = TimeProvider.System.CreateTimer(static state => ((Writer)state!).OnInterval(), this, sink._options.FlushInterval, Timeout.InfiniteTimeSpan);
                }
            }
            finally
            {
                _turn.Release();
            }
        }

        public async ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ThrowIfTimerFailed();
                await WriteRowsAsync(null, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _turn.Release();
            }
        }

        public async ValueTask CommitAsync(Checkpoint checkpoint, CancellationToken cancellationToken)
        {
            await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ThrowIfTimerFailed();
                if (sink._options.ExactlyOnce && checkpoint.Aligned)
                {
                    // A run with window state: the rows wait for the whole checkpoint, committed with its state and positions.
                    sink.Stage(checkpoint.Sequence, _rows);
                    _rows.Clear();
                    return;
                }

                await WriteRowsAsync(sink._options.ExactlyOnce ? checkpoint : null, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _turn.Release();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _closing.CancelAsync().ConfigureAwait(false);
            if (_timer is not null)
            {
                await _timer.DisposeAsync().ConfigureAwait(false);
            }

            await _turn.WaitAsync(CancellationToken.None).ConfigureAwait(false); // a timer flush in progress ends first
            _rows.Clear(); // rows not yet committed are not committed: their positions were not either
            await CloseTransactionAsync().ConfigureAwait(false); // rolls back what was streamed into it
            _turn.Release();
        }

        /// <summary>Exactly-once appends with <see cref="PostgresSinkOptions.StreamRows"/> stream into an open transaction; upserts and runs with window state do not.</summary>
        private bool Streams => sink._options.StreamRows > 0 && sink._options.ExactlyOnce && sink._options.Mode == PostgresWriteMode.Append && !sink._checkpointsState;

        /// <summary>Copies the rows gathered since the last copy into the open transaction (opening one if none is).</summary>
        private async Task StreamRowsAsync(CancellationToken cancellationToken)
        {
            await sink.WithRetriesAsync(
                "write rows",
                async () =>
                {
                    try
                    {
                        var transaction = _transaction ?? await BeginAsync(cancellationToken).ConfigureAwait(false);
                        await sink.WriteRowsAsync(_connection!, transaction, _rows, _streamed, _buffers ??= new PgColumnBuffer?[sink._columns.Length], cancellationToken).ConfigureAwait(false);
                        _streamed = _rows.Count;
                        return true;
                    }
                    catch
                    {
                        await CloseTransactionAsync().ConfigureAwait(false); // a retry copies every row again, into a new transaction
                        throw;
                    }
                },
                cancellationToken).ConfigureAwait(false);
        }

        private async Task<NpgsqlTransaction> BeginAsync(CancellationToken cancellationToken)
        {
            var dataSource = sink._dataSource ?? throw new InvalidOperationException("The sink is not open.");
            _connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            if (Streams)
            {
                await ExecuteAsync(_connection, null, $"SET idle_in_transaction_session_timeout = {(long)IdleTransactionTimeout.TotalMilliseconds}", cancellationToken).ConfigureAwait(false);
            }

            _transaction = await _connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            return _transaction;
        }

        /// <summary>Ends the open transaction without committing it (a rollback, when it is still open) and returns its connection.</summary>
        private async Task CloseTransactionAsync()
        {
            _streamed = 0; // no transaction holds any row: a new one starts from the first
            var (connection, transaction) = (_connection, _transaction);
            (_connection, _transaction) = (null, null);
            try
            {
                if (transaction is not null)
                {
                    await transaction.DisposeAsync().ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (IsTransient(ex) || ex is InvalidOperationException)
            {
                // the connection broke: the server rolls the transaction back itself
            }
            finally
            {
                if (connection is not null)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                }
            }
        }

        private void OnInterval() => _ = FlushOnIntervalAsync();

        private async Task FlushOnIntervalAsync()
        {
            try
            {
                await _turn.WaitAsync(_closing.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return; // the writer is closing
            }

            try
            {
                _timer?.Dispose();
                _timer = null;
                if (_rows.Count > 0 && _timerFailure is null)
                {
                    await WriteRowsAsync(null, _closing.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (_closing.IsCancellationRequested)
            {
                // closing: the rows stay uncommitted, as on any abort
            }
            catch (Exception ex)
            {
                _timerFailure = ex; // surfaces at the writer's next call, as any write failure would
            }
            finally
            {
                _turn.Release();
            }
        }

        private void ThrowIfTimerFailed()
        {
            if (_timerFailure is { } failure)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
            }
        }

        /// <summary>Writes the gathered rows — and the checkpoint's positions — in one transaction, retrying transient failures.</summary>
        private async Task WriteRowsAsync(Checkpoint? checkpoint, CancellationToken cancellationToken)
        {
            var positions = checkpoint?.Positions ?? [];
            if (_rows.Count == 0 && positions.Count == 0)
            {
                return;
            }

            var attempted = false;
            await sink.WithRetriesAsync(
                "write rows",
                async () =>
                {
                    try
                    {
                        // Exactly-once appends: the rows streamed so far are in the open transaction already.
                        var transaction = _transaction;
                        if (transaction is null)
                        {
                            transaction = await BeginAsync(cancellationToken).ConfigureAwait(false);
                            if (attempted && checkpoint is not null && await AlreadyCommittedAsync(_connection!, transaction, checkpoint, cancellationToken).ConfigureAwait(false))
                            {
                                await CloseTransactionAsync().ConfigureAwait(false);
                                return true; // the last attempt's COMMIT reached the server before the connection broke
                            }
                        }

                        attempted = true;
                        if (_rows.Count > _streamed)
                        {
                            await sink.WriteRowsAsync(_connection!, transaction, _rows, _streamed, _buffers ??= new PgColumnBuffer?[sink._columns.Length], cancellationToken).ConfigureAwait(false);
                            _streamed = _rows.Count;
                        }

                        if (checkpoint is not null && positions.Count > 0)
                        {
                            await StorePositionsAsync(_connection!, transaction, checkpoint, cancellationToken).ConfigureAwait(false);
                        }

                        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                        await CloseTransactionAsync().ConfigureAwait(false);
                        return true;
                    }
                    catch
                    {
                        await CloseTransactionAsync().ConfigureAwait(false); // a retry writes every row again, in a new transaction
                        throw;
                    }
                },
                cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref sink._rowsCommitted, _rows.Count);
            _rows.Clear();
        }

        private static async Task StorePositionsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Checkpoint checkpoint, CancellationToken cancellationToken)
        {
            var positions = checkpoint.Positions;
            await using var command = new NpgsqlCommand(
                $"""
                UPDATE {OffsetsTable} AS o SET next_offset = u.o, updated_at = now()
                FROM unnest(@streams, @partitions, @offsets, @epochs) AS u(s, p, o, e)
                WHERE o.pipeline = @pipeline AND o.source = @source AND o.stream = u.s AND o.partition = u.p AND o.epoch = u.e
                """,
                connection,
                transaction);
            AddPositions(command, checkpoint);
            var updated = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            if (updated != positions.Count)
            {
                // Another reader claimed one of these partitions after this one: this reader is a zombie. Roll back.
                throw new InvalidOperationException(
                    $"Exactly-once: {positions.Count - updated} of the partitions {string.Join(", ", positions)} were claimed by another reader (rebalance or session timeout); " +
                    "this partition's uncommitted rows were rolled back and its new owner resumes from the last committed positions.");
            }
        }

        /// <summary>The checkpoint's pipeline, source and positions as @pipeline, @source and the arrays @streams, @partitions, @offsets, @epochs.</summary>
        private static void AddPositions(NpgsqlCommand command, Checkpoint checkpoint)
        {
            var positions = checkpoint.Positions;
            command.Parameters.Add(new NpgsqlParameter<string>("pipeline", checkpoint.Pipeline));
            command.Parameters.Add(new NpgsqlParameter<string>("source", checkpoint.Source));
            command.Parameters.Add(new NpgsqlParameter<string[]>("streams", [.. positions.Select(p => p.Stream)]));
            command.Parameters.Add(new NpgsqlParameter<int[]>("partitions", [.. positions.Select(p => p.Partition)]));
            command.Parameters.Add(new NpgsqlParameter<long[]>("offsets", [.. positions.Select(p => p.Offset)]));
            command.Parameters.Add(new NpgsqlParameter<long[]>("epochs", [.. positions.Select(p => p.Epoch)]));
        }

        private static async Task<bool> AlreadyCommittedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Checkpoint checkpoint, CancellationToken cancellationToken)
        {
            // A retry after a failure during COMMIT: if every stored position already equals this checkpoint's, with our
            // epoch, that COMMIT happened (positions only move with the rows that produced them).
            var positions = checkpoint.Positions;
            if (positions.Count == 0)
            {
                return false;
            }

            await using var command = new NpgsqlCommand(
                $"""
                SELECT count(*) FROM {OffsetsTable} AS o JOIN unnest(@streams, @partitions, @offsets, @epochs) AS u(s, p, n, e)
                  ON o.stream = u.s AND o.partition = u.p
                WHERE o.pipeline = @pipeline AND o.source = @source AND o.next_offset = u.n AND o.epoch = u.e
                """,
                connection,
                transaction);
            AddPositions(command, checkpoint);
            var matching = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) ?? 0L);
            return matching == positions.Count;
        }
    }

    private readonly struct CopyVisitor(NpgsqlBinaryImporter importer, PgColumn[] columns) : IFieldVisitor
    {
        public void Visit<TField>(int ordinal, TField value) => PgValues.Write(importer, columns[ordinal], value);
    }

    private readonly struct ArrayVisitor(PgColumnBuffer?[] buffers, PgColumn[] columns) : IFieldVisitor
    {
        public void Visit<TField>(int ordinal, TField value) => (buffers[ordinal] ??= PgColumnBuffer.For<TField>(columns[ordinal])).Add(value);
    }
}
