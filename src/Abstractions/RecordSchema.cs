namespace Compiled;

/// <summary>
/// The shape of a record type, derived at compile time by the generator: its fields in declaration order, and a way
/// to read them without reflection. Row-oriented connectors (SQLite, PostgreSQL) use it to create tables and bind
/// values.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public abstract class RecordSchema<T>
{
    /// <summary>Creates a schema over <paramref name="fields"/>.</summary>
    protected RecordSchema(string typeName, IReadOnlyList<RecordField> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        TypeName = typeName;
        Fields = fields;
    }

    /// <summary>The record type's name as written in C#.</summary>
    public string TypeName { get; }

    /// <summary>The fields, in declaration order; <see cref="RecordField.Ordinal"/> is the index in this list.</summary>
    public IReadOnlyList<RecordField> Fields { get; }

    /// <summary>Calls <paramref name="visitor"/> once per field of <paramref name="record"/>, in order.</summary>
    public abstract void Visit<TVisitor>(in T record, ref TVisitor visitor)
        where TVisitor : IFieldVisitor;

    /// <summary>
    /// Whether <see cref="Create"/> can build the type: it has a public constructor whose parameters are fields, and
    /// every other field is settable.
    /// </summary>
    public virtual bool CanCreate => false;

    /// <summary>
    /// Builds a record from field values, asking <paramref name="source"/> for each field once, in field order
    /// (row-oriented lookups read table rows with it). Generated for types where <see cref="CanCreate"/> is true.
    /// </summary>
    public virtual T Create<TSource>(ref TSource source)
        where TSource : IFieldSource
        => throw new NotSupportedException($"'{TypeName}' cannot be built from its fields: give it a public constructor whose parameters are its fields, or settable fields and a parameterless constructor.");
}

/// <summary>Gives field values to <see cref="RecordSchema{T}.Create"/>, typed, without boxing.</summary>
public interface IFieldSource
{
    /// <summary>The value of the field at <paramref name="ordinal"/>, as the field's declared type.</summary>
    TField Read<TField>(int ordinal);
}

/// <summary>Receives field values from <see cref="RecordSchema{T}.Visit"/>, typed, without boxing.</summary>
public interface IFieldVisitor
{
    /// <summary>Receives the value of the field at <paramref name="ordinal"/>.</summary>
    void Visit<TField>(int ordinal, TField value);
}

/// <summary>One field of a record type.</summary>
public sealed class RecordField
{
    /// <summary>Creates a field description.</summary>
    public RecordField(int ordinal, string name, FieldKind kind, Type clrType, bool isNullable, bool isKey = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
        ArgumentException.ThrowIfNullOrEmpty(name);
        Ordinal = ordinal;
        Name = name;
        Kind = kind;
        ClrType = clrType;
        IsNullable = isNullable;
        IsKey = isKey;
    }

    /// <summary>Whether the member is marked <c>[Key]</c>: part of the record's identity (upsert sinks key on it).</summary>
    public bool IsKey { get; }

    /// <summary>The position of the field in the record.</summary>
    public int Ordinal { get; }

    /// <summary>The member name.</summary>
    public string Name { get; }

    /// <summary>The kind of value, for mapping to storage types.</summary>
    public FieldKind Kind { get; }

    /// <summary>The field's CLR type (for a nullable value type, the underlying type).</summary>
    public Type ClrType { get; }

    /// <summary>Whether the field may hold null (a nullable value type or a nullable reference).</summary>
    public bool IsNullable { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {Kind}{(IsNullable ? "?" : "")}";
}

/// <summary>The kinds of field values a schema distinguishes.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "The kinds are named after the CLR types they stand for, as System.TypeCode is.")]
public enum FieldKind
{
    /// <summary>A type the schema has no specific mapping for; connectors store its text form.</summary>
    Other,
    /// <summary><see cref="bool"/>.</summary>
    Boolean,
    /// <summary><see cref="byte"/>.</summary>
    Byte,
    /// <summary><see cref="sbyte"/>.</summary>
    SByte,
    /// <summary><see cref="short"/>.</summary>
    Int16,
    /// <summary><see cref="ushort"/>.</summary>
    UInt16,
    /// <summary><see cref="int"/>.</summary>
    Int32,
    /// <summary><see cref="uint"/>.</summary>
    UInt32,
    /// <summary><see cref="long"/>.</summary>
    Int64,
    /// <summary><see cref="ulong"/>.</summary>
    UInt64,
    /// <summary><see cref="float"/>.</summary>
    Single,
    /// <summary><see cref="double"/>.</summary>
    Double,
    /// <summary><see cref="decimal"/>.</summary>
    Decimal,
    /// <summary><see cref="char"/>.</summary>
    Char,
    /// <summary><see cref="string"/>.</summary>
    String,
    /// <summary><see cref="System.DateTime"/>.</summary>
    DateTime,
    /// <summary><see cref="System.DateTimeOffset"/>.</summary>
    DateTimeOffset,
    /// <summary><see cref="System.TimeSpan"/>.</summary>
    TimeSpan,
    /// <summary><see cref="System.DateOnly"/>.</summary>
    DateOnly,
    /// <summary><see cref="System.TimeOnly"/>.</summary>
    TimeOnly,
    /// <summary><see cref="System.Guid"/>.</summary>
    Guid,
    /// <summary>An enum, stored by name.</summary>
    Enum,
    /// <summary>A byte array or byte memory.</summary>
    Bytes,
}
