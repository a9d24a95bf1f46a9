using System.ComponentModel;
using System.Runtime.CompilerServices;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// A record on its way through a hash exchange: its key, the key's hash (computed once, in the loop before the
/// exchange), its event time in Unix milliseconds, and the record. Generated loops create these; the partition that
/// owns the key reads them.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct Keyed<TKey, T> : IExchangeRecord
    where TKey : notnull
{
    /// <summary>Creates the exchange entry of <paramref name="record"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Keyed(TKey key, long timestamp, T record)
    {
        Key = key;
        Hash = KeyHash.Of(key);
        Timestamp = timestamp;
        Record = record;
    }

    /// <summary>The key.</summary>
    public TKey Key { get; }

    /// <summary>The key's mixed hash: it picks the partition and the hash-table bucket.</summary>
    public int Hash { get; }

    /// <summary>Event time, Unix milliseconds (0 under processing time until the window stamps it).</summary>
    public long Timestamp { get; init; }

    /// <summary>The record.</summary>
    public T Record { get; }
}

/// <summary>Hashes keys for exchanges and keyed state.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class KeyHash
{
    /// <summary>
    /// The key's hash, mixed (a multiply and a rotate) so that keys with sequential hashes — small integers — spread
    /// over partitions and buckets.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Of<TKey>(TKey key)
        where TKey : notnull
    {
        var h = (uint)EqualityComparer<TKey>.Default.GetHashCode(key) * 0x9E3779B1u;
        return (int)(h ^ (h >> 15));
    }

    /// <summary>The partition of <paramref name="hash"/> among <paramref name="partitions"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Partition(int hash, int partitions) => (int)((uint)hash % (uint)partitions);
}
