using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using Confluent.Kafka;

namespace Compiled.Kafka;

/// <summary>
/// Checkpoints of window state in Kafka: a run with keyed state behind a <c>KafkaSource</c> keeps each checkpoint — the
/// records its windows produced, the input offsets and the state — in one Kafka transaction, the records in the output
/// topic and offsets and state in the checkpoint topic (<see cref="KafkaSinkOptions.CheckpointTopic"/>). Kafka Streams
/// keeps state in changelog topics the same way; Flink keeps it elsewhere and needs two-phase commits for Kafka.
/// </summary>
public sealed partial class KafkaSink<T, TCodec>
{
    /// <summary>
    /// The most bytes of state in one message of the checkpoint topic: half a brokers' default <c>message.max.bytes</c>
    /// (1 MB), which leaves room for the key and the batch around it. Larger state is split into several messages.
    /// </summary>
    private const int CheckpointChunkBytes = 512 * 1024;

    private const byte FormatVersion = 1;

    private readonly Lock _staging = new();
    private readonly SortedDictionary<long, List<StagedMessage>> _staged = [];
    private IProducer<byte[]?, byte[]>? _committer;
    private string? _checkpointTopic;
    private volatile bool _checkpointsState;

    /// <inheritdoc/>
    public string CheckpointLocation => $"Kafka topic {_checkpointTopic ?? _options.CheckpointTopic ?? "(not yet named)"} at {_options.BootstrapServers}, partition 0 (beside topic {_options.Topic})";

    /// <inheritdoc/>
    public async ValueTask<StoredCheckpoint?> ClaimCheckpointAsync(string pipeline, CancellationToken cancellationToken)
    {
        var context = _context ?? throw new InvalidOperationException("The sink is not open.");
        if (!_options.Transactional)
        {
            throw new InvalidOperationException("Only a transactional KafkaSink commits checkpoints.");
        }

        _checkpointsState = true; // the run checkpoints window state: its records wait for the checkpoint that covers them
        lock (_staging)
        {
            _staged.Clear(); // kept for checkpoints an earlier run in this process never committed
        }

        var topic = _checkpointTopic = CheckpointTopicOf(context.PipelineName);
        var prefix = _options.TransactionalIdPrefix ?? context.PipelineName;
        return await Task.Run(
            () =>
            {
                _committer?.Dispose();
                _committer = null;
                var committer = Build($"{prefix}-checkpoints");
                try
                {
                    // Fences off an earlier run's producer with the same id and aborts the transaction it left open, so
                    // what follows reads every checkpoint that will ever commit before this run (on a real cluster).
                    committer.InitTransactions(_options.FlushTimeout);
                }
                catch
                {
                    committer.Dispose();
                    throw;
                }

                _committer = committer;
                return ReadLatest(pipeline, topic, cancellationToken);
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask CommitCheckpointAsync(string pipeline, StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var committer = _committer ?? throw new InvalidOperationException("The sink's checkpoints were not claimed.");
        var records = new List<StagedMessage>();
        lock (_staging)
        {
            foreach (var id in _staged.Keys.Where(id => id <= checkpoint.Id).ToList())
            {
                records.AddRange(_staged[id]);
                _staged.Remove(id);
            }
        }

        var (chunks, manifest) = Encode(checkpoint);
        try
        {
            committer.BeginTransaction();
            var message = new Message<byte[]?, byte[]>();
            foreach (var record in records)
            {
                message.Key = record.Key;
                message.Value = record.Value;
                message.Headers = record.Headers;
                ProduceWaiting(committer, new TopicPartition(_options.Topic, Partition.Any), message, cancellationToken);
            }

            var state = new TopicPartition(_checkpointTopic!, 0);
            message.Headers = null;
            for (var i = 0; i < chunks.Count; i++)
            {
                message.Key = Encoding.UTF8.GetBytes($"{pipeline}#chunk-{i}");
                message.Value = chunks[i];
                ProduceWaiting(committer, state, message, cancellationToken);
            }

            message.Key = Encoding.UTF8.GetBytes($"{pipeline}#checkpoint");
            message.Value = manifest;
            ProduceWaiting(committer, state, message, cancellationToken);
            committer.CommitTransaction(_options.FlushTimeout); // flushes first: a record not delivered fails the commit
        }
        catch (KafkaException ex) when (ex.Error.Code is ErrorCode.ProducerFenced or ErrorCode.Local_Fenced or ErrorCode.InvalidProducerEpoch)
        {
            throw new FencedException($"Pipeline '{pipeline}': another run of this pipeline (the same transactional id, {Describe()}) has started since this one; this run stops without committing (its records would be written twice).");
        }
        catch (KafkaException)
        {
            // The checkpoint is not committed (or, if the commit's answer was lost, the next run finds it in the topic):
            // the run fails and the next one resumes from the last checkpoint the topic holds.
            TryAbort(committer);
            throw;
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Keeps a writer's encoded records of checkpoint <paramref name="checkpoint"/> until the whole checkpoint commits.</summary>
    private void Stage(long checkpoint, List<StagedMessage> records)
    {
        if (records.Count == 0)
        {
            return;
        }

        lock (_staging)
        {
            if (!_staged.TryGetValue(checkpoint, out var staged))
            {
                _staged[checkpoint] = staged = [];
            }

            staged.AddRange(records);
        }
    }

    /// <summary>The checkpoint topic: the option, else <c>{prefix}.checkpoints</c> (a name Kafka accepts, checked).</summary>
    private string CheckpointTopicOf(string pipeline)
    {
        var topic = _options.CheckpointTopic ?? $"{_options.TransactionalIdPrefix ?? pipeline}.checkpoints";
        if (!TopicName().IsMatch(topic))
        {
            throw new NonRetryableException($"The checkpoint topic '{topic}' is not a Kafka topic name (letters, digits, '.', '_' and '-', at most 249); set {nameof(KafkaSinkOptions.CheckpointTopic)}.");
        }

        return topic;
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,249}$")]
    private static partial Regex TopicName();

    /// <summary>Reads the checkpoint topic to its end and returns the last checkpoint of <paramref name="pipeline"/> whose messages are all there.</summary>
    private StoredCheckpoint? ReadLatest(string pipeline, string topic, CancellationToken cancellationToken)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = _options.BootstrapServers,
            GroupId = $"{pipeline}.checkpoint-reader", // never joined, never committed: reading needs one
            EnableAutoCommit = false,
            IsolationLevel = IsolationLevel.ReadCommitted, // what aborted transactions wrote is not a checkpoint
            EnablePartitionEof = true,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        };
        KafkaConfig.Apply(config, _options.Properties);
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config).SetLogHandler((_, _) => { }).Build();
        var partition = new TopicPartition(topic, 0);
        WatermarkOffsets watermarks;
        try
        {
            watermarks = consumer.QueryWatermarkOffsets(partition, _options.FlushTimeout);
        }
        catch (KafkaException ex) when (ex.Error.Code is ErrorCode.UnknownTopicOrPart or ErrorCode.Local_UnknownTopic or ErrorCode.Local_UnknownPartition)
        {
            throw new NonRetryableException($"The checkpoint topic '{topic}' does not exist and the cluster does not create topics on use; create it: kafka-topics.sh --create --topic {topic} --partitions 1 --config cleanup.policy=compact", ex);
        }

        if (watermarks.High.Value <= watermarks.Low.Value)
        {
            return null;
        }

        var manifestKey = $"{pipeline}#checkpoint";
        var chunkPrefix = $"{pipeline}#chunk-";
        var chunks = new Dictionary<int, (long Id, byte[] Bytes)>();
        StoredCheckpoint? latest = null;
        var deadline = DateTime.UtcNow + _options.FlushTimeout;
        consumer.Assign(new TopicPartitionOffset(partition, Offset.Beginning));
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (DateTime.UtcNow > deadline)
            {
                throw new KafkaException(new Error(ErrorCode.Local_TimedOut, $"the checkpoint topic '{topic}' was not read to its end within {Setting.FormatDuration(_options.FlushTimeout)}"));
            }

            var consumed = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (consumed is null)
            {
                continue;
            }

            if (consumed.IsPartitionEOF)
            {
                break;
            }

            deadline = DateTime.UtcNow + _options.FlushTimeout; // progress: the deadline is for a stalled read
            var key = consumed.Message.Key is { } k ? Encoding.UTF8.GetString(k) : "";
            var value = consumed.Message.Value ?? [];
            if (key.StartsWith(chunkPrefix, StringComparison.Ordinal) && int.TryParse(key.AsSpan(chunkPrefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index) && value.Length >= 8)
            {
                chunks[index] = (BinaryPrimitives.ReadInt64LittleEndian(value), value[8..]);
            }
            else if (key == manifestKey && Decode(value, chunks, topic) is { } complete)
            {
                latest = complete;
            }
        }

        return latest;
    }

    /// <summary>A checkpoint as messages: its state's bytes in chunks (each led by the checkpoint's id), and the manifest naming them.</summary>
    private static (List<byte[]> Chunks, byte[] Manifest) Encode(StoredCheckpoint checkpoint)
    {
        var total = checkpoint.State.Sum(s => (long)s.Bytes.Length);
        var blob = new byte[total];
        var at = 0;
        foreach (var state in checkpoint.State)
        {
            state.Bytes.Span.CopyTo(blob.AsSpan(at));
            at += state.Bytes.Length;
        }

        var chunks = new List<byte[]>();
        for (var start = 0; start < blob.Length || chunks.Count == 0; start += CheckpointChunkBytes)
        {
            var length = Math.Min(CheckpointChunkBytes, blob.Length - start);
            var chunk = new byte[8 + length];
            BinaryPrimitives.WriteInt64LittleEndian(chunk, checkpoint.Id);
            blob.AsSpan(start, length).CopyTo(chunk.AsSpan(8));
            chunks.Add(chunk);
        }

        var manifest = new ArrayBufferWriter<byte>();
        manifest.Write([FormatVersion]);
        WriteInt64(manifest, checkpoint.Id);
        WriteInt32(manifest, chunks.Count);
        WriteInt32(manifest, checkpoint.Positions.Count);
        foreach (var position in checkpoint.Positions)
        {
            WriteString(manifest, position.Stream);
            WriteInt32(manifest, position.Partition);
            WriteInt64(manifest, position.Offset);
        }

        WriteInt32(manifest, checkpoint.State.Count);
        foreach (var state in checkpoint.State)
        {
            WriteString(manifest, state.Window);
            WriteString(manifest, state.Schema);
            WriteInt32(manifest, state.Partition);
            WriteInt32(manifest, state.Bytes.Length);
        }

        return (chunks, manifest.WrittenSpan.ToArray());
    }

    /// <summary>The checkpoint a manifest describes, if every chunk of it was read (else null: a newer one replaced some).</summary>
    private static StoredCheckpoint? Decode(byte[] manifest, Dictionary<int, (long Id, byte[] Bytes)> chunks, string topic)
    {
        try
        {
            var reader = new SpanReader(manifest);
            if (reader.Byte() != FormatVersion)
            {
                throw new InvalidDataException("a checkpoint of another format version");
            }

            var id = reader.Int64();
            var count = reader.Int32();
            var blob = new ArrayBufferWriter<byte>();
            for (var i = 0; i < count; i++)
            {
                if (!chunks.TryGetValue(i, out var chunk) || chunk.Id != id)
                {
                    return null;
                }

                blob.Write(chunk.Bytes);
            }

            var positions = new List<SourcePosition>();
            for (var i = reader.Int32(); i > 0; i--)
            {
                positions.Add(new SourcePosition(reader.String(), reader.Int32(), reader.Int64()));
            }

            var state = new List<WindowState>();
            var at = 0;
            var bytes = blob.WrittenMemory;
            for (var i = reader.Int32(); i > 0; i--)
            {
                var window = reader.String();
                var schema = reader.String();
                var partition = reader.Int32();
                var length = reader.Int32();
                state.Add(new WindowState(window, schema, partition, bytes.Slice(at, length).ToArray()));
                at += length;
            }

            return at == bytes.Length ? new StoredCheckpoint(id, positions, state) : throw new InvalidDataException("its state's length does not match its chunks");
        }
        catch (Exception ex) when (ex is InvalidDataException or ArgumentOutOfRangeException or IndexOutOfRangeException)
        {
            throw new NonRetryableException($"The checkpoint topic '{topic}' holds a checkpoint this build cannot read ({ex.Message}); point CheckpointTopic at a new topic to start with empty state.", ex);
        }
    }

    private static void WriteInt32(ArrayBufferWriter<byte> writer, int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(writer.GetSpan(4), value);
        writer.Advance(4);
    }

    private static void WriteInt64(ArrayBufferWriter<byte> writer, long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(writer.GetSpan(8), value);
        writer.Advance(8);
    }

    private static void WriteString(ArrayBufferWriter<byte> writer, string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        WriteInt32(writer, length);
        Encoding.UTF8.GetBytes(value, writer.GetSpan(length));
        writer.Advance(length);
    }

    private static void ProduceWaiting(IProducer<byte[]?, byte[]> producer, TopicPartition partition, Message<byte[]?, byte[]> message, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                producer.Produce(partition, message); // a failed delivery fails the transaction's commit
                return;
            }
            catch (ProduceException<byte[]?, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
            {
                cancellationToken.ThrowIfCancellationRequested();
                producer.Poll(TimeSpan.FromMilliseconds(100)); // backpressure: let deliveries drain
            }
        }
    }

    private static void TryAbort(IProducer<byte[]?, byte[]> producer)
    {
        try
        {
            producer.AbortTransaction(TimeSpan.FromSeconds(5));
        }
        catch (KafkaException)
        {
            // the run fails either way; the next run's producer aborts what this one left open
        }
    }

    /// <summary>A record encoded for the output topic, kept until its checkpoint commits.</summary>
    private readonly record struct StagedMessage(byte[]? Key, byte[] Value, Headers? Headers);

    /// <summary>Reads what <see cref="Encode"/> wrote.</summary>
    private ref struct SpanReader(ReadOnlySpan<byte> bytes)
    {
        private ReadOnlySpan<byte> _rest = bytes;

        public byte Byte()
        {
            var value = _rest[0];
            _rest = _rest[1..];
            return value;
        }

        public int Int32()
        {
            var value = BinaryPrimitives.ReadInt32LittleEndian(_rest);
            _rest = _rest[4..];
            return value;
        }

        public long Int64()
        {
            var value = BinaryPrimitives.ReadInt64LittleEndian(_rest);
            _rest = _rest[8..];
            return value;
        }

        public string String()
        {
            var length = Int32();
            var value = Encoding.UTF8.GetString(_rest[..length]);
            _rest = _rest[length..];
            return value;
        }
    }

    /// <summary>Stages a partition's records for the checkpoint that covers them (runs with window state).</summary>
    private sealed class StagingWriter(KafkaSink<T, TCodec> sink) : ISinkWriter<T>
    {
        private readonly ArrayBufferWriter<byte> _buffer = new();
        private List<StagedMessage> _records = [];

        public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            foreach (var record in records.Span)
            {
                _buffer.ResetWrittenCount();
                TCodec.Encode(record, _buffer);
                Headers? headers = null;
                if (sink._headers is { } addHeaders)
                {
                    headers = [];
                    addHeaders(record, headers);
                }

                _records.Add(new StagedMessage(sink._key?.Invoke(record) is { } key ? Encoding.UTF8.GetBytes(key) : null, _buffer.WrittenSpan.ToArray(), headers));
            }

            return ValueTask.CompletedTask;
        }

        /// <summary>Records wait for their checkpoint: nothing is written before it commits.</summary>
        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask CommitAsync(Checkpoint checkpoint, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(checkpoint);
            sink.Stage(checkpoint.Sequence, _records);
            _records = [];
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            _records = []; // records no checkpoint covered are not committed: their offsets were not either
            return ValueTask.CompletedTask;
        }
    }
}
