using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Compiled.Connectors;
using Microsoft.Data.Sqlite;

namespace Compiled.Sqlite;

/// <summary>
/// A lookup join against a SQLite table (<c>[Lookup]</c>): rows of <typeparamref name="TRow"/> — one column per public
/// field or property, named like <see cref="SqliteSink{T}"/>'s columns — matched on the row's <c>[Key]</c> member.
/// Each partition reads through its own read-only connection; the keys a batch misses in the cache are asked for in
/// one statement (<c>WHERE key IN (SELECT value FROM json_each($keys))</c> for keys stored as integers or text; other
/// keys one parameter each, <c>WHERE key IN ($k0, …)</c>, up to <see cref="KeysPerStatement"/> per statement). Values are read
/// back in the forms the SQLite sink writes (dates as ISO 8601 text, enums by name, decimals as text).
/// </summary>
/// <typeparam name="TKey">The key type, the type of the row's <c>[Key]</c> member.</typeparam>
/// <typeparam name="TRow">The row type.</typeparam>
public sealed class SqliteLookup<TKey, TRow> : ILookup<TKey, TRow>, IConfigurable
    where TKey : notnull
{
    /// <summary>
    /// The most keys one statement asks for when they are bound one parameter each (SQLite allows 32,766 parameters):
    /// keys of other types than integers and text (see <see cref="SqliteLookup{TKey, TRow}"/>).
    /// </summary>
    public const int KeysPerStatement = 1000;

    /// <summary>
    /// Whether the keys go to SQLite as one JSON array (<c>IN (SELECT value FROM json_each($keys))</c>): keys stored as
    /// integers or text. Binding a thousand named parameters instead costs SQLite a search of the statement's
    /// parameter names per parameter — 36–48 ms for 10,000 keys against 4–7 ms as JSON, measured here.
    /// </summary>
    private static readonly bool KeysAsJson = IsIntegerOrText(typeof(TKey));

    private string _path;
    private string _table;
    private RecordSchema<TRow>? _schema;
    private string _select = "";
    private string _joinSelect = "";
    private int _keyField;
    private KeyFolding _folding;
    private readonly ColumnNaming _naming;

    /// <summary>Looks rows up in <paramref name="table"/> of the database file <paramref name="path"/>.</summary>
    public SqliteLookup(string path, string table, ColumnNaming naming = ColumnNaming.SnakeCase)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentException.ThrowIfNullOrWhiteSpace(table);
        _path = path;
        _table = table;
        _naming = naming;
    }

    /// <summary>The database file.</summary>
    public string Path => _path;

    /// <summary>The table.</summary>
    public string Table => _table;

    /// <inheritdoc/>
    public JoinKind Join { get; set; }

    /// <inheritdoc/>
    public int CacheSize { get; set; } = LookupDefaults.CacheSize;

    /// <inheritdoc/>
    public TimeSpan TimeToLive { get; set; } = LookupDefaults.TimeToLive;

    /// <inheritdoc/>
    public LookupRouting Routing { get; set; }

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings =>
    [
        Setting.Text(nameof(Path), "The SQLite database file", () => _path, v => _path = v),
        Setting.Text(nameof(Table), "The table rows are looked up in", () => _table, v => _table = v),
        .. LookupDefaults.Settings(this, v => Join = v, v => CacheSize = v, v => TimeToLive = v, v => Routing = v),
    ];

    /// <inheritdoc/>
    public string Describe() => $"SQLite {_path}, table {_table} ({Join}, cache {CacheSize} keys for {Setting.FormatDuration(TimeToLive)})";

    /// <inheritdoc/>
    public async ValueTask OpenAsync(LookupContext<TRow> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _schema = context.Schema ?? throw new InvalidOperationException($"SqliteLookup needs the schema of '{typeof(TRow).Name}'.");
        _keyField = _schema.Fields.Single(f => f.IsKey).Ordinal;
        if (!File.Exists(_path))
        {
            throw new NonRetryableException($"Lookup table database '{_path}' does not exist.");
        }

        var columns = _schema.Fields.Select(f => SqliteValues.Quote(ColumnNames.Of(f.Name, _naming)));
        _select = $"SELECT {string.Join(", ", columns)} FROM {SqliteValues.Quote(_table)} WHERE {SqliteValues.Quote(ColumnNames.Of(_schema.Fields[_keyField].Name, _naming))}";

        // The columns are checked now: a missing one is a start-up error naming it, not a failure of the first batch.
        await using var connection = Connect();
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var probe = connection.CreateCommand();
        probe.CommandText = $"SELECT * FROM {SqliteValues.Quote(_table)} WHERE 0";
        try
        {
            await using var reader = await probe.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            DbRows.Columns(_schema, reader, _naming, _table);
        }
        catch (SqliteException ex) when (ex.Message.Contains("no such table", StringComparison.Ordinal))
        {
            throw new NonRetryableException($"Lookup table '{_table}' does not exist in '{_path}'.", ex);
        }

        _folding = KeyColumn(connection, ColumnNames.Of(_schema.Fields[_keyField].Name, _naming));
        if (_folding == KeyFolding.InDatabase)
        {
            // SQLite matches each key itself and says which key a row is for (json_each's key: its position).
            var qualified = _schema.Fields.Select(f => "t." + SqliteValues.Quote(ColumnNames.Of(f.Name, _naming)));
            _joinSelect = $"SELECT {string.Join(", ", qualified)}, k.key AS {AskedColumn} FROM json_each($keys) AS k JOIN {SqliteValues.Quote(_table)} AS t ON t.{SqliteValues.Quote(ColumnNames.Of(_schema.Fields[_keyField].Name, _naming))} = k.value";
        }
    }

    /// <summary>The last column of <see cref="_joinSelect"/>: the position of the key a row was found for.</summary>
    private const string AskedColumn = "compiled_asked_key";

    /// <summary>
    /// Checks the key column against the key type, and says how SQLite compares its text: a text key against a column
    /// of integer or real affinity (or the reverse) would match under another spelling ('007' finds 7) or not at all,
    /// so it is a start-up error; a NOCASE or RTRIM column matches keys spelled differently from the row's, so rows
    /// are handed to every key asked for that SQLite finds equal, as a SQL JOIN would. Where SQLite does not describe
    /// the column (a view's), or the key is text of another type than string, SQLite matches the keys itself.
    /// </summary>
    private KeyFolding KeyColumn(SqliteConnection connection, string column)
    {
        var status = SQLitePCL.raw.sqlite3_table_column_metadata(connection.Handle, "main", _table, column, out var declared, out var collation, out _, out _, out _);
        if (status != SQLitePCL.raw.SQLITE_OK)
        {
            // A view's column: its type and collation are not known here, so SQLite pairs rows with keys (keys of
            // other types than integers and text compare by value and are read back as they were asked).
            return KeysAsJson ? KeyFolding.InDatabase : KeyFolding.None;
        }

        var affinity = Affinity(declared ?? "");
        var keyIsText = typeof(TKey) == typeof(string) || typeof(TKey) == typeof(char) || typeof(TKey).IsEnum;
        var keyIsInteger = !typeof(TKey).IsEnum && Type.GetTypeCode(typeof(TKey)) is TypeCode.SByte or TypeCode.Byte or TypeCode.Int16 or TypeCode.UInt16 or TypeCode.Int32 or TypeCode.UInt32 or TypeCode.Int64 or TypeCode.UInt64;
        if ((keyIsText && affinity is "INTEGER" or "REAL" or "NUMERIC") || (keyIsInteger && affinity == "TEXT"))
        {
            throw new NonRetryableException($"Lookup table '{_table}': its key column '{column}' is declared {declared} ({affinity} affinity), but the [Key] member is {typeof(TKey).Name}; SQLite would compare them after converting one ('007' finds the row of 7, or nothing matches). Declare the member with the column's type, or the column with the member's.");
        }

        var folding = collation?.ToUpperInvariant() switch
        {
            "NOCASE" => KeyFolding.AsciiCase,
            "RTRIM" => KeyFolding.TrailingSpaces,
            _ => KeyFolding.None,
        };
        return folding == KeyFolding.None || typeof(TKey) == typeof(string) ? folding
            : keyIsText ? KeyFolding.InDatabase // a char or an enum (stored by name) in a column that folds text
            : KeyFolding.None; // numbers do not fold
    }

    /// <summary>SQLite's column affinity of a declared type (its documented rules, in their order).</summary>
    private static string Affinity(string declared)
    {
        var type = declared.ToUpperInvariant();
        return type.Contains("INT", StringComparison.Ordinal) ? "INTEGER"
            : type.Contains("CHAR", StringComparison.Ordinal) || type.Contains("CLOB", StringComparison.Ordinal) || type.Contains("TEXT", StringComparison.Ordinal) ? "TEXT"
            : type.Length == 0 || type.Contains("BLOB", StringComparison.Ordinal) ? "BLOB"
            : type.Contains("REAL", StringComparison.Ordinal) || type.Contains("FLOA", StringComparison.Ordinal) || type.Contains("DOUB", StringComparison.Ordinal) ? "REAL"
            : "NUMERIC";
    }

    /// <summary>How SQLite's collation of the key column makes different spellings equal.</summary>
    private enum KeyFolding
    {
        /// <summary>A binary column (or keys that are not text): a row's key is the key asked for.</summary>
        None,

        /// <summary>Not known here: SQLite pairs each row with the key it matched (a join with the keys).</summary>
        InDatabase,

        /// <summary>NOCASE: the 26 ASCII capitals fold to lower case.</summary>
        AsciiCase,

        /// <summary>RTRIM: trailing spaces are ignored.</summary>
        TrailingSpaces,
    }

    /// <summary>A text key in the form SQLite compares under <paramref name="folding"/>.</summary>
    private static string Fold(string key, KeyFolding folding)
    {
        if (folding == KeyFolding.None)
        {
            return key;
        }

        if (folding == KeyFolding.TrailingSpaces)
        {
            return key.TrimEnd(' ');
        }

        return string.Create(key.Length, key, static (span, text) =>
        {
            for (var i = 0; i < text.Length; i++)
            {
                var c = text[i];
                span[i] = c is >= 'A' and <= 'Z' ? (char)(c + 32) : c;
            }
        });
    }

    /// <inheritdoc/>
    public ILookupReader<TKey, TRow> CreateReader(int partition) => new Reader(this);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private static bool IsIntegerOrText(Type type)
        => type.IsEnum || Type.GetTypeCode(type) is TypeCode.SByte or TypeCode.Byte or TypeCode.Int16 or TypeCode.UInt16 or TypeCode.Int32 or TypeCode.UInt32
            or TypeCode.Int64 or TypeCode.UInt64 or TypeCode.String or TypeCode.Char or TypeCode.DateTime or TypeCode.Decimal
            || type == typeof(Guid) || type == typeof(DateTimeOffset) || type == typeof(DateOnly) || type == typeof(TimeOnly) || type == typeof(TimeSpan);

    private static bool HasSurrogate(string text) => text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    /// <summary>Text as SQLite receives it: UTF-8, in which a lone UTF-16 surrogate becomes U+FFFD.</summary>
    private static string AsStored(string text) => HasSurrogate(text) ? Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text)) : text;

    private SqliteConnection Connect()
        => new(new SqliteConnectionStringBuilder { DataSource = _path, Mode = SqliteOpenMode.ReadOnly, Pooling = false, DefaultTimeout = 30 }.ConnectionString);

    private sealed class Reader(SqliteLookup<TKey, TRow> lookup) : ILookupReader<TKey, TRow>
    {
        private readonly ArrayBufferWriter<byte> _json = new();
        private SqliteConnection? _connection;
        private int[]? _columns;

        public async ValueTask LookupAsync(ReadOnlyMemory<TKey> keys, ILookupResults<TKey, TRow> results, CancellationToken cancellationToken)
        {
            if (_connection is null)
            {
                _connection = lookup.Connect();
                await _connection.OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var pragma = _connection.CreateCommand();
                pragma.CommandText = "PRAGMA busy_timeout=5000;";
                await pragma.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            Spellings(keys.Span);
            if (KeysAsJson)
            {
                // One statement for any number of keys: the keys as one JSON array parameter.
                await ReadAsync(ToJson(keys.Span), keys, results, cancellationToken).ConfigureAwait(false);
                return;
            }

            for (var start = 0; start < keys.Length; start += KeysPerStatement)
            {
                var chunk = keys.Slice(start, Math.Min(KeysPerStatement, keys.Length - start));
                await using var command = _connection.CreateCommand();
                var sql = new StringBuilder(lookup._select).Append(" IN (");
                for (var i = 0; i < chunk.Length; i++)
                {
                    var name = "$k" + i.ToString(CultureInfo.InvariantCulture);
                    sql.Append(i == 0 ? "" : ", ").Append(name);
                    command.Parameters.AddWithValue(name, SqliteValues.ToDatabase(chunk.Span[i]));
                }

                command.CommandText = sql.Append(')').ToString();
                await ReadAsync(command, chunk, results, cancellationToken).ConfigureAwait(false);
            }
        }

        private async ValueTask ReadAsync(string json, ReadOnlyMemory<TKey> keys, ILookupResults<TKey, TRow> results, CancellationToken cancellationToken)
        {
            await using var command = _connection!.CreateCommand();
            command.CommandText = lookup._folding == KeyFolding.InDatabase ? lookup._joinSelect : lookup._select + " IN (SELECT value FROM json_each($keys))";
            command.Parameters.AddWithValue("$keys", json);
            await ReadAsync(command, keys, results, cancellationToken).ConfigureAwait(false);
        }

        private async ValueTask ReadAsync(SqliteCommand command, ReadOnlyMemory<TKey> keys, ILookupResults<TKey, TRow> results, CancellationToken cancellationToken)
        {
            var schema = lookup._schema!;
            var keyField = schema.Fields[lookup._keyField];
            var paired = lookup._folding == KeyFolding.InDatabase; // only keys that go as JSON are paired in the database
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            _columns ??= DbRows.Columns(schema, reader, lookup._naming, lookup._table);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                TKey key;
                TRow row;
                try
                {
                    key = paired
                        ? keys.Span[(int)reader.GetInt64(reader.FieldCount - 1)] // the key SQLite matched the row with
                        : DbRows.Field<TKey>(reader, _columns[keyField.Ordinal], keyField, lookup._table);
                    row = DbRows.Read(schema, reader, _columns, lookup._table);
                }
                catch (InvalidDataException ex)
                {
                    // A row no retry reads differently (a NULL, a fraction or text where the member cannot hold it):
                    // the run stops (exit code 2) until the row or the member's type is fixed.
                    throw new NonRetryableException($"Lookup table '{lookup._table}': {ex.Message}", ex);
                }

                if (_spellings is null || paired)
                {
                    results.Add(key, row);
                    continue;
                }

                // Every key asked for that SQLite finds equal to the row's gets the row.
                foreach (var asked in CollectionsMarshal.AsSpan(_spellings.GetValueOrDefault(Fold((string)(object)key, lookup._folding)) ?? []))
                {
                    results.Add(asked, row);
                }
            }
        }

        /// <summary>
        /// The text keys asked for, by the form SQLite compares: folded as the column's collation folds, and with a lone
        /// UTF-16 surrogate as U+FFFD, as the key reaches SQLite. Null when every key is its own form (a binary column,
        /// well-formed text).
        /// </summary>
        private Dictionary<string, List<TKey>>? _spellings;
        private readonly Dictionary<string, List<TKey>> _byForm = new(StringComparer.Ordinal); // what _spellings points to when it is not null

        private void Spellings(ReadOnlySpan<TKey> keys)
        {
            _spellings = null;
            if (typeof(TKey) != typeof(string) || lookup._folding == KeyFolding.InDatabase)
            {
                return;
            }

            var any = lookup._folding != KeyFolding.None;
            for (var i = 0; i < keys.Length && !any; i++)
            {
                any = HasSurrogate((string)(object)keys[i]);
            }

            if (!any)
            {
                return;
            }

            _byForm.Clear();
            foreach (var key in keys)
            {
                var folded = Fold(AsStored((string)(object)key), lookup._folding);
                if (!_byForm.TryGetValue(folded, out var spellings))
                {
                    _byForm[folded] = spellings = [];
                }

                spellings.Add(key);
            }

            _spellings = _byForm;
        }

        /// <summary>The keys as a JSON array of their database forms (integers or text; a lone UTF-16 surrogate becomes U+FFFD, as SQLite stores it).</summary>
        private string ToJson(ReadOnlySpan<TKey> keys)
        {
            _json.ResetWrittenCount();
            using (var writer = new Utf8JsonWriter(_json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true }))
            {
                writer.WriteStartArray();
                foreach (var key in keys)
                {
                    switch (SqliteValues.ToDatabase(key))
                    {
                        case string text:
                            writer.WriteStringValue(text);
                            break;
                        case var number:
                            writer.WriteNumberValue(Convert.ToInt64(number, CultureInfo.InvariantCulture));
                            break;
                    }
                }

                writer.WriteEndArray();
            }

            return Encoding.UTF8.GetString(_json.WrittenSpan);
        }

        public async ValueTask DisposeAsync()
        {
            if (_connection is not null)
            {
                await _connection.DisposeAsync().ConfigureAwait(false);
                _connection = null;
            }
        }
    }
}
