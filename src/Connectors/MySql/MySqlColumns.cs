using System.Collections;
using System.Data.Common;
using System.Globalization;
using Compiled.Connectors;

namespace Compiled.MySql;

/// <summary>A record field as a MySQL column: its name and its SQL type.</summary>
internal sealed record MySqlColumn(int Ordinal, string Name, string SqlType, bool IsNullable, bool IsKey)
{
    /// <summary>The column of each field of <paramref name="schema"/>.</summary>
    public static MySqlColumn[] Of<T>(RecordSchema<T> schema, ColumnNaming naming)
        => [.. schema.Fields.Select(f => new MySqlColumn(f.Ordinal, ColumnNames.Of(f.Name, naming), TypeOf(f), f.IsNullable, f.IsKey))];

    /// <summary>The quoted identifier.</summary>
    public string Quoted => Quote(Name);

    /// <summary>
    /// The MySQL type of a field. Integers keep their width and sign (MySQL has unsigned types); <c>decimal</c> is
    /// <c>DECIMAL(65,30)</c>, which holds every .NET decimal exactly; strings are <c>LONGTEXT</c>, or
    /// <c>VARCHAR(255)</c> when they are part of the key (an index needs a bounded length); <c>DateTime</c> and
    /// <c>DateTimeOffset</c> (in UTC) are <c>DATETIME(6)</c>: microseconds; <c>Guid</c> is <c>CHAR(36)</c>.
    /// </summary>
    private static string TypeOf(RecordField field) => field.Kind switch
    {
        FieldKind.Boolean => "BOOLEAN",
        FieldKind.Byte => "TINYINT UNSIGNED",
        FieldKind.SByte => "TINYINT",
        FieldKind.Int16 => "SMALLINT",
        FieldKind.UInt16 => "SMALLINT UNSIGNED",
        FieldKind.Int32 => "INT",
        FieldKind.UInt32 => "INT UNSIGNED",
        FieldKind.Int64 => "BIGINT",
        FieldKind.UInt64 => "BIGINT UNSIGNED",
        FieldKind.Single => "FLOAT",
        FieldKind.Double => "DOUBLE",
        FieldKind.Decimal => "DECIMAL(65,30)",
        FieldKind.DateTime or FieldKind.DateTimeOffset => "DATETIME(6)",
        FieldKind.TimeSpan or FieldKind.TimeOnly => "TIME(6)",
        FieldKind.DateOnly => "DATE",
        FieldKind.Guid => "CHAR(36)",
        FieldKind.Bytes => field.IsKey ? "VARBINARY(255)" : "LONGBLOB",
        FieldKind.Char => "VARCHAR(1)",
        FieldKind.Enum => "VARCHAR(255)",
        FieldKind.String => field.IsKey ? "VARCHAR(255)" : "LONGTEXT",
        _ when field.ClrType == typeof(Utf8Text) => field.IsKey ? "VARCHAR(255)" : "LONGTEXT",
        _ => throw new NotSupportedException($"Field '{field.Name}' of type {field.ClrType.Name} has no MySQL column type; use a number, bool, string, date/time, Guid, decimal, enum or byte array."),
    };

    /// <summary>Quotes an identifier with backticks, or each part of a dotted one (<c>database.table</c>).</summary>
    public static string Quote(string identifier)
        => string.Join('.', identifier.Split('.').Select(part => "`" + part.Replace("`", "``", StringComparison.Ordinal) + "`"));
}

/// <summary>Field values as MySqlConnector sends them.</summary>
internal static class MySqlValues
{
    /// <summary>
    /// The value as its column stores it: enums by name (as the codecs and the PostgreSQL sink write them), chars and
    /// <c>Utf8Text</c> as strings, <c>DateTimeOffset</c> as its UTC time, <c>Guid</c> in its 36-character form.
    /// </summary>
    public static object? Store<TField>(TField value) => value switch
    {
        null => null,
        char c => c.ToString(),
        DateTimeOffset d => d.UtcDateTime,
        Guid g => g.ToString("D"),
        Utf8Text t => t.ToString(),
        Enum e => e.ToString(),
        _ => value,
    };
}

/// <summary>
/// A batch of records as the data reader <c>MySqlBulkCopy</c> reads: one row per record, its fields visited into
/// the current row's values.
/// </summary>
internal sealed class RecordReader<T>(RecordSchema<T> schema, MySqlColumn[] columns) : DbDataReader
{
    private readonly object?[] _values = new object?[columns.Length];
    private IReadOnlyList<T> _rows = [];
    private int _index = -1;

    /// <summary>Starts over at <paramref name="rows"/>.</summary>
    public RecordReader<T> Over(IReadOnlyList<T> rows)
    {
        _rows = rows;
        _index = -1;
        return this;
    }

    public override bool Read()
    {
        if (++_index >= _rows.Count)
        {
            return false;
        }

        var visitor = new Visitor(_values);
        schema.Visit(_rows[_index], ref visitor);
        return true;
    }

    public override int FieldCount => columns.Length;

    public override object GetValue(int ordinal) => _values[ordinal] ?? DBNull.Value;

    public override int GetValues(object[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var count = Math.Min(values.Length, _values.Length);
        for (var i = 0; i < count; i++)
        {
            values[i] = _values[i] ?? DBNull.Value;
        }

        return count;
    }

    public override bool IsDBNull(int ordinal) => _values[ordinal] is null;

    public override string GetName(int ordinal) => columns[ordinal].Name;

    public override int GetOrdinal(string name) => Array.FindIndex(columns, c => c.Name == name);

    [return: System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicFields | System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicProperties)]
    public override Type GetFieldType(int ordinal) => typeof(object); // bulk copy writes each value by its run-time type

    public override string GetDataTypeName(int ordinal) => columns[ordinal].SqlType;

    public override bool NextResult() => false;

    public override bool HasRows => _rows.Count > 0;

    public override bool IsClosed => false;

    public override int RecordsAffected => -1;

    public override int Depth => 0;

    public override object this[int ordinal] => GetValue(ordinal);

    public override object this[string name] => GetValue(GetOrdinal(name));

    public override bool GetBoolean(int ordinal) => (bool)GetValue(ordinal);

    public override byte GetByte(int ordinal) => (byte)GetValue(ordinal);

    public override long GetBytes(int ordinal, long dataOffset, byte[]? buffer, int bufferOffset, int length) => throw new NotSupportedException();

    public override char GetChar(int ordinal) => (char)GetValue(ordinal);

    public override long GetChars(int ordinal, long dataOffset, char[]? buffer, int bufferOffset, int length) => throw new NotSupportedException();

    public override DateTime GetDateTime(int ordinal) => (DateTime)GetValue(ordinal);

    public override decimal GetDecimal(int ordinal) => (decimal)GetValue(ordinal);

    public override double GetDouble(int ordinal) => (double)GetValue(ordinal);

    public override float GetFloat(int ordinal) => (float)GetValue(ordinal);

    public override Guid GetGuid(int ordinal) => (Guid)GetValue(ordinal);

    public override short GetInt16(int ordinal) => (short)GetValue(ordinal);

    public override int GetInt32(int ordinal) => (int)GetValue(ordinal);

    public override long GetInt64(int ordinal) => (long)GetValue(ordinal);

    public override string GetString(int ordinal) => Convert.ToString(GetValue(ordinal), CultureInfo.InvariantCulture) ?? "";

    public override IEnumerator GetEnumerator() => throw new NotSupportedException();

    private readonly struct Visitor(object?[] values) : IFieldVisitor
    {
        public void Visit<TField>(int ordinal, TField value) => values[ordinal] = MySqlValues.Store(value);
    }
}
