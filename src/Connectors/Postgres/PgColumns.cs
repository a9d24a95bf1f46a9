using System.Runtime.CompilerServices;
using Compiled.Connectors;
using Npgsql;
using NpgsqlTypes;

namespace Compiled.Postgres;

/// <summary>A record field as a PostgreSQL column: its name, its SQL type, and how values are sent.</summary>
internal sealed record PgColumn(int Ordinal, string Name, string SqlType, NpgsqlDbType DbType, bool IsNullable, bool IsKey)
{
    /// <summary>The column of each field of <paramref name="schema"/>.</summary>
    public static PgColumn[] Of<T>(RecordSchema<T> schema, ColumnNaming naming)
        => [.. schema.Fields.Select(f =>
        {
            var (sql, db) = TypeOf(f);
            return new PgColumn(f.Ordinal, ColumnNames.Of(f.Name, naming), sql, db, f.IsNullable, f.IsKey);
        })];

    /// <summary>The quoted identifier.</summary>
    public string Quoted => Quote(Name);

    /// <summary>
    /// The PostgreSQL type of a field. Unsigned integers widen to the next signed type (<c>ulong</c> to numeric) so
    /// no value is lost; enums and <c>Utf8Text</c> are text; <c>DateTime</c> is a timestamp without time zone and
    /// <c>DateTimeOffset</c> a timestamptz (stored in UTC).
    /// </summary>
    private static (string Sql, NpgsqlDbType Db) TypeOf(RecordField field) => field.Kind switch
    {
        FieldKind.Boolean => ("boolean", NpgsqlDbType.Boolean),
        FieldKind.Byte or FieldKind.SByte or FieldKind.Int16 => ("smallint", NpgsqlDbType.Smallint),
        FieldKind.UInt16 or FieldKind.Int32 => ("integer", NpgsqlDbType.Integer),
        FieldKind.UInt32 or FieldKind.Int64 => ("bigint", NpgsqlDbType.Bigint),
        FieldKind.UInt64 => ("numeric(20,0)", NpgsqlDbType.Numeric),
        FieldKind.Single => ("real", NpgsqlDbType.Real),
        FieldKind.Double => ("double precision", NpgsqlDbType.Double),
        FieldKind.Decimal => ("numeric", NpgsqlDbType.Numeric),
        FieldKind.DateTime => ("timestamp", NpgsqlDbType.Timestamp),
        FieldKind.DateTimeOffset => ("timestamptz", NpgsqlDbType.TimestampTz),
        FieldKind.TimeSpan => ("interval", NpgsqlDbType.Interval),
        FieldKind.DateOnly => ("date", NpgsqlDbType.Date),
        FieldKind.TimeOnly => ("time", NpgsqlDbType.Time),
        FieldKind.Guid => ("uuid", NpgsqlDbType.Uuid),
        FieldKind.Bytes => ("bytea", NpgsqlDbType.Bytea),
        FieldKind.String or FieldKind.Char or FieldKind.Enum => ("text", NpgsqlDbType.Text),
        _ when field.ClrType == typeof(Utf8Text) => ("text", NpgsqlDbType.Text),
        _ => throw new NotSupportedException($"Field '{field.Name}' of type {field.ClrType.Name} has no PostgreSQL column type; use a number, bool, string, date/time, Guid, decimal, enum or byte array."),
    };

    /// <summary>Quotes an identifier, or each part of a dotted one (<c>schema.table</c>).</summary>
    public static string Quote(string identifier)
        => string.Join('.', identifier.Split('.').Select(part => "\"" + part.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));
}

/// <summary>
/// Converts field values to what Npgsql sends for their column type, without boxing: <c>typeof</c> tests on the
/// generic type are constants after JIT/AOT compilation, so each instantiation keeps only its own branch.
/// </summary>
internal static class PgValues
{
    /// <summary>Writes one field into a binary COPY row.</summary>
    public static void Write<TField>(NpgsqlBinaryImporter importer, PgColumn column, TField value)
    {
        if (value is null)
        {
            importer.WriteNull();
        }
        else if (typeof(TField) == typeof(byte))
        {
            importer.Write((short)Unsafe.As<TField, byte>(ref value), NpgsqlDbType.Smallint);
        }
        else if (typeof(TField) == typeof(sbyte))
        {
            importer.Write((short)Unsafe.As<TField, sbyte>(ref value), NpgsqlDbType.Smallint);
        }
        else if (typeof(TField) == typeof(ushort))
        {
            importer.Write((int)Unsafe.As<TField, ushort>(ref value), NpgsqlDbType.Integer);
        }
        else if (typeof(TField) == typeof(uint))
        {
            importer.Write((long)Unsafe.As<TField, uint>(ref value), NpgsqlDbType.Bigint);
        }
        else if (typeof(TField) == typeof(ulong))
        {
            importer.Write((decimal)Unsafe.As<TField, ulong>(ref value), NpgsqlDbType.Numeric);
        }
        else if (typeof(TField) == typeof(char))
        {
            importer.Write(Unsafe.As<TField, char>(ref value).ToString(), NpgsqlDbType.Text);
        }
        else if (typeof(TField) == typeof(DateTime))
        {
            importer.Write(DateTime.SpecifyKind(Unsafe.As<TField, DateTime>(ref value), DateTimeKind.Unspecified), NpgsqlDbType.Timestamp);
        }
        else if (typeof(TField) == typeof(DateTimeOffset))
        {
            importer.Write(Unsafe.As<TField, DateTimeOffset>(ref value).ToUniversalTime(), NpgsqlDbType.TimestampTz);
        }
        else if (typeof(TField) == typeof(Utf8Text))
        {
            importer.Write(Unsafe.As<TField, Utf8Text>(ref value).ToString(), NpgsqlDbType.Text);
        }
        else if (typeof(TField) == typeof(ReadOnlyMemory<byte>))
        {
            importer.Write(Unsafe.As<TField, ReadOnlyMemory<byte>>(ref value).ToArray(), NpgsqlDbType.Bytea);
        }
        else if (typeof(TField).IsEnum || column.DbType == NpgsqlDbType.Text && typeof(TField) != typeof(string))
        {
            importer.Write(value.ToString(), NpgsqlDbType.Text); // enums (and nullable enums, chars) by name, as the codecs write them
        }
        else if (Nullable.GetUnderlyingType(typeof(TField)) is { } underlying && underlying != typeof(bool) && NeedsConversion(underlying))
        {
            WriteBoxed(importer, column, value);
        }
        else
        {
            importer.Write(value, column.DbType);
        }
    }

    /// <summary>The value as its column's storage type, for array parameters (upserts).</summary>
    public static object? Store<TField>(TField value) => value switch
    {
        null => null,
        byte b => (short)b,
        sbyte b => (short)b,
        ushort u => (int)u,
        uint u => (long)u,
        ulong u => (decimal)u,
        char c => c.ToString(),
        DateTime d => DateTime.SpecifyKind(d, DateTimeKind.Unspecified),
        DateTimeOffset d => d.ToUniversalTime(),
        Utf8Text t => t.ToString(),
        ReadOnlyMemory<byte> m => m.ToArray(),
        Enum e => e.ToString(),
        _ => value,
    };

    private static bool NeedsConversion(Type type)
        => type == typeof(byte) || type == typeof(sbyte) || type == typeof(ushort) || type == typeof(uint) || type == typeof(ulong)
            || type == typeof(char) || type == typeof(DateTime) || type == typeof(DateTimeOffset);

    private static void WriteBoxed<TField>(NpgsqlBinaryImporter importer, PgColumn column, TField value)
    {
        switch (Store(value))
        {
            case short s: importer.Write(s, column.DbType); break;
            case int i: importer.Write(i, column.DbType); break;
            case long l: importer.Write(l, column.DbType); break;
            case decimal m: importer.Write(m, column.DbType); break;
            case string t: importer.Write(t, column.DbType); break;
            case DateTime d: importer.Write(d, column.DbType); break;
            case DateTimeOffset d: importer.Write(d, column.DbType); break;
            default: importer.WriteNull(); break;
        }
    }
}

/// <summary>The values of one column of an upsert batch, as a typed array parameter for <c>unnest</c>.</summary>
internal abstract class PgColumnBuffer(PgColumn column)
{
    public PgColumn Column { get; } = column;

    public abstract void Add<TField>(TField value);

    public abstract void Clear();

    /// <summary>Whether a value occurs twice (for a key column: whether the batch has two records of one key).</summary>
    public abstract bool HasDuplicates();

    public abstract NpgsqlParameter ToParameter();

    /// <summary>A buffer whose element type is what <typeparamref name="TField"/> is stored as.</summary>
    public static PgColumnBuffer For<TField>(PgColumn column)
    {
        var type = typeof(TField);
        var nullable = Nullable.GetUnderlyingType(type);
        var core = nullable ?? type;
        if (core.IsEnum || core == typeof(char) || core == typeof(Utf8Text) || core == typeof(string))
        {
            return new PgColumnBuffer<string?>(column);
        }

        if (core == typeof(ReadOnlyMemory<byte>) || core == typeof(byte[]))
        {
            return new PgColumnBuffer<byte[]?>(column);
        }

        if (nullable is null)
        {
            return core == typeof(byte) || core == typeof(sbyte) ? new PgColumnBuffer<short>(column)
                : core == typeof(ushort) ? new PgColumnBuffer<int>(column)
                : core == typeof(uint) ? new PgColumnBuffer<long>(column)
                : core == typeof(ulong) ? new PgColumnBuffer<decimal>(column)
                : new PgColumnBuffer<TField>(column);
        }

        return core == typeof(byte) || core == typeof(sbyte) || core == typeof(short) ? new PgColumnBuffer<short?>(column)
            : core == typeof(ushort) || core == typeof(int) ? new PgColumnBuffer<int?>(column)
            : core == typeof(uint) || core == typeof(long) ? new PgColumnBuffer<long?>(column)
            : core == typeof(ulong) || core == typeof(decimal) ? new PgColumnBuffer<decimal?>(column)
            : new PgColumnBuffer<TField>(column);
    }
}

/// <summary>A column buffer of <typeparamref name="TStore"/> values.</summary>
internal sealed class PgColumnBuffer<TStore>(PgColumn column) : PgColumnBuffer(column)
{
    private readonly List<TStore> _values = [];
    private HashSet<TStore>? _distinct;

    public override void Add<TField>(TField value)
    {
        if (typeof(TField) == typeof(TStore) && typeof(TField) != typeof(DateTime) && typeof(TField) != typeof(DateTimeOffset)
            && typeof(TField) != typeof(DateTime?) && typeof(TField) != typeof(DateTimeOffset?))
        {
            _values.Add(Unsafe.As<TField, TStore>(ref value));
        }
        else if (typeof(TField) == typeof(DateTimeOffset) && typeof(TStore) == typeof(DateTimeOffset))
        {
            var utc = Unsafe.As<TField, DateTimeOffset>(ref value).ToUniversalTime(); // timestamptz takes UTC only
            _values.Add(Unsafe.As<DateTimeOffset, TStore>(ref utc));
        }
        else if (typeof(TField) == typeof(DateTime) && typeof(TStore) == typeof(DateTime))
        {
            var unspecified = DateTime.SpecifyKind(Unsafe.As<TField, DateTime>(ref value), DateTimeKind.Unspecified);
            _values.Add(Unsafe.As<DateTime, TStore>(ref unspecified));
        }
        else
        {
            _values.Add((TStore)PgValues.Store(value)!); // a converted type: unsigned, char, enum, dates, Utf8Text
        }
    }

    public override void Clear() => _values.Clear();

    public override bool HasDuplicates()
    {
        if (typeof(TStore) == typeof(byte[]))
        {
            return true; // arrays compare by reference: assume repeats (the statement that tolerates them)
        }

        _distinct ??= [];
        _distinct.Clear();
        foreach (var value in _values)
        {
            if (!_distinct.Add(value))
            {
                return true;
            }
        }

        return false;
    }

    public override NpgsqlParameter ToParameter()
        => new NpgsqlParameter<TStore[]>($"c{Column.Ordinal}", [.. _values]) { NpgsqlDbType = NpgsqlDbType.Array | Column.DbType };
}
