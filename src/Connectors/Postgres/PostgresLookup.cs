using Compiled.Connectors;
using Compiled.Runtime;
using Npgsql;

namespace Compiled.Postgres;

/// <summary>
/// A lookup join against a PostgreSQL table (<c>[Lookup]</c>): rows of <typeparamref name="TRow"/> — one column per
/// public field or property, named like <see cref="PostgresSink{T}"/>'s columns (snake_case by default) — matched on
/// the row's <c>[Key]</c> member. The keys a batch misses in a partition's cache are fetched in one query,
/// <c>SELECT … FROM unnest($1) WITH ORDINALITY AS k JOIN table ON key = k.key</c> (each row with the position of the key
/// it matched, so a case-insensitive column serves every spelling asked), not one query per record; transient failures (a lost connection, a server
/// restart) are retried with backoff, and a table or column that does not exist stops the run at start.
/// </summary>
/// <typeparam name="TKey">The key type, the type of the row's <c>[Key]</c> member.</typeparam>
/// <typeparam name="TRow">The row type.</typeparam>
public sealed class PostgresLookup<TKey, TRow> : ILookup<TKey, TRow>, IConfigurable, IAsyncDisposable
    where TKey : notnull
{
    /// <summary>Attempts of a query that fails transiently before the run fails: 5, about 1.5 s with backoff.</summary>
    public const int DefaultMaxAttempts = 5;

    private NpgsqlDataSource? _dataSource;
    private RecordSchema<TRow>? _schema;
    private string _select = "";
    private int _keyField;
    private long _queries;
    private long _retries;
    private Action<string>? _warn;
    private (string Pipeline, string Name) _where;

    /// <summary>Looks rows up in <paramref name="table"/> (schema-qualified allowed) through <paramref name="connectionString"/>.</summary>
    public PostgresLookup(string connectionString, string table, ColumnNaming naming = ColumnNaming.SnakeCase)
    {
        ConnectionString = connectionString;
        Table = table;
        ColumnNaming = naming;
    }

    /// <summary>The Npgsql connection string; shown with its password masked.</summary>
    public string ConnectionString { get; set; }

    /// <summary>The table, optionally schema-qualified (<c>crm.customers</c>).</summary>
    public string Table { get; set; }

    /// <summary>How member names become column names. Default: snake_case.</summary>
    public ColumnNaming ColumnNaming { get; set; }

    /// <inheritdoc/>
    public JoinKind Join { get; set; }

    /// <inheritdoc/>
    public int CacheSize { get; set; } = LookupDefaults.CacheSize;

    /// <inheritdoc/>
    public TimeSpan TimeToLive { get; set; } = LookupDefaults.TimeToLive;

    /// <inheritdoc/>
    public LookupRouting Routing { get; set; }

    /// <summary>Default: <see cref="DefaultMaxAttempts"/>.</summary>
    public int MaxAttempts { get; set; } = DefaultMaxAttempts;

    /// <summary>Queries sent so far (all partitions): one per batch that missed keys, unless a batch misses very many.</summary>
    public long Queries => Interlocked.Read(ref _queries);

    /// <summary>Transient failures retried so far.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings =>
    [
        Setting.ConnectionString(nameof(ConnectionString), "The PostgreSQL connection string (Host=…;Database=…;Username=…;Password=…)", () => ConnectionString, v => ConnectionString = v),
        Setting.Text(nameof(Table), "The table rows are looked up in (schema.table allowed)", () => Table, v => Table = v),
        .. LookupDefaults.Settings(this, v => Join = v, v => CacheSize = v, v => TimeToLive = v, v => Routing = v),
        Setting.Number(nameof(MaxAttempts), "Attempts of a query that fails transiently before the run fails", () => MaxAttempts, v => MaxAttempts = (int)v, 1, 1000),
    ];

    /// <inheritdoc/>
    public string Describe()
    {
        var retries = Retries;
        var retried = retries == 0 ? "" : $", {retries} transient {(retries == 1 ? "failure" : "failures")} retried";
        return $"postgresql {Secrets.RedactConnectionString(ConnectionString)} table {Table} ({Join}, cache {CacheSize} keys for {Setting.FormatDuration(TimeToLive)}{retried})";
    }

    /// <inheritdoc/>
    public async ValueTask OpenAsync(LookupContext<TRow> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (string.IsNullOrWhiteSpace(ConnectionString) || string.IsNullOrWhiteSpace(Table))
        {
            throw new NonRetryableException($"Lookup '{context.Name}': ConnectionString and Table are required.");
        }

        PgErrors.CheckConnectionString(ConnectionString, $"Lookup '{context.Name}'");

        _schema = context.Schema ?? throw new InvalidOperationException($"PostgresLookup needs the schema of '{typeof(TRow).Name}'.");
        _keyField = _schema.Fields.Single(f => f.IsKey).Ordinal;
        // Each row comes back with the position of the key it was found for, so a row is matched to the key asked for
        // as the database compares them: a case-insensitive column (citext, a nondeterministic collation) returns its
        // row for every spelling asked, as a SQL JOIN would, rather than under the one spelling stored.
        var columns = _schema.Fields.Select(f => "t." + PgColumn.Quote(ColumnNames.Of(f.Name, ColumnNaming))).ToList();
        var keyColumn = ColumnNames.Of(_schema.Fields[_keyField].Name, ColumnNaming);
        _select = Select(columns, keyColumn, "");
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync().ConfigureAwait(false);
        }

        _dataSource = NpgsqlDataSource.Create(ConnectionString);

        _warn = context.Warn;
        _where = (context.Pipeline, context.Name);

        // The table and its columns are checked now: a missing one is a start-up error naming it, and so is a key
        // column the key type cannot be compared with (the query itself runs, asking for no key).
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (var probe = new NpgsqlCommand($"SELECT * FROM {PgColumn.Quote(Table)} WHERE false", connection))
            await using (var reader = await probe.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                // A citext key column compares case-insensitively only with citext: the keys are cast to it.
                var keyType = reader.GetDataTypeName(DbRows.Columns(_schema, reader, ColumnNaming, Table)[_keyField]);
                if (keyType.EndsWith("citext", StringComparison.Ordinal))
                {
                    _select = Select(columns, keyColumn, "::" + keyType);
                }
            }

            await using var query = new NpgsqlCommand(_select, connection);
            query.Parameters.Add(new NpgsqlParameter { Value = KeyArray([]) });
            await using var rows = await query.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (!PgErrors.IsTransient(ex))
        {
            var what = ex.SqlState switch
            {
                PostgresErrorCodes.UndefinedTable => $"table {Table} does not exist",
                PostgresErrorCodes.UndefinedFunction => $"the key column of {Table} cannot be compared with keys of type {typeof(TKey).Name} (declare the [Key] member with the column's type)",
                _ => "could not read table " + Table,
            };
            throw new NonRetryableException($"Lookup '{context.Name}': {what}: {PgErrors.Reason(ex)}.", ex);
        }
    }

    /// <summary>The query's last column: the position (from 1) of the key a row was found for.</summary>
    private const string AskedColumn = "compiled_asked_key";

    private string Select(List<string> columns, string keyColumn, string cast)
        => $"SELECT {string.Join(", ", columns)}, k.{AskedColumn} FROM unnest($1) WITH ORDINALITY AS k(key, {AskedColumn}) JOIN {PgColumn.Quote(Table)} AS t ON t.{PgColumn.Quote(keyColumn)} = k.key{cast}";

    /// <inheritdoc/>
    public ILookupReader<TKey, TRow> CreateReader(int partition) => new Reader(this);

    /// <inheritdoc/>
    public async ValueTask CloseAsync(CancellationToken cancellationToken) => await DisposeAsync().ConfigureAwait(false);

    /// <summary>Closes the connection pool if a run left it open.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_dataSource is { } dataSource)
        {
            _dataSource = null;
            await dataSource.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The keys as the query's array parameter: enums by name (they are stored as text), the rest as they are — except
    /// text with a NUL character, which PostgreSQL cannot hold (it would refuse the whole query): it goes as NULL,
    /// which finds no row, as no row can hold such a key.
    /// </summary>
    private static object KeyArray(ReadOnlySpan<TKey> keys)
    {
        if (typeof(TKey).IsEnum)
        {
            var names = new string[keys.Length];
            for (var i = 0; i < keys.Length; i++)
            {
                names[i] = keys[i].ToString()!;
            }

            return names;
        }

        if (typeof(TKey) == typeof(string))
        {
            var texts = new string?[keys.Length];
            for (var i = 0; i < keys.Length; i++)
            {
                var text = (string)(object)keys[i];
                texts[i] = text.Contains('\0', StringComparison.Ordinal) ? null : text;
            }

            return texts;
        }

        return keys.ToArray();
    }

    private sealed class Reader(PostgresLookup<TKey, TRow> lookup) : ILookupReader<TKey, TRow>
    {
        private readonly List<(TKey Key, TRow Row)> _found = [];
        private int[]? _columns;

        public async ValueTask LookupAsync(ReadOnlyMemory<TKey> keys, ILookupResults<TKey, TRow> results, CancellationToken cancellationToken)
        {
            var schema = lookup._schema!;
            var parameter = KeyArray(keys.Span);
            for (var attempt = 1; ; attempt++)
            {
                // Rows are gathered per attempt and handed on only once the query completed, so a retry repeats none.
                _found.Clear();
                try
                {
                    Interlocked.Increment(ref lookup._queries);
                    await using var connection = await lookup._dataSource!.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                    await using var command = new NpgsqlCommand(lookup._select, connection);
                    command.Parameters.Add(new NpgsqlParameter { Value = parameter });
                    await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    _columns ??= DbRows.Columns(schema, reader, lookup.ColumnNaming, lookup.Table);
                    var asked = reader.FieldCount - 1;
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        var key = keys.Span[(int)reader.GetInt64(asked) - 1];
                        _found.Add((key, DbRows.Read(schema, reader, _columns, lookup.Table)));
                    }

                    break;
                }
                catch (InvalidDataException ex)
                {
                    // A row no retry will read differently (a NULL or text where the member cannot hold it): the run
                    // stops (exit code 2) until the row or the member's type is fixed.
                    throw new NonRetryableException($"Lookup '{lookup._where.Name}': {ex.Message}", ex);
                }
                catch (Exception ex) when (PgErrors.IsTransient(ex) && attempt < lookup.MaxAttempts && !cancellationToken.IsCancellationRequested)
                {
                    Interlocked.Increment(ref lookup._retries);
                    CompiledMeter.ConnectorRetried(lookup._where.Pipeline, lookup._where.Name);
                    lookup._dataSource?.Clear(); // pooled connections to a restarted server are dead
                    var delay = TimeSpan.FromMilliseconds(Math.Min(2000, 100 * Math.Pow(2, attempt - 1)));
                    lookup._warn?.Invoke($"PostgreSQL: could not look up rows in {lookup.Table} (attempt {attempt} of {lookup.MaxAttempts}): {ex.GetType().Name}: {PgErrors.Reason(ex)}; retrying in {Setting.FormatDuration(delay)}");
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (PgErrors.IsTransient(ex) && !cancellationToken.IsCancellationRequested)
                {
                    throw new IOException($"PostgreSQL: could not look up rows in {lookup.Table} after {lookup.MaxAttempts} attempts (MaxAttempts): {PgErrors.Reason(ex)}", ex);
                }
            }

            foreach (var (key, row) in _found)
            {
                results.Add(key, row);
            }

            _found.Clear();
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
