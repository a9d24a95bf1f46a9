using System.Buffers.Text;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

namespace Compiled.Serialization;

/// <summary>
/// Reads one JSON object — a JSON Lines record — for a generated decoder: objects, property names, values of the
/// types records hold, and skipping of unknown properties. Every read returns false on bad input and leaves a
/// message in <see cref="Error"/>; nothing throws. The generated decoder switches on property names, so no
/// dictionary, no reflection and no intermediate document exist.
/// </summary>
public ref struct JsonRecordReader
{
    /// <summary>How deep nested arrays and objects may go when skipped: deeper input is rejected, not recursed into.</summary>
    public const int MaxDepth = 64;

    private const string InvalidNumber = "not a valid JSON number (RFC 8259 allows no '+', no leading zeros, no '.5' or '5.', and no bare NaN or Infinity)";

    private readonly ReadOnlySpan<byte> _data;
    private readonly ReadOnlyMemory<byte> _memory;
    private readonly bool _lenientNumbers;
    private int _position;
    private bool _afterFirstProperty;

    /// <summary>Starts reading <paramref name="input"/>; numbers must follow RFC 8259.</summary>
    public JsonRecordReader(ReadOnlyMemory<byte> input)
        : this(input, lenientNumbers: false)
    {
    }

    /// <summary>
    /// Starts reading <paramref name="input"/>. With <paramref name="lenientNumbers"/>, numbers may also have a
    /// leading <c>+</c> or zeros, start or end with <c>.</c>, or be a bare <c>NaN</c>/<c>Infinity</c>
    /// (<see cref="RecordAttribute.LenientJsonNumbers"/>).
    /// </summary>
    public JsonRecordReader(ReadOnlyMemory<byte> input, bool lenientNumbers)
    {
        _memory = input;
        _data = input.Span;
        _lenientNumbers = lenientNumbers;
        _position = 0;
        _afterFirstProperty = false;
        Error = default;
    }

    /// <summary>What went wrong, once a read returned false.</summary>
    public DecodeError Error { get; private set; }

    /// <summary>The current position in the input.</summary>
    public readonly int Position => _position;

    /// <summary>Expects the start of an object.</summary>
    public bool BeginObject()
    {
        SkipWhitespace();
        if (_position < _data.Length && _data[_position] == '{')
        {
            _position++;
            _afterFirstProperty = false;
            return true;
        }

        return Fail(_position >= _data.Length ? "the record is empty" : "expected '{' at the start of a JSON object");
    }

    /// <summary>
    /// Moves to the next property of the current object and returns its name; returns false at the end of the object
    /// (check <see cref="HasError"/> to tell the end from an error). Names with escapes are unescaped.
    /// </summary>
    public bool NextProperty(out ReadOnlySpan<byte> name)
    {
        name = default;
        SkipWhitespace();
        if (_position >= _data.Length)
        {
            return Fail("the object is not closed (truncated record?)");
        }

        var next = _data[_position];
        if (next == '}')
        {
            _position++;
            return false;
        }

        if (_afterFirstProperty)
        {
            if (next != ',')
            {
                return Fail("expected ',' or '}' after a property");
            }

            _position++;
            SkipWhitespace();
        }

        if (_position >= _data.Length || _data[_position] != '"')
        {
            return Fail("expected a property name");
        }

        if (!ReadStringBytes(out name, out var escaped))
        {
            return false;
        }

        if (escaped ? !Unescape(name, out name) : !Utf8.IsValid(name))
        {
            return escaped ? false : Fail("a property name is not valid UTF-8");
        }

        SkipWhitespace();
        if (_position >= _data.Length || _data[_position] != ':')
        {
            return Fail("expected ':' after a property name");
        }

        _position++;
        _afterFirstProperty = true;
        return true;
    }

    /// <summary>Whether a read failed.</summary>
    public readonly bool HasError => Error.Message is not null;

    /// <summary>After the object: only whitespace may remain.</summary>
    public bool End()
    {
        if (HasError)
        {
            return false;
        }

        SkipWhitespace();
        return _position == _data.Length || Fail("unexpected content after the JSON object");
    }

    /// <summary>If the next value is <c>null</c>, consumes it and returns true.</summary>
    public bool TryReadNull()
    {
        SkipWhitespace();
        if (_data.Length - _position >= 4 && _data.Slice(_position, 4).SequenceEqual("null"u8))
        {
            _position += 4;
            return true;
        }

        return false;
    }

    /// <summary>Reads a string (null for <c>null</c>).</summary>
    public bool ReadString(out string? value)
    {
        value = null;
        if (TryReadNull())
        {
            return true;
        }

        if (!ExpectQuote("a string") || !ReadStringBytes(out var bytes, out var escaped))
        {
            return false;
        }

        if (escaped)
        {
            return UnescapeToString(bytes, out value);
        }

        return Utf8Strings.TryDecode(bytes, out value) || Fail("the string is not valid UTF-8");
    }

    /// <summary>Reads a string as UTF-8 bytes pointing into the input (copied only when it has escapes).</summary>
    public bool ReadUtf8Text(out Utf8Text value)
    {
        value = default;
        if (!ExpectQuote("a string"))
        {
            return false;
        }

        var start = _position + 1;
        if (!ReadStringBytes(out var bytes, out var escaped))
        {
            return false;
        }

        if (escaped)
        {
            if (!Unescape(bytes, out var unescaped))
            {
                return false;
            }

            value = new Utf8Text(unescaped.ToArray());
            return true;
        }

        if (!Utf8.IsValid(bytes))
        {
            return Fail("the string is not valid UTF-8");
        }

        value = new Utf8Text(_memory.Slice(start, bytes.Length));
        return true;
    }

    /// <summary>Reads a JSON string's raw content (no quotes, escapes not resolved) for parsing by a typed reader.</summary>
    public bool ReadStringToken(out ReadOnlySpan<byte> content, string expected)
    {
        content = default;
        if (!ExpectQuote(expected) || !ReadStringBytes(out content, out var escaped))
        {
            return false;
        }

        return !escaped || Unescape(content, out content);
    }

    /// <summary>Reads <c>true</c> or <c>false</c>.</summary>
    public bool ReadBoolean(out bool value)
    {
        SkipWhitespace();
        var rest = _data[_position..];
        if (rest.StartsWith("true"u8))
        {
            _position += 4;
            value = true;
            return EndOfValue("a boolean");
        }

        if (rest.StartsWith("false"u8))
        {
            _position += 5;
            value = false;
            return EndOfValue("a boolean");
        }

        value = false;
        return Fail("expected true or false");
    }

    /// <summary>Reads a number as <see cref="int"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool ReadInt32(out int value)
    {
        SkipWhitespace();
        return Integer(FastNumbers.TryParseInt32(_data[_position..], out value, out var consumed), consumed, "expected an integer (32-bit)");
    }

    /// <summary>Reads a number as <see cref="long"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool ReadInt64(out long value)
    {
        SkipWhitespace();
        return Integer(FastNumbers.TryParseInt64(_data[_position..], out value, out var consumed), consumed, "expected an integer (64-bit)");
    }

    /// <summary>Reads a number as <see cref="uint"/>.</summary>
    public bool ReadUInt32(out uint value)
    {
        SkipWhitespace();
        return Integer(Utf8Parser.TryParse(_data[_position..], out value, out var consumed), consumed, "expected an unsigned integer (32-bit)");
    }

    /// <summary>Reads a number as <see cref="ulong"/>.</summary>
    public bool ReadUInt64(out ulong value)
    {
        SkipWhitespace();
        return Integer(Utf8Parser.TryParse(_data[_position..], out value, out var consumed), consumed, "expected an unsigned integer (64-bit)");
    }

    /// <summary>Reads a number as <see cref="short"/>.</summary>
    public bool ReadInt16(out short value)
    {
        SkipWhitespace();
        return Integer(Utf8Parser.TryParse(_data[_position..], out value, out var consumed), consumed, "expected an integer (16-bit)");
    }

    /// <summary>Reads a number as <see cref="ushort"/>.</summary>
    public bool ReadUInt16(out ushort value)
    {
        SkipWhitespace();
        return Integer(Utf8Parser.TryParse(_data[_position..], out value, out var consumed), consumed, "expected an unsigned integer (16-bit)");
    }

    /// <summary>Reads a number as <see cref="byte"/>.</summary>
    public bool ReadByte(out byte value)
    {
        SkipWhitespace();
        return Integer(Utf8Parser.TryParse(_data[_position..], out value, out var consumed), consumed, "expected an integer from 0 to 255");
    }

    /// <summary>Reads a number as <see cref="sbyte"/>.</summary>
    public bool ReadSByte(out sbyte value)
    {
        SkipWhitespace();
        return Integer(Utf8Parser.TryParse(_data[_position..], out value, out var consumed), consumed, "expected an integer from -128 to 127");
    }

    /// <summary>Reads a number (or <c>"NaN"</c>, <c>"Infinity"</c>, <c>"-Infinity"</c>) as <see cref="double"/>.</summary>
    public bool ReadDouble(out double value)
    {
        SkipWhitespace();
        if (_position < _data.Length && _data[_position] == '"')
        {
            return ReadNamedFloat(out value);
        }

        var parsed = FastNumbers.TryParseDouble(_data[_position..], out value, out var consumed);
        return Floating(parsed, consumed, double.IsFinite(value), value == 0, "a double");
    }

    /// <summary>Reads a number as <see cref="float"/> (parsed as a float: no double rounding).</summary>
    public bool ReadSingle(out float value)
    {
        SkipWhitespace();
        if (_position < _data.Length && _data[_position] == '"')
        {
            var named = ReadNamedFloat(out var wide);
            value = (float)wide;
            return named;
        }

        var parsed = Utf8Parser.TryParse(_data[_position..], out value, out var consumed);
        return Floating(parsed, consumed, float.IsFinite(value), value == 0, "a float");
    }

    /// <summary>Reads a number as <see cref="decimal"/>.</summary>
    public bool ReadDecimal(out decimal value)
    {
        SkipWhitespace();
        var rest = _data[_position..];
        if (!Utf8Parser.TryParse(rest, out value, out var consumed))
        {
            var length = JsonNumbers.Scan(rest);
            return Fail(length > 0 && JsonNumbers.EndsValue(rest, length) ? "the number is too large for a decimal" : "expected a decimal number");
        }

        return Floating(true, consumed, finite: true, value == 0, "a decimal");
    }

    /// <summary>Reads an ISO 8601 string as <see cref="DateTime"/>.</summary>
    public bool ReadDateTime(out DateTime value)
    {
        value = default;
        return ReadStringToken(out var text, "an ISO 8601 date-time string") && (Iso8601.TryParseDateTime(text, out value) || Fail("expected an ISO 8601 date-time"));
    }

    /// <summary>Reads an ISO 8601 string as <see cref="DateTimeOffset"/>.</summary>
    public bool ReadDateTimeOffset(out DateTimeOffset value)
    {
        value = default;
        return ReadStringToken(out var text, "an ISO 8601 date-time string") && (Iso8601.TryParseDateTimeOffset(text, out value) || Fail("expected an ISO 8601 date-time"));
    }

    /// <summary>Reads a GUID string.</summary>
    public bool ReadGuid(out Guid value)
    {
        value = default;
        return ReadStringToken(out var text, "a GUID string") && ((Utf8Parser.TryParse(text, out value, out var consumed) && consumed == text.Length) || Fail("expected a GUID"));
    }

    /// <summary>Reads a one-character string as <see cref="char"/>.</summary>
    public bool ReadChar(out char value)
    {
        value = default;
        if (!ReadString(out var text))
        {
            return false;
        }

        if (text is not { Length: 1 })
        {
            return Fail("expected a one-character string");
        }

        value = text[0];
        return true;
    }

    /// <summary>
    /// Skips any value (string, number, literal, object, array), checking it as strictly as a value that is read:
    /// structure, string escapes, UTF-8 and the number grammar — an unknown property is no place to hide bad JSON.
    /// </summary>
    public bool Skip()
    {
        ulong objects = 0; // bit d: the container at depth d is an object (MaxDepth is 64)
        var depth = 0;
        while (true)
        {
            // A value starts here.
            SkipWhitespace();
            if (_position >= _data.Length)
            {
                return Fail("the value is truncated");
            }

            var b = _data[_position];
            if (b is (byte)'{' or (byte)'[')
            {
                if (depth >= MaxDepth)
                {
                    return Fail($"values nest deeper than {MaxDepth} levels");
                }

                var isObject = b == '{';
                objects = isObject ? objects | (1UL << depth) : objects & ~(1UL << depth);
                depth++;
                _position++;
                SkipWhitespace();
                if (_position < _data.Length && _data[_position] == (isObject ? '}' : ']'))
                {
                    _position++;
                    depth--;
                }
                else
                {
                    if (isObject && !SkipPropertyName())
                    {
                        return false;
                    }

                    continue; // the container's first value
                }
            }
            else if (b == '"')
            {
                if (!SkipString())
                {
                    return false;
                }
            }
            else if (!SkipScalar())
            {
                return false;
            }

            // After a value: close containers until one goes on with a comma.
            while (true)
            {
                if (depth == 0)
                {
                    return true;
                }

                SkipWhitespace();
                if (_position >= _data.Length)
                {
                    return Fail("the value is truncated");
                }

                var inObject = (objects & (1UL << (depth - 1))) != 0;
                var next = _data[_position];
                if (next == ',')
                {
                    _position++;
                    if (inObject && !SkipPropertyName())
                    {
                        return false;
                    }

                    break;
                }

                if (next != (inObject ? '}' : ']'))
                {
                    return Fail(inObject ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array");
                }

                _position++;
                depth--;
            }
        }
    }

    private bool SkipPropertyName()
    {
        SkipWhitespace();
        if (_position >= _data.Length || _data[_position] != '"')
        {
            return Fail("expected a property name");
        }

        if (!SkipString())
        {
            return false;
        }

        SkipWhitespace();
        if (_position >= _data.Length || _data[_position] != ':')
        {
            return Fail("expected ':' after a property name");
        }

        _position++;
        return true;
    }

    private bool SkipString()
    {
        if (!ReadStringBytes(out var content, out var escaped))
        {
            return false;
        }

        if (escaped)
        {
            if (!Unescape(content, out var unescaped))
            {
                return false;
            }

            content = unescaped;
        }

        return Utf8.IsValid(content) || Fail("a string is not valid UTF-8");
    }

    /// <summary>Records a failure of the current field, naming it, and returns false.</summary>
    public bool FailField(string field, string problem) => Fail($"field '{field}': {problem}");

    /// <summary>Records a failure with <paramref name="message"/> at the current position and returns false.</summary>
    public bool Fail(string message)
    {
        if (!HasError)
        {
            Error = new DecodeError(message, _position);
        }

        return false;
    }

    /// <summary>
    /// Prefixes the pending error with the field it happened in. A value that failed because it is <c>null</c> (a field
    /// that cannot hold one: a number, a boolean, an enum, a nested object) says so, as a non-nullable string's does,
    /// rather than what the field expected instead.
    /// </summary>
    public void InField(string field)
    {
        if (HasError && !Error.Message.StartsWith("field '", StringComparison.Ordinal))
        {
            Error = Error with { Message = $"field '{field}': {(IsNullAt(Error.Offset) ? "null is not allowed" : Error.Message)}" };
        }
    }

    private bool IsNullAt(int offset)
    {
        var rest = (uint)offset <= (uint)_data.Length ? _data[offset..].TrimStart(" \t\r\n"u8) : default;
        return rest.StartsWith("null"u8) && (rest.Length == 4 || rest[4] is (byte)',' or (byte)'}' or (byte)']' or (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n');
    }

    private bool ReadNamedFloat(out double value)
    {
        value = 0;
        if (!ReadStringToken(out var text, "a number"))
        {
            return false;
        }

        if (text.SequenceEqual("NaN"u8))
        {
            value = double.NaN;
        }
        else if (text.SequenceEqual("Infinity"u8))
        {
            value = double.PositiveInfinity;
        }
        else if (text.SequenceEqual("-Infinity"u8))
        {
            value = double.NegativeInfinity;
        }
        else
        {
            return Fail("expected a number");
        }

        return true;
    }

    private bool SkipScalar()
    {
        var start = _position;
        while (_position < _data.Length)
        {
            var b = _data[_position];
            if (b is (byte)',' or (byte)'}' or (byte)']' or (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or (byte)':')
            {
                break;
            }

            _position++;
        }

        var token = _data[start.._position];
        if (token.SequenceEqual("true"u8) || token.SequenceEqual("false"u8) || token.SequenceEqual("null"u8))
        {
            return true;
        }

        if (_lenientNumbers)
        {
            return (Utf8Parser.TryParse(token, out double _, out var consumed) && consumed == token.Length) || Fail("expected a JSON value");
        }

        return (!token.IsEmpty && JsonNumbers.Scan(token) == token.Length) || Fail(token.IsEmpty || token[0] is (byte)'-' or (>= (byte)'0' and <= (byte)'9') or (byte)'+' or (byte)'.' ? "a number is " + InvalidNumber : "expected a JSON value");
    }

    /// <summary>After an integer was parsed (or not) at the current position: the grammar, then the end of the value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Integer(bool parsed, int consumed, string expected)
    {
        if (parsed && (_lenientNumbers || JsonNumbers.IsPlainInteger(_data.Slice(_position, consumed))))
        {
            return Advance(consumed, "an integer");
        }

        return parsed ? Fail(expected + ": " + InvalidNumber) : Fail(expected);
    }

    /// <summary>
    /// After a floating-point number was parsed (or not) at the current position: the grammar, its range — a finite
    /// number too large for the type, or one with non-zero digits that rounds to 0, is an error — then the end of the value.
    /// </summary>
    private bool Floating(bool parsed, int consumed, bool finite, bool zero, string type)
    {
        if (!parsed)
        {
            return Fail("expected a number");
        }

        var token = _data.Slice(_position, consumed);
        var grammar = JsonNumbers.Scan(token) == token.Length;
        if (!grammar && !_lenientNumbers)
        {
            return Fail("the value is " + InvalidNumber);
        }

        if (!finite && JsonNumbers.HasDigit(token))
        {
            return Fail($"the number is too large for {type}");
        }

        if (zero && JsonNumbers.HasNonZeroMantissa(token))
        {
            return Fail($"the number is too small for {type} (it would be read as 0)");
        }

        return Advance(consumed, "a number");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Advance(int consumed, string what)
    {
        _position += consumed;
        return EndOfValue(what);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool EndOfValue(string what)
    {
        if (_position >= _data.Length)
        {
            return true;
        }

        var next = _data[_position];
        return next is (byte)',' or (byte)'}' or (byte)']' or (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' || Fail($"expected {what}");
    }

    private bool ExpectQuote(string what)
    {
        SkipWhitespace();
        return (_position < _data.Length && _data[_position] == '"') || Fail($"expected {what}");
    }

    /// <summary>At an opening quote: reads to the closing quote; the content is returned raw.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ReadStringBytes(out ReadOnlySpan<byte> content, out bool escaped)
    {
        var start = _position + 1;
        var rest = _data[start..];
        var end = rest.IndexOfAny((byte)'"', (byte)'\\');
        if (end >= 0 && rest[end] == '"')
        {
            content = rest[..end];
            escaped = false;
            if (content.IndexOfAnyInRange((byte)0, (byte)0x1F) >= 0)
            {
                return Fail("a string contains a raw control character");
            }

            _position = start + end + 1;
            return true;
        }

        return ReadEscapedStringBytes(start, out content, out escaped);
    }

    private bool ReadEscapedStringBytes(int start, out ReadOnlySpan<byte> content, out bool escaped)
    {
        escaped = true;
        var i = start;
        while (i < _data.Length)
        {
            var b = _data[i];
            if (b == '\\')
            {
                i += 2;
                continue;
            }

            if (b == '"')
            {
                content = _data[start..i];
                if (content.IndexOfAnyInRange((byte)0, (byte)0x1F) >= 0)
                {
                    return Fail("a string contains a raw control character");
                }

                _position = i + 1;
                return true;
            }

            i++;
        }

        content = default;
        return Fail("a string is not closed (truncated record?)");
    }

    private bool UnescapeToString(ReadOnlySpan<byte> raw, out string? value)
    {
        value = null;
        if (!Unescape(raw, out var bytes))
        {
            return false;
        }

        if (!Utf8.IsValid(bytes))
        {
            return Fail("the string is not valid UTF-8");
        }

        value = Encoding.UTF8.GetString(bytes);
        return true;
    }

    /// <summary>Resolves escapes into a new buffer (strings with escapes are the slow path).</summary>
    private bool Unescape(scoped ReadOnlySpan<byte> raw, out ReadOnlySpan<byte> result)
    {
        var buffer = new byte[raw.Length];
        var length = 0;
        for (var i = 0; i < raw.Length; i++)
        {
            var b = raw[i];
            if (b != '\\')
            {
                buffer[length++] = b;
                continue;
            }

            if (++i >= raw.Length)
            {
                result = default;
                return Fail("a string ends in the middle of an escape");
            }

            switch (raw[i])
            {
                case (byte)'"': buffer[length++] = (byte)'"'; break;
                case (byte)'\\': buffer[length++] = (byte)'\\'; break;
                case (byte)'/': buffer[length++] = (byte)'/'; break;
                case (byte)'b': buffer[length++] = (byte)'\b'; break;
                case (byte)'f': buffer[length++] = (byte)'\f'; break;
                case (byte)'n': buffer[length++] = (byte)'\n'; break;
                case (byte)'r': buffer[length++] = (byte)'\r'; break;
                case (byte)'t': buffer[length++] = (byte)'\t'; break;
                case (byte)'u':
                    if (!ReadCodePoint(raw, ref i, out var rune))
                    {
                        result = default;
                        return false;
                    }

                    length += rune.EncodeToUtf8(buffer.AsSpan(length));
                    break;
                default:
                    result = default;
                    return Fail("a string has an invalid escape");
            }
        }

        result = buffer.AsSpan(0, length);
        return true;
    }

    /// <summary>At the 'u' of a \uXXXX escape: reads it, and its low surrogate when it is a high one.</summary>
    private bool ReadCodePoint(scoped ReadOnlySpan<byte> raw, ref int i, out Rune rune)
    {
        rune = default;
        if (!Hex4(raw, i + 1, out var unit))
        {
            return Fail("a \\u escape needs four hex digits");
        }

        i += 4;
        if (char.IsHighSurrogate((char)unit))
        {
            if (i + 6 < raw.Length + 0 && raw[i + 1] == '\\' && raw[i + 2] == 'u' && Hex4(raw, i + 3, out var low) && char.IsLowSurrogate((char)low))
            {
                i += 6;
                rune = new Rune((char)unit, (char)low);
                return true;
            }

            return Fail("a string has an unpaired surrogate escape");
        }

        if (char.IsLowSurrogate((char)unit))
        {
            return Fail("a string has an unpaired surrogate escape");
        }

        rune = new Rune(unit);
        return true;
    }

    private static bool Hex4(ReadOnlySpan<byte> raw, int start, out int value)
    {
        value = 0;
        if (start + 4 > raw.Length)
        {
            return false;
        }

        for (var k = start; k < start + 4; k++)
        {
            var c = raw[k];
            int digit = c switch
            {
                >= (byte)'0' and <= (byte)'9' => c - '0',
                >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
                >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
                _ => -1,
            };
            if (digit < 0)
            {
                return false;
            }

            value = (value << 4) | digit;
        }

        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SkipWhitespace()
    {
        while (_position < _data.Length)
        {
            var b = _data[_position];
            if (b != ' ' && b != '\t' && b != '\r' && b != '\n')
            {
                return;
            }

            _position++;
        }
    }
}

/// <summary>The number grammar of RFC 8259, and what the codecs check of a number's range.</summary>
internal static class JsonNumbers
{
    /// <summary>The length of the JSON number at the start of <paramref name="text"/>: <c>-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?</c>, or 0.</summary>
    public static int Scan(ReadOnlySpan<byte> text)
    {
        var i = 0;
        if (i < text.Length && text[i] == '-')
        {
            i++;
        }

        if (i >= text.Length || !IsDigit(text[i]))
        {
            return 0;
        }

        if (text[i] == '0')
        {
            i++;
        }
        else
        {
            while (i < text.Length && IsDigit(text[i]))
            {
                i++;
            }
        }

        if (i < text.Length && text[i] == '.')
        {
            var fraction = ++i;
            while (i < text.Length && IsDigit(text[i]))
            {
                i++;
            }

            if (i == fraction)
            {
                return 0;
            }
        }

        if (i < text.Length && (text[i] | 0x20) == 'e')
        {
            i++;
            if (i < text.Length && text[i] is (byte)'+' or (byte)'-')
            {
                i++;
            }

            var exponent = i;
            while (i < text.Length && IsDigit(text[i]))
            {
                i++;
            }

            if (i == exponent)
            {
                return 0;
            }
        }

        return i;
    }

    /// <summary>Whether an integer token (as a parser consumed it) has neither a sign other than '-' nor a leading zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsPlainInteger(ReadOnlySpan<byte> token)
    {
        var start = !token.IsEmpty && token[0] == '-' ? 1 : 0;
        return token.Length > start && IsDigit(token[start]) && (token[start] != '0' || token.Length == start + 1);
    }

    /// <summary>Whether the value ends after <paramref name="length"/> bytes (a delimiter or the end follows).</summary>
    public static bool EndsValue(ReadOnlySpan<byte> text, int length)
        => length >= text.Length || text[length] is (byte)',' or (byte)'}' or (byte)']' or (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    /// <summary>Whether the token has a digit (a number, not a named literal such as NaN).</summary>
    public static bool HasDigit(ReadOnlySpan<byte> token) => token.IndexOfAnyInRange((byte)'0', (byte)'9') >= 0;

    /// <summary>Whether a digit before the exponent is not zero: the number is not 0, whatever it was read as.</summary>
    public static bool HasNonZeroMantissa(ReadOnlySpan<byte> token)
    {
        var exponent = token.IndexOfAny((byte)'e', (byte)'E');
        return (exponent < 0 ? token : token[..exponent]).IndexOfAnyInRange((byte)'1', (byte)'9') >= 0;
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;
}
