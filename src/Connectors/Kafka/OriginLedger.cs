using Compiled.Runtime.CompilerServices;

namespace Compiled.Kafka;

/// <summary>
/// The reading side's defence against a repartition hop writing a record twice (the repartition topic of a
/// distributed run, docs/deployment.md). The copies that re-key a source partition (its <em>origin</em>) write each record
/// with the origin's offset; a copy that takes the origin over after a crash starts again at the origin's committed
/// offset and writes some records a second time, and a copy that lost the origin without knowing (a zombie) may go
/// on writing for a while. Per partition of the repartition topic, the ledger keeps the highest origin offset admitted
/// from each origin and admits a record only above it.
/// </summary>
/// <remarks>
/// Exact — every record of an origin admitted once, none lost — when the writing side keeps two rules: each writer
/// writes its origin's records in offset order from where it starts (an idempotent producer keeps them in order,
/// without gaps, within a partition), and it starts at the origin's committed offset, which a writer commits only once
/// everything below it is appended. Proof sketch: let the first record that lifts the ledger to <c>x</c> or above be
/// <c>y &gt; x</c>, written by <c>W</c> that started at <c>s</c>. If <c>s ≤ x</c>, <c>W</c> appended <c>x</c> before
/// <c>y</c>, when the ledger was still below <c>x</c>, so <c>x</c> was admitted. Else some writer committed
/// <c>s &gt; x</c> after appending <c>x</c>, before <c>W</c> started and so before <c>y</c>: admitted again. The ledger
/// is part of the reading side's checkpoint, so a restore re-admits exactly what the run before admitted.
/// </remarks>
internal sealed class OriginLedger
{
    private const byte Version = 1;
    private readonly Dictionary<(string Stream, int Partition), long> _highest = [];

    /// <summary>The number of origins heard from.</summary>
    public int Count => _highest.Count;

    /// <summary>
    /// Whether the record at <paramref name="offset"/> of origin (<paramref name="stream"/>, <paramref name="partition"/>)
    /// is new: above every offset admitted from that origin. Admitting it raises the origin's highest offset.
    /// </summary>
    public bool Admit(string stream, int partition, long offset)
    {
        ref var highest = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_highest, (stream, partition), out var known);
        if (known && offset <= highest)
        {
            return false;
        }

        highest = offset;
        return true;
    }

    /// <summary>The highest offset admitted from an origin, or -1 when none was.</summary>
    public long Highest(string stream, int partition) => _highest.TryGetValue((stream, partition), out var offset) ? offset : -1;

    /// <summary>Appends the ledger to <paramref name="writer"/>: a version, the count, then each origin (in a fixed order) and its offset.</summary>
    public void WriteTo(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteByte(Version);
        writer.WriteInt32(_highest.Count);
        foreach (var ((stream, partition), offset) in _highest.OrderBy(e => e.Key.Stream, StringComparer.Ordinal).ThenBy(e => e.Key.Partition))
        {
            writer.WriteString(stream);
            writer.WriteInt32(partition);
            writer.WriteInt64(offset);
        }
    }

    /// <summary>Reads a ledger <see cref="WriteTo"/> wrote; throws <see cref="InvalidDataException"/> on anything else.</summary>
    public static OriginLedger ReadFrom(ref StateReader reader)
    {
        var version = reader.ReadByte();
        if (version != Version)
        {
            throw new InvalidDataException($"An origin ledger of version {version}; this build reads version {Version}.");
        }

        var count = reader.ReadInt32();
        if (count < 0)
        {
            throw new InvalidDataException($"An origin ledger of {count} origins.");
        }

        var ledger = new OriginLedger();
        for (var i = 0; i < count; i++)
        {
            var stream = reader.ReadString() ?? throw new InvalidDataException("An origin ledger names an origin without a stream.");
            var partition = reader.ReadInt32();
            var offset = reader.ReadInt64();
            if (partition < 0 || offset < 0 || !ledger._highest.TryAdd((stream, partition), offset))
            {
                throw new InvalidDataException($"An origin ledger holds {stream}[{partition}]@{offset} (a negative number, or the origin twice).");
            }
        }

        return ledger;
    }
}
