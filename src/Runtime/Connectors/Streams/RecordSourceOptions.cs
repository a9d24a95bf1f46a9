namespace Compiled.Connectors;

/// <summary>Options every byte-oriented source shares.</summary>
public class RecordSourceOptions
{
    /// <summary>
    /// The largest record accepted: 1 MiB. A longer one is dead-lettered (its first bytes kept) and skipped without
    /// being buffered whole, so one runaway line cannot exhaust memory.
    /// </summary>
    public const int DefaultMaxRecordBytes = 1024 * 1024;

    /// <summary>
    /// How much a source reads at a time: 64 KiB, enough that per-read costs vanish and that a batch of short
    /// records usually comes out of one read.
    /// </summary>
    public const int DefaultReadBufferBytes = 64 * 1024;

    /// <summary>
    /// For CSV: the most lines a quoted field may make a record span: 100. Multi-line notes and addresses fit; a stray
    /// quote that never closes costs a bounded look-ahead, after which framing starts again at the next line (see
    /// docs/connectors.md, "CSV framing").
    /// </summary>
    public const int DefaultMaxRecordLines = 100;

    /// <summary>The largest record accepted, in bytes. Default: <see cref="DefaultMaxRecordBytes"/>.</summary>
    public int MaxRecordBytes { get; set; } = DefaultMaxRecordBytes;

    /// <summary>
    /// For CSV: the most lines one record may span through quoted line breaks. Default: <see cref="DefaultMaxRecordLines"/>.
    /// </summary>
    public int MaxRecordLines { get; set; } = DefaultMaxRecordLines;

    /// <summary>For formats with a header (CSV): whether each file or stream starts with it. Default: true.</summary>
    public bool HasHeader { get; set; } = true;

    /// <summary>
    /// The options as settings, to be changed from configuration or the command line. <paramref name="hasHeader"/>:
    /// whether the format has a header row, so <see cref="HasHeader"/> means something.
    /// </summary>
    public virtual IEnumerable<Setting> Settings(bool hasHeader)
    {
        yield return Setting.Number(nameof(MaxRecordBytes), "The largest record accepted, in bytes; longer ones are dead-lettered", () => MaxRecordBytes, v => MaxRecordBytes = (int)v, 16, int.MaxValue);
        if (hasHeader)
        {
            yield return Setting.Number(nameof(MaxRecordLines), "The most lines a quoted field may make one record span; past it, or when the span is not a well-formed record, reading starts again at the next line", () => MaxRecordLines, v => MaxRecordLines = (int)v, 1, int.MaxValue);
            yield return Setting.Boolean(nameof(HasHeader), "Whether each file or stream starts with a header row", () => HasHeader, v => HasHeader = v);
        }
    }

    /// <summary>Checks the options, naming the bad one.</summary>
    public virtual void Validate()
    {
        if (MaxRecordBytes < 16)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRecordBytes), MaxRecordBytes, "MaxRecordBytes must be at least 16.");
        }

        if (MaxRecordLines < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRecordLines), MaxRecordLines, "MaxRecordLines must be at least 1.");
        }
    }
}
