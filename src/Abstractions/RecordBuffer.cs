using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Compiled;

/// <summary>
/// A growable, reusable buffer of records: the batch type that moves between a fused loop and its outputs. It grows
/// by doubling and is reset, not reallocated, between batches, so a steady-state run allocates nothing.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class RecordBuffer<T>
{
    /// <summary>The capacity a buffer starts with when none is given: one default batch.</summary>
    public const int DefaultCapacity = 1024;

    private T[] _items;
    private int _count;

    /// <summary>Creates a buffer with room for <paramref name="capacity"/> records before it grows.</summary>
    public RecordBuffer(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _items = capacity == 0 ? [] : new T[capacity];
    }

    /// <summary>The number of records in the buffer.</summary>
    public int Count => _count;

    /// <summary>The records in the buffer.</summary>
    public ReadOnlySpan<T> Span => new(_items, 0, _count);

    /// <summary>The records in the buffer, as memory (valid until the buffer is next changed).</summary>
    public ReadOnlyMemory<T> Memory => new(_items, 0, _count);

    /// <summary>The storage, for generated loops that keep the array and the count in locals: records live in <c>[0, Count)</c>.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public T[] Items => _items;

    /// <summary>Sets the number of records after a generated loop appended directly to <see cref="Items"/>.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetCount(int count)
    {
        Debug.Assert((uint)count <= (uint)_items.Length, "count within the storage");
        _count = count;
    }

    /// <summary>Doubles the storage, keeping the first <paramref name="count"/> records, and returns the new array.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public T[] Grow(int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)count, (uint)_items.Length, nameof(count));
        var grown = new T[Math.Max(_items.Length * 2, 4)];
        Array.Copy(_items, grown, count);
        _items = grown;
        _count = count;
        return grown;
    }

    /// <summary>Appends a record.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(in T item)
    {
        var items = _items;
        var count = _count;
        if ((uint)count < (uint)items.Length)
        {
            items[count] = item;
            _count = count + 1;
        }
        else
        {
            AddWithResize(item);
        }
    }

    /// <summary>Forgets the records without clearing the storage (references are overwritten by later adds).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Reset() => _count = 0;

    /// <summary>Forgets the records and clears references they hold, so the buffer keeps nothing alive.</summary>
    public void Clear()
    {
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            Array.Clear(_items, 0, _count);
        }

        _count = 0;
    }

    /// <summary>Swaps the storage of this buffer for <paramref name="replacement"/> and returns the old storage with its count.</summary>
    /// <remarks>Lets an output hand a full array to another thread without copying it.</remarks>
    public T[] Exchange(T[] replacement, out int count)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        var old = _items;
        count = _count;
        _items = replacement;
        _count = 0;
        return old;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void AddWithResize(in T item)
    {
        var grown = new T[Math.Max(_items.Length * 2, 4)];
        Array.Copy(_items, grown, _count);
        _items = grown;
        _items[_count++] = item;
    }
}
