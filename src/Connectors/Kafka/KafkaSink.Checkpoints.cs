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
public sealed partial class KafkaSink<T, TCodec> : IPartitionedCheckpointCommitter
{
    /// <summary>
    /// The most bytes of state in one message of the checkpoint topic: half a brokers' default <c>message.max.bytes</c>
    /// (1 MB), which leaves room for the key and the batch around it. Larger state is split into several messages.
    /// </summary>
    private const int CheckpointChunkBytes = 512 * 1024;

    private const byte FormatVersion = 1;

    private readonly Lock _staging = new();
    private readonly SortedDictionary<long, List<StagedMessage>> _staged = [];
    private IProducer<byte[]?, byte[]>? _committer; // a single process's
    private readonly Dictionary<(string Stream, int Partition), IProducer<byte[]?, byte[]>> _partitionCommitters = []; // a distributed copy's, one per input partition it holds
    private string? _checkpointTopic;
    private volatile bool _checkpointsState;

    /// <inheritdoc/>
    public string CheckpointLocation => $"Kafka topic {_checkpointTopic ?? _options.CheckpointTopic ?? "(not yet named)"} at {_options.BootstrapServers}, partition 0 (beside topic {_options.Topic})";

    /// <inheritdoc/>
    public string PartitionCheckpointLocation => CheckpointLocation;

    /// <inheritdoc/>
    public async ValueTask<StoredCheckpoint?> ClaimCheckpointAsync(string pipeline, CancellationToken cancellationToken)
    {
        var (topic, prefix) = StartClaim();
        return await Task.Run(
            () =>
            {
                _committer = InitTransactions($"{prefix}-checkpoints");
                var stored = ReadCheckpoints(pipeline, topic, cancellationToken);
                if (stored.GetValueOrDefault(pipeline) is { } latest)
                {
                    CheckNotInput(latest.Positions);
                }

                if (stored.Keys.FirstOrDefault(scope => scope != pipeline) is { } distributed)
                {
                    throw new NonRetryableException($"Pipeline '{pipeline}': the checkpoint topic '{topic}' holds checkpoints of a distributed run (of {distributed[(pipeline.Length + 1)..].Replace('#', '[')}]); a single process cannot take them over. Run it distributed, or point CheckpointTopic at a new topic to start with empty state.");
                }

                return stored.GetValueOrDefault(pipeline);
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask CommitCheckpointAsync(string pipeline, StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var committer = _committer ?? throw new InvalidOperationException("The sink's checkpoints were not claimed.");
        CheckNotInput(checkpoint.Positions);
        Commit(committer, pipeline, pipeline, checkpoint.Id, checkpoint.Positions, checkpoint.State, Unstage(checkpoint.Id), cancellationToken);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// A distributed copy claims its input partitions: for each, a transactional producer of its own
    /// (<c>{prefix}-{topic}-{partition}</c>), whose initialisation fences off the partition's previous owner on a real
    /// cluster, and the partition's latest checkpoint in the checkpoint topic (its offset and state).
    /// </summary>
    public async ValueTask<StoredCheckpoint> ClaimPartitionsAsync(string pipeline, IReadOnlyList<SourcePosition> partitions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        var (topic, prefix) = StartClaim();
        CheckNotInput(partitions);
        if (partitions.Select(p => p.Stream).Distinct().Skip(1).Any())
        {
            throw new NonRetryableException($"Pipeline '{pipeline}': a distributed run reads one topic; this one was assigned {string.Join(", ", partitions.Select(p => p.Stream).Distinct())}.");
        }

        return await Task.Run(
            () =>
            {
                foreach (var partition in partitions)
                {
                    _partitionCommitters[(partition.Stream, partition.Partition)] = InitTransactions($"{prefix}-{partition.Stream}-{partition.Partition.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
                }

                var stored = ReadCheckpoints(pipeline, topic, cancellationToken);
                if (stored.TryGetValue(pipeline, out var single))
                {
                    throw new NonRetryableException($"Pipeline '{pipeline}': the checkpoint topic '{topic}' holds checkpoint {single.Id} of a run as a single process, whose state is spread by a hash no other process shares; a distributed run cannot take it over. Finish it as a single process, or point CheckpointTopic at a new topic to start with empty state.");
                }

                var positions = new List<SourcePosition>(partitions.Count);
                var state = new List<WindowState>();
                var id = 0L;
                DateTimeOffset? taken = null;
                foreach (var partition in partitions)
                {
                    if (stored.TryGetValue(PartitionScope(pipeline, partition.Stream, partition.Partition), out var latest))
                    {
                        id = Math.Max(id, latest.Id);
                        taken = taken is { } t && t > latest.Taken ? t : latest.Taken;
                        positions.Add(partition with { Offset = latest.Positions.Count == 1 ? latest.Positions[0].Offset : -1 });
                        state.AddRange(latest.State);
                    }
                    else
                    {
                        positions.Add(partition with { Offset = -1 });
                    }
                }

                return new StoredCheckpoint(id, positions, state) { Taken = taken };
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Commits checkpoint <paramref name="checkpoint"/> partition by partition: each input partition's transaction holds
    /// the records its keyed partition produced, its offset and the state of its keys. A partition another copy has
    /// claimed since fails its commit on a real cluster (its producer is fenced): nothing of it is written.
    /// </summary>
    public ValueTask CommitPartitionsAsync(string pipeline, StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var records = Unstage(checkpoint.Id);
        var positions = checkpoint.Positions; // in the order of the keyed partitions, whose writers staged the records
        if (records.FirstOrDefault(r => r.Writer >= positions.Count) is { Value: not null } stray)
        {
            throw new InvalidOperationException($"A record was staged by writer {stray.Writer}, and the copy holds {positions.Count} partitions.");
        }

        var byWriter = records.ToLookup(r => r.Writer);
        for (var i = 0; i < positions.Count; i++)
        {
            var position = positions[i];
            var committer = _partitionCommitters.GetValueOrDefault((position.Stream, position.Partition)) ?? throw new InvalidOperationException($"Partition {position.Stream}[{position.Partition}] was not claimed.");
            Commit(committer, pipeline, PartitionScope(pipeline, position.Stream, position.Partition), checkpoint.Id, [position], [.. checkpoint.State.Where(s => s.Partition == position.Partition)], [.. byWriter[i]], cancellationToken);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Where a distributed copy keeps input partition <paramref name="partition"/>'s checkpoints in the checkpoint topic (a prefix of the messages' keys).</summary>
    private static string PartitionScope(string pipeline, string stream, int partition) => $"{pipeline}#{stream}#{partition.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Refuses a checkpoint topic that is one of the topics the pipeline reads (it would read its own checkpoints as input).</summary>
    private void CheckNotInput(IEnumerable<SourcePosition> positions)
    {
        if (positions.Any(p => p.Stream == _checkpointTopic))
        {
            throw new NonRetryableException($"The checkpoint topic '{_checkpointTopic}' is a topic the pipeline reads; set {nameof(KafkaSinkOptions.CheckpointTopic)} to a topic of its own.");
        }
    }

    /// <summary>What every claim does first: the run checkpoints state, so its records wait for their checkpoints.</summary>
    private (string Topic, string Prefix) StartClaim()
    {
        var context = _context ?? throw new InvalidOperationException("The sink is not open.");
        if (!_options.Transactional)
        {
            throw new InvalidOperationException("Only a transactional KafkaSink commits checkpoints.");
        }

        _checkpointsState = true;
        lock (_staging)
        {
            _staged.Clear(); // kept for checkpoints an earlier run in this process never committed
        }

        DisposeCommitters();
        return (_checkpointTopic = CheckpointTopicOf(context.PipelineName), _options.TransactionalIdPrefix ?? context.PipelineName);
    }

    /// <summary>
    /// A transactional producer, initialised: on a real cluster that fences off an earlier producer with the same id and
    /// aborts the transaction it left open, so the checkpoint topic read afterwards holds every checkpoint that will ever
    /// commit before this one's.
    /// </summary>
    private IProducer<byte[]?, byte[]> InitTransactions(string transactionalId)
    {
        var producer = Build(transactionalId);
        try
        {
            producer.InitTransactions(_options.FlushTimeout);
            return producer;
        }
        catch
        {
            producer.Dispose();
            throw;
        }
    }

    private void DisposeCommitters()
    {
        _committer?.Dispose(); // a transaction left open (a failed commit) is aborted by the next run's producer
        _committer = null;
        foreach (var producer in _partitionCommitters.Values)
        {
            producer.Dispose();
        }

        _partitionCommitters.Clear();
    }

    /// <summary>Takes the records staged for every checkpoint up to <paramref name="id"/>.</summary>
    private List<StagedMessage> Unstage(long id)
    {
        var records = new List<StagedMessage>();
        lock (_staging)
        {
            foreach (var staged in _staged.Keys.Where(staged => staged <= id).ToList())
            {
                records.AddRange(_staged[staged]);
                _staged.Remove(staged);
            }
        }

        return records;
    }

    /// <summary>One transaction: <paramref name="records"/> to the output topic, then the state and the manifest of checkpoint <paramref name="id"/> under <paramref name="scope"/>.</summary>
    private void Commit(IProducer<byte[]?, byte[]> committer, string pipeline, string scope, long id, IReadOnlyList<SourcePosition> positions, IReadOnlyList<WindowState> states, List<StagedMessage> records, CancellationToken cancellationToken)
    {
        var (chunks, manifest) = Encode(id, positions, states);
        try
        {
            committer.BeginTransaction();
            var message = new Message<byte[]?, byte[]>();
            var output = new TopicPartition(_options.Topic, Partition.Any); // the key picks the partition
            foreach (var record in records)
            {
                message.Key = record.Key;
                message.Value = record.Value;
                message.Headers = record.Headers;
                ProduceWaiting(committer, output, message, cancellationToken);
            }

            var state = new TopicPartition(_checkpointTopic!, 0);
            message.Headers = null;
            for (var i = 0; i < chunks.Count; i++)
            {
                message.Key = Encoding.UTF8.GetBytes($"{scope}#chunk-{i.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
                message.Value = chunks[i];
                ProduceWaiting(committer, state, message, cancellationToken);
            }

            message.Key = Encoding.UTF8.GetBytes($"{scope}#checkpoint");
            message.Value = manifest;
            ProduceWaiting(committer, state, message, cancellationToken);
            committer.CommitTransaction(_options.FlushTimeout); // flushes first: a record not delivered fails the commit
        }
        catch (KafkaException ex) when (ex.Error.Code is ErrorCode.ProducerFenced or ErrorCode.Local_Fenced or ErrorCode.InvalidProducerEpoch)
        {
            throw new FencedException($"Pipeline '{pipeline}': another run or copy of this pipeline has claimed {(scope == pipeline ? "its checkpoints" : $"partition {scope[(pipeline.Length + 1)..].Replace('#', '[')}]")} since this one did (its transactional producer was fenced); nothing of checkpoint {id} was committed there.");
        }
        catch (KafkaException)
        {
            // The checkpoint is not committed (or, if the commit's answer was lost, the next run finds it in the topic):
            // the run fails and the next one resumes from the last checkpoint the topic holds.
            TryAbort(committer);
            throw;
        }
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
        if (!TopicName().IsMatch(topic) || topic is "." or "..")
        {
            throw new NonRetryableException($"The checkpoint topic '{topic}' is not a Kafka topic name (letters, digits, '.', '_' and '-', at most 249, not '.' or '..'); set {nameof(KafkaSinkOptions.CheckpointTopic)}.");
        }

        if (topic == _options.Topic)
        {
            throw new NonRetryableException($"The checkpoint topic '{topic}' is the topic the records are written to; set {nameof(KafkaSinkOptions.CheckpointTopic)} to a topic of its own.");
        }

        return topic;
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,249}$")]
    private static partial Regex TopicName();

    /// <summary>
    /// Reads the checkpoint topic to its end and returns, for each scope of <paramref name="pipeline"/> (the pipeline's
    /// name for a single process, <see cref="PartitionScope"/> for each partition of a distributed run), its last
    /// checkpoint whose messages are all there.
    /// </summary>
    private Dictionary<string, StoredCheckpoint> ReadCheckpoints(string pipeline, string topic, CancellationToken cancellationToken)
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
            throw new NonRetryableException($"The checkpoint topic '{topic}' does not exist; create it: kafka-topics.sh --create --topic {topic} --partitions 1 --config cleanup.policy=compact", ex);
        }

        var latest = new Dictionary<string, StoredCheckpoint>();
        var torn = new Dictionary<string, long>(); // scopes whose last manifest lacks pieces: its checkpoint id
        if (watermarks.High.Value <= watermarks.Low.Value)
        {
            return latest;
        }

        const string ManifestSuffix = "#checkpoint";
        const string ChunkMark = "#chunk-";
        var chunks = new Dictionary<(string Scope, int Index), (long Id, byte[] Bytes)>();
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
                if (torn.Count > 0)
                {
                    // Restoring an older checkpoint, or none, would write the newer one's output again.
                    var (scope, id) = torn.First();
                    throw new NonRetryableException($"The checkpoint topic '{topic}' holds checkpoint {id} of {(scope == pipeline ? $"pipeline '{pipeline}'" : $"partition {scope[(pipeline.Length + 1)..].Replace('#', '[')}] of pipeline '{pipeline}'")} without all of its pieces: the cluster deleted some (a topic that is not compacted, with a retention shorter than the pipeline's life). Restoring an older checkpoint would write output again, so the run stops. Make the topic compacted (cleanup.policy=compact); to start over with empty state, point CheckpointTopic at a new topic (what the windows had produced is produced again).");
                }

                if (watermarks.Low.Value > 0 && latest.Count == 0)
                {
                    _context?.Warn?.Invoke($"the checkpoint topic '{topic}' starts at offset {watermarks.Low.Value}: the cluster deleted its first messages (retention), and none of what is left is a checkpoint of this pipeline. If this pipeline checkpointed there before, its state and offsets are gone and it starts empty; make the topic compacted (cleanup.policy=compact).");
                }

                return latest;
            }

            deadline = DateTime.UtcNow + _options.FlushTimeout; // progress: the deadline is for a stalled read
            var key = consumed.Message.Key is { } k ? Encoding.UTF8.GetString(k) : "";
            var value = consumed.Message.Value ?? [];
            if (!(key.StartsWith(pipeline, StringComparison.Ordinal) && key.Length > pipeline.Length && key[pipeline.Length] == '#'))
            {
                continue; // another pipeline's
            }

            var chunk = key.LastIndexOf(ChunkMark, StringComparison.Ordinal);
            if (chunk > 0 && int.TryParse(key.AsSpan(chunk + ChunkMark.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index) && value.Length >= 8)
            {
                chunks[(key[..chunk], index)] = (BinaryPrimitives.ReadInt64LittleEndian(value), value[8..]);
            }
            else if (key.EndsWith(ManifestSuffix, StringComparison.Ordinal))
            {
                var scope = key[..^ManifestSuffix.Length];
                if (Decode(value, i => chunks.TryGetValue((scope, i), out var c) ? c : null, topic) is { } complete)
                {
                    latest[scope] = complete with { Taken = consumed.Message.Timestamp.UtcDateTime };
                    torn.Remove(scope);
                }
                else
                {
                    torn[scope] = value.Length >= 9 ? BinaryPrimitives.ReadInt64LittleEndian(value.AsSpan(1)) : -1;
                }
            }
        }
    }

    /// <summary>A checkpoint as messages: its state's bytes in chunks (each led by the checkpoint's id), and the manifest naming them.</summary>
    private static (List<byte[]> Chunks, byte[] Manifest) Encode(long id, IReadOnlyList<SourcePosition> positions, IReadOnlyList<WindowState> states)
    {
        var total = states.Sum(s => (long)s.Bytes.Length);
        var blob = new byte[total];
        var at = 0;
        foreach (var state in states)
        {
            state.Bytes.Span.CopyTo(blob.AsSpan(at));
            at += state.Bytes.Length;
        }

        var chunks = new List<byte[]>();
        for (var start = 0; start < blob.Length || chunks.Count == 0; start += CheckpointChunkBytes)
        {
            var length = Math.Min(CheckpointChunkBytes, blob.Length - start);
            var chunk = new byte[8 + length];
            BinaryPrimitives.WriteInt64LittleEndian(chunk, id);
            blob.AsSpan(start, length).CopyTo(chunk.AsSpan(8));
            chunks.Add(chunk);
        }

        var manifest = new ArrayBufferWriter<byte>();
        manifest.Write([FormatVersion]);
        WriteInt64(manifest, id);
        WriteInt32(manifest, chunks.Count);
        WriteInt32(manifest, positions.Count);
        foreach (var position in positions)
        {
            WriteString(manifest, position.Stream);
            WriteInt32(manifest, position.Partition);
            WriteInt64(manifest, position.Offset);
        }

        WriteInt32(manifest, states.Count);
        foreach (var state in states)
        {
            WriteString(manifest, state.Window);
            WriteString(manifest, state.Schema);
            WriteInt32(manifest, state.Partition);
            WriteInt32(manifest, state.Bytes.Length);
        }

        return (chunks, manifest.WrittenSpan.ToArray());
    }

    /// <summary>The checkpoint a manifest describes, if every chunk of it was read (else null: a newer one replaced some).</summary>
    private static StoredCheckpoint? Decode(byte[] manifest, Func<int, (long Id, byte[] Bytes)?> chunkOf, string topic)
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
                if (chunkOf(i) is not { } chunk || chunk.Id != id)
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

    /// <summary>A record encoded for the output topic by the writer of pipeline partition <paramref name="Writer"/>, kept until its checkpoint commits.</summary>
    private readonly record struct StagedMessage(int Writer, byte[]? Key, byte[] Value, Headers? Headers);

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
    private sealed class StagingWriter(KafkaSink<T, TCodec> sink, int partition) : ISinkWriter<T>
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

                _records.Add(new StagedMessage(partition, sink._key?.Invoke(record) is { } key ? Encoding.UTF8.GetBytes(key) : null, _buffer.WrittenSpan.ToArray(), headers));
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
