using System.Buffers.Text;
using System.Runtime.CompilerServices;

namespace Compiled.Serialization;

/// <summary>
/// ISO 8601 dates and times in UTF-8: <c>yyyy-MM-dd</c>, optionally followed by <c>T</c> (or a space),
/// <c>HH:mm[:ss[.fffffff]]</c> and a zone (<c>Z</c>, <c>±HH:mm</c>, <c>±HHmm</c>). Writes the round-trip ("O") form.
/// Hand-written because the parsers in the base library either want UTF-16 or one exact layout.
/// </summary>
public static class Iso8601
{
    /// <summary>The most bytes <see cref="TryFormat(DateTimeOffset, Span{byte}, out int)"/> writes.</summary>
    public const int MaxLength = 33;

    /// <summary>Parses a date-time with an optional zone. <paramref name="offset"/> is null when there is none.</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, out DateTime value, out TimeSpan? offset)
    {
        value = default;
        offset = null;
        if (text.Length < 10 || text[4] != '-' || text[7] != '-'
            || !Digits(text, 0, 4, out var year) || !Digits(text, 5, 2, out var month) || !Digits(text, 8, 2, out var day)
            || year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month))
        {
            return false;
        }

        long ticks = new DateTime(year, month, day).Ticks;
        var i = 10;
        if (i < text.Length && (text[i] == 'T' || text[i] == 't' || text[i] == ' '))
        {
            i++;
            if (text.Length < i + 5 || text[i + 2] != ':' || !Digits(text, i, 2, out var hour) || !Digits(text, i + 3, 2, out var minute) || hour > 23 || minute > 59)
            {
                return false;
            }

            var second = 0;
            i += 5;
            if (i < text.Length && text[i] == ':')
            {
                if (!Digits(text, i + 1, 2, out second) || second > 59)
                {
                    return false;
                }

                i += 3;
            }

            ticks += (hour * TimeSpan.TicksPerHour) + (minute * TimeSpan.TicksPerMinute) + (second * TimeSpan.TicksPerSecond);
            if (i < text.Length && text[i] == '.')
            {
                i++;
                var start = i;
                long fraction = 0;
                while (i < text.Length && (uint)(text[i] - '0') <= 9)
                {
                    if (i - start < 7)
                    {
                        fraction = (fraction * 10) + (text[i] - '0');
                    }

                    i++;
                }

                if (i == start)
                {
                    return false;
                }

                for (var digits = Math.Min(i - start, 7); digits < 7; digits++)
                {
                    fraction *= 10;
                }

                ticks += fraction;
            }
        }

        if (i < text.Length)
        {
            if (text[i] == 'Z' || text[i] == 'z')
            {
                offset = TimeSpan.Zero;
                i++;
            }
            else if (text[i] == '+' || text[i] == '-')
            {
                var sign = text[i] == '-' ? -1 : 1;
                if (!Digits(text, i + 1, 2, out var offsetHours))
                {
                    return false;
                }

                var at = i + 3;
                var offsetMinutes = 0;
                if (at < text.Length && text[at] == ':')
                {
                    at++;
                }

                if (at < text.Length)
                {
                    if (!Digits(text, at, 2, out offsetMinutes))
                    {
                        return false;
                    }

                    at += 2;
                }

                if (offsetHours > 14 || offsetMinutes > 59)
                {
                    return false;
                }

                offset = new TimeSpan(sign * offsetHours, sign * offsetMinutes, 0);
                i = at;
            }

            if (i != text.Length)
            {
                return false;
            }
        }

        if (ticks > DateTime.MaxValue.Ticks)
        {
            return false;
        }

        value = new DateTime(ticks, offset is null ? DateTimeKind.Unspecified : DateTimeKind.Utc);
        if (offset is { } zone && zone != TimeSpan.Zero)
        {
            // The clock time is local to the zone: the UTC instant is clock minus offset.
            var utc = ticks - zone.Ticks;
            if (utc < DateTime.MinValue.Ticks || utc > DateTime.MaxValue.Ticks)
            {
                return false;
            }

            value = new DateTime(utc, DateTimeKind.Utc);
        }

        return true;
    }

    /// <summary>Parses a <see cref="DateTime"/>: no zone gives <see cref="DateTimeKind.Unspecified"/>, a zone gives the UTC instant.</summary>
    public static bool TryParseDateTime(ReadOnlySpan<byte> text, out DateTime value) => TryParse(text, out value, out _);

    /// <summary>Parses a <see cref="DateTimeOffset"/>; without a zone the offset is zero.</summary>
    public static bool TryParseDateTimeOffset(ReadOnlySpan<byte> text, out DateTimeOffset value)
    {
        value = default;
        if (!TryParse(text, out var instant, out var offset))
        {
            return false;
        }

        var zone = offset ?? TimeSpan.Zero;
        var clock = instant.Ticks + zone.Ticks;
        if (clock < DateTime.MinValue.Ticks || clock > DateTime.MaxValue.Ticks)
        {
            return false;
        }

        value = new DateTimeOffset(clock, zone);
        return true;
    }

    /// <summary>Writes <paramref name="value"/> in the round-trip form.</summary>
    public static bool TryFormat(DateTime value, Span<byte> destination, out int written)
        => Utf8Formatter.TryFormat(value, destination, out written, new System.Buffers.StandardFormat('O'));

    /// <summary>Writes <paramref name="value"/> in the round-trip form.</summary>
    public static bool TryFormat(DateTimeOffset value, Span<byte> destination, out int written)
        => Utf8Formatter.TryFormat(value, destination, out written, new System.Buffers.StandardFormat('O'));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Digits(ReadOnlySpan<byte> text, int start, int count, out int value)
    {
        value = 0;
        if (start + count > text.Length)
        {
            return false;
        }

        for (var i = start; i < start + count; i++)
        {
            var digit = (uint)(text[i] - '0');
            if (digit > 9)
            {
                return false;
            }

            value = (value * 10) + (int)digit;
        }

        return true;
    }
}
