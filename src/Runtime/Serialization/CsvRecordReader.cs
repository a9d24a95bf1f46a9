using System.Buffers.Text;
using System.Runtime.CompilerServices;
using System.Text.Unicode;

namespace Compiled.Serialization;

/// <summary>
/// Reads the fields of one CSV record (RFC 4180: comma-separated, double quotes around fields that need them,
/// <c>""</c> for a quote inside one) for a generated decoder, field by field in declaration order. Every read returns
/// false on bad input with a message in <see cref="Error"/>; nothing throws.
/// </summary>
public ref struct CsvRecordReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly ReadOnlyMemory<byte> _memory;
    private int _position;
    private int _fieldStart;
    private int _fieldLength;
    private bool _quoted;
    private bool _escaped;
    private bool _ended;
    private int _fields;

    /// <summary>Starts reading <paramref name="input"/>, a record without its line break.</summary>
    public CsvRecordReader(ReadOnlyMemory<byte> input)
    {
        _memory = input;
        _data = input.Span;
        if (!_data.IsEmpty && _data[^1] == '\r')
        {
            _data = _data[..^1];
        }

        _position = 0;
        _fieldStart = 0;
        _fieldLength = 0;
        _quoted = false;
        _escaped = false;
        _ended = false;
        _fields = 0;
        Error = default;
    }

    /// <summary>What went wrong, once a read returned false.</summary>
    public DecodeError Error { get; private set; }

    /// <summary>Whether the current field is empty and unquoted: how CSV writes null.</summary>
    public readonly bool IsNull => !_quoted && _fieldLength == 0;

    /// <summary>The current field's raw bytes (quotes removed, <c>""</c> not yet resolved).</summary>
    private readonly ReadOnlySpan<byte> Raw => _data.Slice(_fieldStart, _fieldLength);

    /// <summary>Moves to the next field, named <paramref name="name"/> in messages.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool NextField(string name)
    {
        var position = _position;
        if (_ended || (position < _data.Length && _data[position] == '"'))
        {
            return NextFieldSlow(name); // quoted fields and errors: out of line, so this stays small enough to inline
        }

        _fields++;
        _quoted = false;
        _escaped = false;
        _fieldStart = position;
        var rest = _data[position..];
        var stop = FieldEnd(rest); // one pass finds the field's end and any stray quote
        if (stop < 0)
        {
            _fieldLength = rest.Length;
            _position = _data.Length;
            _ended = true;
            return true;
        }

        if (rest[stop] == '"')
        {
            return FailField(name, "a quote inside an unquoted field");
        }

        _fieldLength = stop;
        _position = position + stop + 1;
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool NextFieldSlow(string name)
    {
        if (_ended)
        {
            return Fail($"the record has {_fields} fields; '{name}' is missing");
        }

        _fields++;
        _quoted = true;
        _escaped = false;
        var i = _position + 1;
        while (true)
        {
            var next = _data[i..].IndexOf((byte)'"');
            if (next < 0)
            {
                return FailField(name, "the quoted field is not closed");
            }

            i += next;
            if (i + 1 < _data.Length && _data[i + 1] == '"')
            {
                _escaped = true;
                i += 2;
                continue;
            }

            break;
        }

        _fieldStart = _position + 1;
        _fieldLength = i - _fieldStart;
        _position = i + 1;
        if (_position == _data.Length)
        {
            _ended = true;
        }
        else if (_data[_position] == ',')
        {
            _position++;
        }
        else
        {
            return FailField(name, "unexpected characters after a closing quote");
        }

        return true;
    }

    /// <summary>The index of the first comma or quote; a plain loop, as fields are short (vector setup costs more than it saves).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int FieldEnd(ReadOnlySpan<byte> rest)
    {
        if (rest.Length > 32)
        {
            return rest.IndexOfAny((byte)',', (byte)'"');
        }

        for (var i = 0; i < rest.Length; i++)
        {
            var b = rest[i];
            if (b == ',' || b == '"')
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>After the last field: there must be no more.</summary>
    public bool End() => _ended || Fail($"the record has more than {_fields} fields");

    /// <summary>Reads the field as a string (null when empty and unquoted).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool ReadString(string name, out string? value)
    {
        value = null;
        if (IsNull)
        {
            return true;
        }

        return (_escaped ? TryDecodeEscaped(Raw, out value) : Utf8Strings.TryDecode(Raw, out value)) || FailField(name, "not valid UTF-8");
    }

    /// <summary>Decodes a field with <c>""</c> in it, resolved in a stack or pooled buffer (no garbage but the string).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool TryDecodeEscaped(ReadOnlySpan<byte> raw, out string? value)
    {
        byte[]? rented = null;
        var buffer = raw.Length <= 256 ? stackalloc byte[256] : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(raw.Length));
        var ok = Utf8Strings.TryDecode(buffer[..Unescape(raw, buffer)], out value);
        if (rented is not null)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }

        return ok;
    }

    /// <summary>Reads the field as UTF-8 text pointing into the input (copied only when it has <c>""</c>).</summary>
    public bool ReadUtf8Text(string name, out Utf8Text value)
    {
        var raw = Raw;
        if (!Utf8.IsValid(raw))
        {
            value = default;
            return Fail($"field '{name}': not valid UTF-8");
        }

        value = _escaped ? new Utf8Text(UnescapedArray()) : new Utf8Text(_memory.Slice(_fieldStart, _fieldLength));
        return true;
    }

    /// <summary>The field as memory, for a nested decoder (copied only when it has <c>""</c>).</summary>
    public readonly ReadOnlyMemory<byte> FieldMemory() => _escaped ? UnescapedArray() : _memory.Slice(_fieldStart, _fieldLength);

    /// <summary>Reads the field as <see cref="long"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool ReadInt64(string name, out long value) => Whole(FastNumbers.TryParseInt64(Raw, out value, out var used), used, name, "an integer");

    /// <summary>Reads the field as <see cref="int"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool ReadInt32(string name, out int value) => Whole(FastNumbers.TryParseInt32(Raw, out value, out var used), used, name, "an integer (32-bit)");

    /// <summary>Reads the field as <see cref="short"/>.</summary>
    public bool ReadInt16(string name, out short value) => Whole(Utf8Parser.TryParse(Raw, out value, out var used), used, name, "an integer (16-bit)");

    /// <summary>Reads the field as <see cref="sbyte"/>.</summary>
    public bool ReadSByte(string name, out sbyte value) => Whole(Utf8Parser.TryParse(Raw, out value, out var used), used, name, "an integer from -128 to 127");

    /// <summary>Reads the field as <see cref="ulong"/>.</summary>
    public bool ReadUInt64(string name, out ulong value) => Whole(Utf8Parser.TryParse(Raw, out value, out var used), used, name, "an unsigned integer");

    /// <summary>Reads the field as <see cref="uint"/>.</summary>
    public bool ReadUInt32(string name, out uint value) => Whole(Utf8Parser.TryParse(Raw, out value, out var used), used, name, "an unsigned integer (32-bit)");

    /// <summary>Reads the field as <see cref="ushort"/>.</summary>
    public bool ReadUInt16(string name, out ushort value) => Whole(Utf8Parser.TryParse(Raw, out value, out var used), used, name, "an unsigned integer (16-bit)");

    /// <summary>Reads the field as <see cref="byte"/>.</summary>
    public bool ReadByte(string name, out byte value) => Whole(Utf8Parser.TryParse(Raw, out value, out var used), used, name, "an integer from 0 to 255");

    /// <summary>Reads the field as <see cref="double"/> (also NaN, Infinity, -Infinity).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool ReadDouble(string name, out double value)
    {
        var raw = Raw;
        if (NamedFloat(raw, out value))
        {
            return true;
        }

        return Whole(FastNumbers.TryParseDouble(raw, out value, out var used), used, name, "a number") && InRange(name, double.IsFinite(value), value == 0, "a double");
    }

    /// <summary>Reads the field as <see cref="float"/> (parsed as a float: no double rounding).</summary>
    public bool ReadSingle(string name, out float value)
    {
        var raw = Raw;
        if (NamedFloat(raw, out var wide))
        {
            value = (float)wide;
            return true;
        }

        return Whole(Utf8Parser.TryParse(raw, out value, out var used), used, name, "a number") && InRange(name, float.IsFinite(value), value == 0, "a float");
    }

    /// <summary>Reads the field as <see cref="decimal"/>.</summary>
    public bool ReadDecimal(string name, out decimal value)
    {
        var raw = Raw;
        if (!Utf8Parser.TryParse(raw, out value, out var used) && !raw.IsEmpty && JsonNumbers.Scan(raw) == raw.Length)
        {
            return FailField(name, "the number is too large for a decimal");
        }

        return Whole(used == raw.Length && used > 0, used, name, "a decimal number") && InRange(name, finite: true, value == 0, "a decimal");
    }

    /// <summary>A number that was read must not have overflowed to Infinity or underflowed to 0 (its digits say it is not 0).</summary>
    private bool InRange(string name, bool finite, bool zero, string type)
    {
        var raw = Raw;
        if (!finite && JsonNumbers.HasDigit(raw))
        {
            return FailField(name, $"the number is too large for {type}");
        }

        return !zero || !JsonNumbers.HasNonZeroMantissa(raw) || FailField(name, $"the number is too small for {type} (it would be read as 0)");
    }

    /// <summary>Reads <c>true</c> or <c>false</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool ReadBoolean(string name, out bool value)
    {
        var raw = Raw;
        if (raw.SequenceEqual("true"u8) || raw.SequenceEqual("True"u8) || raw.SequenceEqual("TRUE"u8))
        {
            value = true;
            return true;
        }

        value = false;
        return raw.SequenceEqual("false"u8) || raw.SequenceEqual("False"u8) || raw.SequenceEqual("FALSE"u8) || FailField(name, "expected true or false");
    }

    /// <summary>Reads an ISO 8601 date-time.</summary>
    public bool ReadDateTime(string name, out DateTime value) => Iso8601.TryParseDateTime(Raw, out value) || Fail($"field '{name}': expected an ISO 8601 date-time");

    /// <summary>Reads an ISO 8601 date-time with offset.</summary>
    public bool ReadDateTimeOffset(string name, out DateTimeOffset value) => Iso8601.TryParseDateTimeOffset(Raw, out value) || Fail($"field '{name}': expected an ISO 8601 date-time");

    /// <summary>Reads a GUID.</summary>
    public bool ReadGuid(string name, out Guid value) => Whole(Utf8Parser.TryParse(Raw, out value, out var used), used, name, "a GUID");

    /// <summary>Reads a one-character field.</summary>
    public bool ReadChar(string name, out char value)
    {
        value = default;
        if (!ReadString(name, out var text))
        {
            return false;
        }

        if (text is not { Length: 1 })
        {
            return Fail($"field '{name}': expected one character");
        }

        value = text[0];
        return true;
    }

    /// <summary>The field's bytes with <c>""</c> resolved.</summary>
    public readonly ReadOnlySpan<byte> Unescaped()
    {
        var raw = Raw;
        if (!_escaped)
        {
            return raw;
        }

        var buffer = new byte[raw.Length];
        return buffer.AsSpan(0, Unescape(raw, buffer));
    }

    /// <summary>The field's bytes with <c>""</c> resolved, in an array of their length.</summary>
    private readonly byte[] UnescapedArray()
    {
        var raw = Raw;
        var buffer = new byte[raw.Length - (raw.Count((byte)'"') / 2)];
        Unescape(raw, buffer);
        return buffer;
    }

    /// <summary>Copies <paramref name="raw"/> into <paramref name="into"/> with each <c>""</c> as one quote; returns the length.</summary>
    private static int Unescape(ReadOnlySpan<byte> raw, Span<byte> into)
    {
        var length = 0;
        while (true)
        {
            var quote = raw.IndexOf((byte)'"');
            if (quote < 0)
            {
                raw.CopyTo(into[length..]);
                return length + raw.Length;
            }

            raw[..(quote + 1)].CopyTo(into[length..]);
            length += quote + 1;
            raw = raw[(quote + 2)..]; // past the second quote of the doubled pair
        }
    }

    /// <summary>Records a failure and returns false.</summary>
    public bool Fail(string message)
    {
        if (Error.Message is null)
        {
            Error = new DecodeError(message, _fieldStart);
        }

        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Whole(bool parsed, int used, string name, string what)
        => (parsed && used == _fieldLength) || FailField(name, "expected " + what);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool FailField(string name, string problem) => Fail($"field '{name}': {problem}");

    private static bool NamedFloat(ReadOnlySpan<byte> raw, out double value)
    {
        value = raw.SequenceEqual("NaN"u8) ? double.NaN
            : raw.SequenceEqual("Infinity"u8) ? double.PositiveInfinity
            : raw.SequenceEqual("-Infinity"u8) ? double.NegativeInfinity
            : 0;
        return value != 0 || double.IsNaN(value);
    }
}
