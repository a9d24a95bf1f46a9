using System.Diagnostics;
using Compiled.Connectors;
using Compiled.Runtime;
using MySqlConnector;

namespace Compiled.MySql;

/// <summary>How a <see cref="MySqlSink{T}"/> writes rows.</summary>
public enum MySqlWriteMode
{
    /// <summary>Insert every record, through bulk copy (<c>LOAD DATA LOCAL INFILE</c>): the fastest way into MySQL.</summary>
    Append,

    /// <summary>
    /// Insert or update by the record's <c>[Key]</c> members (<c>INSERT … ON DUPLICATE KEY UPDATE</c>, the rows
    /// bulk-copied into a temporary table first); within a batch the last record of a key wins. Idempotent:
    /// replaying records changes nothing.
    /// </summary>
    Upsert,
}

/// <summary>Options of a <see cref="MySqlSink{T}"/>; every one is also a setting.</summary>
public sealed class MySqlSinkOptions
{
    /// <summary>At-least-once: rows are written once this many have gathered (or <see cref="FlushInterval"/> passed): 50 000.</summary>
    public const int DefaultFlushRows = 50_000;

    /// <summary>At-least-once: rows wait at most 1 s before they are written.</summary>
    public static readonly TimeSpan DefaultFlushInterval = TimeSpan.FromSeconds(1);

    /// <summary>Attempts of a write that fails transiently (connection loss, deadlock, server restart): 10, about 25 s with backoff.</summary>
    public const int DefaultMaxAttempts = 10;

    /// <summary>The MySqlConnector connection string (<c>Server=…;Database=…;User=…;Password=…</c>); shown with its password masked.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>The table, optionally database-qualified (<c>sales.orders</c>).</summary>
    public string Table { get; set; } = "";

    /// <summary>Append (bulk copy) or upsert. Default: <see cref="MySqlWriteMode.Append"/>.</summary>
    public MySqlWriteMode Mode { get; set; }

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

    /// <summary>The options as settings.</summary>
    public IEnumerable<Setting> Settings() =>
    [
        Setting.ConnectionString(nameof(ConnectionString), "The MySQL or MariaDB connection string (Server=…;Database=…;User=…;Password=…)", () => ConnectionString, v => ConnectionString = v),
        Setting.Text(nameof(Table), "The table written to (database.table allowed)", () => Table, v => Table = v),
        Setting.Choice(nameof(Mode), "Append rows through bulk copy, or upsert by the record's [Key] members", () => Mode, v => Mode = v),
        Setting.Choice(nameof(TableMode), "What to do with the table at start", () => TableMode, v => TableMode = v),
        Setting.Choice(nameof(ColumnNaming), "How member names become column names", () => ColumnNaming, v => ColumnNaming = v),
        Setting.Boolean(nameof(ExactlyOnce), "Store source positions with the rows in one transaction, and resume from them", () => ExactlyOnce, v => ExactlyOnce = v),
        Setting.Number(nameof(FlushRows), "At-least-once: write once this many rows have gathered", () => FlushRows, v => FlushRows = (int)v, 1, int.MaxValue),
        Setting.Duration(nameof(FlushInterval), "At-least-once: the longest rows wait before they are written", () => FlushInterval, v => FlushInterval = v!.Value),
        Setting.Number(nameof(MaxAttempts), "Attempts of a write that fails transiently before the run fails", () => MaxAttempts, v => MaxAttempts = (int)v, 1, 1000),
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

        try
        {
            _ = new MySqlConnectionStringBuilder(ConnectionString);
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"ConnectionString is not a MySQL connection string: {ex.Message}", nameof(ConnectionString), ex);
        }
    }
}

/// <summary>
/// Writes records to a MySQL or MariaDB table — appended through bulk copy, or upserted by their <c>[Key]</c> members
/// — with columns derived at compile time from the record type. Rows are written in transactions of many batches;
/// transient failures (a lost connection, a deadlock, a server restart) are retried with backoff, permanent ones
/// (credentials, a missing database) stop the run with the server's own message. A value the table cannot hold
/// (too long, out of range) fails the write rather than being truncated: bulk loads report such changes only as
/// warnings, and the sink treats every warning as an error.
/// </summary>
/// <remarks>
/// In <see cref="MySqlSinkOptions.ExactlyOnce"/> mode each pipeline partition writes the rows of a checkpoint and the
/// source positions they came from in one transaction, and the source resumes from the stored positions, so every
/// input record's rows are committed exactly once — across crashes, restarts and rebalances. Positions are claimed
/// with an epoch when a reader is assigned partitions; a transaction whose epoch is no longer current (its reader lost
/// the partitions without knowing) is rolled back, so a zombie never overwrites its successor's work. The table must
/// be transactional (InnoDB, the default engine).
/// </remarks>
/// <typeparam name="T">The record type.</typeparam>
public sealed partial class MySqlSink<T> : ISink<T>, IConfigurable, ITransactionalSink, IAsyncDisposable
{
    /// <summary>The table of stored source positions (exactly-once).</summary>
    public const string OffsetsTable = "compiled_offsets";

    private const string StagingTable = "`compiled_upsert_stage`";
    private const string SequenceColumn = "`compiled_seq`";

    private readonly MySqlSinkOptions _options;
    private string _connectionString = "";
    private RecordSchema<T>? _schema;
    private MySqlColumn[] _columns = [];
    private string _table = "";
    private string _stageSql = "";
    private string _upsertSql = "";
    private string _pipeline = "";
    private string _sinkName = "";
    private Action<string>? _warn;
    private int _bulkRefused;
    private long _retries;
    private long _rowsCommitted;

    /// <summary>Creates a sink with <paramref name="options"/>.</summary>
    public MySqlSink(MySqlSinkOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <summary>Appends to <paramref name="table"/> through <paramref name="connectionString"/>.</summary>
    public MySqlSink(string connectionString, string table, MySqlWriteMode mode = MySqlWriteMode.Append, bool exactlyOnce = false)
        : this(new MySqlSinkOptions { ConnectionString = connectionString, Table = table, Mode = mode, ExactlyOnce = exactlyOnce })
    {
    }

    /// <summary>The options (settings apply to this object).</summary>
    public MySqlSinkOptions Options => _options;

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

        _pipeline = context.PipelineName;
        _sinkName = context.SinkName;
        _warn = context.Warn;
        _schema = context.Schema ?? throw new InvalidOperationException(
            $"MySqlSink<{typeof(T).Name}> needs a record type with public fields or properties to make columns from; '{typeof(T).Name}' has none.");
        _columns = MySqlColumn.Of(_schema, _options.ColumnNaming);
        var keys = _columns.Where(c => c.IsKey).ToList();
        if (_options.Mode == MySqlWriteMode.Upsert && keys.Count == 0)
        {
            throw new NonRetryableException($"Upsert mode needs the record type '{typeof(T).Name}' to mark its key members with [Key].");
        }

        // Bulk copy is LOAD DATA LOCAL INFILE, which the client must allow; the zombie check counts the rows an UPDATE
        // matched, which is what MySQL reports unless UseAffectedRows is set.
        _connectionString = new MySqlConnectionStringBuilder(_options.ConnectionString) { AllowLoadLocalInfile = true, UseAffectedRows = false }.ConnectionString;
        _table = MySqlColumn.Quote(_options.Table);
        var names = string.Join(", ", _columns.Select(c => c.Quoted));
        _stageSql = $"""
            DROP TEMPORARY TABLE IF EXISTS {StagingTable};
            CREATE TEMPORARY TABLE {StagingTable} ({SequenceColumn} BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) SELECT {names} FROM {_table} LIMIT 0
            """;
        var updates = _columns.Where(c => !c.IsKey).Select(c => $"{c.Quoted} = VALUES({c.Quoted})").ToList();
        var firstKey = keys.FirstOrDefault()?.Quoted ?? "";
        // Rows are applied in stream order (the staging table's sequence), so the last record of a key wins.
        _upsertSql = $"""
            INSERT INTO {_table} ({names}) SELECT {names} FROM {StagingTable} ORDER BY {SequenceColumn}
            ON DUPLICATE KEY UPDATE {(updates.Count == 0 ? $"{firstKey} = {firstKey}" : string.Join(", ", updates))}
            """;

        try
        {
            await using var connection = new MySqlConnection(_connectionString);
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await PrepareTableAsync(connection, cancellationToken).ConfigureAwait(false);
            if (_options.ExactlyOnce)
            {
                await ExecuteAsync(connection, null, $"""
                    CREATE TABLE IF NOT EXISTS {OffsetsTable} (
                        pipeline VARCHAR(190) NOT NULL, source VARCHAR(190) NOT NULL, stream VARCHAR(190) NOT NULL, `partition` INT NOT NULL,
                        next_offset BIGINT NOT NULL, epoch BIGINT NOT NULL, updated_at DATETIME(6) NOT NULL,
                        PRIMARY KEY (pipeline, source, stream, `partition`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                    """, cancellationToken).ConfigureAwait(false);
                foreach (var sql in CheckpointTablesSql)
                {
                    await ExecuteAsync(connection, null, sql, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (MySqlException ex) when (!IsTransient(ex))
        {
            throw Permanent("prepare", ex);
        }
    }

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => DisposeAsync();

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        ClearPool();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public string Describe()
    {
        var retries = Retries;
        var retried = retries == 0 ? "" : $", {retries} transient {(retries == 1 ? "failure" : "failures")} retried";
        return $"mysql {Secrets.RedactConnectionString(_options.ConnectionString)} table {_options.Table} ({_options.Mode.ToString().ToLowerInvariant()}{(_options.ExactlyOnce ? ", exactly-once" : "")}{retried})";
    }

    /// <summary>The SQL that creates the table for the record type: columns from its schema, its [Key] members as the primary key.</summary>
    public string CreateTableSql()
    {
        var keys = _columns.Where(c => c.IsKey).Select(c => c.Quoted).ToList();
        var columns = _columns.Select(c => $"{c.Quoted} {c.SqlType}{(c.IsNullable ? " NULL" : " NOT NULL")}").ToList();
        if (keys.Count > 0)
        {
            columns.Add($"PRIMARY KEY ({string.Join(", ", keys)})");
        }

        return $"CREATE TABLE IF NOT EXISTS {MySqlColumn.Quote(_options.Table)} ({string.Join(", ", columns)}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<SourcePosition>?> ClaimPositionsAsync(string pipeline, string source, IReadOnlyList<SourcePosition> partitions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        if (partitions.Count == 0)
        {
            return [];
        }

        return await WithRetriesAsync(
            "claim source positions",
            async () =>
            {
                await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                var rows = string.Join(", ", partitions.Select((_, i) => $"(@pipeline, @source, @s{i}, @p{i}, -1, 1, UTC_TIMESTAMP(6))"));
                var keys = string.Join(" OR ", partitions.Select((_, i) => $"(stream = @s{i} AND `partition` = @p{i})"));
                await using var command = new MySqlCommand(
                    $"""
                    INSERT INTO {OffsetsTable} (pipeline, source, stream, `partition`, next_offset, epoch, updated_at) VALUES {rows}
                    ON DUPLICATE KEY UPDATE epoch = epoch + 1, updated_at = UTC_TIMESTAMP(6)
                    """,
                    connection,
                    transaction);
                await using var select = new MySqlCommand(
                    $"SELECT stream, `partition`, next_offset, epoch FROM {OffsetsTable} WHERE pipeline = @pipeline AND source = @source AND ({keys})",
                    connection,
                    transaction);
                foreach (var parameters in new[] { command.Parameters, select.Parameters })
                {
                    parameters.AddWithValue("@pipeline", pipeline);
                    parameters.AddWithValue("@source", source);
                    for (var i = 0; i < partitions.Count; i++)
                    {
                        parameters.AddWithValue($"@s{i}", partitions[i].Stream);
                        parameters.AddWithValue($"@p{i}", partitions[i].Partition);
                    }
                }

                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                var claimed = new List<SourcePosition>(partitions.Count);
                await using (var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        claimed.Add(new SourcePosition(reader.GetString(0), reader.GetInt32(1), reader.GetInt64(2), reader.GetInt64(3)));
                    }
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return (IReadOnlyList<SourcePosition>?)claimed;
            },
            cancellationToken).ConfigureAwait(false);
    }

    private async Task PrepareTableAsync(MySqlConnection connection, CancellationToken cancellationToken)
    {
        switch (_options.TableMode)
        {
            case TableMode.Recreate:
                await ExecuteAsync(connection, null, $"DROP TABLE IF EXISTS {_table}", cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, null, CreateTableSql(), cancellationToken).ConfigureAwait(false);
                if (_options.ExactlyOnce)
                {
                    // A new table means no rows: positions (and window state) stored for it would skip records.
                    await ExecuteAsync(connection, null, $"DROP TABLE IF EXISTS {OffsetsTable}, {CheckpointsTable}, {PositionsTable}, {StateTable}", cancellationToken).ConfigureAwait(false);
                }

                break;
            case TableMode.CreateIfMissing:
                await ExecuteAsync(connection, null, CreateTableSql(), cancellationToken).ConfigureAwait(false);
                break;
            case TableMode.MustExist:
                try
                {
                    await ExecuteAsync(connection, null, $"SELECT 1 FROM {_table} LIMIT 0", cancellationToken).ConfigureAwait(false);
                }
                catch (MySqlException ex) when (ex.ErrorCode == MySqlErrorCode.NoSuchTable)
                {
                    throw new NonRetryableException($"Table {_options.Table} does not exist (TableMode is MustExist; set it to CreateIfMissing to create it).", ex);
                }

                break;
        }
    }

    private static async Task ExecuteAsync(MySqlConnection connection, MySqlTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>An open connection to the sink's database.</summary>
    private async Task<MySqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        if (_connectionString.Length == 0)
        {
            throw new InvalidOperationException("The sink is not open.");
        }

        var connection = new MySqlConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private void ClearPool()
    {
        if (_connectionString.Length > 0)
        {
            using var connection = new MySqlConnection(_connectionString);
            MySqlConnection.ClearPool(connection);
        }
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
                ClearPool(); // pooled connections to a restarted server are dead
                var delay = TimeSpan.FromMilliseconds(Math.Min(5000, 100 * Math.Pow(2, attempt - 1)));
                _warn?.Invoke($"MySQL: could not {what} (attempt {attempt} of {_options.MaxAttempts}): {ex.GetType().Name}: {Reason(ex)}; retrying in {Setting.FormatDuration(delay)}");
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                throw new IOException($"MySQL: could not {what} after {_options.MaxAttempts} attempts (MaxAttempts): {Reason(ex)}", ex);
            }
            catch (MySqlException ex) when (!IsTransient(ex))
            {
                throw Permanent(what, ex);
            }
        }
    }

    /// <summary>
    /// A failure no retry fixes, in words: refused credentials, a missing database or table, missing privileges are
    /// <see cref="NonRetryableException"/> (the binary exits 2); others (a duplicate key in append mode) stay run-time failures.
    /// </summary>
    private Exception Permanent(string what, MySqlException ex) => ex.ErrorCode switch
    {
        MySqlErrorCode.NoSuchTable => new NonRetryableException($"Could not {what}: table {_options.Table} does not exist ({ex.Message}). Set TableMode to CreateIfMissing, or create it.", ex),
        MySqlErrorCode.AccessDenied => new NonRetryableException($"Could not {what}: MySQL refused the credentials ({ex.Message}).", ex),
        MySqlErrorCode.UnknownDatabase => new NonRetryableException($"Could not {what}: the database does not exist ({ex.Message}).", ex),
        MySqlErrorCode.DatabaseAccessDenied or MySqlErrorCode.TableAccessDenied => new NonRetryableException($"Could not {what} (table {_options.Table}): {ex.Message} (error {ex.Number}); the database may not exist, or the user may not use it.", ex),
        MySqlErrorCode.BulkCopyFailed when _options.Mode == MySqlWriteMode.Append => new InvalidOperationException(
            $"Could not {what} (table {_options.Table}): {ex.Message} In Append mode the table's primary key refuses a record whose key is already there or repeats in the batch; use Mode = Upsert to keep the last record of each key. Nothing of this batch was committed.", ex),
        _ => new InvalidOperationException($"Could not {what} (table {_options.Table}): {ex.Message} (error {ex.Number}).", ex),
    };

    private static string Reason(Exception ex) => ex is MySqlException my ? $"{my.Message} (error {my.Number})" : ex.InnerException is { } inner && ex.Message.Length < 40 ? $"{ex.Message} ({inner.Message})" : ex.Message;

    /// <summary>
    /// Whether a failure may pass if the work is tried again: MySqlConnector's own judgement (deadlocks, lock wait
    /// timeouts, too many connections, host unreachable), a server shutting down or killing the connection, and
    /// network errors.
    /// </summary>
    private static bool IsTransient(Exception exception) => exception switch
    {
        MySqlException my => my.IsTransient || my.ErrorCode is MySqlErrorCode.ServerShutdown
            || my.Number is 1927 or 4031 or 2006 or 2013 // connection killed (MariaDB), idle disconnect (MySQL), server gone, lost
            || my.InnerException is IOException or System.Net.Sockets.SocketException,
        IOException or System.Net.Sockets.SocketException or TimeoutException => true,
        _ => false,
    };

    /// <summary>Appends or upserts <paramref name="rows"/> inside <paramref name="transaction"/>.</summary>
    private async Task WriteRowsAsync(MySqlConnection connection, MySqlTransaction transaction, List<T> rows, RecordReader<T> reader, CancellationToken cancellationToken)
    {
        if (_options.Mode == MySqlWriteMode.Append)
        {
            await LoadAsync(connection, transaction, _table, rows, reader, cancellationToken).ConfigureAwait(false);
            return;
        }

        // Upsert: the rows go to a temporary table by bulk copy, then into the table in one statement. Temporary
        // tables are the connection's own and do not end the transaction.
        await ExecuteAsync(connection, transaction, _stageSql, cancellationToken).ConfigureAwait(false);
        await LoadAsync(connection, transaction, StagingTable, rows, reader, cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, _upsertSql, cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, $"DROP TEMPORARY TABLE {StagingTable}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Inserts <paramref name="rows"/> into <paramref name="table"/> by bulk copy, or by multi-row INSERTs when the
    /// server does not allow <c>LOAD DATA LOCAL INFILE</c> (MySQL 8's default: <c>local_infile=OFF</c>).
    /// </summary>
    private async Task LoadAsync(MySqlConnection connection, MySqlTransaction transaction, string table, List<T> rows, RecordReader<T> reader, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _bulkRefused) == 0)
        {
            var copy = new MySqlBulkCopy(connection, transaction) { DestinationTableName = table, BulkCopyTimeout = 0 };
            foreach (var column in _columns)
            {
                copy.ColumnMappings.Add(new MySqlBulkCopyColumnMapping(column.Ordinal, column.Name)); // bulk copy quotes names itself
            }

            try
            {
                var result = await copy.WriteToServerAsync(reader.Over(rows), cancellationToken).ConfigureAwait(false);
                ThrowOnWarnings(result.Warnings);
                return;
            }
            catch (MySqlException ex) when (ex.ErrorCode == MySqlErrorCode.NotAllowedCommand || ex.Number is 3948 or 4166) // MySQL 5.7, MySQL 8, MariaDB 10.11
            {
                // A refused statement leaves the transaction as it was: the rows go in by INSERT instead.
                if (Interlocked.Exchange(ref _bulkRefused, 1) == 0)
                {
                    _warn?.Invoke($"MySQL: the server does not allow LOAD DATA LOCAL INFILE ({ex.Message}); writing with multi-row INSERTs instead, which is slower. Set local_infile=ON on the server for bulk copy.");
                }
            }
        }

        await InsertAsync(connection, transaction, table, rows, reader, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Multi-row INSERTs of at most 1 000 rows and 30 000 parameters each.</summary>
    private async Task InsertAsync(MySqlConnection connection, MySqlTransaction transaction, string table, List<T> rows, RecordReader<T> reader, CancellationToken cancellationToken)
    {
        var names = string.Join(", ", _columns.Select(c => c.Quoted));
        var perStatement = Math.Max(1, Math.Min(1000, 30_000 / _columns.Length));
        reader.Over(rows);
        for (var start = 0; start < rows.Count; start += perStatement)
        {
            var count = Math.Min(perStatement, rows.Count - start);
            await using var command = new MySqlCommand { Connection = connection, Transaction = transaction };
            var text = new System.Text.StringBuilder($"INSERT INTO {table} ({names}) VALUES ");
            for (var r = 0; r < count; r++)
            {
                reader.Read();
                text.Append(r == 0 ? "(" : ", (");
                for (var c = 0; c < _columns.Length; c++)
                {
                    var name = $"@v{r}_{c}";
                    text.Append(c == 0 ? name : ", " + name);
                    command.Parameters.AddWithValue(name, reader.IsDBNull(c) ? null : reader.GetValue(c));
                }

                text.Append(')');
            }

            command.CommandText = text.ToString();
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A bulk load reports values it changed (truncated text, out-of-range numbers) as warnings and goes on; a sink
    /// that never loses data fails the write instead, so the transaction rolls back. Notes (rounding a decimal to the
    /// column's scale) are not failures.
    /// </summary>
    private void ThrowOnWarnings(IReadOnlyList<MySqlError> warnings)
    {
        var serious = warnings.Where(w => !string.Equals(w.Level, "Note", StringComparison.OrdinalIgnoreCase)).ToList();
        if (serious.Count > 0)
        {
            var shown = string.Join("; ", serious.Take(3).Select(w => $"{w.Message} ({w.Level} {(int)w.ErrorCode})"));
            throw new InvalidOperationException(
                $"Could not write rows to table {_options.Table}: MySQL would have changed {serious.Count} {(serious.Count == 1 ? "value" : "values")} to fit the table: {shown}. " +
                "Nothing of this batch was committed; widen the column or fix the records.");
        }
    }

    /// <summary>One partition's writer: it gathers rows and writes them in transactions, with the positions when exactly-once.</summary>
    private sealed class Writer(MySqlSink<T> sink) : ISinkWriter<T>
    {
        private readonly List<T> _rows = [];
        private readonly Stopwatch _age = new();
        private readonly SemaphoreSlim _turn = new(1, 1); // the interval timer's flush and the runtime's calls take turns
        private readonly CancellationTokenSource _closing = new();
        private readonly RecordReader<T> _reader = new(sink._schema!, sink._columns);
        private ITimer? _timer;
        private Exception? _timerFailure;

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
                if (!sink._options.ExactlyOnce && (_rows.Count >= sink._options.FlushRows || _age.Elapsed >= sink._options.FlushInterval))
                {
                    await WriteRowsAsync(null, cancellationToken).ConfigureAwait(false);
                }
                else if (!sink._options.ExactlyOnce && _rows.Count > 0 && _timer is null)
                {
                    // A quiet stream must not keep rows past FlushInterval: the timer writes them even if no record follows.
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
            _turn.Release();
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
                    await using var connection = await sink.OpenAsync(cancellationToken).ConfigureAwait(false);
                    await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                    if (attempted && checkpoint is not null && await AlreadyCommittedAsync(connection, transaction, checkpoint, cancellationToken).ConfigureAwait(false))
                    {
                        return true; // the last attempt's COMMIT reached the server before the connection broke
                    }

                    attempted = true;
                    if (_rows.Count > 0)
                    {
                        await sink.WriteRowsAsync(connection, transaction, _rows, _reader, cancellationToken).ConfigureAwait(false);
                    }

                    if (checkpoint is not null && positions.Count > 0)
                    {
                        await StorePositionsAsync(connection, transaction, checkpoint, cancellationToken).ConfigureAwait(false);
                    }

                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                    return true;
                },
                cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref sink._rowsCommitted, _rows.Count);
            _rows.Clear();
        }

        private static async Task StorePositionsAsync(MySqlConnection connection, MySqlTransaction transaction, Checkpoint checkpoint, CancellationToken cancellationToken)
        {
            var positions = checkpoint.Positions;
            var text = new System.Text.StringBuilder();
            for (var i = 0; i < positions.Count; i++)
            {
                text.Append($"UPDATE {OffsetsTable} SET next_offset = @o{i}, updated_at = UTC_TIMESTAMP(6) WHERE pipeline = @pipeline AND source = @source AND stream = @s{i} AND `partition` = @p{i} AND epoch = @e{i};\n");
            }

            await using var command = new MySqlCommand(text.ToString(), connection, transaction);
            AddPositions(command, checkpoint);
            var updated = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false); // rows matched: UseAffectedRows is off
            if (updated != positions.Count)
            {
                // Another reader claimed one of these partitions after this one: this reader is a zombie. Roll back.
                throw new InvalidOperationException(
                    $"Exactly-once: {positions.Count - updated} of the partitions {string.Join(", ", positions)} were claimed by another reader (rebalance or session timeout); " +
                    "this partition's uncommitted rows were rolled back and its new owner resumes from the last committed positions.");
            }
        }

        /// <summary>The checkpoint's pipeline, source and positions as @pipeline, @source and @s<i>i</i>, @p<i>i</i>, @o<i>i</i>, @e<i>i</i>.</summary>
        private static void AddPositions(MySqlCommand command, Checkpoint checkpoint)
        {
            var positions = checkpoint.Positions;
            command.Parameters.AddWithValue("@pipeline", checkpoint.Pipeline);
            command.Parameters.AddWithValue("@source", checkpoint.Source);
            for (var i = 0; i < positions.Count; i++)
            {
                command.Parameters.AddWithValue($"@s{i}", positions[i].Stream);
                command.Parameters.AddWithValue($"@p{i}", positions[i].Partition);
                command.Parameters.AddWithValue($"@o{i}", positions[i].Offset);
                command.Parameters.AddWithValue($"@e{i}", positions[i].Epoch);
            }
        }

        private static async Task<bool> AlreadyCommittedAsync(MySqlConnection connection, MySqlTransaction transaction, Checkpoint checkpoint, CancellationToken cancellationToken)
        {
            // A retry after a failure during COMMIT: if every stored position already equals this checkpoint's, with our
            // epoch, that COMMIT happened (positions only move with the rows that produced them).
            var positions = checkpoint.Positions;
            if (positions.Count == 0)
            {
                return false;
            }

            var matches = string.Join(" OR ", positions.Select((_, i) => $"(stream = @s{i} AND `partition` = @p{i} AND next_offset = @o{i} AND epoch = @e{i})"));
            await using var command = new MySqlCommand(
                $"SELECT count(*) FROM {OffsetsTable} WHERE pipeline = @pipeline AND source = @source AND ({matches})",
                connection,
                transaction);
            AddPositions(command, checkpoint);
            var matching = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
            return matching == positions.Count;
        }
    }
}
