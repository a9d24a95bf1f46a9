using System.Buffers;
using System.Buffers.Binary;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// Writes and reads one type's values in checkpointed state (window keys and accumulators). The generator picks the
/// codec of each key and accumulator type at compile time (<see cref="StateCodecs"/>): no reflection, AOT-safe.
/// </summary>
/// <typeparam name="T">The type of the values.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IStateCodec<T>
{
    /// <summary>What the codec writes, for the state's schema fingerprint: a checkpoint is restored only by a build whose codecs describe it the same way.</summary>
    string Schema { get; }

    /// <summary>Appends <paramref name="value"/>.</summary>
    void Write(StateWriter writer, in T value);

    /// <summary>Reads a value written by <see cref="Write"/>.</summary>
    T Read(ref StateReader reader);
}

/// <summary>The state codecs generated code chooses from.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class StateCodecs
{
    /// <summary>Strings: a length, then UTF-8 (null is written as length -1).</summary>
    public static IStateCodec<string> Utf8 { get; } = new StringCodec();

    /// <summary>A type without references (numbers, enums, <see cref="DateTime"/>, structs of those): its bytes as they are in memory.</summary>
    public static IStateCodec<T> Unmanaged<T>()
        where T : unmanaged
        => UnmanagedCodec<T>.Instance;

    /// <summary>A value tuple of two values with codecs of their own.</summary>
    public static IStateCodec<(T1, T2)> Tuple<T1, T2>(IStateCodec<T1> first, IStateCodec<T2> second) => new TupleCodec<T1, T2>(first, second);

    /// <summary>A value tuple of three values with codecs of their own.</summary>
    public static IStateCodec<(T1, T2, T3)> Tuple<T1, T2, T3>(IStateCodec<T1> first, IStateCodec<T2> second, IStateCodec<T3> third) => new TupleCodec<T1, T2, T3>(first, second, third);

    /// <summary>A <c>[Record]</c> type: a length, then the record in its generated binary format.</summary>
    public static IStateCodec<T> Record<T, TCodec>()
        where TCodec : IRecordCodec<T>
        => RecordCodec<T, TCodec>.Instance;

    private sealed class StringCodec : IStateCodec<string>
    {
        public string Schema => "string";

        public void Write(StateWriter writer, in string value) => writer.WriteString(value);

        public string Read(ref StateReader reader) => reader.ReadString()!;
    }

    private sealed class UnmanagedCodec<T> : IStateCodec<T>
        where T : unmanaged
    {
        public static readonly UnmanagedCodec<T> Instance = new();

        public string Schema { get; } = $"raw:{typeof(T).FullName}:{Unsafe.SizeOf<T>()}";

        public void Write(StateWriter writer, in T value) => writer.WriteBytes(MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));

        public T Read(ref StateReader reader) => MemoryMarshal.Read<T>(reader.ReadBytes(Unsafe.SizeOf<T>()));
    }

    private sealed class TupleCodec<T1, T2>(IStateCodec<T1> first, IStateCodec<T2> second) : IStateCodec<(T1, T2)>
    {
        public string Schema { get; } = $"({first.Schema},{second.Schema})";

        public void Write(StateWriter writer, in (T1, T2) value)
        {
            first.Write(writer, value.Item1);
            second.Write(writer, value.Item2);
        }

        public (T1, T2) Read(ref StateReader reader)
        {
            var a = first.Read(ref reader);
            return (a, second.Read(ref reader));
        }
    }

    private sealed class TupleCodec<T1, T2, T3>(IStateCodec<T1> first, IStateCodec<T2> second, IStateCodec<T3> third) : IStateCodec<(T1, T2, T3)>
    {
        public string Schema { get; } = $"({first.Schema},{second.Schema},{third.Schema})";

        public void Write(StateWriter writer, in (T1, T2, T3) value)
        {
            first.Write(writer, value.Item1);
            second.Write(writer, value.Item2);
            third.Write(writer, value.Item3);
        }

        public (T1, T2, T3) Read(ref StateReader reader)
        {
            var a = first.Read(ref reader);
            var b = second.Read(ref reader);
            return (a, b, third.Read(ref reader));
        }
    }

    private sealed class RecordCodec<T, TCodec> : IStateCodec<T>
        where TCodec : IRecordCodec<T>
    {
        public static readonly RecordCodec<T, TCodec> Instance = new();

        public string Schema { get; } = $"record:{typeof(T).FullName}:{TCodec.Format}";

        public void Write(StateWriter writer, in T value)
        {
            var body = writer.Scratch;
            body.ResetWrittenCount();
            TCodec.Encode(value, body);
            writer.WriteInt32(body.WrittenCount);
            writer.WriteBytes(body.WrittenSpan);
        }

        public T Read(ref StateReader reader)
        {
            var length = reader.ReadInt32();
            var body = reader.ReadMemory(length);
            if (!TCodec.TryDecode(body, out var record, out var failure))
            {
                throw new InvalidDataException($"A '{typeof(T).Name}' in the checkpoint does not decode: {failure}.");
            }

            return record;
        }
    }
}

/// <summary>Appends checkpointed state to a growing buffer (little-endian).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class StateWriter
{
    private readonly ArrayBufferWriter<byte> _buffer;

    /// <summary>Creates a writer with room for <paramref name="capacity"/> bytes to start with.</summary>
    public StateWriter(int capacity = 4096)
    {
        _buffer = new ArrayBufferWriter<byte>(capacity);
    }

    /// <summary>What has been written.</summary>
    public ReadOnlyMemory<byte> Written => _buffer.WrittenMemory;

    /// <summary>A second buffer codecs may use while they encode a value.</summary>
    internal ArrayBufferWriter<byte> Scratch { get; } = new(256);

    /// <summary>Forgets what was written (the buffer is kept).</summary>
    public void Reset() => _buffer.ResetWrittenCount();

    /// <summary>Appends raw bytes.</summary>
    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_buffer.GetSpan(bytes.Length));
        _buffer.Advance(bytes.Length);
    }

    /// <summary>Appends a 32-bit integer.</summary>
    public void WriteInt32(int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
    }

    /// <summary>Appends a 64-bit integer.</summary>
    public void WriteInt64(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
    }

    /// <summary>Appends a byte.</summary>
    public void WriteByte(byte value)
    {
        _buffer.GetSpan(1)[0] = value;
        _buffer.Advance(1);
    }

    /// <summary>Appends a string: its UTF-8 length (-1 for null), then its UTF-8 bytes.</summary>
    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteInt32(-1);
            return;
        }

        var length = Encoding.UTF8.GetByteCount(value);
        WriteInt32(length);
        var span = _buffer.GetSpan(length);
        Encoding.UTF8.GetBytes(value, span);
        _buffer.Advance(length);
    }
}

/// <summary>Reads what a <see cref="StateWriter"/> wrote; throws <see cref="InvalidDataException"/> past the end.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public struct StateReader
{
    private readonly ReadOnlyMemory<byte> _data;
    private int _position;

    /// <summary>Reads <paramref name="data"/> from its start.</summary>
    public StateReader(ReadOnlyMemory<byte> data)
    {
        _data = data;
        _position = 0;
    }

    /// <summary>Whether everything has been read.</summary>
    public readonly bool End => _position >= _data.Length;

    /// <summary>The next <paramref name="count"/> bytes.</summary>
    public ReadOnlySpan<byte> ReadBytes(int count) => ReadMemory(count).Span;

    /// <summary>The next <paramref name="count"/> bytes, as memory.</summary>
    public ReadOnlyMemory<byte> ReadMemory(int count)
    {
        if (count < 0 || count > _data.Length - _position)
        {
            throw new InvalidDataException($"The state ends early: {count} bytes wanted at {_position} of {_data.Length}.");
        }

        var slice = _data.Slice(_position, count);
        _position += count;
        return slice;
    }

    /// <summary>Reads a 32-bit integer.</summary>
    public int ReadInt32() => BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4));

    /// <summary>Reads a 64-bit integer.</summary>
    public long ReadInt64() => BinaryPrimitives.ReadInt64LittleEndian(ReadBytes(8));

    /// <summary>Reads a byte.</summary>
    public byte ReadByte() => ReadBytes(1)[0];

    /// <summary>Reads a string written by <see cref="StateWriter.WriteString"/>.</summary>
    public string? ReadString()
    {
        var length = ReadInt32();
        return length == -1 ? null : Encoding.UTF8.GetString(ReadBytes(length));
    }
}
