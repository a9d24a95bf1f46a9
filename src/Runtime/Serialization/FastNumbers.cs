using System.Buffers.Text;
using System.Runtime.CompilerServices;

namespace Compiled.Serialization;

/// <summary>
/// Number parsing for the codecs' common cases, with the base library's parser as the fallback. Integers: a digit
/// loop. Doubles: the exact ("Clinger") fast path — at most 15 significant digits and a power of ten up to 10^22
/// are both exact in a double, so one multiplication or division gives the correctly rounded result; anything else
/// (more digits, exponents, huge or tiny values) goes to <see cref="Utf8Parser"/>. Results are identical to
/// <see cref="Utf8Parser"/> (tested).
/// </summary>
public static class FastNumbers
{
    private static readonly double[] PowersOfTen =
    [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];

    /// <summary>Parses a decimal integer at the start of <paramref name="text"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryParseInt64(ReadOnlySpan<byte> text, out long value, out int consumed)
    {
        var i = 0;
        var negative = false;
        if (!text.IsEmpty && text[0] == '-')
        {
            negative = true;
            i = 1;
        }

        var start = i;
        ulong magnitude = 0;
        while (i < text.Length && i - start < 18)
        {
            var digit = (uint)(text[i] - '0');
            if (digit > 9)
            {
                break;
            }

            magnitude = (magnitude * 10) + digit;
            i++;
        }

        if (i == start || (i < text.Length && (uint)(text[i] - '0') <= 9))
        {
            // No digit, or 19+ digits (may overflow): the careful parser decides.
            return Utf8Parser.TryParse(text, out value, out consumed);
        }

        value = negative ? -(long)magnitude : (long)magnitude;
        consumed = i;
        return true;
    }

    /// <summary>Parses a decimal integer that must fit in an <see cref="int"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryParseInt32(ReadOnlySpan<byte> text, out int value, out int consumed)
    {
        if (TryParseInt64(text, out var wide, out consumed) && wide is >= int.MinValue and <= int.MaxValue)
        {
            value = (int)wide;
            return true;
        }

        value = 0;
        return false;
    }

    /// <summary>Parses a JSON/CSV number at the start of <paramref name="text"/> as a double.</summary>
    public static bool TryParseDouble(ReadOnlySpan<byte> text, out double value, out int consumed)
    {
        var i = 0;
        var negative = false;
        if (!text.IsEmpty && text[0] == '-')
        {
            negative = true;
            i = 1;
        }

        ulong mantissa = 0;
        var digits = 0;
        var fraction = 0;
        var start = i;
        while (i < text.Length && (uint)(text[i] - '0') <= 9)
        {
            mantissa = (mantissa * 10) + (uint)(text[i] - '0');
            if (mantissa != 0)
            {
                digits++;
            }

            i++;
        }

        if (i == start)
        {
            return Utf8Parser.TryParse(text, out value, out consumed);
        }

        if (i < text.Length && text[i] == '.')
        {
            i++;
            var fractionStart = i;
            while (i < text.Length && (uint)(text[i] - '0') <= 9)
            {
                mantissa = (mantissa * 10) + (uint)(text[i] - '0');
                if (mantissa != 0)
                {
                    digits++;
                }

                i++;
            }

            fraction = i - fractionStart;
            if (fraction == 0)
            {
                return Utf8Parser.TryParse(text, out value, out consumed);
            }
        }

        if (digits > 15 || fraction > 22 || (i < text.Length && (text[i] | 0x20) == 'e'))
        {
            // Too many digits for the exact path, or an exponent: the careful parser.
            return Utf8Parser.TryParse(text, out value, out consumed);
        }

        var result = (double)mantissa;
        if (fraction > 0)
        {
            result /= PowersOfTen[fraction];
        }

        value = negative ? -result : result;
        consumed = i;
        return true;
    }
}
