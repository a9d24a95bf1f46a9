using System.Runtime.CompilerServices;
using Compiled.Connectors;
using Parquet;
using Parquet.Schema;

namespace Compiled.Parquet;

/// <summary>
/// A record field as a Parquet column: its Parquet field and a factory for the buffer that gathers a row group's values.
/// </summary>
internal sealed class ParquetColumn
{
    private ParquetColumn(RecordField field, DataField data, Func<ParquetColumn, ColumnBuffer> buffer)
    {
        Field = field;
        Data = data;
        _buffer = buffer;
    }

    private readonly Func<ParquetColumn, ColumnBuffer> _buffer;

    public RecordField Field { get; }

    public DataField Data { get; }

    public ColumnBuffer NewBuffer() => _buffer(this);

    /// <summary>The columns of <paramref name="schema"/>, named by <paramref name="naming"/>.</summary>
    public static ParquetColumn[] Of<T>(RecordSchema<T> schema, ColumnNaming naming, int precision, int scale)
        => [.. schema.Fields.Select(f => Of(f, ColumnNames.Of(f.Name, naming), precision, scale))];

    /// <summary>
    /// The Parquet type of a field: integers, <c>bool</c>, <c>float</c> and <c>double</c> as themselves; <c>decimal</c>
    /// as DECIMAL(<paramref name="precision"/>, <paramref name="scale"/>); strings, chars, enums (by name) and
    /// <c>Utf8Text</c> as UTF-8 strings; <c>DateTime</c> as a timestamp (microseconds, local semantics),
    /// <c>DateTimeOffset</c> as a UTC-adjusted timestamp; <c>DateOnly</c> as a date; <c>TimeOnly</c> as a time of day
    /// (microseconds); <c>TimeSpan</c> as a 64-bit count of microseconds; <c>Guid</c> as a UUID; byte arrays as binary.
    /// </summary>
    private static ParquetColumn Of(RecordField field, string name, int precision, int scale)
    {
        var nullable = field.IsNullable;
        return field.Kind switch
        {
            FieldKind.Boolean => Value<bool>(field, name),
            FieldKind.Byte => Value<byte>(field, name),
            FieldKind.SByte => Value<sbyte>(field, name),
            FieldKind.Int16 => Value<short>(field, name),
            FieldKind.UInt16 => Value<ushort>(field, name),
            FieldKind.Int32 => Value<int>(field, name),
            FieldKind.UInt32 => Value<uint>(field, name),
            FieldKind.Int64 => Value<long>(field, name),
            FieldKind.UInt64 => Value<ulong>(field, name),
            FieldKind.Single => Value<float>(field, name),
            FieldKind.Double => Value<double>(field, name),
            FieldKind.Guid => Value<Guid>(field, name),
            FieldKind.Decimal => new(field, new DecimalDataField(name, precision, scale, false, nullable), Store<decimal>(nullable)),
            FieldKind.DateTime or FieldKind.DateTimeOffset or FieldKind.DateOnly => new(
                field,
                new DateTimeDataField(name, field.Kind == FieldKind.DateOnly ? DateTimeFormat.Date : DateTimeFormat.Timestamp, field.Kind == FieldKind.DateTimeOffset, DateTimeTimeUnit.Micros, nullable),
                Store<DateTime>(nullable)),
            FieldKind.TimeOnly => new(field, new TimeDataField(name, TimeUnitPrecision.Micros, nullable), Store<long>(nullable)),
            FieldKind.TimeSpan => new(field, new DataField<long>(name, nullable), Store<long>(nullable)),
            FieldKind.String or FieldKind.Char or FieldKind.Enum => new(field, new DataField<string>(name, nullable), static c => new StringBuffer(c)),
            FieldKind.Bytes => new(field, new DataField<byte[]>(name, nullable), static c => new BytesBuffer(c)),
            _ when field.ClrType == typeof(Utf8Text) => new(field, new DataField<string>(name, nullable), static c => new StringBuffer(c)),
            _ => throw new NotSupportedException($"Field '{field.Name}' of type {field.ClrType.Name} has no Parquet column type; use a number, bool, string, date/time, Guid, decimal, enum or byte array."),
        };
    }

    private static ParquetColumn Value<TStore>(RecordField field, string name)
        where TStore : struct
        => new(field, new DataField<TStore>(name, field.IsNullable), Store<TStore>(field.IsNullable));

    private static Func<ParquetColumn, ColumnBuffer> Store<TStore>(bool nullable)
        where TStore : struct
        => nullable ? static c => new NullableBuffer<TStore>(c) : static c => new ValueBuffer<TStore>(c);
}

/// <summary>One column's values of the row group being gathered.</summary>
internal abstract class ColumnBuffer(ParquetColumn column)
{
    public ParquetColumn Column { get; } = column;

    public abstract int Count { get; }

    public abstract void Add<TField>(TField value, int scale);

    public abstract Task WriteAsync(ParquetRowGroupWriter rowGroup, CancellationToken cancellationToken);

    public abstract void Clear();

    private static decimal Pow10(int exponent)
    {
        var power = 1m;
        for (var i = 0; i < exponent; i++)
        {
            power *= 10;
        }

        return power;
    }

    /// <summary>
    /// A field value as its column stores it, without boxing (<c>typeof</c> tests on the generic type are constants
    /// after compilation): <c>DateTimeOffset</c> in UTC, <c>DateOnly</c> as a midnight <c>DateTime</c>, <c>TimeOnly</c>
    /// as microseconds since midnight, a <c>TimeSpan</c> as microseconds; a <c>decimal</c> that the column's scale would round
    /// fails instead of being stored changed.
    /// </summary>
    protected TStore Convert<TField, TStore>(TField value, int scale)
    {
        if (typeof(TField) == typeof(TStore) && typeof(TField) != typeof(decimal))
        {
            return Unsafe.As<TField, TStore>(ref value);
        }

        if (typeof(TField) == typeof(decimal) && typeof(TStore) == typeof(decimal))
        {
            var number = Unsafe.As<TField, decimal>(ref value);
            if (decimal.Round(number, scale) != number)
            {
                throw new InvalidDataException($"Field '{Column.Field.Name}': {number} has more than {scale} digits after the point, which its Parquet column DECIMAL(…, {scale}) would round; set DecimalScale (and DecimalPrecision) to fit.");
            }

            var whole = ((DecimalDataField)Column.Data).Precision - scale;
            if (whole < 29 && Math.Abs(decimal.Truncate(number)) >= Pow10(whole))
            {
                throw new InvalidDataException($"Field '{Column.Field.Name}': {number} has more than {whole} digits before the point, which its Parquet column DECIMAL({whole + scale}, {scale}) cannot hold; set DecimalPrecision (and DecimalScale) to fit.");
            }

            return Unsafe.As<TField, TStore>(ref value);
        }

        if (typeof(TField) == typeof(DateTimeOffset) && typeof(TStore) == typeof(DateTime))
        {
            var utc = Unsafe.As<TField, DateTimeOffset>(ref value).UtcDateTime;
            return Unsafe.As<DateTime, TStore>(ref utc);
        }

        if (typeof(TField) == typeof(DateOnly) && typeof(TStore) == typeof(DateTime))
        {
            var day = Unsafe.As<TField, DateOnly>(ref value).ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified);
            return Unsafe.As<DateTime, TStore>(ref day);
        }

        if (typeof(TField) == typeof(TimeOnly) && typeof(TStore) == typeof(long))
        {
            var micros = Unsafe.As<TField, TimeOnly>(ref value).Ticks / TimeSpan.TicksPerMicrosecond;
            return Unsafe.As<long, TStore>(ref micros);
        }

        if (typeof(TField) == typeof(TimeSpan) && typeof(TStore) == typeof(long))
        {
            var micros = Unsafe.As<TField, TimeSpan>(ref value).Ticks / TimeSpan.TicksPerMicrosecond;
            return Unsafe.As<long, TStore>(ref micros);
        }

        throw new InvalidOperationException($"Field '{Column.Field.Name}': no conversion from {typeof(TField).Name} to {typeof(TStore).Name}.");
    }
}

/// <summary>Values of a non-nullable value-type column.</summary>
internal sealed class ValueBuffer<TStore>(ParquetColumn column) : ColumnBuffer(column)
    where TStore : struct
{
    private TStore[] _values = new TStore[1024];
    private int _count;

    public override int Count => _count;

    public override void Add<TField>(TField value, int scale)
    {
        if (_count == _values.Length)
        {
            Array.Resize(ref _values, _values.Length * 2);
        }

        _values[_count++] = Convert<TField, TStore>(value, scale);
    }

    public override Task WriteAsync(ParquetRowGroupWriter rowGroup, CancellationToken cancellationToken)
        => rowGroup.WriteAsync<TStore>(Column.Data, _values.AsMemory(0, _count), null, null, cancellationToken);

    public override void Clear() => _count = 0;
}

/// <summary>Values of a nullable value-type column.</summary>
internal sealed class NullableBuffer<TStore>(ParquetColumn column) : ColumnBuffer(column)
    where TStore : struct
{
    private TStore?[] _values = new TStore?[1024];
    private int _count;

    public override int Count => _count;

    public override void Add<TField>(TField value, int scale)
    {
        if (_count == _values.Length)
        {
            Array.Resize(ref _values, _values.Length * 2);
        }

        if (value is null)
        {
            _values[_count++] = null;
        }
        else if (typeof(TField) == typeof(TStore?))
        {
            _values[_count++] = Unsafe.As<TField, TStore?>(ref value);
        }
        else
        {
            _values[_count++] = AddUnderlying(value, scale);
        }
    }

    // A nullable field arrives as Nullable<TUnderlying>: unwrap it without boxing, then convert.
    private TStore AddUnderlying<TField>(TField value, int scale) => Column.Field.Kind switch
    {
        FieldKind.DateTimeOffset => Convert<DateTimeOffset, TStore>(Unsafe.As<TField, DateTimeOffset?>(ref value)!.Value, scale),
        FieldKind.DateOnly => Convert<DateOnly, TStore>(Unsafe.As<TField, DateOnly?>(ref value)!.Value, scale),
        FieldKind.TimeOnly => Convert<TimeOnly, TStore>(Unsafe.As<TField, TimeOnly?>(ref value)!.Value, scale),
        FieldKind.TimeSpan => Convert<TimeSpan, TStore>(Unsafe.As<TField, TimeSpan?>(ref value)!.Value, scale),
        FieldKind.Decimal => Convert<decimal, TStore>(Unsafe.As<TField, decimal?>(ref value)!.Value, scale),
        FieldKind.DateTime => Convert<DateTime, TStore>(Unsafe.As<TField, DateTime?>(ref value)!.Value, scale),
        _ => Convert<TField, TStore>(value, scale),
    };

    public override Task WriteAsync(ParquetRowGroupWriter rowGroup, CancellationToken cancellationToken)
        => rowGroup.WriteAsync<TStore>(Column.Data, _values.AsMemory(0, _count), null, null, cancellationToken);

    public override void Clear() => _count = 0;
}

/// <summary>Values of a string column: strings, chars, enums (by name), <c>Utf8Text</c>.</summary>
internal sealed class StringBuffer(ParquetColumn column) : ColumnBuffer(column)
{
    private readonly List<string?> _values = [];

    public override int Count => _values.Count;

    public override void Add<TField>(TField value, int scale)
    {
        if (value is null)
        {
            _values.Add(null);
        }
        else if (typeof(TField) == typeof(string))
        {
            _values.Add(Unsafe.As<TField, string>(ref value));
        }
        else if (typeof(TField) == typeof(Utf8Text))
        {
            _values.Add(Unsafe.As<TField, Utf8Text>(ref value).ToString());
        }
        else if (typeof(TField) == typeof(char))
        {
            _values.Add(Unsafe.As<TField, char>(ref value).ToString());
        }
        else
        {
            _values.Add(value.ToString()); // enums by name, as the codecs write them
        }
    }

    public override Task WriteAsync(ParquetRowGroupWriter rowGroup, CancellationToken cancellationToken)
        => rowGroup.WriteAsync(Column.Data, (IReadOnlyCollection<string>)_values, null);

    public override void Clear() => _values.Clear();
}

/// <summary>Values of a binary column.</summary>
internal sealed class BytesBuffer(ParquetColumn column) : ColumnBuffer(column)
{
    private readonly List<byte[]?> _values = [];

    public override int Count => _values.Count;

    public override void Add<TField>(TField value, int scale)
    {
        if (value is null)
        {
            _values.Add(null);
        }
        else if (typeof(TField) == typeof(byte[]))
        {
            _values.Add(Unsafe.As<TField, byte[]>(ref value));
        }
        else if (typeof(TField) == typeof(ReadOnlyMemory<byte>))
        {
            _values.Add(Unsafe.As<TField, ReadOnlyMemory<byte>>(ref value).ToArray());
        }
        else if (typeof(TField) == typeof(ReadOnlyMemory<byte>?))
        {
            _values.Add(Unsafe.As<TField, ReadOnlyMemory<byte>?>(ref value)!.Value.ToArray());
        }
        else
        {
            throw new InvalidOperationException($"Field '{Column.Field.Name}': no conversion from {typeof(TField).Name} to bytes.");
        }
    }

    public override Task WriteAsync(ParquetRowGroupWriter rowGroup, CancellationToken cancellationToken)
        => rowGroup.WriteAsync(Column.Data, (IReadOnlyCollection<byte[]>)_values, null);

    public override void Clear() => _values.Clear();
}
