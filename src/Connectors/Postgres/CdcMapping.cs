using System.Globalization;
using Compiled.Connectors;
using Npgsql;
using Npgsql.Replication.PgOutput;

namespace Compiled.Postgres;

/// <summary>
/// How the columns of a captured table become the fields of a change record: one field per column (by name, through
/// the record type's compile-time schema), plus optional metadata fields — the <see cref="ChangeKind"/>, the commit
/// LSN and the commit time. Checked against the table's columns at start; rows are built with
/// <see cref="RecordSchema{T}.Create"/>, from a snapshot's data reader or from a replication tuple.
/// </summary>
internal sealed class CdcMapping<T>
{
    private readonly RecordSchema<T> _schema;
    private readonly int[] _columnOfField;   // table column index by field ordinal, -1 for metadata fields
    private int[] _fieldOfColumn;            // field ordinal by column index of the stream's relation, -1 for columns the record does not carry
    private readonly ValueSlot[] _slots;     // a typed holder per field, filled from a replication tuple
    private readonly int[] _selectIndex;     // the snapshot SELECT's column index by field ordinal, -1 for metadata fields
    private readonly string _table;

    private CdcMapping(RecordSchema<T> schema, string table, int[] columnOfField, int[] fieldOfColumn, ValueSlot[] slots, int kindField, int lsnField, int timeField)
    {
        _schema = schema;
        _table = table;
        _columnOfField = columnOfField;
        _fieldOfColumn = fieldOfColumn;
        _slots = slots;
        _selectIndex = new int[columnOfField.Length];
        var selected = 0;
        for (var f = 0; f < columnOfField.Length; f++)
        {
            _selectIndex[f] = columnOfField[f] >= 0 ? selected++ : -1; // the SELECT list is the carried columns in field order
        }

        KindField = kindField;
        LsnField = lsnField;
        TimeField = timeField;
    }

    /// <summary>The field holding the <see cref="ChangeKind"/>, or -1.</summary>
    public int KindField { get; }

    /// <summary>The field holding the commit LSN, or -1.</summary>
    public int LsnField { get; }

    /// <summary>The field holding the commit time, or -1.</summary>
    public int TimeField { get; }

    /// <summary>The table's column names, in table order.</summary>
    public string[] Columns { get; private init; } = [];

    /// <summary>The table columns the record carries, in field order (the snapshot's SELECT list).</summary>
    public IEnumerable<string> SelectedColumns => _columnOfField.Where(c => c >= 0).Select(c => Columns[c]);

    /// <summary>
    /// Maps <paramref name="schema"/> onto the table's <paramref name="columns"/> (name, type name, not-null), or throws
    /// a <see cref="NonRetryableException"/> naming the field or column that does not fit.
    /// </summary>
    public static CdcMapping<T> Create(RecordSchema<T> schema, string table, IReadOnlyList<(string Name, string Type, bool NotNull)> columns, ColumnNaming naming, string lsnName, string timeName)
    {
        if (!schema.CanCreate)
        {
            throw new NonRetryableException($"PostgresCdcSource<{schema.TypeName}>: the record type must be buildable from its fields (a public constructor whose parameters are its fields, or settable members and a parameterless constructor).");
        }

        var byName = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < columns.Count; i++)
        {
            byName.TryAdd(columns[i].Name, i);
        }

        var columnOfField = new int[schema.Fields.Count];
        var fieldOfColumn = Enumerable.Repeat(-1, columns.Count).ToArray();
        int kind = -1, lsn = -1, time = -1;
        var problems = new List<string>();
        foreach (var field in schema.Fields)
        {
            columnOfField[field.Ordinal] = -1;
            if (field.ClrType == typeof(ChangeKind))
            {
                kind = field.Ordinal;
                continue;
            }

            var name = ColumnNames.Of(field.Name, naming);
            if (!byName.TryGetValue(name, out var column))
            {
                if (string.Equals(field.Name, lsnName, StringComparison.OrdinalIgnoreCase))
                {
                    lsn = field.Kind is FieldKind.Int64 or FieldKind.UInt64 or FieldKind.Decimal ? field.Ordinal
                        : throw new NonRetryableException($"{schema.TypeName}.{field.Name} holds the commit LSN, so it must be a long (it is {field.ClrType.Name}).");
                    continue;
                }

                if (string.Equals(field.Name, timeName, StringComparison.OrdinalIgnoreCase))
                {
                    time = field.Kind is FieldKind.DateTimeOffset or FieldKind.DateTime ? field.Ordinal
                        : throw new NonRetryableException($"{schema.TypeName}.{field.Name} holds the commit time, so it must be a DateTimeOffset or DateTime (it is {field.ClrType.Name}).");
                    continue;
                }

                problems.Add($"table {table} has no column '{name}' for {schema.TypeName}.{field.Name}");
                continue;
            }

            columnOfField[field.Ordinal] = column;
            fieldOfColumn[column] = field.Ordinal;
            var (columnName, type, notNull) = columns[column];
            if (field.ClrType == typeof(Utf8Text))
            {
                problems.Add($"{schema.TypeName}.{field.Name} is Utf8Text, which points into a source's read buffers; declare it string");
            }
            else if (!Fits(field, type))
            {
                problems.Add($"column '{columnName}' of table {table} is {type}, which does not read as {schema.TypeName}.{field.Name} ({Describe(field)})");
            }
            else if (!notNull && !field.IsNullable && field.ClrType.IsValueType)
            {
                problems.Add($"column '{columnName}' of table {table} may be NULL, but {schema.TypeName}.{field.Name} is {field.ClrType.Name}, which cannot hold null; declare it {field.ClrType.Name}?");
            }
        }

        if (problems.Count > 0)
        {
            throw new NonRetryableException($"PostgresCdcSource<{schema.TypeName}>: {string.Join("; ", problems)}. Its columns are {string.Join(", ", columns.Select(c => $"'{c.Name}' {c.Type}"))} (members map to columns named {naming}).");
        }

        // A typed holder per field, made through the schema's own visitor so each knows its field's type without reflection.
        var slots = new ValueSlot[schema.Fields.Count];
        var defaults = new DefaultFields();
        T sample;
        try
        {
            sample = schema.Create(ref defaults);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or NullReferenceException)
        {
            throw new NonRetryableException($"PostgresCdcSource<{schema.TypeName}> builds a record from default values to learn its fields' types, and the type's constructor refused them ({ex.Message}); let it accept defaults.", ex);
        }

        var maker = new SlotMaker(slots);
        schema.Visit(sample, ref maker);
        return new CdcMapping<T>(schema, table, columnOfField, fieldOfColumn, slots, kind, lsn, time) { Columns = [.. columns.Select(c => c.Name)] };
    }

    /// <summary>The field that carries table column <paramref name="column"/>, or -1.</summary>
    public int FieldOf(string column)
    {
        var index = Array.FindIndex(Columns, c => string.Equals(c, column, StringComparison.OrdinalIgnoreCase));
        return index < 0 ? -1 : Array.IndexOf(_columnOfField, index);
    }

    /// <summary>
    /// Maps the columns of the change stream's relation (its columns as of the change: a later <c>ALTER TABLE</c> adds
    /// or drops some) to fields by name; throws naming the fields whose column the relation no longer has.
    /// </summary>
    public void Remap(IReadOnlyList<string> relationColumns)
    {
        var map = new int[relationColumns.Count];
        var found = new bool[_columnOfField.Length];
        for (var i = 0; i < relationColumns.Count; i++)
        {
            var field = FieldOf(relationColumns[i]);
            map[i] = field;
            if (field >= 0)
            {
                found[field] = true;
            }
        }

        var missing = Enumerable.Range(0, found.Length).Where(f => _columnOfField[f] >= 0 && !found[f]).Select(f => $"'{Columns[_columnOfField[f]]}' ({_schema.TypeName}.{_schema.Fields[f].Name})").ToList();
        if (missing.Count > 0)
        {
            throw new NonRetryableException($"Table {_table} no longer has column {string.Join(", ", missing)} in its change stream (dropped or renamed); change the record type to match the table.");
        }

        _fieldOfColumn = map;
    }

    /// <summary>The integer value the last tuple gave field <paramref name="field"/> (the key of a split check).</summary>
    public long KeyValue(int field) => _slots[field].AsInt64();

    /// <summary>Builds the record of the snapshot reader's current row (selected as <see cref="SelectedColumns"/>).</summary>
    public T ReadSnapshotRow(NpgsqlDataReader reader, long lsn, DateTimeOffset time)
    {
        var source = new SnapshotFields(this, reader, lsn, time);
        return _schema.Create(ref source);
    }

    /// <summary>
    /// Reads one tuple of a replication message into the field holders. Returns false when a column came as
    /// "unchanged TOAST value" (the server did not send it): the caller fills it from the old row or fails.
    /// </summary>
    public async ValueTask<bool> ReadTupleAsync(ReplicationTuple tuple, bool keyOnly, CancellationToken cancellationToken)
    {
        var complete = true;
        var column = 0;
        await foreach (var value in tuple.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            var field = column < _fieldOfColumn.Length ? _fieldOfColumn[column] : -1;
            column++;
            if (field < 0)
            {
                continue; // a column the record does not carry (its value is skipped unread)
            }

            var slot = _slots[field];
            if (value.IsUnchangedToastedValue)
            {
                slot.Unchanged = true;
                complete = false;
            }
            else if (value.IsDBNull)
            {
                slot.SetNull(_schema.Fields[field], keyOnly, _table);
            }
            else
            {
                await slot.ReadAsync(value, _schema.Fields[field], _table, cancellationToken).ConfigureAwait(false);
            }
        }

        return complete;
    }

    /// <summary>Keeps the current holders' values as the "before" row, for columns an update did not send.</summary>
    public void SaveBefore()
    {
        foreach (var slot in _slots)
        {
            slot?.Save();
        }
    }

    /// <summary>Fills the columns the last tuple did not send (unchanged TOAST values) from the saved "before" row.</summary>
    public void RestoreUnchanged()
    {
        foreach (var slot in _slots)
        {
            if (slot is { Unchanged: true })
            {
                slot.Restore();
            }
        }
    }

    /// <summary>The names of the columns the last tuple did not send.</summary>
    public string UnchangedColumns() => string.Join(", ", _slots.Select((s, f) => (s, f)).Where(x => x.s is { Unchanged: true }).Select(x => "'" + Columns[_columnOfField[x.f]] + "'"));

    /// <summary>Builds a record from the holders filled by <see cref="ReadTupleAsync"/>.</summary>
    public T Build(ChangeKind kind, long lsn, DateTimeOffset time)
    {
        var source = new TupleFields(this, kind, lsn, time);
        var record = _schema.Create(ref source);
        foreach (var slot in _slots)
        {
            slot?.Clear();
        }

        return record;
    }

    /// <summary>The value of the record's field <paramref name="ordinal"/> when it is a metadata field; false otherwise.</summary>
    private bool TryMetadata<TField>(int ordinal, ChangeKind kind, long lsn, DateTimeOffset time, out TField value)
    {
        object? boxed = null;
        if (ordinal == KindField)
        {
            if (typeof(TField) == typeof(ChangeKind))
            {
                value = System.Runtime.CompilerServices.Unsafe.As<ChangeKind, TField>(ref kind);
                return true;
            }

            boxed = kind;
        }
        else if (ordinal == LsnField)
        {
            if (typeof(TField) == typeof(long))
            {
                value = System.Runtime.CompilerServices.Unsafe.As<long, TField>(ref lsn);
                return true;
            }

            boxed = _schema.Fields[ordinal].Kind switch
            {
                FieldKind.UInt64 => (ulong)lsn,
                FieldKind.Decimal => (decimal)lsn,
                _ => lsn,
            };
        }
        else if (ordinal == TimeField)
        {
            boxed = _schema.Fields[ordinal].Kind == FieldKind.DateTime ? time.UtcDateTime : time;
        }
        else
        {
            value = default!;
            return false;
        }

        value = (TField)boxed;
        return true;
    }

    /// <summary>Whether a column of PostgreSQL type <paramref name="type"/> (its <c>format_type</c>) reads as <paramref name="field"/>.</summary>
    private static bool Fits(RecordField field, string type)
    {
        var t = type.ToLowerInvariant();
        var bare = t.Contains('(', StringComparison.Ordinal) ? t[..t.IndexOf('(', StringComparison.Ordinal)] : t;
        bool Is(params string[] names) => names.Contains(bare);
        var text = Is("text", "character varying", "character", "name", "citext");
        return field.Kind switch
        {
            FieldKind.Boolean => Is("boolean"),
            FieldKind.Byte or FieldKind.SByte or FieldKind.Int16 => Is("smallint"),
            FieldKind.UInt16 or FieldKind.Int32 => Is("smallint", "integer"),
            FieldKind.UInt32 or FieldKind.Int64 => Is("smallint", "integer", "bigint"),
            FieldKind.UInt64 => Is("smallint", "integer", "bigint", "numeric"),
            FieldKind.Single => Is("real"),
            FieldKind.Double => Is("real", "double precision"),
            FieldKind.Decimal => Is("numeric", "smallint", "integer", "bigint"),
            FieldKind.DateTime => Is("timestamp without time zone", "timestamp with time zone"),
            FieldKind.DateTimeOffset => Is("timestamp with time zone"),
            FieldKind.TimeSpan => Is("interval"),
            FieldKind.DateOnly => Is("date"),
            FieldKind.TimeOnly => Is("time without time zone"),
            FieldKind.Guid => Is("uuid"),
            FieldKind.Bytes => Is("bytea"),
            FieldKind.String => text || Is("json", "jsonb", "xml", "uuid"),
            FieldKind.Char => text,
            FieldKind.Enum => text,
            _ => false,
        };
    }

    private static string Describe(RecordField field) => field.ClrType.Name + (field.IsNullable && field.ClrType.IsValueType ? "?" : "");

    /// <summary>Converts what Npgsql read for a column to the field's type: enums by name, integers of any width (checked), chars, byte memory.</summary>
    private static TField Convert<TField>(object value, RecordField field, string table)
    {
        try
        {
            var type = Nullable.GetUnderlyingType(typeof(TField)) ?? typeof(TField);
            object converted = field.Kind switch
            {
                FieldKind.Enum => Enum.Parse(type, (string)value, ignoreCase: true),
                FieldKind.Char => value is string { Length: 1 } s ? s[0] : throw new InvalidCastException($"'{value}' is not one character"),
                FieldKind.Bytes when type == typeof(ReadOnlyMemory<byte>) => new ReadOnlyMemory<byte>((byte[])value),
                _ when type == typeof(DateTime) && value is DateTime d => d,
                _ when type == typeof(DateTimeOffset) && value is DateTime utc => new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc)),
                _ => System.Convert.ChangeType(value, type, CultureInfo.InvariantCulture),
            };
            return (TField)converted;
        }
        catch (Exception ex) when (ex is InvalidCastException or FormatException or OverflowException or ArgumentException)
        {
            throw new InvalidDataException($"A value of column for {field.Name} in table {table} does not read as {typeof(TField).Name}: {ex.Message}", ex);
        }
    }

    /// <summary>One field's value between a tuple and the record: typed, so nothing is boxed for the common types.</summary>
    private abstract class ValueSlot
    {
        public bool Unchanged { get; set; }

        public abstract ValueTask ReadAsync(ReplicationValue value, RecordField field, string table, CancellationToken cancellationToken);

        public abstract void SetNull(RecordField field, bool keyOnly, string table);

        public abstract long AsInt64();

        public abstract void Save();

        public abstract void Restore();

        public abstract void Clear();
    }

    private sealed class ValueSlot<TField> : ValueSlot
    {
        /// <summary>Whether Npgsql reads the column's value as <typeparamref name="TField"/> itself (no conversion).</summary>
        private static readonly bool Direct = typeof(TField) == typeof(int) || typeof(TField) == typeof(long) || typeof(TField) == typeof(short)
            || typeof(TField) == typeof(string) || typeof(TField) == typeof(bool) || typeof(TField) == typeof(decimal) || typeof(TField) == typeof(double)
            || typeof(TField) == typeof(float) || typeof(TField) == typeof(Guid) || typeof(TField) == typeof(DateOnly) || typeof(TField) == typeof(TimeOnly)
            || typeof(TField) == typeof(TimeSpan) || typeof(TField) == typeof(byte[]) || typeof(TField) == typeof(DateTimeOffset);

        public TField Value = default!;
        private TField _saved = default!;

        public override async ValueTask ReadAsync(ReplicationValue value, RecordField field, string table, CancellationToken cancellationToken)
        {
            Unchanged = false;
            if (Direct)
            {
                Value = await value.Get<TField>(cancellationToken).ConfigureAwait(false);
            }
            else if (typeof(TField) == typeof(DateTime))
            {
                var read = await value.Get<DateTime>(cancellationToken).ConfigureAwait(false);
                Value = System.Runtime.CompilerServices.Unsafe.As<DateTime, TField>(ref read);
            }
            else
            {
                Value = Convert<TField>(await value.Get<object>(cancellationToken).ConfigureAwait(false), field, table);
            }
        }

        public override void SetNull(RecordField field, bool keyOnly, string table)
        {
            Unchanged = false;
            if (default(TField) is not null && !keyOnly)
            {
                throw new InvalidDataException($"A change of table {table} has NULL for {field.Name}, which is {typeof(TField).Name} and cannot hold null; declare it nullable.");
            }

            Value = default!; // a delete's or key change's old row has only its key columns: the others stay default
        }

        public override long AsInt64() => System.Convert.ToInt64(Value, CultureInfo.InvariantCulture);

        public override void Save() => _saved = Value;

        public override void Restore()
        {
            Value = _saved;
            Unchanged = false;
        }

        public override void Clear()
        {
            Value = default!;
            Unchanged = false;
        }
    }

    private readonly struct SnapshotFields(CdcMapping<T> mapping, NpgsqlDataReader reader, long lsn, DateTimeOffset time) : IFieldSource
    {
        public TField Read<TField>(int ordinal)
        {
            if (mapping.TryMetadata<TField>(ordinal, ChangeKind.Snapshot, lsn, time, out var metadata))
            {
                return metadata;
            }

            return DbRows.Field<TField>(reader, mapping._selectIndex[ordinal], mapping._schema.Fields[ordinal], mapping._table);
        }
    }

    private readonly struct TupleFields(CdcMapping<T> mapping, ChangeKind kind, long lsn, DateTimeOffset time) : IFieldSource
    {
        public TField Read<TField>(int ordinal)
            => mapping.TryMetadata<TField>(ordinal, kind, lsn, time, out var metadata) ? metadata : ((ValueSlot<TField>)mapping._slots[ordinal]).Value;
    }

    private struct DefaultFields : IFieldSource
    {
        public readonly TField Read<TField>(int ordinal) => default!;
    }

    private readonly struct SlotMaker(ValueSlot[] slots) : IFieldVisitor
    {
        public void Visit<TField>(int ordinal, TField value) => slots[ordinal] = new ValueSlot<TField>();
    }
}
