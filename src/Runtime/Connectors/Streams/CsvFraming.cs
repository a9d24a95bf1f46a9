namespace Compiled.Connectors;

/// <summary>
/// What CSV framing needs to tell a record with quoted line breaks from a stray quote: a span that a quote kept open
/// across lines is taken as one record only when it is well-formed RFC 4180 with the header's number of fields.
/// </summary>
internal static class CsvFraming
{
    /// <summary>Returned by a framing scan when quotes keep a record open past the line limit.</summary>
    public const int TooManyLines = -2;

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
