using Compiled.Connectors;
using CsCheck;

namespace Compiled.Runtime.Tests.Connectors;

/// <summary>CSV framing's line-end scan (32 bytes at a time) against the rule read one byte at a time.</summary>
public sealed class CsvFramingTests
{
    /// <summary>Bytes that matter to the scan, and one that does not.</summary>
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
