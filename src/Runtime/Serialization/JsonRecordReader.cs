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

    private readonly ReadOnlySpan<byte> _data;
    private readonly ReadOnlyMemory<byte> _memory;
    private int _position;
    private bool _afterFirstProperty;

    /// <summary>Starts reading <paramref name="input"/>.</summary>
    public JsonRecordReader(ReadOnlyMemory<byte> input)
    {
        _memory = input;
        _data = input.Span;
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

        if (escaped && !Unescape(name, out name))
        {
            return false;
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
        return FastNumbers.TryParseInt32(_data[_position..], out value, out var consumed) ? Advance(consumed, "an integer") : Fail("expected an integer (32-bit)");
    }

    /// <summary>Reads a number as <see cref="long"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool ReadInt64(out long value)
    {
        SkipWhitespace();
        return FastNumbers.TryParseInt64(_data[_position..], out value, out var consumed) ? Advance(consumed, "an integer") : Fail("expected an integer (64-bit)");
    }

    /// <summary>Reads a number as <see cref="uint"/>.</summary>
    public bool ReadUInt32(out uint value)
    {
        SkipWhitespace();
        return Utf8Parser.TryParse(_data[_position..], out value, out var consumed) ? Advance(consumed, "an integer") : Fail("expected an unsigned integer (32-bit)");
    }

    /// <summary>Reads a number as <see cref="ulong"/>.</summary>
    public bool ReadUInt64(out ulong value)
    {
        SkipWhitespace();
        return Utf8Parser.TryParse(_data[_position..], out value, out var consumed) ? Advance(consumed, "an integer") : Fail("expected an unsigned integer (64-bit)");
    }

    /// <summary>Reads a number as <see cref="short"/>.</summary>
    public bool ReadInt16(out short value)
    {
        SkipWhitespace();
        return Utf8Parser.TryParse(_data[_position..], out value, out var consumed) ? Advance(consumed, "an integer") : Fail("expected an integer (16-bit)");
    }

    /// <summary>Reads a number as <see cref="ushort"/>.</summary>
    public bool ReadUInt16(out ushort value)
    {
        SkipWhitespace();
        return Utf8Parser.TryParse(_data[_position..], out value, out var consumed) ? Advance(consumed, "an integer") : Fail("expected an unsigned integer (16-bit)");
    }

    /// <summary>Reads a number as <see cref="byte"/>.</summary>
    public bool ReadByte(out byte value)
    {
        SkipWhitespace();
        return Utf8Parser.TryParse(_data[_position..], out value, out var consumed) ? Advance(consumed, "an integer") : Fail("expected an integer from 0 to 255");
    }

    /// <summary>Reads a number as <see cref="sbyte"/>.</summary>
    public bool ReadSByte(out sbyte value)
    {
        SkipWhitespace();
        return Utf8Parser.TryParse(_data[_position..], out value, out var consumed) ? Advance(consumed, "an integer") : Fail("expected an integer from -128 to 127");
    }

    /// <summary>Reads a number (or <c>"NaN"</c>, <c>"Infinity"</c>, <c>"-Infinity"</c>) as <see cref="double"/>.</summary>
    public bool ReadDouble(out double value)
    {
        SkipWhitespace();
        if (_position < _data.Length && _data[_position] == '"')
        {
            return ReadNamedFloat(out value);
        }

        return FastNumbers.TryParseDouble(_data[_position..], out value, out var consumed) ? Advance(consumed, "a number") : Fail("expected a number");
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

        return Utf8Parser.TryParse(_data[_position..], out value, out var consumed) ? Advance(consumed, "a number") : Fail("expected a number");
    }

    /// <summary>Reads a number as <see cref="decimal"/>.</summary>
    public bool ReadDecimal(out decimal value)
    {
        SkipWhitespace();
        return Utf8Parser.TryParse(_data[_position..], out value, out var consumed) ? Advance(consumed, "a number") : Fail("expected a decimal number");
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

    /// <summary>Skips any value (string, number, literal, object, array).</summary>
    public bool Skip()
    {
        SkipWhitespace();
        var depth = 0;
        while (true)
        {
            if (_position >= _data.Length)
            {
                return Fail("the value is truncated");
            }

            switch (_data[_position])
            {
                case (byte)'"':
                    if (!ReadStringBytes(out _, out _))
                    {
                        return false;
                    }

                    break;
                case (byte)'{' or (byte)'[':
                    if (++depth > MaxDepth)
                    {
                        return Fail($"values nest deeper than {MaxDepth} levels");
                    }

                    _position++;
                    break;
                case (byte)'}' or (byte)']':
                    if (depth == 0)
                    {
                        return Fail("unexpected end of a container");
                    }

                    depth--;
                    _position++;
                    break;
                case (byte)',' or (byte)':' when depth > 0:
                    _position++;
                    break;
                case (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n':
                    _position++;
                    continue;
                default:
                    if (!SkipScalar())
                    {
                        return false;
                    }

                    break;
            }

            if (depth == 0)
            {
                return true;
            }
        }
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

    /// <summary>Prefixes the pending error with the field it happened in.</summary>
    public void InField(string field)
    {
        if (HasError && !Error.Message.StartsWith("field '", StringComparison.Ordinal))
        {
            Error = Error with { Message = $"field '{field}': {Error.Message}" };
        }
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

        return (Utf8Parser.TryParse(token, out double _, out var consumed) && consumed == token.Length) || Fail("expected a JSON value");
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
