using Confluent.Kafka;

namespace Compiled.Kafka;

/// <summary>
/// What Kafka says about a message besides its value: where it came from, its key, timestamp and headers. Valid only
/// during the <see cref="KafkaMetadata{T}"/> call it is passed to (the key points into the source's buffer).
/// </summary>
public readonly ref struct KafkaMessage
{
    internal KafkaMessage(string topic, int partition, long offset, Timestamp timestamp, ReadOnlySpan<byte> key, bool hasKey, Headers? headers)
    {
        Topic = topic;
        Partition = partition;
        Offset = offset;
        Timestamp = timestamp.Type == TimestampType.NotAvailable ? null : timestamp.UtcDateTime;
        Key = key;
        HasKey = hasKey;
        Headers = headers;
    }

    /// <summary>The topic.</summary>
    public string Topic { get; }

    /// <summary>The partition of the topic.</summary>
    public int Partition { get; }

    /// <summary>The message's offset in its partition.</summary>
    public long Offset { get; }

    /// <summary>The message's timestamp (create or log-append time, as the topic is configured), in UTC; null when the broker has none.</summary>
    public DateTime? Timestamp { get; }

    /// <summary>The key's bytes (empty when the message has no key; see <see cref="HasKey"/>).</summary>
    public ReadOnlySpan<byte> Key { get; }

    /// <summary>Whether the message has a key (an empty key is a key).</summary>
    public bool HasKey { get; }

    /// <summary>The message's headers, or null when it has none.</summary>
    public Headers? Headers { get; }
}

/// <summary>
/// Copies what a record needs from its Kafka message (key, partition, offset, timestamp, headers) into the decoded
/// record: <c>(ref Order order, KafkaMessage message) =&gt; order = order with { Offset = message.Offset }</c>.
/// Called once per decoded record, on the partition's worker.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public delegate void KafkaMetadata<T>(ref T record, KafkaMessage message);

/// <summary>
/// Builds the record a message without a value (a tombstone) stands for — on a compacted changelog topic, the delete
/// of its key: <c>message =&gt; new Rate(Encoding.UTF8.GetString(message.Key), 0, message.Timestamp ?? DateTime.UtcNow, ChangeKind.Delete)</c>.
/// Called instead of the codec and the <see cref="KafkaMetadata{T}"/> callback, once per tombstone that has a key, on
/// the partition's worker. Without it — and for a tombstone without a key, which deletes nothing — tombstones go to
/// the dead letters.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public delegate T KafkaTombstone<T>(KafkaMessage message);
