namespace Compiled.Generator.Model;

/// <summary>
/// The kinds of scalar value a record field can hold — one list for codecs and schemas, classified once by
/// <c>Parsing.ScalarTypes</c>. The names are those of the runtime's <c>FieldKind</c> and of the codec readers' and
/// writers' <c>Read…</c>/<c>Write…</c> methods; each consumer says which kinds its runtime half carries
/// (<see cref="ScalarKinds"/>).
/// </summary>
internal enum ScalarKind
{
    Boolean,
    Byte,
    SByte,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Single,
    Double,
    Decimal,
    Char,
    String,
    DateTime,
    DateTimeOffset,
    TimeSpan,
    DateOnly,
    TimeOnly,
    Guid,

    /// <summary>An enum: written by name (codecs), stored by name (schemas).</summary>
    Enum,

    /// <summary><c>byte[]</c>, <c>ReadOnlyMemory&lt;byte&gt;</c> or <c>Memory&lt;byte&gt;</c>.</summary>
    Bytes,

    /// <summary><c>Compiled.Utf8Text</c>: UTF-8 bytes read without a copy.</summary>
    Utf8Text,
}

/// <summary>Which scalar kinds each half of the runtime carries.</summary>
internal static class ScalarKinds
{
    /// <summary>
    /// Whether the generated codecs read and write <paramref name="kind"/>: the JSON, CSV and binary readers and writers
    /// have no methods for time spans, dates, times of day or bytes (yet), so a field of those is CMPL0201.
    /// </summary>
    public static bool InCodecs(ScalarKind kind) => kind is not (ScalarKind.TimeSpan or ScalarKind.DateOnly or ScalarKind.TimeOnly or ScalarKind.Bytes);

    /// <summary>
    /// The runtime <c>FieldKind</c> a schema field of <paramref name="kind"/> has, or null for <c>Other</c> (stored as
    /// text by connectors): <c>FieldKind</c> has every kind but <see cref="ScalarKind.Utf8Text"/>.
    /// </summary>
    public static ScalarKind? InSchemas(ScalarKind kind) => kind == ScalarKind.Utf8Text ? null : kind;
}
