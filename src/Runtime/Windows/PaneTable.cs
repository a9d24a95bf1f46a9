using System.Runtime.CompilerServices;

namespace Compiled.Runtime;

/// <summary>
/// The accumulators of one pane of a <see cref="PaneWindowOperator{TKey, TIn, TAgg, TAcc, TOut}"/>: a hash table
/// specialised for <typeparamref name="TKey"/> (no boxing, chained through indexes, load factor at most 1) whose entries
/// are only ever added — a pane's state goes all at once, when the pane is purged. An entry is the key, its hash, a
/// link and the accumulator (24 bytes for an int key and a long count) and the buckets are one int per slot. Entries
/// live in chunks of 16 Ki, so that growing past the first chunk allocates one more chunk and copies nothing; only
/// the bucket array doubles (4 bytes a slot).
/// </summary>
internal sealed class PaneTable<TKey, TAcc>
    where TKey : notnull
{
    private const int ChunkBits = 14;
    private const int ChunkSize = 1 << ChunkBits;
    private const int ChunkMask = ChunkSize - 1;
    private const int FirstSize = 16;

    private struct Entry
    {
        public TKey Key;
        public int Hash;
        public int Next;
        public TAcc Acc;
    }

    private Entry[][] _chunks = [new Entry[FirstSize]];
    private int _capacity = FirstSize;
    private int[] _buckets = new int[FirstSize]; // entry index + 1; 0 = empty
    private int _shift = 32 - 4;

    /// <summary>The pane (its index: time / pane length).</summary>
    public long Pane { get; set; }

    /// <summary>Keys in the pane; entries 0 to Count - 1, in the order their keys arrived.</summary>
    public int Count { get; private set; }

    private ref Entry At(int index) => ref _chunks[index >> ChunkBits][index & ChunkMask];

    /// <summary>The key of entry <paramref name="index"/>.</summary>
    public ref readonly TKey KeyAt(int index) => ref Get(index).Key;

    /// <summary>The key hash of entry <paramref name="index"/>.</summary>
    public int HashAt(int index) => Get(index).Hash;

    /// <summary>The accumulator of entry <paramref name="index"/>.</summary>
    public ref TAcc AccAt(int index) => ref Get(index).Acc;

    /// <summary>Entry <paramref name="index"/>: most entries of most tables are in the first chunk, one load away.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref Entry Get(int index)
    {
        var first = _chunks[0];
        return ref (uint)index < (uint)first.Length ? ref first[index] : ref AtBeyondFirst(index);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ref Entry AtBeyondFirst(int index) => ref At(index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Bucket(int hash) => (int)(((uint)hash * 0x9E3779B1u) >> _shift);

    /// <summary>The entry of <paramref name="key"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Find(TKey key, int hash)
    {
        var first = _chunks[0]; // most chains of most tables stay within the first chunk: one load fewer per step
        for (var i = _buckets[Bucket(hash)] - 1; i >= 0;)
        {
            ref var entry = ref (uint)i < (uint)first.Length ? ref first[i] : ref AtBeyondFirst(i);
            if (entry.Hash == hash && EqualityComparer<TKey>.Default.Equals(entry.Key, key))
            {
                return i;
            }

            i = entry.Next;
        }

        return -1;
    }

    /// <summary>The accumulator of <paramref name="key"/>, added (default) if the pane has none.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref TAcc FindOrAdd(TKey key, int hash)
    {
        // Find's walk, kept apart on purpose: this is every record's path, and returning the entry it stands on spares
        // a second lookup of the entry by index.
        var first = _chunks[0];
        for (var i = _buckets[Bucket(hash)] - 1; i >= 0;)
        {
            ref var entry = ref (uint)i < (uint)first.Length ? ref first[i] : ref AtBeyondFirst(i);
            if (entry.Hash == hash && EqualityComparer<TKey>.Default.Equals(entry.Key, key))
            {
                return ref entry.Acc;
            }

            i = entry.Next;
        }

        return ref Insert(key, hash);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ref TAcc Insert(TKey key, int hash)
    {
        var index = Count;
        if (index == _capacity)
        {
            GrowEntries();
        }

        if (index == _buckets.Length)
        {
            GrowBuckets();
        }

        ref var bucket = ref _buckets[Bucket(hash)];
        ref var entry = ref At(index);
        entry.Key = key;
        entry.Hash = hash;
        entry.Acc = default!;
        entry.Next = bucket - 1;
        bucket = index + 1;
        Count = index + 1;
        return ref entry.Acc;
    }

    private void GrowEntries()
    {
        if (_capacity < ChunkSize)
        {
            Array.Resize(ref _chunks[0], _capacity * 2); // the first chunk doubles up to its full size
            _capacity *= 2;
            return;
        }

        var chunks = _capacity >> ChunkBits;
        if (chunks == _chunks.Length)
        {
            Array.Resize(ref _chunks, chunks * 2);
        }

        _chunks[chunks] = new Entry[ChunkSize];
        _capacity += ChunkSize;
    }

    private void GrowBuckets()
    {
        _buckets = new int[_buckets.Length * 2];
        _shift--;
        for (var i = 0; i < Count; i++)
        {
            ref var entry = ref At(i);
            ref var bucket = ref _buckets[Bucket(entry.Hash)];
            entry.Next = bucket - 1;
            bucket = i + 1;
        }
    }

    /// <summary>Empties the table for another pane, keeping its arrays (a window's panes tend to hold the same keys).</summary>
    public void Clear()
    {
        if (RuntimeHelpers.IsReferenceOrContainsReferences<Entry>())
        {
            for (var c = 0; c < _chunks.Length && c << ChunkBits < Count; c++)
            {
                Array.Clear(_chunks[c], 0, Math.Min(_chunks[c].Length, Count - (c << ChunkBits)));
            }
        }

        Array.Clear(_buckets);
        Count = 0;
    }
}
