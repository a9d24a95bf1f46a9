using System.Buffers;

namespace Compiled;

/// <summary>
/// Asks the generator for the codecs of a record type: nested classes <c>JsonCodec</c> (JSON Lines), <c>CsvCodec</c>
/// (RFC 4180) and <c>BinaryCodec</c> (compact, length-prefixed, versioned), each implementing
/// <see cref="IRecordCodec{T}"/> with static members, so that connectors generic over the codec
/// (<c>FileSource&lt;LogLine, LogLine.JsonCodec&gt;</c>) are specialised at compile time. The type must be partial.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct, Inherited = false, AllowMultiple = false)]
public sealed class RecordAttribute : Attribute
{
    /// <summary>How member names become field names in JSON and CSV. Default: <see cref="FieldNaming.Exact"/>.</summary>
    public FieldNaming Naming { get; set; } = FieldNaming.Exact;

    /// <summary>
    /// Whether the JSON codec also accepts numbers RFC 8259 forbids but some producers write: a leading <c>+</c>,
    /// leading zeros (<c>007</c>), <c>.5</c>, <c>5.</c>, and bare <c>NaN</c> / <c>Infinity</c> / <c>-Infinity</c>
    /// (Python's <c>json.dumps</c> writes those). Default: false — such numbers are malformed records. Numbers too
    /// large or too small for their field are rejected either way, never turned into Infinity or 0.
    /// </summary>
    public bool LenientJsonNumbers { get; set; }
}

/// <summary>Gives one member its field name in JSON and CSV, overriding the type's <see cref="FieldNaming"/>.</summary>
/// <remarks>On a positional record, put it on the parameter: <c>record struct Hit([Field("ts")] DateTime Time)</c>.</remarks>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter, Inherited = false, AllowMultiple = false)]
public sealed class FieldAttribute : Attribute
{
    /// <summary>Names the field <paramref name="name"/>.</summary>
    public FieldAttribute(string name) => Name = name;

    /// <summary>The field's name.</summary>
    public string Name { get; }
}

/// <summary>How member names become field names.</summary>
public enum FieldNaming
{
    /// <summary>As declared: <c>StatusCode</c>.</summary>
    Exact,

    /// <summary><c>statusCode</c>.</summary>
    CamelCase,

    /// <summary><c>status_code</c>.</summary>
    SnakeCase,
}

/// <summary>How records of a format are delimited in a byte stream.</summary>
public enum RecordFraming
{
    /// <summary>One record per line (LF or CRLF); a record never contains a raw line break (JSON Lines).</summary>
    Lines,

    /// <summary>One record per line, except that line breaks inside double quotes belong to the record (RFC 4180 CSV).</summary>
    QuotedLines,

    /// <summary>Each record is preceded by its length as a 4-byte little-endian integer (the binary format).</summary>
    LengthPrefixed,
}

/// <summary>
/// A codec for records of type <typeparamref name="T"/>, all static so that a connector generic over the codec calls
/// it directly. The generator implements it for <see cref="RecordAttribute"/> types.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public interface IRecordCodec<T>
{
    /// <summary>A short name of the format, also the file extension: <c>jsonl</c>, <c>csv</c>, <c>bin</c>.</summary>
    static abstract string Format { get; }

    /// <summary>How records are delimited in a stream.</summary>
    static abstract RecordFraming Framing { get; }

    /// <summary>The header line of the format, without line break (CSV's column names); empty when there is none.</summary>
    static abstract ReadOnlySpan<byte> Header { get; }

    /// <summary>
    /// Decodes one record from <paramref name="input"/>: the record's bytes without delimiter (a line without its
    /// line break, or a length-prefixed payload without its length). Never throws for bad input: returns false with
    /// <paramref name="failure"/> saying what is wrong and where. <see cref="Utf8Text"/> fields point into
    /// <paramref name="input"/>.
    /// </summary>
    static abstract bool TryDecode(ReadOnlyMemory<byte> input, out T record, out DecodeError failure);

    /// <summary>Encodes <paramref name="record"/> into <paramref name="output"/>, without delimiter.</summary>
    static abstract void Encode(in T record, IBufferWriter<byte> output);
}

/// <summary>Why a record could not be decoded, and where in its bytes.</summary>
public readonly record struct DecodeError(string Message, int Offset)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Message} (at byte {Offset})";
}
