using System.IO.Hashing;

namespace Compiled.Runtime;

/// <summary>
/// A window's <c>[KeyBy]</c> over source records, for a repartition hop: the key is written with the checkpoint codec
/// and its bytes hashed (XxHash3), so a key's partition does not depend on the process — unlike
/// <see cref="KeyHash"/>, which uses the key's own hash code (randomised per process for strings).
/// </summary>
internal sealed class SourceKeyPartitioner<TKey, TIn>(Func<TIn, Keyed<TKey, TIn>> sourceKey, IStateCodec<TKey> keyCodec, bool hasEventTime) : IRepartitionKey<TIn>
    where TKey : notnull
{
    [ThreadStatic]
    private static StateWriter? t_writer;

    public bool HasEventTime => hasEventTime;

    public int PartitionOf(in TIn record, int partitions, out long eventTime)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        var keyed = sourceKey(record);
        eventTime = hasEventTime ? keyed.Timestamp : 0;
        var writer = t_writer ??= new StateWriter(256);
        writer.Reset();
        keyCodec.Write(writer, keyed.Key);
        return (int)(XxHash3.HashToUInt64(writer.Written.Span) % (ulong)partitions);
    }
}
