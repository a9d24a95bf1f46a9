using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

namespace Compiled.Serialization;

/// <summary>
/// The compact binary format of records, for exchanges, state snapshots and Kafka: a version byte, then the fields in
/// declaration order — fixed-size little-endian numbers, strings as a varint byte length and UTF-8 (length + 1 for
/// nullable strings, 0 meaning null), a presence byte before nullable values, nested records inline. In streams each
/// record is preceded by its length (4 bytes, little-endian).
/// </summary>
public static class BinaryRecordFormat
{
    /// <summary>The format version written at the start of each record.</summary>
    public const byte Version = 1;
}

/// <summary>Writes one record in <see cref="BinaryRecordFormat"/> for a generated encoder.</summary>
public ref struct BinaryRecordWriter
{
    private readonly IBufferWriter<byte> _output;
    private Span<byte> _span;
    private int _written;

    /// <summary>Writes to <paramref name="output"/>, starting with the version byte; call <see cref="Flush"/> when done.</summary>
    public BinaryRecordWriter(IBufferWriter<byte> output)
    {
        _output = output;
        _span = output.GetSpan(256);
        _written = 0;
        _span[_written++] = BinaryRecordFormat.Version;
    }

    /// <summary>Commits what was written.</summary>
    public void Flush()
    {
        _output.Advance(_written);
        _written = 0;
        _span = default;
    }

    /// <summary>Writes a presence byte (for a nullable value): 1 when a value follows.</summary>
    public void WritePresence(bool present) => WriteByte(present ? (byte)1 : (byte)0);

    /// <summary>Writes a byte.</summary>
    public void WriteByte(byte value)
    {
        Ensure(1);
        _span[_written++] = value;
    }

    /// <summary>Writes a boolean.</summary>
    public void WriteBoolean(bool value) => WriteByte(value ? (byte)1 : (byte)0);

    /// <summary>Writes a 16-bit integer.</summary>
    public void WriteInt16(short value)
    {
        Ensure(2);
        BinaryPrimitives.WriteInt16LittleEndian(_span[_written..], value);
        _written += 2;
    }

    /// <summary>Writes a 32-bit integer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteInt32(int value)
    {
        Ensure(4);
        BinaryPrimitives.WriteInt32LittleEndian(_span[_written..], value);
        _written += 4;
    }

    /// <summary>Writes a 64-bit integer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteInt64(long value)
    {
        Ensure(8);
        BinaryPrimitives.WriteInt64LittleEndian(_span[_written..], value);
        _written += 8;
    }

    /// <summary>Writes a double.</summary>
    public void WriteDouble(double value)
    {
        Ensure(8);
        BinaryPrimitives.WriteDoubleLittleEndian(_span[_written..], value);
        _written += 8;
    }

    /// <summary>Writes a float.</summary>
    public void WriteSingle(float value)
    {
        Ensure(4);
        BinaryPrimitives.WriteSingleLittleEndian(_span[_written..], value);
        _written += 4;
    }

    /// <summary>Writes a decimal (16 bytes).</summary>
    public void WriteDecimal(decimal value)
    {
        Ensure(16);
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(value, bits);
        for (var i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_span[(_written + (i * 4))..], bits[i]);
        }

        _written += 16;
    }

    /// <summary>Writes a GUID (16 bytes).</summary>
    public void WriteGuid(Guid value)
    {
        Ensure(16);
        value.TryWriteBytes(_span[_written..]);
        _written += 16;
    }

    /// <summary>Writes a date-time (ticks and kind).</summary>
    public void WriteDateTime(DateTime value) => WriteInt64(value.ToBinary());

    /// <summary>Writes a date-time with offset (ticks and offset minutes).</summary>
    public void WriteDateTimeOffset(DateTimeOffset value)
    {
        WriteInt64(value.Ticks);
        WriteInt16((short)value.Offset.TotalMinutes);
    }

    /// <summary>Writes a non-null string.</summary>
    public void WriteString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        WriteText(value, 0);
    }

    /// <summary>Writes a nullable string (its length + 1, or 0 for null).</summary>
    public void WriteNullableString(string? value)
    {
        if (value is null)
        {
            WriteVarint(0);
            return;
        }

        WriteText(value, 1);
    }

    /// <summary>Writes UTF-8 text.</summary>
    public void WriteUtf8Text(Utf8Text value)
    {
        WriteVarint((ulong)value.Length);
        Ensure(value.Length);
        value.Span.CopyTo(_span[_written..]);
        _written += value.Length;
    }

    /// <summary>Writes a non-negative integer in 7-bit groups.</summary>
    public void WriteVarint(ulong value)
    {
        Ensure(10);
        while (value >= 0x80)
        {
            _span[_written++] = (byte)(value | 0x80);
            value >>= 7;
        }

        _span[_written++] = (byte)value;
    }

    private void WriteText(string value, ulong bias)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        WriteVarint((ulong)length + bias);
        Ensure(length);
        Utf8.FromUtf16(value, _span[_written..], out _, out var bytes, replaceInvalidSequences: true);
        _written += bytes;
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
}

/// <summary>Reads one record in <see cref="BinaryRecordFormat"/> for a generated decoder; false on bad input, never throws.</summary>
public ref struct BinaryRecordReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly ReadOnlyMemory<byte> _memory;
    private int _position;

    /// <summary>Starts reading <paramref name="input"/>; checks the version byte.</summary>
    public BinaryRecordReader(ReadOnlyMemory<byte> input)
    {
        _memory = input;
        _data = input.Span;
        _position = 0;
        Error = default;
    }

    /// <summary>What went wrong, once a read returned false.</summary>
    public DecodeError Error { get; private set; }

    /// <summary>Reads and checks the version byte.</summary>
    public bool Begin()
    {
        if (_data.IsEmpty)
        {
            return Fail("the record is empty");
        }

        if (_data[0] != BinaryRecordFormat.Version)
        {
            return Fail($"unknown binary format version {_data[0]} (this build reads version {BinaryRecordFormat.Version})");
        }

        _position = 1;
        return true;
    }

    /// <summary>After the last field: nothing may remain.</summary>
    public bool End() => _position == _data.Length || Fail($"{_data.Length - _position} bytes left after the last field");

    /// <summary>Reads a presence byte.</summary>
    public bool ReadPresence(out bool present)
    {
        present = false;
        if (!ReadByte(out var b))
        {
            return false;
        }

        present = b == 1;
        return b <= 1 || Fail("invalid presence byte");
    }

    /// <summary>Reads a byte.</summary>
    public bool ReadByte(out byte value)
    {
        value = 0;
        if (!Has(1))
        {
            return false;
        }

        value = _data[_position++];
        return true;
    }

    /// <summary>Reads a boolean.</summary>
    public bool ReadBoolean(out bool value)
    {
        value = false;
        if (!ReadByte(out var b))
        {
            return false;
        }

        value = b != 0;
        return b <= 1 || Fail("invalid boolean byte");
    }

    /// <summary>Reads a 16-bit integer.</summary>
    public bool ReadInt16(out short value)
    {
        value = 0;
        if (!Has(2))
        {
            return false;
        }

        value = BinaryPrimitives.ReadInt16LittleEndian(_data[_position..]);
        _position += 2;
        return true;
    }

    /// <summary>Reads a 32-bit integer.</summary>
    public bool ReadInt32(out int value)
    {
        value = 0;
        if (!Has(4))
        {
            return false;
        }

        value = BinaryPrimitives.ReadInt32LittleEndian(_data[_position..]);
        _position += 4;
        return true;
    }

    /// <summary>Reads a 64-bit integer.</summary>
    public bool ReadInt64(out long value)
    {
        value = 0;
        if (!Has(8))
        {
            return false;
        }

        value = BinaryPrimitives.ReadInt64LittleEndian(_data[_position..]);
        _position += 8;
        return true;
    }

    /// <summary>Reads a double.</summary>
    public bool ReadDouble(out double value)
    {
        value = 0;
        if (!Has(8))
        {
            return false;
        }

        value = BinaryPrimitives.ReadDoubleLittleEndian(_data[_position..]);
        _position += 8;
        return true;
    }

    /// <summary>Reads a float.</summary>
    public bool ReadSingle(out float value)
    {
        value = 0;
        if (!Has(4))
        {
            return false;
        }

        value = BinaryPrimitives.ReadSingleLittleEndian(_data[_position..]);
        _position += 4;
        return true;
    }

    /// <summary>Reads a decimal.</summary>
    public bool ReadDecimal(out decimal value)
    {
        value = 0;
        if (!Has(16))
        {
            return false;
        }

        Span<int> bits = stackalloc int[4];
        for (var i = 0; i < 4; i++)
        {
            bits[i] = BinaryPrimitives.ReadInt32LittleEndian(_data[(_position + (i * 4))..]);
        }

        try
        {
            value = new decimal(bits);
        }
        catch (ArgumentException)
        {
            return Fail("invalid decimal");
        }

        _position += 16;
        return true;
    }

    /// <summary>Reads a GUID.</summary>
    public bool ReadGuid(out Guid value)
    {
        value = default;
        if (!Has(16))
        {
            return false;
        }

        value = new Guid(_data.Slice(_position, 16));
        _position += 16;
        return true;
    }

    /// <summary>Reads a date-time.</summary>
    public bool ReadDateTime(out DateTime value)
    {
        value = default;
        if (!ReadInt64(out var binary))
        {
            return false;
        }

        try
        {
            value = DateTime.FromBinary(binary);
            return true;
        }
        catch (ArgumentException)
        {
            return Fail("invalid date-time");
        }
    }

    /// <summary>Reads a date-time with offset.</summary>
    public bool ReadDateTimeOffset(out DateTimeOffset value)
    {
        value = default;
        if (!ReadInt64(out var ticks) || !ReadInt16(out var minutes))
        {
            return false;
        }

        try
        {
            value = new DateTimeOffset(ticks, TimeSpan.FromMinutes(minutes));
            return true;
        }
        catch (ArgumentException)
        {
            return Fail("invalid date-time offset");
        }
    }

    /// <summary>Reads a non-null string.</summary>
    public bool ReadString(out string value)
    {
        value = string.Empty;
        return ReadVarint(out var length) && ReadText(length, out value);
    }

    /// <summary>Reads a nullable string.</summary>
    public bool ReadNullableString(out string? value)
    {
        value = null;
        if (!ReadVarint(out var biased))
        {
            return false;
        }

        if (biased == 0)
        {
            return true;
        }

        var ok = ReadText(biased - 1, out var text);
        value = text;
        return ok;
    }

    /// <summary>Reads UTF-8 text pointing into the input.</summary>
    public bool ReadUtf8Text(out Utf8Text value)
    {
        value = default;
        if (!ReadVarint(out var length) || !Has(length))
        {
            return false;
        }

        var bytes = _data.Slice(_position, (int)length);
        if (!Utf8.IsValid(bytes))
        {
            return Fail("text is not valid UTF-8");
        }

        value = new Utf8Text(_memory.Slice(_position, (int)length));
        _position += (int)length;
        return true;
    }

    /// <summary>Reads a varint.</summary>
    public bool ReadVarint(out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (!ReadByte(out var b))
            {
                return false;
            }

            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }

        return Fail("a varint is too long");
    }

    /// <summary>Records a failure of field <paramref name="field"/> and returns false.</summary>
    public void InField(string field)
    {
        if (Error.Message is not null && !Error.Message.StartsWith("field '", StringComparison.Ordinal))
        {
            Error = Error with { Message = $"field '{field}': {Error.Message}" };
        }
    }

    /// <summary>Records a failure and returns false.</summary>
    public bool Fail(string message)
    {
        if (Error.Message is null)
        {
            Error = new DecodeError(message, _position);
        }

        return false;
    }

    private bool ReadText(ulong length, out string value)
    {
        value = string.Empty;
        if (!Has(length))
        {
            return false;
        }

        var bytes = _data.Slice(_position, (int)length);
        if (!Utf8.IsValid(bytes))
        {
            return Fail("a string is not valid UTF-8");
        }

        value = Encoding.UTF8.GetString(bytes);
        _position += (int)length;
        return true;
    }

    private bool Has(ulong count) => (ulong)(_data.Length - _position) >= count || Fail("the record is truncated");
}
