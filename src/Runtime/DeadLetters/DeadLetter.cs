namespace Compiled;

/// <summary>
/// The envelope of a record that failed: what failed, where it came from, its raw bytes and why. Written to the
/// dead-letter sink (by default a JSON Lines file) so that nothing is silently lost and bad input can be inspected,
/// fixed and replayed.
/// </summary>
/// <param name="Pipeline">The pipeline's name.</param>
/// <param name="Kind"><c>decode</c> (malformed input), <c>operator</c> (an operator threw) or <c>rejected</c> (a sink's destination refused it for good).</param>
/// <param name="Stage">The source member (decode) or the failing stage (operator).</param>
/// <param name="Source">The source member the record came from.</param>
/// <param name="Partition">The partition.</param>
/// <param name="Position">The position as text: <c>file:line</c>, <c>file@offset</c>, or an offset.</param>
/// <param name="File">The file, for file sources.</param>
/// <param name="Line">The 1-based line, when known.</param>
/// <param name="Offset">The byte offset (or Kafka offset), when known.</param>
/// <param name="Raw">The record's bytes: as text when they are valid UTF-8, else base64.</param>
/// <param name="RawEncoding"><c>utf8</c> or <c>base64</c>.</param>
/// <param name="RawTruncated">Whether <paramref name="Raw"/> is only the start of the record (an oversize one).</param>
/// <param name="ErrorType">The error's type.</param>
/// <param name="Message">What went wrong.</param>
/// <param name="Time">When it was reported.</param>
/// <param name="Lines">How many lines of text input the record covers, starting at <paramref name="Line"/> (one, except for a CSV record with quoted line breaks); null when the input is not line-based.</param>
[Record(Naming = FieldNaming.CamelCase)]
public sealed partial record DeadLetter(
    string Pipeline,
    string Kind,
    string Stage,
    string Source,
    int Partition,
    string Position,
    string? File,
    long? Line,
    long? Offset,
    string Raw,
    string RawEncoding,
    bool RawTruncated,
    string ErrorType,
    string Message,
    DateTimeOffset Time,
    int? Lines = null);
