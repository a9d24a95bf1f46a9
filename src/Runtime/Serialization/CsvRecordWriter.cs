using System.Buffers;
using System.Buffers.Text;
using System.Runtime.CompilerServices;
using System.Text.Unicode;

namespace Compiled.Serialization;

/// <summary>
/// Writes one CSV record (RFC 4180) for a generated encoder. A field is quoted when it contains a comma, a quote, a
/// line break or surrounding spaces; null is an empty field and the empty string is <c>""</c>, so the two stay
/// distinct. Numbers and dates use the invariant culture.
/// </summary>
public ref struct CsvRecordWriter
{
    private const int ValueReserve = 64;

    private readonly IBufferWriter<byte> _output;
    private Span<byte> _span;
    private int _written;
    private bool _first;

    /// <summary>Writes to <paramref name="output"/>; call <see cref="Flush"/> when done.</summary>
    public CsvRecordWriter(IBufferWriter<byte> output)
    {
        _output = output;
        _span = output.GetSpan(256);
        _written = 0;
        _first = true;
    }

    /// <summary>Commits what was written.</summary>
    public void Flush()
    {
        _output.Advance(_written);
        _written = 0;
        _span = default;
    }

    /// <summary>Writes an empty (null) field.</summary>
    public void WriteNull() => Separator();

    /// <summary>Writes a string field.</summary>
    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteNull();
            return;
        }

        var worst = (value.Length * 6) + 3;
        Separator();
        Ensure(worst);
        if (value.Length > 0 && !NeedsQuotes(value.AsSpan()))
        {
            Utf8.FromUtf16(value, _span[_written..], out _, out var bytes, replaceInvalidSequences: true);
            _written += bytes;
            return;
        }

        _span[_written++] = (byte)'"';
        foreach (var rune in value.EnumerateRunes())
        {
            if (rune.Value == '"')
            {
                _span[_written++] = (byte)'"';
            }

            _written += rune.EncodeToUtf8(_span[_written..]);
        }

        _span[_written++] = (byte)'"';
    }

    /// <summary>Writes UTF-8 text as a field.</summary>
    public void WriteUtf8Text(Utf8Text value) => WriteUtf8Field(value.Span);

    /// <summary>Writes UTF-8 bytes as a field, quoting them when needed (used for nested JSON values).</summary>
    public void WriteUtf8Field(ReadOnlySpan<byte> value)
    {
        Separator();
        Ensure((value.Length * 2) + 3);
        if (value.Length > 0 && value.IndexOfAny("\",\r\n"u8) < 0 && value[0] != ' ' && value[^1] != ' ')
        {
            value.CopyTo(_span[_written..]);
            _written += value.Length;
            return;
        }

        _span[_written++] = (byte)'"';
        foreach (var b in value)
        {
            if (b == '"')
            {
                _span[_written++] = (byte)'"';
            }

            _span[_written++] = b;
        }

        _span[_written++] = (byte)'"';
    }

    /// <summary>Writes an integer field.</summary>
    public void WriteInt64(long value)
    {
        Separator();
        Ensure(ValueReserve);
        Utf8Formatter.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
    }

    /// <summary>Writes an unsigned integer field.</summary>
    public void WriteUInt64(ulong value)
    {
        Separator();
        Ensure(ValueReserve);
        Utf8Formatter.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
    }

    /// <summary>Writes a double field in its shortest round-trip form.</summary>
    public void WriteDouble(double value)
    {
        Separator();
        Ensure(ValueReserve);
        value.TryFormat(_span[_written..], out var bytes, default, System.Globalization.CultureInfo.InvariantCulture);
        _written += bytes;
    }

    /// <summary>Writes a float field.</summary>
    public void WriteSingle(float value)
    {
        Separator();
        Ensure(ValueReserve);
        value.TryFormat(_span[_written..], out var bytes, default, System.Globalization.CultureInfo.InvariantCulture);
        _written += bytes;
    }

    /// <summary>Writes a decimal field.</summary>
    public void WriteDecimal(decimal value)
    {
        Separator();
        Ensure(ValueReserve);
        Utf8Formatter.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
    }

    /// <summary>Writes <c>true</c> or <c>false</c>.</summary>
    public void WriteBoolean(bool value)
    {
        Separator();
        Raw(value ? "true"u8 : "false"u8);
    }

    /// <summary>Writes an ISO 8601 date-time field.</summary>
    public void WriteDateTime(DateTime value)
    {
        Separator();
        Ensure(ValueReserve);
        Iso8601.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
    }

    /// <summary>Writes an ISO 8601 date-time field with its offset.</summary>
    public void WriteDateTimeOffset(DateTimeOffset value)
    {
        Separator();
        Ensure(ValueReserve);
        Iso8601.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
    }

    /// <summary>Writes a GUID field.</summary>
    public void WriteGuid(Guid value)
    {
        Separator();
        Ensure(ValueReserve);
        Utf8Formatter.TryFormat(value, _span[_written..], out var bytes);
        _written += bytes;
    }

    /// <summary>Writes a one-character field.</summary>
    public void WriteChar(char value) => WriteString(value.ToString());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Separator()
    {
        if (_first)
        {
            _first = false;
            return;
        }

        Raw(","u8);
    }

    private void Raw(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_span[_written..]);
        _written += bytes.Length;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Ensure(int needed)
    {
        if (_span.Length - _written < needed)
        {
            Grow(needed);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Grow(int needed)
    {
        _output.Advance(_written);
        _written = 0;
        _span = _output.GetSpan(Math.Max(needed, 256));
    }

    private static bool NeedsQuotes(ReadOnlySpan<char> value)
        => value.IndexOfAny("\",\r\n") >= 0 || value[0] == ' ' || value[^1] == ' ';
}
