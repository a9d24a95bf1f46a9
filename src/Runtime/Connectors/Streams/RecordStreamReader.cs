using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace Compiled.Connectors;

/// <summary>Where a stream of records comes from and how to read it.</summary>
internal sealed record RecordStreamSettings(
    string SourceName,
    string? File,
    int Partition,
    int BatchSize,
    RecordSourceOptions Options,
    IDeadLetterChannel DeadLetters,
    long StartOffset = 0,
    long EndOffset = long.MaxValue,
    bool AlignToLine = false,
    bool LinesKnown = true,
    bool ExpectHeader = false,
    bool LastRecordMayBeUnterminated = true,
    bool GrowBatches = false,
    bool FillBatches = false);

/// <summary>
/// Reads batches of records from a <see cref="PipeReader"/>: frames records by the codec's framing (lines, quoted
/// lines, length prefixes), decodes them in place, and reports those that fail with their position. A batch's
/// records — and the bytes their <see cref="Utf8Text"/> fields point at — stay valid until the next read: only then
/// is the pipe advanced past them. Records that straddle buffer segments are copied into an arena.
/// </summary>
internal sealed class RecordStreamReader<T, TCodec> : IRecordOrigins
    where TCodec : IRecordCodec<T>
{
    private static readonly byte[] Bom = [0xEF, 0xBB, 0xBF];

    /// <summary>The most bytes a batch being filled across reads holds back (<see cref="RecordStreamSettings.FillBatches"/>).</summary>
    private const long FillLimitBytes = 4 * 1024 * 1024;

    /// <summary>The number of fields of a CSV record, from the codec's header; -1 when unknown (no header).</summary>
    private static readonly int ExpectedFields = TCodec.Framing == RecordFraming.QuotedLines && !TCodec.Header.IsEmpty ? CsvFraming.CountFields(TCodec.Header) : -1;

    private readonly PipeReader _pipe;
    private readonly RecordStreamSettings _settings;
    private volatile bool _unterminatedEndIsRecord;
    /// <summary>The first batch of a reader that grows its batches (one per TCP connection): small, so an idle connection costs little.</summary>
    private const int FirstGrowingBatch = 16;

    private T[] _records;
    private (long Offset, long Line, ReadOnlyMemory<byte> Raw)[] _origins;
    private byte[] _arena = [];
    private int _arenaUsed;
    private int _count;
    private bool _mustAdvance;
    private long _parsed; // bytes at the start of the pipe's buffer already parsed into the batch being filled
    private SequencePosition _consumed;
    private SequencePosition _examined;
    private long _offset;
    private long _line = 1;
    private bool _bomChecked;
    private bool _headerPending;
    private bool _skipToNewline;
    private long _skipBytes;
    private long _quoteFreeUntil; // stream offset up to which the input is known to hold no double quote (CSV framing)
    private bool _finished;

    public RecordStreamReader(PipeReader pipe, RecordStreamSettings settings)
    {
        _pipe = pipe;
        _settings = settings;
        _unterminatedEndIsRecord = settings.LastRecordMayBeUnterminated;
        var first = settings.GrowBatches ? Math.Min(settings.BatchSize, FirstGrowingBatch) : settings.BatchSize;
        _records = new T[first];
        _origins = new (long, long, ReadOnlyMemory<byte>)[first];
        _offset = settings.StartOffset;
        _headerPending = settings.ExpectHeader && !TCodec.Header.IsEmpty;
        _bomChecked = settings.StartOffset > 0 || settings.AlignToLine;
        _skipToNewline = settings.AlignToLine;
    }

    /// <summary>
    /// The input will end for good (a followed file was replaced or truncated): bytes after its last line break then
    /// form its last record, rather than a line still being written. Call before completing the pipe's writer.
    /// </summary>
    public void EndIsFinal() => _unterminatedEndIsRecord = true;

    /// <summary>Records decoded so far.</summary>
    public long Decoded { get; private set; }

    /// <summary>The byte offset in the file or stream up to which input has been consumed.</summary>
    public long Offset => _offset;

    public RecordOrigin this[int index]
    {
        get
        {
            var (offset, line, raw) = _origins[index];
            return new RecordOrigin(_settings.SourceName, _settings.File, _settings.LinesKnown ? line : null, offset, raw);
        }
    }

    /// <summary>The next batch, or <see cref="SourceBatch{T}.End"/> when the stream (or the chunk) is exhausted.</summary>
    public async ValueTask<SourceBatch<T>> ReadBatchAsync(CancellationToken cancellationToken)
    {
        ReleasePreviousBatch();
        if (_finished)
        {
            return SourceBatch<T>.End;
        }

        while (true)
        {
            var result = await _pipe.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var final = result.IsCompleted;
            var (consumed, needMore) = Parse(_parsed == 0 ? buffer : buffer.Slice(_parsed), final);
            if (_count > 0 && _settings.FillBatches && needMore && !final && !_finished && _count < _records.Length && buffer.Length < FillLimitBytes)
            {
                // A file read to its end: the buffer ran out inside the batch. Keep every byte of it (its records point
                // into them; the pipe does not move what is not consumed) and read on, so that a batch holds BatchSize
                // records rather than what one read buffer holds (~20 records of 3 KB): every batch costs the loops
                // and an asynchronous transform waits for the slowest call of each.
                _parsed = buffer.Slice(0, consumed).Length;
                _pipe.AdvanceTo(buffer.Start, buffer.End);
                continue;
            }

            _parsed = 0;
            if (_count > 0)
            {
                // Keep the batch's bytes: the pipe advances past them on the next call.
                _consumed = consumed;
                _examined = needMore ? buffer.End : consumed;
                _mustAdvance = true;
                Decoded += _count;
                return SourceBatch<T>.Of(new ReadOnlyMemory<T>(_records, 0, _count), this);
            }

            if (_finished || (final && !needMore))
            {
                _finished = true;
                _pipe.AdvanceTo(buffer.End);
                return SourceBatch<T>.End;
            }

            _pipe.AdvanceTo(consumed, buffer.End);
        }
    }

    private void ReleasePreviousBatch()
    {
        if (_mustAdvance)
        {
            _pipe.AdvanceTo(_consumed, _examined);
            _mustAdvance = false;
        }

        // No clearing: the next batch overwrites the slots; at most one batch of stale references lingers.
        if (_count == _records.Length && _records.Length < _settings.BatchSize)
        {
            // A growing reader's batch filled up: the stream is busy, so the next batches may be larger.
            var size = Math.Min(_settings.BatchSize, _records.Length * 4);
            _records = new T[size];
            _origins = new (long, long, ReadOnlyMemory<byte>)[size];
        }

        _count = 0;
        _arenaUsed = 0;
    }

    /// <summary>Frames and decodes records until the batch is full or the buffer holds no complete record.</summary>
    private (SequencePosition Consumed, bool NeedMore) Parse(ReadOnlySequence<byte> buffer, bool final)
    {
        var reader = new SequenceReader<byte>(buffer);
        var limit = _settings.Options.MaxRecordBytes;
        while (_count < _records.Length)
        {
            if (_skipToNewline)
            {
                var before = reader.Consumed;
                if (reader.TryAdvanceTo((byte)'\n'))
                {
                    _offset += reader.Consumed - before;
                    _line++;
                    _skipToNewline = false;
                    continue;
                }

                _offset += reader.Remaining;
                reader.AdvanceToEnd();
                return (reader.Position, !final);
            }

            if (_skipBytes > 0)
            {
                var skip = Math.Min(reader.Remaining, _skipBytes);
                reader.Advance(skip);
                _offset += skip;
                _skipBytes -= skip;
                if (_skipBytes > 0)
                {
                    return (reader.Position, !final);
                }

                continue;
            }

            if (_offset >= _settings.EndOffset)
            {
                _finished = true;
                return (reader.Position, false);
            }

            if (!_bomChecked)
            {
                if (reader.Remaining < Bom.Length && !final)
                {
                    return (reader.Position, true);
                }

                _bomChecked = true;
                if (reader.IsNext(Bom, advancePast: true))
                {
                    _offset += Bom.Length;
                }
            }

            if (TCodec.Framing != RecordFraming.LengthPrefixed && FrameInSegment(buffer, ref reader))
            {
                continue; // the common case: records that lie whole in the current buffer segment; no sequence slicing
            }

            var start = reader.Position;
            var startConsumed = reader.Consumed;
            if (TCodec.Framing == RecordFraming.LengthPrefixed && reader.Remaining >= sizeof(int))
            {
                reader.TryReadLittleEndian(out int announced);
                reader.Rewind(sizeof(int));
                if (announced > limit)
                {
                    // Dead-letter the start of the oversize record and skip the rest as it streams by.
                    ReportOversize(buffer.Slice(start, Math.Min(reader.Remaining, DeadLetterKeep(limit))));
                    reader.Advance(sizeof(int));
                    _offset += sizeof(int);
                    _skipBytes = announced;
                    continue;
                }
            }

            if (!TryFrame(ref reader, final, out var record, out var lines))
            {
                var remaining = reader.Remaining;
                if (remaining > limit + 1 && TCodec.Framing != RecordFraming.LengthPrefixed) // + 1: a CR before the LF is not part of the record
                {
                    if (TCodec.Framing == RecordFraming.QuotedLines && FirstLine(ref reader, limit, out record))
                    {
                        // A quote opened a span longer than the limit: the line it started on is the record (resync).
                        Accept(AsMemory(record), reader.Consumed - startConsumed, 1);
                        continue;
                    }

                    ReportOversize(buffer.Slice(start, Math.Min(remaining, DeadLetterKeep(limit))));
                    _skipToNewline = true;
                    continue;
                }

                if (!final || remaining == 0)
                {
                    return (start, !final);
                }

                if (!_unterminatedEndIsRecord)
                {
                    // A tailed file's last line is still being written: leave it for the next run.
                    return (start, false);
                }

                // The input ended inside a record: what is left is the last record (files often lack a final newline).
                record = reader.UnreadSequence;
                reader.AdvanceToEnd();
                lines = 0;
            }

            var recordBytes = reader.Consumed - startConsumed;
            if (record.Length - (EndsWithCarriageReturn(record) ? 1 : 0) > limit)
            {
                ReportOversize(record.Slice(0, DeadLetterKeep(limit)));
                Advance(recordBytes, lines);
                continue;
            }

            Accept(AsMemory(record), recordBytes, lines);
        }

        return (reader.Position, false);
    }

    /// <summary>
    /// Frames and takes the records that lie whole inside the reader's current segment (the usual case: records are
    /// small next to segments), until the batch is full or the chunk ends; then moves the reader past them at once.
    /// False when not even the first record lies whole in the segment (the careful path takes it).
    /// </summary>
    private bool FrameInSegment(ReadOnlySequence<byte> buffer, ref SequenceReader<byte> reader)
    {
        var position = reader.Position;
        if (!buffer.TryGet(ref position, out var rest, advance: false))
        {
            return false;
        }

        var whole = rest.Span;
        var used = 0;
        do
        {
            var span = whole[used..];
            var lines = 1;
            int end;
            if (TCodec.Framing == RecordFraming.Lines)
            {
                end = span.IndexOf((byte)'\n');
            }
            else
            {
                if (_quoteFreeUntil <= _offset)
                {
                    // One vectorised pass per stretch of input: how far does it go without a quote?
                    var quote = span.IndexOf((byte)'"');
                    _quoteFreeUntil = _offset + (quote < 0 ? span.Length : quote);
                }

                // Up to the first quote a line break ends the record; past it, the careful scan takes over from the
                // quote (so a record with quotes is scanned once, not once for the line break and again for the quotes).
                var quoteFree = (int)Math.Min(span.Length, _quoteFreeUntil - _offset);
                end = span[..quoteFree].IndexOf((byte)'\n');
                if (end < 0 && quoteFree < span.Length)
                {
                    end = CsvFraming.LineEnd(span, quoteFree, _settings.Options.MaxRecordLines, ref lines); // a quote comes first: the careful scan
                    if (end == CsvFraming.TooManyLines || (end >= 0 && lines > 1 && !CsvFraming.IsWellFormed(span[..end], ExpectedFields)))
                    {
                        // The quoted span does not make a record: the line the quote opened on is the (bad) record.
                        end = span.IndexOf((byte)'\n');
                        lines = 1;
                    }
                }
            }

            if (end < 0 || end - (end > 0 && span[end - 1] == '\r' ? 1 : 0) > _settings.Options.MaxRecordBytes)
            {
                break;
            }

            Accept(rest.Slice(used, end), end + 1, lines);
            used += end + 1;
        }
        while (_count < _records.Length && _offset < _settings.EndOffset);

        reader.Advance(used);
        return used > 0;
    }

    /// <summary>Takes a framed record (without delimiter): trims a CR, skips blank lines and the header, decodes it.</summary>
    private void Accept(ReadOnlyMemory<byte> memory, long recordBytes, int lines)
    {
        if (TCodec.Framing != RecordFraming.LengthPrefixed)
        {
            if (!memory.IsEmpty && memory.Span[^1] == '\r')
            {
                memory = memory[..^1];
            }

            if (memory.IsEmpty || (memory.Span[0] is (byte)' ' or (byte)'\t' && IsBlank(memory.Span)))
            {
                Advance(recordBytes, lines); // a blank (or whitespace-only) line
                return;
            }
        }

        if (_headerPending)
        {
            _headerPending = false;
            CheckHeader(memory.Span);
            Advance(recordBytes, lines);
            return;
        }

        if (TCodec.TryDecode(memory, out var value, out var error))
        {
            _records[_count] = value;
            _origins[_count] = (_offset, _line, memory);
            _count++;
        }
        else
        {
            var message = lines == 0 && TCodec.Framing != RecordFraming.LengthPrefixed
                ? $"{error.Message} (at byte {error.Offset}; the last record has no line break: truncated?)"
                : $"{error.Message} (at byte {error.Offset})";
            Report(memory, "DecodeError", message, truncated: false, LinesOf(memory.Span));
        }

        Advance(recordBytes, lines);
    }

    private bool TryFrame(ref SequenceReader<byte> reader, bool final, out ReadOnlySequence<byte> record, out int lines)
    {
        lines = 1;
        switch (TCodec.Framing)
        {
            case RecordFraming.Lines:
                return reader.TryReadTo(out record, (byte)'\n', advancePastDelimiter: true);
            case RecordFraming.QuotedLines:
                return TryReadQuotedLine(ref reader, final, _settings.Options.MaxRecordLines, out record, ref lines);
            default:
                lines = 0;
                record = default;
                if (!reader.TryReadLittleEndian(out int length))
                {
                    return false;
                }

                if (length < 0 || reader.Remaining < length)
                {
                    reader.Rewind(sizeof(int));
                    if (length < 0)
                    {
                        throw new InvalidDataException($"{Where()}: a negative record length; the stream is corrupt or not in {TCodec.Format} format");
                    }

                    return false;
                }

                record = reader.Sequence.Slice(reader.Position, length);
                reader.Advance(length);
                return true;
        }
    }

    /// <summary>
    /// Reads to the first line break outside double quotes (RFC 4180: a quoted field may span lines) — as long as the
    /// span is a well-formed record of at most <paramref name="maxLines"/> lines. Otherwise (a stray quote) the line
    /// the record started on is the record, and framing starts again at the next line.
    /// </summary>
    private static bool TryReadQuotedLine(ref SequenceReader<byte> reader, bool final, int maxLines, out ReadOnlySequence<byte> record, ref int lines)
    {
        var probe = reader;
        var quoted = false;
        long length = 0;
        var inner = 0;
        while (!probe.End)
        {
            var span = probe.UnreadSpan;
            var i = 0;
            while (i < span.Length)
            {
                var next = span[i..].IndexOfAny((byte)'"', (byte)'\n');
                if (next < 0)
                {
                    break;
                }

                i += next;
                if (span[i] == '"')
                {
                    quoted = !quoted;
                }
                else if (!quoted)
                {
                    var candidate = reader.Sequence.Slice(reader.Position, length + i);
                    if (inner > 0 && !CsvFraming.IsWellFormed(candidate.IsSingleSegment ? candidate.FirstSpan : candidate.ToArray(), ExpectedFields))
                    {
                        return FirstLine(ref reader, out record);
                    }

                    record = candidate;
                    reader.Advance(length + i + 1);
                    lines += inner;
                    return true;
                }
                else if (++inner >= maxLines)
                {
                    return FirstLine(ref reader, out record);
                }

                i++;
            }

            length += span.Length;
            probe.Advance(span.Length);
        }

        if (final && inner > 0 && (quoted || !CsvFraming.IsWellFormed(reader.UnreadSequence.ToArray(), ExpectedFields)))
        {
            // A quote never closed before the end of the input, or quoted lines that do not make a record: the line the
            // quote opened on is the (bad) record. Quoted lines that make a well-formed record are the input's last
            // record, without its line break: the caller takes what is left.
            return FirstLine(ref reader, out record);
        }

        record = default;
        return false;
    }

    private static bool FirstLine(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> record)
        => reader.TryReadTo(out record, (byte)'\n', advancePastDelimiter: true);

    /// <summary>The first line ahead, when it ends within <paramref name="limit"/> bytes (plus a CR).</summary>
    private static bool FirstLine(ref SequenceReader<byte> reader, int limit, out ReadOnlySequence<byte> record)
    {
        var probe = reader;
        if (probe.TryReadTo(out record, (byte)'\n', advancePastDelimiter: true) && record.Length - (EndsWithCarriageReturn(record) ? 1 : 0) <= limit)
        {
            reader = probe;
            return true;
        }

        record = default;
        return false;
    }

    private static bool EndsWithCarriageReturn(ReadOnlySequence<byte> record)
        => !record.IsEmpty && record.Slice(record.Length - 1).FirstSpan[0] == '\r';

    private static bool IsBlank(ReadOnlySpan<byte> line) => line.IndexOfAnyExcept((byte)' ', (byte)'\t') < 0;

    /// <summary>The lines a record's bytes cover (a CSV record with quoted line breaks covers several); null for binary.</summary>
    private static int? LinesOf(ReadOnlySpan<byte> record)
        => TCodec.Framing == RecordFraming.LengthPrefixed ? null : 1 + record.Count((byte)'\n');

    private ReadOnlyMemory<byte> AsMemory(ReadOnlySequence<byte> record)
    {
        if (record.IsSingleSegment)
        {
            return record.First;
        }

        var length = (int)record.Length;
        if (_arena.Length - _arenaUsed < length)
        {
            // A new arena: the records already in this batch keep pointing at the old one, which stays alive with them.
            _arena = new byte[Math.Max(Math.Max(_arena.Length * 2, 4096), length)];
            _arenaUsed = 0;
        }

        var target = _arena.AsMemory(_arenaUsed, length);
        record.CopyTo(target.Span);
        _arenaUsed += length;
        return target;
    }

    private void CheckHeader(ReadOnlySpan<byte> header)
    {
        if (!header.SequenceEqual(TCodec.Header))
        {
            // A different header means different data (columns are read by position): no retry will fix it.
            throw new NonRetryableException(
                $"{Where()}: the header '{Compiled.Runtime.SafeText.Quote(header)}' does not match the record's fields '{Encoding.UTF8.GetString(TCodec.Header)}'");
        }
    }

    private void ReportOversize(ReadOnlySequence<byte> start)
        => Report(start.ToArray(), "RecordTooLarge", $"the record is longer than {_settings.Options.MaxRecordBytes} bytes (MaxRecordBytes); it was skipped", truncated: true, TCodec.Framing == RecordFraming.LengthPrefixed ? null : 1);

    private void Report(ReadOnlyMemory<byte> raw, string errorType, string message, bool truncated, int? lines)
    {
        var origin = new RecordOrigin(_settings.SourceName, _settings.File, _settings.LinesKnown ? _line : null, _offset, raw, truncated) { Lines = lines };
        _settings.DeadLetters.Report(new FailedRecord(FailureKind.Decode, _settings.Partition, _settings.SourceName, origin, errorType, message));
    }

    private void Advance(long bytes, int lines)
    {
        _offset += bytes;
        _line += lines;
    }

    private string Where() => _settings.File is { } file ? (_settings.LinesKnown ? $"{file}:{_line}" : $"{file}@{_offset}") : $"{_settings.SourceName} offset {_offset}";

    private static int DeadLetterKeep(int limit) => Math.Min(limit, 4096);
}
