namespace Compiled;

/// <summary>
/// Where sources and the fused loop hand records that fail: a record that does not decode, or one that makes an
/// operator throw. What happens next follows the pipeline's <see cref="ErrorPolicy"/>: the record is written to the
/// dead-letter sink with an envelope, or counted and skipped, or <see cref="Report"/> throws and the run stops.
/// </summary>
public interface IDeadLetterChannel
{
    /// <summary>The policy in force.</summary>
    ErrorPolicy Policy { get; }

    /// <summary>Reports a failed record; throws when the policy is <see cref="ErrorPolicy.FailFast"/>.</summary>
    void Report(in FailedRecord failure);
}

/// <summary>Why a record failed.</summary>
public enum FailureKind
{
    /// <summary>Its bytes could not be decoded into a record (malformed input).</summary>
    Decode,

    /// <summary>An operator threw while processing it.</summary>
    Operator,

    /// <summary>A sink's destination rejected it for good (counted with operator failures: it failed in a stage).</summary>
    Rejected,
}

/// <summary>A failed record, as a source or the runtime reports it.</summary>
/// <param name="Kind">Decode or operator failure.</param>
/// <param name="Partition">The partition it happened in.</param>
/// <param name="Stage">The stage: the source's member name for decode failures, the operator stage otherwise.</param>
/// <param name="Origin">Where the record came from, with its raw bytes.</param>
/// <param name="ErrorType">The error's type (an exception type name, or <c>DecodeError</c>).</param>
/// <param name="Message">What went wrong.</param>
public readonly record struct FailedRecord(FailureKind Kind, int Partition, string Stage, RecordOrigin Origin, string ErrorType, string Message);

/// <summary>
/// Where a record came from: the source, the file and line or the offset, and its raw bytes (valid while its batch is
/// processed; the dead-letter channel copies what it keeps).
/// </summary>
/// <param name="Source">The source's member name.</param>
/// <param name="File">The file, for file sources.</param>
/// <param name="Line">The 1-based line, when known.</param>
/// <param name="Offset">The byte offset of the record's start (or the Kafka offset), when known.</param>
/// <param name="Raw">The record's bytes, as read (without delimiter).</param>
/// <param name="RawTruncated">Whether <paramref name="Raw"/> is only the start of a longer record (an oversize one).</param>
public readonly record struct RecordOrigin(string Source, string? File, long? Line, long? Offset, ReadOnlyMemory<byte> Raw, bool RawTruncated = false)
{
    /// <summary>How many lines of text input the record covers (more than one for a CSV record with quoted line breaks); null when not line-based.</summary>
    public int? Lines { get; init; }

    /// <summary>The position as text: <c>file:line</c>, <c>file@offset</c>, <c>offset N</c>, or the source name.</summary>
    public string Describe() => (File, Line, Offset) switch
    {
        ({ } file, { } line, _) => $"{file}:{line}",
        ({ } file, null, { } offset) => $"{file}@{offset}",
        (null, _, { } offset) => $"{Source} offset {offset}",
        _ => Source,
    };
}

/// <summary>The origins of the records of one source batch, by index in the batch.</summary>
public interface IRecordOrigins
{
    /// <summary>The origin of record <paramref name="index"/> of the batch.</summary>
    RecordOrigin this[int index] { get; }
}

/// <summary>A channel that stops at the first failure: for sources used outside a pipeline run.</summary>
public sealed class FailFastDeadLetterChannel : IDeadLetterChannel
{
    /// <summary>The one instance.</summary>
    public static FailFastDeadLetterChannel Instance { get; } = new();

    private FailFastDeadLetterChannel()
    {
    }

    /// <inheritdoc/>
    public ErrorPolicy Policy => ErrorPolicy.FailFast;

    /// <inheritdoc/>
    public void Report(in FailedRecord failure)
        => throw new InvalidDataException($"{failure.Origin.Describe()}: {failure.Message}");
}
