using System.Buffers;
using Compiled.Connectors;
using CsCheck;

namespace Compiled.Runtime.Tests.Connectors;

/// <summary>A CSV row whose text needs quoting: commas, quotes, line breaks.</summary>
[Record]
public sealed partial record CsvNote(long Id, string Text, int N);

/// <summary>CSV framing's line-end scan (32 bytes at a time) against the rule read one byte at a time.</summary>
public sealed class CsvFramingTests
{
    /// <summary>Bytes that matter to the scan, and one that does not.</summary>
    /// <summary>What the texts of the round-trip test are made of.</summary>
    private static readonly string[] Pieces = ["plain", "a,b", "say \"hi\"", "two\nlines", "\"\"", "x\r\ny, \"z\"\n", new string('w', 70)];

    private static readonly Gen<byte[]> Inputs = Gen.Int[0, 4].Select(i => (byte)"a,\"\n\r"[i]).Array[0, 200];

    [Fact]
    public void The_line_end_outside_quotes_is_the_one_a_byte_by_byte_scan_finds()
    {
        Gen.Select(Inputs, Gen.Int[1, 6], Gen.Int[0, 40]).Sample((bytes, maxLines, skip) =>
        {
            // The scan starts where the caller's quote-free stretch ends: no quote or line break before it.
            var first = bytes.AsSpan().IndexOfAny((byte)'"', (byte)'\n');
            var start = Math.Min(skip, first < 0 ? bytes.Length : first);
            var expectedLines = 1;
            var expected = Reference(bytes, start, maxLines, ref expectedLines);
            var lines = 1;
            var actual = CsvFraming.LineEnd(bytes, start, maxLines, ref lines);
            Assert.Equal(expected, actual);
            Assert.Equal(expectedLines, lines);
        }, iter: 50_000);
    }

    [Fact]
    public void Quotes_that_stay_open_across_many_blocks_are_followed_to_their_close()
    {
        // 1 000 bytes inside quotes with a doubled quote and a line break in every block, then the record's end.
        var text = string.Concat(Enumerable.Repeat("abc\"\"def\nghi,jkl", 63));
        var bytes = System.Text.Encoding.ASCII.GetBytes($"1,\"{text}\",2\n3,4\n");
        var lines = 1;
        Assert.Equal(bytes.Length - 5, CsvFraming.LineEnd(bytes, 2, 100, ref lines));
        Assert.Equal(64, lines);
        lines = 1;
        Assert.Equal(CsvFraming.TooManyLines, CsvFraming.LineEnd(bytes, 2, 63, ref lines));
    }

    [Fact]
    public async Task Rows_with_quoted_commas_quotes_and_line_breaks_read_back_whole_in_order_however_the_stream_cuts_them_with_or_without_a_last_line_break()
    {
        var texts = Gen.Int[0, Pieces.Length - 1].Select(i => Pieces[i]).Array[0, 12].Select(parts => string.Concat(parts));
        var rows = Gen.Select(texts, Gen.Int).Array[0, 300];
        await Task.Run(() => Gen.Select(rows, Gen.Int[1, 300], Gen.Int[1, 40], Gen.Bool).Sample((generated, trickle, batch, lastLineBreak) =>
        {
            var notes = generated.Select((r, i) => new CsvNote(i, r.Item1, r.Item2)).ToArray();
            var file = new ArrayBufferWriter<byte>();
            file.Write(CsvNote.CsvCodec.Header);
            file.Write("\n"u8);
            for (var i = 0; i < notes.Length; i++)
            {
                CsvNote.CsvCodec.Encode(notes[i], file);
                if (i < notes.Length - 1 || lastLineBreak)
                {
                    file.Write("\n"u8); // the last record may end without one (a file's often does)
                }
            }

            var source = new StdinSource<CsvNote, CsvNote.CsvCodec>(new TrickleStream(file.WrittenSpan.ToArray(), trickle), new RecordSourceOptions { MaxRecordLines = 100 });
            Assert.Equal(notes, ReadAll(source, batch));
        }, iter: 400)).WaitAsync(TimeSpan.FromMinutes(2));
    }

    private static List<CsvNote> ReadAll(StdinSource<CsvNote, CsvNote.CsvCodec> source, int batchSize)
    {
        source.OpenAsync(new SourceContext<CsvNote>("test", "input", 1, batchSize, null), default).AsTask().GetAwaiter().GetResult();
        var read = new List<CsvNote>();
        var reader = source.CreateReader(0);
        while (reader.ReadAsync(default).AsTask().GetAwaiter().GetResult() is { IsEnd: false } batch)
        {
            read.AddRange(batch.Records.ToArray());
        }

        reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return read;
    }

    /// <summary>A stream that hands out at most a few bytes per read, so records straddle the pipe's buffers.</summary>
    private sealed class TrickleStream(byte[] data, int most) : Stream
    {
        private readonly MemoryStream _data = new(data, writable: false);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => _data.Read(buffer, offset, Math.Min(count, most));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private static int Reference(byte[] bytes, int start, int maxLines, ref int lines)
    {
        var quoted = false;
        var inner = 0;
        for (var i = start; i < bytes.Length; i++)
        {
            if (bytes[i] == '"')
            {
                quoted = !quoted;
            }
            else if (bytes[i] == '\n')
            {
                if (!quoted)
                {
                    lines += inner;
                    return i;
                }

                if (++inner >= maxLines)
                {
                    return CsvFraming.TooManyLines;
                }
            }
        }

        return -1;
    }
}
