using System.Buffers.Binary;
using Confluent.Kafka;

namespace Compiled.Kafka;

/// <summary>
/// The headers a repartition hop adds (issue 15's repartition topic). Every record
/// carries its <see cref="Origin"/>: the source partition and offset it was read from, which the keyed side's
/// <c>OriginLedger</c> uses to drop records written twice. <see cref="Mark"/> messages (no key, no value) carry an
/// origin's largest event time so far, and whether it was read to its end, to every partition of the hop's topic.
/// </summary>
internal static class RepartitionHeaders
{
    /// <summary>A record's origin: its source partition (32 bits) and offset (64 bits), big-endian.</summary>
    public const string Origin = "compiled.origin";

    /// <summary>
    /// A watermark mark: the origin partition (32 bits), its largest event time (64 bits), the number of partitions of
    /// the origins' topic (32 bits), 1 when the origin is at its end (8 bits), and the offset it was read to (64 bits),
    /// big-endian.
    /// </summary>
    public const string Mark = "compiled.mark";

    private const int MarkLength = 25;

    /// <summary>The length of an <see cref="Origin"/> header's value.</summary>
    public const int OriginLength = 12;

    public static byte[] OriginValue(int partition, long offset)
    {
        var bytes = new byte[OriginLength];
        WriteOrigin(bytes, partition, offset);
        return bytes;
    }

    public static void WriteOrigin(Span<byte> bytes, int partition, long offset)
    {
        BinaryPrimitives.WriteInt32BigEndian(bytes, partition);
        BinaryPrimitives.WriteInt64BigEndian(bytes[4..], offset);
    }

    public static byte[] MarkValue(int partition, long eventTime, int origins, bool atEnd, long end)
    {
        var bytes = new byte[MarkLength];
        BinaryPrimitives.WriteInt32BigEndian(bytes, partition);
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(4), eventTime);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), origins);
        bytes[16] = atEnd ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(17), end);
        return bytes;
    }

    /// <summary>The origin a record's headers name; false when they name none (or a malformed one).</summary>
    public static bool TryReadOrigin(Headers? headers, out int partition, out long offset)
    {
        partition = 0;
        offset = 0;
        if (headers is null || !headers.TryGetLastBytes(Origin, out var bytes) || bytes.Length != OriginLength)
        {
            return false;
        }

        partition = BinaryPrimitives.ReadInt32BigEndian(bytes);
        offset = BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(4));
        return true;
    }

    /// <summary>The mark a message's headers carry; false when it is not a mark.</summary>
    public static bool TryReadMark(Headers? headers, out int partition, out long eventTime, out int origins, out bool atEnd, out long end)
    {
        partition = 0;
        eventTime = 0;
        origins = 0;
        atEnd = false;
        end = 0;
        if (headers is null || !headers.TryGetLastBytes(Mark, out var bytes) || bytes.Length != MarkLength)
        {
            return false;
        }

        partition = BinaryPrimitives.ReadInt32BigEndian(bytes);
        eventTime = BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(4));
        origins = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(12));
        atEnd = bytes[16] == 1;
        end = BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(17));
        return true;
    }
}

/// <summary>
/// The writing half of a repartition hop (<see cref="KafkaSource{T, TCodec}.RunRepartitionAsync"/>): a member of the source topic's
/// consumer group that writes every message it reads, unchanged (key, value, timestamp, headers), to the partition of
/// the hop's topic that owns the message's <c>[KeyBy]</c> key, with its origin in a header. A message that does not
/// decode, or whose key selector throws, goes to a partition chosen by its source partition: the keyed side decodes
/// and keys it again and dead-letters it there. The writer's two rules make the keyed side's deduplication exact: its
/// producer is idempotent (in order, no gaps, within a partition), and it commits a source offset only after every
/// message below it was acknowledged — on its interval, when partitions are revoked, and when it stops.
/// </summary>
internal sealed class KafkaRepartitionWriter<T, TCodec>
    where TCodec : IRecordCodec<T>
{
    private readonly ConsumerConfig _consumer;
    private readonly ProducerConfig _producer;
    private readonly List<string> _topics;
    private readonly int _partitions;
    private readonly IRepartitionKey<T> _key;
    private readonly TimeSpan _commitInterval;
    private readonly long _idleAfterEndMs;
    private readonly Dictionary<TopicPartition, Origin> _owned = [];

    // Reused for every record: the producer copies a message's key, value and headers when it is handed over, and keeps
    // none of them for the delivery report (DeliveryReportFields = none).
    private readonly TopicPartition[] _targets;
    private readonly Message<byte[]?, byte[]?> _message = new();
    private readonly byte[] _origin = new byte[RepartitionHeaders.OriginLength];
    private readonly Headers _originOnly;
    private readonly Action<DeliveryReport<byte[]?, byte[]?>> _deliveredRecord;
    private readonly Action<DeliveryReport<byte[]?, byte[]?>> _delivered;
    private readonly Lock _failureLock = new();
    private Error? _failure;
    private long _forwarded;
    private long _acknowledged;
    private long _commits;
    private int _commitRequested;
    private bool _closing;

    public KafkaRepartitionWriter(KafkaSourceOptions options, string groupId, string target, int partitions, IRepartitionKey<T> key, TimeSpan commitInterval)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        _consumer = KafkaConfig.Reader(options, groupId, $"{groupId}-repartition");
        _consumer.EnablePartitionEof = true;
        KafkaConfig.Apply(_consumer, options.Properties);
        _producer = new ProducerConfig
        {
            BootstrapServers = options.BootstrapServers,
            ClientId = $"{groupId}-repartition",
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            CompressionType = CompressionType.Lz4, // every record crosses the network twice more: LZ4 costs little CPU for that (Properties can say otherwise)
            DeliveryReportFields = "none",
        };
        KafkaConfig.Apply(_producer, options.Properties);
        _topics = KafkaConfig.Topics(options.Topics);
        _partitions = partitions;
        _key = key;
        _commitInterval = commitInterval;
        _idleAfterEndMs = (long)options.IdleAfterEnd.TotalMilliseconds;
        _targets = [.. Enumerable.Range(0, partitions).Select(p => new TopicPartition(target, p))];
        _originOnly = [new Header(RepartitionHeaders.Origin, _origin)];
        _deliveredRecord = DeliveredRecord;
        _delivered = Delivered;
    }

    /// <summary>The messages handed to the producer so far.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    /// <summary>The messages (not marks) the cluster has acknowledged so far.</summary>
    public long Acknowledged => Interlocked.Read(ref _acknowledged);

    /// <summary>The commits of source offsets so far.</summary>
    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Asks for a checkpoint (marks, flush, commit) at the next turn of the loop, as if the interval had passed.</summary>
    public void RequestCommit() => Interlocked.Exchange(ref _commitRequested, 1);

    /// <summary>
    /// Reads and writes until <paramref name="stop"/>, then writes the last marks, commits what was acknowledged and
    /// leaves the group. <paramref name="abandon"/> ends it as a crash would: nothing more is committed. Throws when a
    /// message could not be written (nothing after it is committed) or the clients fail.
    /// </summary>
    public Task RunAsync(CancellationToken stop, CancellationToken abandon = default)
        => Task.Factory.StartNew(() => Run(stop, abandon), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Run(CancellationToken stop, CancellationToken abandon)
    {
        using var producer = new ProducerBuilder<byte[]?, byte[]?>(_producer).SetLogHandler((_, _) => { }).Build();
        var consumer = new ConsumerBuilder<byte[]?, byte[]?>(_consumer)
            .SetLogHandler((_, _) => { })
            .SetPartitionsAssignedHandler((c, partitions) =>
            {
                // Marks say how many origins there are, so that the keyed side waits for all of them.
                var counts = new Dictionary<string, int>();
                foreach (var partition in partitions)
                {
                    if (!counts.TryGetValue(partition.Topic, out var count))
                    {
                        using var admin = new DependentAdminClientBuilder(c.Handle).Build();
                        count = counts[partition.Topic] = admin.GetMetadata(partition.Topic, TimeSpan.FromSeconds(30)).Topics[0].Partitions.Count;
                    }

                    _owned[partition] = new Origin { Origins = count };
                }
            })
            .SetPartitionsRevokedHandler((c, partitions) =>
            {
                if (!_closing)
                {
                    Checkpoint(c, producer, partitions.Select(p => p.TopicPartition).ToList());
                }

                foreach (var partition in partitions)
                {
                    _owned.Remove(partition.TopicPartition);
                }
            })
            .SetPartitionsLostHandler((_, partitions) =>
            {
                foreach (var partition in partitions)
                {
                    _owned.Remove(partition.TopicPartition); // another member has them: nothing more is committed for them
                }
            })
            .Build();
        try
        {
            consumer.Subscribe(_topics);
            var due = Due();
            while (!stop.IsCancellationRequested && !abandon.IsCancellationRequested)
            {
                var consumed = consumer.Consume(TimeSpan.FromMilliseconds(50));
                if (consumed is not null && _owned.TryGetValue(consumed.TopicPartition, out var origin))
                {
                    if (consumed.IsPartitionEOF)
                    {
                        if (!origin.AtEnd)
                        {
                            origin.AtEnd = true;
                            origin.EndSince = Environment.TickCount64;
                        }

                        origin.End = consumed.Offset.Value;
                    }
                    else
                    {
                        Forward(producer, consumed, origin);
                    }
                }

                ThrowIfFailed();
                if (Interlocked.Exchange(ref _commitRequested, 0) == 1 || Environment.TickCount64 >= due)
                {
                    Checkpoint(consumer, producer, [.. _owned.Keys]);
                    due = Due();
                }
            }

            if (!abandon.IsCancellationRequested)
            {
                Checkpoint(consumer, producer, [.. _owned.Keys]);
            }
        }
        finally
        {
            // Stopped (after the last checkpoint, above), abandoned or failed: the revoke on the way out of the group
            // commits nothing. A commit there is not only needless: librdkafka can wait on it forever inside Close.
            _closing = true;
            consumer.Close();
            consumer.Dispose();
        }
    }

    private void Forward(IProducer<byte[]?, byte[]?> producer, ConsumeResult<byte[]?, byte[]?> consumed, Origin origin)
    {
        var source = consumed.Message;
        var target = consumed.Partition.Value % _partitions;
        if (source.Value is { } value && TCodec.TryDecode(value, out var record, out _))
        {
            try
            {
                target = _key.PartitionOf(record, _partitions, out var eventTime);
                if (_key.HasEventTime)
                {
                    origin.MaxEventTime = Math.Max(origin.MaxEventTime, eventTime);
                }
            }
            catch (Exception)
            {
                // The keyed side's [KeyBy] throws the same for it and dead-letters it there.
            }
        }

        RepartitionHeaders.WriteOrigin(_origin, consumed.Partition.Value, consumed.Offset.Value);
        var headers = _originOnly;
        if (source.Headers is { Count: > 0 } original)
        {
            headers = [];
            foreach (var header in original)
            {
                headers.Add(header.Key, header.GetValueBytes());
            }

            headers.Add(RepartitionHeaders.Origin, _origin);
        }

        var message = _message;
        message.Key = source.Key;
        message.Value = source.Value;
        message.Timestamp = source.Timestamp.Type == TimestampType.NotAvailable ? Timestamp.Default : new Timestamp(source.Timestamp.UnixTimestampMs, TimestampType.CreateTime);
        message.Headers = headers;
        Produce(producer, target, message, _deliveredRecord);
        origin.Next = consumed.Offset.Value + 1;
        origin.AtEnd = false;
        Interlocked.Increment(ref _forwarded);
    }

    /// <summary>
    /// Marks every partition of the hop's topic with the origins' event times, waits until the producer has every
    /// message acknowledged, and commits <paramref name="partitions"/>' offsets.
    /// </summary>
    private void Checkpoint(IConsumer<byte[]?, byte[]?> consumer, IProducer<byte[]?, byte[]?> producer, List<TopicPartition> partitions)
    {
        var offsets = new List<TopicPartitionOffset>(partitions.Count);
        foreach (var partition in partitions)
        {
            if (!_owned.TryGetValue(partition, out var origin))
            {
                continue;
            }

            // At its end only once it has been for IdleAfterEnd, as a single reader of the origin would be: what a
            // producer writes across partitions in one burst reaches every origin before it counts as idle.
            var atEnd = origin.AtEnd && Environment.TickCount64 - origin.EndSince >= _idleAfterEndMs;
            if ((!origin.Marked || origin.MarkedTime != origin.MaxEventTime || origin.MarkedAtEnd != atEnd) && (origin.MaxEventTime != long.MinValue || atEnd))
            {
                var mark = RepartitionHeaders.MarkValue(partition.Partition.Value, origin.MaxEventTime, origin.Origins, atEnd, atEnd ? origin.End : origin.Next);
                for (var target = 0; target < _partitions; target++)
                {
                    Produce(producer, target, new Message<byte[]?, byte[]?> { Headers = [new Header(RepartitionHeaders.Mark, mark)] }, _delivered);
                }

                origin.Marked = true;
                origin.MarkedTime = origin.MaxEventTime;
                origin.MarkedAtEnd = atEnd;
            }

            if (origin.Next >= 0)
            {
                offsets.Add(new TopicPartitionOffset(partition, origin.Next));
            }
        }

        while (producer.Flush(TimeSpan.FromSeconds(1)) > 0)
        {
        }

        ThrowIfFailed();
        if (offsets.Count > 0)
        {
            try
            {
                consumer.Commit(offsets);
                Interlocked.Increment(ref _commits);
            }
            catch (KafkaException ex) when (IsGroupChange(ex.Error.Code))
            {
                // The group is rebalancing, or has moved on without this member (a pause past its session): the offsets
                // stay uncommitted, and whoever holds the partitions next writes their records again — which the
                // keyed side's ledgers drop. Committed at the next checkpoint if the partitions stay here.
            }
        }
    }

    private static bool IsGroupChange(ErrorCode code) => code is ErrorCode.RebalanceInProgress or ErrorCode.IllegalGeneration or ErrorCode.UnknownMemberId or ErrorCode.FencedInstanceId or ErrorCode.Local_State;

    private long Due() => _commitInterval == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)_commitInterval.TotalMilliseconds;

    private void Produce(IProducer<byte[]?, byte[]?> producer, int partition, Message<byte[]?, byte[]?> message, Action<DeliveryReport<byte[]?, byte[]?>> delivered)
    {
        while (true)
        {
            try
            {
                producer.Produce(_targets[partition], message, delivered);
                return;
            }
            catch (ProduceException<byte[]?, byte[]?> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
            {
                producer.Poll(TimeSpan.FromMilliseconds(100));
            }
        }
    }

    private void DeliveredRecord(DeliveryReport<byte[]?, byte[]?> report)
    {
        Delivered(report);
        if (!report.Error.IsError)
        {
            Interlocked.Increment(ref _acknowledged);
        }
    }

    private void Delivered(DeliveryReport<byte[]?, byte[]?> report)
    {
        if (report.Error.IsError)
        {
            lock (_failureLock)
            {
                _failure ??= report.Error;
            }
        }
    }

    private void ThrowIfFailed()
    {
        lock (_failureLock)
        {
            if (_failure is { } failure)
            {
                throw new KafkaException(failure);
            }
        }
    }

    /// <summary>What the writer knows of a source partition it holds.</summary>
    private sealed class Origin
    {
        /// <summary>The offset after the last message handed to the producer; -1 before the first.</summary>
        public long Next { get; set; } = -1;

        /// <summary>The largest event time of its records so far.</summary>
        public long MaxEventTime { get; set; } = long.MinValue;

        /// <summary>Whether it was read to its end since its last message.</summary>
        public bool AtEnd { get; set; }

        /// <summary>Since when (<see cref="Environment.TickCount64"/>) it has been at its end.</summary>
        public long EndSince { get; set; }

        /// <summary>At its end: the offset it was read to.</summary>
        public long End { get; set; } = -1;

        /// <summary>Whether a mark was sent, and what the last one said.</summary>
        public bool Marked { get; set; }

        public long MarkedTime { get; set; }

        public bool MarkedAtEnd { get; set; }

        /// <summary>The number of partitions of its topic when it was assigned.</summary>
        public int Origins { get; init; }
    }
}
