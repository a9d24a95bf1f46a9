using System.Buffers;
using System.Buffers.Text;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

namespace Compiled.Serialization;

/// <summary>
/// Writes one JSON object for a generated encoder, straight into an <see cref="IBufferWriter{T}"/>. Property names
/// arrive pre-encoded (<c>"{\"path\":"u8</c>), so the encoder only writes values. Strings are escaped as JSON
/// requires (quote, backslash, control characters); other characters are written as UTF-8, and a lone surrogate
/// (which has no UTF-8 form) as U+FFFD.
/// </summary>
public ref struct JsonRecordWriter
{
    /// <summary>Room asked for when the current span is too small for a value: enough for any number or date.</summary>
    private const int ValueReserve = 64;

    private readonly IBufferWriter<byte> _output;
    private Span<byte> _span;
    private int _written;

    /// <summary>Writes to <paramref name="output"/>; call <see cref="Flush"/> when done.</summary>
    public JsonRecordWriter(IBufferWriter<byte> output)
    {
        _output = output;
        _span = output.GetSpan(256);
        _written = 0;
    }

    /// <summary>Commits what was written to the buffer writer.</summary>
    public void Flush()
    {
        _output.Advance(_written);
        _written = 0;
        _span = default;
    }

    /// <summary>Writes bytes as they are (punctuation and pre-encoded property names).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > _span.Length - _written)
        {
            Grow(bytes.Length);
        }

        bytes.CopyTo(_span[_written..]);
        _written += bytes.Length;
    }

    /// <summary>Writes <c>null</c>.</summary>
    public void WriteNull() => WriteRaw("null"u8);

    /// <summary>Writes a string value (or <c>null</c>).</summary>
    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteNull();
            return;
        }

        WriteString(value.AsSpan());
    }

    /// <summary>Writes a string value.</summary>
    public void WriteString(scoped ReadOnlySpan<char> value)
    {
        // Worst case: every char escaped as \uXXXX (6 bytes), plus quotes.
        var worst = (value.Length * 6) + 2;
        if (worst > _span.Length - _written)
        {
            Grow(worst);
        }

        var destination = _span[_written..];
        destination[0] = (byte)'"';
        var at = 1;
        if (!NeedsEscaping(value))
        {
            Utf8.FromUtf16(value, destination[1..], out _, out var bytes, replaceInvalidSequences: true);
            at += bytes;
        }
        else
        {
            at += WriteEscaped(value, destination[1..]);
        }

        destination[at++] = (byte)'"';
        _written += at;
    }

    /// <summary>Writes UTF-8 text as a string value.</summary>
    public void WriteUtf8Text(Utf8Text value)
    {
        var bytes = value.Span;
        if (bytes.IndexOfAny((byte)'"', (byte)'\\') < 0 && bytes.IndexOfAnyInRange((byte)0, (byte)0x1F) < 0)
        {
            WriteRaw("\""u8);
            WriteRaw(bytes);
            WriteRaw("\""u8);
            return;
        }

        WriteString(Encoding.UTF8.GetString(bytes));
    }

    /// <summary>Writes <c>true</c> or <c>false</c>.</summary>
    public void WriteBoolean(bool value) => WriteRaw(value ? "true"u8 : "false"u8);

    /// <summary>Writes an integer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteInt64(long value)
    {
        Reserve();
        Utf8Formatter.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
    }

    /// <summary>Writes an unsigned integer.</summary>
    public void WriteUInt64(ulong value)
    {
        Reserve();
        Utf8Formatter.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
    }

    /// <summary>Writes a double in its shortest round-trip form; NaN and infinities as the strings JSON tools use.</summary>
    public void WriteDouble(double value)
    {
        if (!double.IsFinite(value))
        {
            WriteRaw(double.IsNaN(value) ? "\"NaN\""u8 : value > 0 ? "\"Infinity\""u8 : "\"-Infinity\""u8);
            return;
        }

        Reserve();
        value.TryFormat(_span[_written..], out var bytes, default, System.Globalization.CultureInfo.InvariantCulture);
        _written += bytes;
    }

    /// <summary>Writes a float in its shortest round-trip form.</summary>
    public void WriteSingle(float value)
    {
        if (!float.IsFinite(value))
        {
            WriteDouble(value);
            return;
        }

        Reserve();
        value.TryFormat(_span[_written..], out var bytes, default, System.Globalization.CultureInfo.InvariantCulture);
        _written += bytes;
    }

    /// <summary>Writes a decimal.</summary>
    public void WriteDecimal(decimal value)
    {
        Reserve();
        Utf8Formatter.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
    }

    /// <summary>Writes an ISO 8601 (round-trip) date-time string.</summary>
    public void WriteDateTime(DateTime value)
    {
        Reserve();
        _span[_written++] = (byte)'"';
        Iso8601.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
        _span[_written++] = (byte)'"';
    }

    /// <summary>Writes an ISO 8601 (round-trip) date-time string with its offset.</summary>
    public void WriteDateTimeOffset(DateTimeOffset value)
    {
        Reserve();
        _span[_written++] = (byte)'"';
        Iso8601.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
        _span[_written++] = (byte)'"';
    }

    /// <summary>Writes a GUID string.</summary>
    public void WriteGuid(Guid value)
    {
        Reserve();
        _span[_written++] = (byte)'"';
        Utf8Formatter.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
        _span[_written++] = (byte)'"';
    }

    /// <summary>Writes a one-character string.</summary>
    public void WriteChar(char value) => WriteString([value]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Reserve()
    {
        if (_span.Length - _written < ValueReserve)
        {
            Grow(ValueReserve);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Grow(int needed)
    {
        _output.Advance(_written);
        _written = 0;
        _span = _output.GetSpan(Math.Max(needed, 256));
    }

    private static bool NeedsEscaping(ReadOnlySpan<char> value)
        => value.IndexOfAny('"', '\\') >= 0 || value.IndexOfAnyInRange('\0', '\u001F') >= 0;

    private static int WriteEscaped(ReadOnlySpan<char> value, Span<byte> destination)
    {
        var at = 0;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            switch (c)
            {
                case '"': destination[at++] = (byte)'\\'; destination[at++] = (byte)'"'; continue;
                case '\\': destination[at++] = (byte)'\\'; destination[at++] = (byte)'\\'; continue;
                case '\n': destination[at++] = (byte)'\\'; destination[at++] = (byte)'n'; continue;
                case '\r': destination[at++] = (byte)'\\'; destination[at++] = (byte)'r'; continue;
                case '\t': destination[at++] = (byte)'\\'; destination[at++] = (byte)'t'; continue;
                case '\b': destination[at++] = (byte)'\\'; destination[at++] = (byte)'b'; continue;
                case '\f': destination[at++] = (byte)'\\'; destination[at++] = (byte)'f'; continue;
            }

            if (c < 0x20)
            {
                destination[at++] = (byte)'\\';
                destination[at++] = (byte)'u';
                ((int)c).TryFormat(destination.Slice(at, 4), out _, "x4", System.Globalization.CultureInfo.InvariantCulture);
                at += 4;
                continue;
            }

            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                at += new Rune(c, value[++i]).EncodeToUtf8(destination[at..]);
                continue;
            }

            // A lone surrogate has no UTF-8 form: it becomes U+FFFD, as Encoding.UTF8 and the fast path do.
            at += (char.IsSurrogate(c) ? Rune.ReplacementChar : new Rune(c)).EncodeToUtf8(destination[at..]);
        }

        return at;
    }
}
