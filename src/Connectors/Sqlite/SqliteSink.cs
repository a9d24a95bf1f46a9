using System.Globalization;
using System.Text;
using Compiled.Connectors;
using Microsoft.Data.Sqlite;

namespace Compiled.Sqlite;

/// <summary>
/// Writes records into a SQLite table: the embedded default, a real database without a server. It behaves like the
/// PostgreSQL sink: columns come from the record type's compile-time schema (one per public field or property, in
/// order), named in snake_case by default; <c>[Key]</c> members are the primary key; <see cref="TableWriteMode.Upsert"/>
/// inserts or updates by them. Every batch is written in one transaction through a prepared statement, so a batch is
/// durable when its write returns. SQLite has one writer at a time, so all partitions share one connection and take
/// turns per batch. Types (docs/connectors.md): integers and bool as INTEGER, float and double as REAL, decimal as TEXT
/// with every digit (SQLite has no decimal type and REAL would keep 15-17 digits), dates and times as ISO 8601 TEXT — the
/// form SQLite's date functions read — with <c>DateTimeOffset</c> in UTC so that text order is time order, GUIDs and
/// enum names as TEXT, bytes as BLOB.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class SqliteSink<T> : ISink<T>, IConfigurable, IDisposable
{
    /// <summary>
    /// How long a writer waits for a lock held by another connection (another process reading the file): long
    /// enough to ride out a reader's transaction, short enough to fail rather than hang.
    /// </summary>
    public const int DefaultBusyTimeoutMilliseconds = 5000;

    private string _path;
    private string _table;
    private TableMode _mode;
    private TableWriteMode _writeMode;
    private readonly ColumnNaming _naming;
    private string[] _columns = [];
    private readonly SemaphoreSlim _turn = new(1, 1);
    private SqliteConnection? _connection;
    private SqliteCommand? _insert;
    private RecordSchema<T>? _schema;

    /// <summary>
    /// Creates a sink writing to table <paramref name="table"/> of the database file <paramref name="path"/>: the
    /// table is prepared by <paramref name="mode"/>, rows appended or upserted by <paramref name="writeMode"/>, columns
    /// named by <paramref name="naming"/>.
    /// </summary>
    public SqliteSink(string path, string table, TableMode mode = TableMode.CreateIfMissing, TableWriteMode writeMode = TableWriteMode.Append, ColumnNaming naming = ColumnNaming.SnakeCase)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentException.ThrowIfNullOrWhiteSpace(table);
        _path = path;
        _table = table;
        _mode = mode;
        _writeMode = writeMode;
        _naming = naming;
    }

    /// <summary>The database file.</summary>
    public string Path => _path;

    /// <summary>The table.</summary>
    public string Table => _table;

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings =>
    [
        Setting.Text(nameof(Path), "The SQLite database file", () => _path, v => _path = v),
        Setting.Text(nameof(Table), "The table written to", () => _table, v => _table = v),
        Setting.Choice("Mode", "Append rows, or upsert by the record's [Key] members", () => _writeMode, v => _writeMode = v),
        Setting.Choice("TableMode", "What to do with the table at start", () => _mode, v => _mode = v),
    ];

    /// <inheritdoc/>
    public async ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _schema = context.Schema ?? throw new InvalidOperationException(
            $"SqliteSink<{typeof(T).Name}> needs a record type with public fields or properties to make columns from; '{typeof(T).Name}' has none.");
        _columns = [.. _schema.Fields.Select(f => ColumnNames.Of(f.Name, _naming))];
        if (_writeMode == TableWriteMode.Upsert && !_schema.Fields.Any(f => f.IsKey))
        {
            throw new NonRetryableException($"Upsert mode needs the record type '{typeof(T).Name}' to mark its key members with [Key].");
        }

        var builder = new SqliteConnectionStringBuilder { DataSource = _path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false };
        try
        {
            _connection = new SqliteConnection(builder.ConnectionString);
            await _connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsNativeLibraryMissing(ex))
        {
            // Without this, a Native AOT binary copied without its SQLite library says only "A type initializer threw an exception".
            throw new NonRetryableException(
                $"SQLite's native library '{NativeLibraryFile}' could not be loaded: a binary that uses SqliteSink needs it beside the executable (a Native AOT publish puts it in the publish directory: ship both files) or on the library path. See docs/deployment.md. ({Innermost(ex).Message})",
                ex);
        }

        // WAL lets readers look at the table while the run writes; FULL makes every committed batch survive power loss.
        Execute("PRAGMA journal_mode=WAL;");
        Execute("PRAGMA synchronous=FULL;");
        Execute(string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout={DefaultBusyTimeoutMilliseconds};"));

        var exists = TableExists();
        switch (_mode)
        {
            case TableMode.MustExist when !exists:
                throw new NonRetryableException($"Table '{_table}' does not exist in '{_path}', and the sink's table mode is {nameof(TableMode.MustExist)}; create it or use {nameof(TableMode.CreateIfMissing)}.");
            case TableMode.Recreate:
                Execute($"DROP TABLE IF EXISTS {Quote(_table)};");
                Execute(CreateTableSql());
                break;
            case TableMode.CreateIfMissing when !exists:
                Execute(CreateTableSql());
                break;
        }

        _insert = _connection.CreateCommand();
        _insert.CommandText = InsertSql();
        foreach (var field in _schema.Fields)
        {
            _insert.Parameters.Add(new SqliteParameter { ParameterName = "$p" + field.Ordinal.ToString(CultureInfo.InvariantCulture) });
        }

        _insert.Prepare();
    }

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    /// <inheritdoc/>
    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        if (_insert is not null)
        {
            await _insert.DisposeAsync().ConfigureAwait(false);
            _insert = null;
        }

        if (_connection is not null)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
        }
    }

    /// <inheritdoc/>
    public string Describe() => $"sqlite {_path} table {_table}{(_writeMode == TableWriteMode.Upsert ? " (upsert)" : "")}";

    /// <summary>Closes the connection if a run left it open.</summary>
    public void Dispose()
    {
        _insert?.Dispose();
        _connection?.Dispose();
        _turn.Dispose();
    }

    /// <summary>The CREATE TABLE statement the sink uses for <paramref name="schema"/>.</summary>
    public string CreateTableSql(RecordSchema<T> schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var sql = new StringBuilder("CREATE TABLE ").Append(Quote(_table)).Append(" (");
        foreach (var field in schema.Fields)
        {
            if (field.Ordinal > 0)
            {
                sql.Append(", ");
            }

            sql.Append(Quote(ColumnNames.Of(field.Name, _naming))).Append(' ').Append(ColumnType(field.Kind));
            if (!field.IsNullable)
            {
                sql.Append(" NOT NULL");
            }
        }

        var keys = schema.Fields.Where(f => f.IsKey).Select(f => Quote(ColumnNames.Of(f.Name, _naming))).ToList();
        if (keys.Count > 0)
        {
            sql.Append(", PRIMARY KEY (").Append(string.Join(", ", keys)).Append(')');
        }

        return sql.Append(");").ToString();
    }

    private string CreateTableSql() => CreateTableSql(_schema!);

    private string InsertSql()
    {
        var fields = _schema!.Fields;
        var columns = string.Join(", ", _columns.Select(Quote));
        var values = string.Join(", ", fields.Select(f => "$p" + f.Ordinal.ToString(CultureInfo.InvariantCulture)));
        var insert = $"INSERT INTO {Quote(_table)} ({columns}) VALUES ({values})";
        if (_writeMode == TableWriteMode.Append)
        {
            return insert + ";";
        }

        // Rows of a batch are applied in order, so the last record of a key wins, as in the PostgreSQL sink.
        var keys = string.Join(", ", fields.Where(f => f.IsKey).Select(f => Quote(_columns[f.Ordinal])));
        var updates = fields.Where(f => !f.IsKey).Select(f => $"{Quote(_columns[f.Ordinal])} = excluded.{Quote(_columns[f.Ordinal])}").ToList();
        return $"{insert} ON CONFLICT ({keys}) DO {(updates.Count == 0 ? "NOTHING" : "UPDATE SET " + string.Join(", ", updates))};";
    }

    private bool TableExists()
    {
        using var command = _connection!.CreateCommand();
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $name;";
        command.Parameters.AddWithValue("$name", _table);
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture) > 0;
    }

    private void Execute(string sql)
    {
        using var command = _connection!.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>The file name of the SQLite library Microsoft.Data.Sqlite's bundle loads on this OS.</summary>
    internal static string NativeLibraryFile => OperatingSystem.IsWindows() ? "e_sqlite3.dll" : OperatingSystem.IsMacOS() ? "libe_sqlite3.dylib" : "libe_sqlite3.so";

    private static bool IsNativeLibraryMissing(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
            {
                return true;
            }
        }

        return false;
    }

    private static Exception Innermost(Exception exception)
    {
        var e = exception;
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }

    private static string Quote(string identifier) => SqliteValues.Quote(identifier);

    private static string ColumnType(FieldKind kind) => kind switch
    {
        FieldKind.Boolean or FieldKind.Byte or FieldKind.SByte or FieldKind.Int16 or FieldKind.UInt16
            or FieldKind.Int32 or FieldKind.UInt32 or FieldKind.Int64 or FieldKind.UInt64 => "INTEGER",
        FieldKind.Single or FieldKind.Double => "REAL",
        FieldKind.Bytes => "BLOB",
        _ => "TEXT", // decimal as text keeps every digit (REAL keeps 15-17); dates and times as ISO 8601, what SQLite's date functions read; GUIDs canonical
    };

    private void InsertBatch(ReadOnlySpan<T> records)
    {
        var insert = _insert ?? throw new InvalidOperationException("The sink is not open.");
        using var transaction = _connection!.BeginTransaction();
        insert.Transaction = transaction;
        var binder = new ParameterBinder(insert.Parameters);
        foreach (var record in records)
        {
            _schema!.Visit(record, ref binder);
            insert.ExecuteNonQuery();
        }

        transaction.Commit();
        insert.Transaction = null;
    }

    /// <summary>Sets the prepared statement's parameters from a record's fields.</summary>
    private readonly struct ParameterBinder(SqliteParameterCollection parameters) : IFieldVisitor
    {
        public void Visit<TField>(int ordinal, TField value) => parameters[ordinal].Value = SqliteValues.ToDatabase(value);
    }

    private sealed class Writer(SqliteSink<T> sink) : ISinkWriter<T>
    {
        public async ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            await sink._turn.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                sink.InsertBatch(records.Span);
            }
            finally
            {
                sink._turn.Release();
            }
        }

        // Each batch was committed by WriteAsync: nothing is pending.
        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
