using System.ComponentModel;
using System.Runtime.CompilerServices;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// The rows a lookup join found for each record of a batch, read in place by the loop after the lookup: the loop
/// builds each <see cref="Joined{TLeft, TRight}"/> where it uses it, so no joined record is written to memory and read
/// back (generated code).
/// </summary>
/// <typeparam name="TLeft">The records looked up.</typeparam>
/// <typeparam name="TRow">The table's rows.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct LookupMatches<TLeft, TRow>
{
    private readonly int[] _slots;
    private readonly LookupEntry<TRow>[] _entries;
    private readonly bool _leftOuter;

    internal LookupMatches(int[] slots, LookupEntry<TRow>[] entries, bool leftOuter)
    {
        _slots = slots;
        _entries = entries;
        _leftOuter = leftOuter;
    }

    /// <summary>How many joined records record <paramref name="record"/> of the batch makes: its rows, or one alone in a left-outer join when it has none.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Count(int record)
    {
        var slot = _slots[record];
        return slot >= 0 ? _entries[slot].Count : _leftOuter ? 1 : 0;
    }

    /// <summary>Joined record <paramref name="match"/> (below <see cref="Count"/>) of record <paramref name="record"/>, whose value is <paramref name="left"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Joined<TLeft, TRow> Join(in TLeft left, int record, int match)
    {
        var slot = _slots[record];
        if (slot < 0)
        {
            return new Joined<TLeft, TRow>(left, default, false);
        }

        ref readonly var entry = ref _entries[slot];
        return new Joined<TLeft, TRow>(left, match == 0 ? entry.First : entry.More![match - 1], true);
    }
}

/// <summary>
/// Implemented by the generated loop after a lookup join when every stage of it can run a batch again (its fast path):
/// it runs over the batch's records and their <see cref="LookupMatches{TLeft, TRow}"/> directly.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface ILookupSegment<TKey, TLeft, TRow>
    where TKey : notnull
{
    /// <summary>
    /// Runs the loop over every joined record of <paramref name="batch"/>; true when it ran through. When a record
    /// throws it sets the loop's outputs back and returns false: the lookup then hands the joined records over one by
    /// one (<see cref="FusedSegment{TIn}.Process"/>), which finds the record and applies the error policy.
    /// </summary>
    bool TryRunLookup(ReadOnlySpan<Keyed<TKey, TLeft>> batch, in LookupMatches<TLeft, TRow> matches);
}

/// <summary>The rows of one key in a lookup's cache: none, one, or one and more; when they were fetched.</summary>
internal readonly record struct LookupEntry<TRow>(int Count, TRow First, TRow[]? More, long Fetched)
{
    public LookupEntry<TRow> With(TRow row)
    {
        if (Count == 0)
        {
            return this with { Count = 1, First = row };
        }

        var more = More;
        if (more is null || Count - 1 == more.Length)
        {
            Array.Resize(ref more, Math.Max(2, (Count - 1) * 2));
        }

        more[Count - 1] = row;
        return this with { Count = Count + 1, More = more };
    }
}
