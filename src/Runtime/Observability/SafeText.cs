using System.Buffers;
using System.Globalization;
using System.Text;

namespace Compiled.Runtime;

/// <summary>
/// Makes text that may hold input fit for a terminal and a log: control characters (NUL, ESC, line breaks, C1) are
/// escaped as <c>\x1b</c>, <c>\n</c> …, invalid UTF-8 bytes as <c>\xff</c>, and the length is capped — a binary file
/// read as CSV must not write its bytes into standard error.
/// </summary>
internal static class SafeText
{
    /// <summary>The most characters of input quoted inside a message: enough to recognise it.</summary>
    public const int MaxQuotedChars = 120;

    /// <summary>The most characters of one error or log line: a message quoting input (an exception's text) stays readable.</summary>
    public const int MaxLineChars = 1000;

    /// <summary>Input bytes (UTF-8, possibly invalid) as printable text of at most <paramref name="max"/> characters.</summary>
    public static string Quote(ReadOnlySpan<byte> utf8, int max = MaxQuotedChars)
    {
        var text = new StringBuilder(Math.Min(utf8.Length, max) + 16);
        var i = 0;
        while (i < utf8.Length && text.Length < max)
        {
            if (Rune.DecodeFromUtf8(utf8[i..], out var rune, out var used) == OperationStatus.Done)
            {
                Append(text, rune);
            }
            else
            {
                text.Append(CultureInfo.InvariantCulture, $"\\x{utf8[i]:x2}");
            }

            i += Math.Max(used, 1);
        }

        if (i < utf8.Length)
        {
            text.Append(CultureInfo.InvariantCulture, $"… ({utf8.Length:N0} bytes in all)");
        }

        return text.ToString();
    }

    /// <summary>A message as printable text of at most <paramref name="max"/> characters.</summary>
    public static string Escape(string message, int max = MaxLineChars)
    {
        ArgumentNullException.ThrowIfNull(message);
        var clean = true;
        foreach (var c in message)
        {
            if (char.IsControl(c) || char.IsSurrogate(c))
            {
                clean = false;
                break;
            }
        }

        if (clean && message.Length <= max)
        {
            return message;
        }

        var text = new StringBuilder(Math.Min(message.Length, max) + 16);
        var i = 0;
        while (i < message.Length && text.Length < max)
        {
            if (Rune.TryGetRuneAt(message, i, out var rune))
            {
                Append(text, rune);
                i += rune.Utf16SequenceLength;
            }
            else
            {
                text.Append(CultureInfo.InvariantCulture, $"\\u{(int)message[i]:x4}");
                i++;
            }
        }

        if (i < message.Length)
        {
            text.Append(CultureInfo.InvariantCulture, $"… ({message.Length:N0} characters in all)");
        }

        return text.ToString();
    }

    private static void Append(StringBuilder text, Rune rune)
    {
        switch (rune.Value)
        {
            case '\n': text.Append("\\n"); break;
            case '\r': text.Append("\\r"); break;
            case '\t': text.Append("\\t"); break;
            default:
                if (Rune.IsControl(rune) && rune.Value < 0x100)
                {
                    text.Append(CultureInfo.InvariantCulture, $"\\x{rune.Value:x2}");
                }
                else if (Rune.IsControl(rune))
                {
                    text.Append(CultureInfo.InvariantCulture, $"\\u{rune.Value:x4}");
                }
                else
                {
                    text.Append(rune.ToString());
                }

                break;
        }
    }
}
