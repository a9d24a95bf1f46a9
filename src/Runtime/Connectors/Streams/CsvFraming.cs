using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Compiled.Connectors;

/// <summary>
/// What CSV framing needs to tell a record with quoted line breaks from a stray quote: a span that a quote kept open
/// across lines is taken as one record only when it is well-formed RFC 4180 with the header's number of fields.
/// </summary>
internal static class CsvFraming
{
    /// <summary>Returned by a framing scan when quotes keep a record open past the line limit.</summary>
    public const int TooManyLines = -2;

    /// <summary>
    /// The index of the first line break outside double quotes in <paramref name="span"/> (which holds neither a quote
    /// nor a line break before <paramref name="start"/>), -1 when there is none, or <see cref="TooManyLines"/> when
    /// quotes keep it open past <paramref name="maxLines"/> lines; on success <paramref name="lines"/> grows by the line
    /// breaks inside quotes.
    /// </summary>
    /// <remarks>
    /// 32 bytes at a time: a mask of the quotes and one of the line breaks, and the quotes' prefix XOR, which is set from
    /// an opening quote up to (not including) its closing one — so a line break is inside quotes where it is set, and a
    /// doubled quote toggles it twice. One pass however many quotes a record holds (simdcsv's structural index, kept to
    /// the one record being framed).
    /// </remarks>
    public static int LineEnd(ReadOnlySpan<byte> span, int start, int maxLines, ref int lines)
    {
        var inside = 0u; // all ones when the bytes before the block end inside quotes
        var inner = 0;
        var i = start;
        if (Vector256.IsHardwareAccelerated)
        {
            ref var origin = ref MemoryMarshal.GetReference(span);
            var quote = Vector256.Create((byte)'"');
            var newline = Vector256.Create((byte)'\n');
            for (; i <= span.Length - Vector256<byte>.Count; i += Vector256<byte>.Count)
            {
                var block = Vector256.LoadUnsafe(ref origin, (nuint)i);
                var quoted = PrefixXor(Vector256.Equals(block, quote).ExtractMostSignificantBits()) ^ inside;
                var newlines = Vector256.Equals(block, newline).ExtractMostSignificantBits();
                var outside = newlines & ~quoted;
                var upTo = outside == 0 ? newlines : newlines & ((1u << BitOperations.TrailingZeroCount(outside)) - 1);
                inner += BitOperations.PopCount(upTo & quoted);
                if (inner >= maxLines)
                {
                    return TooManyLines;
                }

                if (outside != 0)
                {
                    lines += inner;
                    return i + BitOperations.TrailingZeroCount(outside);
                }

                inside = (uint)((int)quoted >> 31); // the block's last byte inside quotes: the next block starts inside
            }
        }

        var open = inside != 0;
        while (true)
        {
            var next = span[i..].IndexOfAny((byte)'"', (byte)'\n');
            if (next < 0)
            {
                return -1;
            }

            i += next;
            if (span[i] == '"')
            {
                open = !open;
            }
            else if (!open)
            {
                lines += inner;
                return i;
            }
            else if (++inner >= maxLines)
            {
                return TooManyLines;
            }

            i++;
        }
    }

    /// <summary>Each bit the XOR of itself and every lower bit: set between an odd quote and the next one.</summary>
    private static uint PrefixXor(uint bits)
    {
        bits ^= bits << 1;
        bits ^= bits << 2;
        bits ^= bits << 4;
        bits ^= bits << 8;
        bits ^= bits << 16;
        return bits;
    }

    /// <summary>The number of fields in <paramref name="record"/>, or -1 when it is not well-formed.</summary>
    public static int CountFields(ReadOnlySpan<byte> record)
    {
        if (!record.IsEmpty && record[^1] == '\r')
        {
            record = record[..^1];
        }

        var fields = 1;
        var i = 0;
        while (true)
        {
            if (i < record.Length && record[i] == '"')
            {
                i++;
                while (true)
                {
                    var quote = record[i..].IndexOf((byte)'"');
                    if (quote < 0)
                    {
                        return -1; // never closed
                    }

                    i += quote + 1;
                    if (i < record.Length && record[i] == '"')
                    {
                        i++; // a doubled quote inside the field
                        continue;
                    }

                    break;
                }

                if (i == record.Length)
                {
                    return fields;
                }

                if (record[i] != ',')
                {
                    return -1; // characters after a closing quote
                }

                fields++;
                i++;
                continue;
            }

            var stop = record[i..].IndexOfAny((byte)',', (byte)'"');
            if (stop < 0)
            {
                return fields;
            }

            if (record[i + stop] == '"')
            {
                return -1; // a quote inside an unquoted field
            }

            fields++;
            i += stop + 1;
        }
    }

    /// <summary>Whether <paramref name="record"/> is well-formed CSV with <paramref name="expectedFields"/> fields (any number when negative).</summary>
    public static bool IsWellFormed(ReadOnlySpan<byte> record, int expectedFields)
    {
        var fields = CountFields(record);
        return fields > 0 && (expectedFields < 0 || fields == expectedFields);
    }
}
