using System.Data.Common;
using System.Globalization;

namespace Compiled.Connectors;

/// <summary>
/// Reads records from ADO.NET result rows through their compile-time schema (<see cref="RecordSchema{T}.Create"/>): the
/// lookup joins use it, and so can a connector of your own. Columns are matched to fields by name once
/// (<see cref="Columns"/>); each row is then read field by field with typed <c>GetFieldValue</c> calls.
/// </summary>
public static class DbRows
{
    /// <summary>
    /// The result column of each field of <paramref name="schema"/> (by field ordinal), named by
    /// <paramref name="naming"/>; throws, naming the missing columns and the ones there are, when a field has no column.
    /// </summary>
    public static int[] Columns<T>(RecordSchema<T> schema, DbDataReader reader, ColumnNaming naming, string table)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(reader);
        var present = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < reader.FieldCount; i++)
        {
            present.TryAdd(reader.GetName(i), i);
        }

        var columns = new int[schema.Fields.Count];
        var missing = new List<string>();
        foreach (var field in schema.Fields)
        {
            var name = ColumnNames.Of(field.Name, naming);
            if (present.TryGetValue(name, out var column))
            {
                columns[field.Ordinal] = column;
            }
            else
            {
                missing.Add($"'{name}' (for {schema.TypeName}.{field.Name})");
            }

            if (field.Kind == FieldKind.Other)
            {
                throw new NonRetryableException($"Field {schema.TypeName}.{field.Name} has type {field.ClrType.Name}, which is not read from a database column; use a number, bool, string, date/time, Guid, decimal, enum or byte array.");
            }
        }

        if (missing.Count > 0)
        {
            throw new NonRetryableException($"Table {table} has no column {string.Join(", ", missing)}; its columns are {string.Join(", ", present.OrderBy(c => c.Value).Select(c => "'" + c.Key + "'"))}. Rename the column or the member (columns are named {naming}).");
        }

        return columns;
    }

    /// <summary>Builds the record of the reader's current row; <paramref name="columns"/> comes from <see cref="Columns"/>.</summary>
    public static T Read<T>(RecordSchema<T> schema, DbDataReader reader, int[] columns, string table)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var source = new Source<T>(schema, reader, columns, table);
        return schema.Create(ref source);
    }

    /// <summary>
    /// The value of column <paramref name="column"/> as <typeparamref name="TField"/>: NULL as null where the field may
    /// hold it (else an error naming the column); enums by name; integers of any width from the column's integer or
    /// numeric type (checked; a fraction or text is an error, not rounded or read as 0); numbers and bools never from
    /// text; everything else through the provider's <c>GetFieldValue</c>.
    /// </summary>
    public static TField Field<TField>(DbDataReader reader, int column, RecordField field, string table)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(field);
        try
        {
            if (reader.IsDBNull(column))
            {
                return default(TField) is null && field.IsNullable
                    ? default!
                    : throw new InvalidDataException($"Column '{reader.GetName(column)}' of table {table} is NULL in a row, but {field.Name} is {typeof(TField).Name}, which cannot hold null; declare it nullable.");
            }

            var type = Nullable.GetUnderlyingType(typeof(TField)) ?? typeof(TField);
            switch (field.Kind)
            {
                case FieldKind.Enum:
                    return (TField)Enum.Parse(type, reader.GetString(column), ignoreCase: true);
                case FieldKind.Byte or FieldKind.SByte or FieldKind.Int16 or FieldKind.UInt16 or FieldKind.Int32 or FieldKind.UInt32 or FieldKind.Int64 or FieldKind.UInt64:
                    return Whole<TField>(reader, column, type, field, table);
                case FieldKind.Boolean or FieldKind.Single or FieldKind.Double when reader.GetFieldType(column) == typeof(string):
                    // SQLite reads text as 0 (or false) without a word; the value would be wrong, not missing.
                    throw Mismatch(reader, column, field, table, typeof(TField));
                case FieldKind.Char:
                    var text = reader.GetString(column);
                    return text.Length == 1
                        ? (TField)(object)text[0]
                        : throw new InvalidDataException($"Column '{reader.GetName(column)}' of table {table} holds '{text}', but {field.Name} is a char.");
                default:
                    return reader.GetFieldValue<TField>(column);
            }
        }
        catch (Exception ex) when (ex is InvalidCastException or FormatException or OverflowException or ArgumentException)
        {
            throw new InvalidDataException($"Column '{reader.GetName(column)}' of table {table} does not read as {field.Name} ({typeof(TField).Name}): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// An integer field: read as it is from an integer column, converted (checked) from a whole number stored otherwise;
    /// a fraction or text is an error — SQLite would turn 1.5 into 1 and 'abc' into 0.
    /// </summary>
    private static TField Whole<TField>(DbDataReader reader, int column, Type type, RecordField field, string table)
    {
        var stored = reader.GetFieldType(column);
        if (stored == typeof(long))
        {
            return FromWhole<TField>(reader.GetInt64(column), field.Kind);
        }

        if (stored == typeof(int))
        {
            return FromWhole<TField>(reader.GetInt32(column), field.Kind);
        }

        if (stored == typeof(short))
        {
            return FromWhole<TField>(reader.GetInt16(column), field.Kind);
        }

        var value = reader.GetValue(column);
        var whole = value switch
        {
            long or int or short or byte or sbyte or ushort or uint or ulong => true,
            double d => Math.Floor(d) == d,
            float f => MathF.Floor(f) == f,
            decimal m => decimal.Truncate(m) == m,
            _ => false,
        };
        return whole
            ? (TField)Convert.ChangeType(value, type, CultureInfo.InvariantCulture)
            : throw Mismatch(reader, column, field, table, typeof(TField));
    }

    /// <summary>
    /// A whole number read without boxing (an integer column read through <c>GetValue</c> allocated per row) into an
    /// integer field of any width, checked: a value that does not fit throws <see cref="OverflowException"/>.
    /// </summary>
    private static TField FromWhole<TField>(long value, FieldKind kind)
    {
        // (TField)(object)x is a plain move when TField is the value's own type: the JIT drops the box.
        return kind switch
        {
            FieldKind.Int64 => (TField)(object)value,
            FieldKind.Int32 => (TField)(object)checked((int)value),
            FieldKind.Int16 => (TField)(object)checked((short)value),
            FieldKind.UInt16 => (TField)(object)checked((ushort)value),
            FieldKind.UInt32 => (TField)(object)checked((uint)value),
            FieldKind.UInt64 => (TField)(object)checked((ulong)value),
            FieldKind.Byte => (TField)(object)checked((byte)value),
            _ => (TField)(object)checked((sbyte)value),
        };
    }

    private static InvalidDataException Mismatch(DbDataReader reader, int column, RecordField field, string table, Type to)
    {
        var value = reader.GetValue(column);
        var text = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
        var shown = value switch
        {
            string => $"the text '{(text.Length > 40 ? text[..40] + "…" : text)}'",
            byte[] bytes => $"{bytes.Length} bytes",
            _ => text,
        };
        return new InvalidDataException($"Column '{reader.GetName(column)}' of table {table} holds {shown} in a row, which does not fit {field.Name} ({to.Name}); fix the row, or the member's type (the column's values are {value.GetType().Name}).");
    }

    private struct Source<T>(RecordSchema<T> schema, DbDataReader reader, int[] columns, string table) : IFieldSource
    {
        public readonly TField Read<TField>(int ordinal) => Field<TField>(reader, columns[ordinal], schema.Fields[ordinal], table);
    }
}
