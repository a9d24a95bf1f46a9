using System.Buffers;
using System.Text;
using Confluent.Kafka;

namespace Compiled.Kafka;

/// <summary>Options of a <see cref="KafkaSink{T, TCodec}"/>. Every one is also a setting.</summary>
public sealed class KafkaSinkOptions
{
    /// <summary>
    /// How long a flush waits for the brokers to acknowledge outstanding records before it fails the run: 30 s, longer
    /// than a broker fail-over, shorter than anyone waits for a stuck pipeline.
    /// </summary>
    public static readonly TimeSpan DefaultFlushTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The brokers to bootstrap from, <c>host:port,host:port</c>.</summary>
    public string BootstrapServers { get; set; } = "localhost:9092";

    /// <summary>The topic written to.</summary>
    public string Topic { get; set; } = "";

    /// <summary>
    /// Write in Kafka transactions, committing the consumed offsets of a <c>KafkaSource</c> in the same transaction
    /// (Kafka → Kafka exactly-once). Default: false — an idempotent producer, at-least-once.
    /// </summary>
    public bool Transactional { get; set; }

    /// <summary>The start of each partition's transactional id: <c>{prefix}-{partition}</c>. Default: the pipeline's name.</summary>
    public string? TransactionalIdPrefix { get; set; }

    /// <summary>
    /// Where a run with window state keeps its checkpoints — the input offsets and the state, committed in the same
    /// Kafka transaction as the records they produced (partition 0; a compacted topic keeps it small). Default:
    /// <c>{TransactionalIdPrefix}.checkpoints</c>, the prefix defaulting to the pipeline's name.
    /// </summary>
    public string? CheckpointTopic { get; set; }

    /// <summary>Default: <see cref="DefaultFlushTimeout"/>.</summary>
    public TimeSpan FlushTimeout { get; set; } = DefaultFlushTimeout;

    /// <summary>Further librdkafka properties, <c>key=value;key=value</c>; shown with secrets masked.</summary>
    public string? Properties { get; set; }

    /// <summary>The options as settings.</summary>
    public IEnumerable<Setting> Settings() =>
    [
        Setting.Text(nameof(BootstrapServers), "The Kafka brokers to bootstrap from (host:port,…)", () => BootstrapServers, v => BootstrapServers = v),
        Setting.Text(nameof(Topic), "The topic written to", () => Topic, v => Topic = v),
        Setting.Boolean(nameof(Transactional), "Write in Kafka transactions together with the consumed offsets (Kafka -> Kafka exactly-once)", () => Transactional, v => Transactional = v),
        Setting.Text(nameof(TransactionalIdPrefix), "The start of each partition's transactional id (default: the pipeline's name)", () => TransactionalIdPrefix, v => TransactionalIdPrefix = v),
        Setting.Text(nameof(CheckpointTopic), "Where a run with window state keeps its checkpoints, in the records' transactions (default: {prefix}.checkpoints)", () => CheckpointTopic, v => CheckpointTopic = v),
        Setting.Duration(nameof(FlushTimeout), "How long a flush waits for acknowledgements before failing", () => FlushTimeout, v => FlushTimeout = v!.Value),
        Setting.ConnectionString(nameof(Properties), "Further librdkafka properties, key=value;key=value (secrets masked)", () => Properties, v => Properties = v),
    ];

    /// <summary>Checks the options, naming the bad one.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Topic))
        {
            throw new ArgumentException("Topic must name the topic to write to.", nameof(Topic));
        }

        if (Properties is not null && KafkaConfig.Check(Properties) is { } problem)
        {
            throw new ArgumentException($"Properties: {problem}.", nameof(Properties));
        }
    }
}

/// <summary>
/// Writes records to a Kafka topic, encoded by <typeparamref name="TCodec"/> as message values, with an optional key
/// (which picks the partition) and headers. The producer is idempotent (no duplicates from its own retries, order kept
/// per partition). Delivery failures are never dropped: a flush — at every checkpoint and at the end — waits for every
/// acknowledgement and fails the run with the first error. In <see cref="KafkaSinkOptions.Transactional"/> mode each
/// pipeline partition writes in Kafka transactions that also commit the consumed offsets of its <c>KafkaSource</c>; a
/// run with window state keeps each checkpoint's records until the checkpoint commits, and commits them with its
/// offsets and state in one transaction (<see cref="ICheckpointCommitter"/>, <see cref="KafkaSinkOptions.CheckpointTopic"/>).
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
/// <typeparam name="TCodec">The format of message values.</typeparam>
[System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "Two constructors with different required parameters (options, or a server and a topic); the optional ones follow each.")]
public sealed partial class KafkaSink<T, TCodec> : ISink<T>, IConfigurable, ITransactionalSink, ICheckpointCommitter
    where TCodec : IRecordCodec<T>
{
    private readonly KafkaSinkOptions _options;
    private readonly Func<T, string?>? _key;
    private readonly Action<T, Headers>? _headers;
    private SinkContext<T>? _context;
    private IProducer<byte[]?, byte[]>? _shared;

    /// <summary>Creates a sink; <paramref name="key"/> gives each record's key, <paramref name="headers"/> adds headers.</summary>
    public KafkaSink(KafkaSinkOptions options, Func<T, string?>? key = null, Action<T, Headers>? headers = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _key = key;
        _headers = headers;
    }

    /// <summary>Writes to <paramref name="topic"/> at <paramref name="bootstrapServers"/>.</summary>
    public KafkaSink(string bootstrapServers, string topic, Func<T, string?>? key = null)
        : this(new KafkaSinkOptions { BootstrapServers = bootstrapServers, Topic = topic }, key)
    {
    }

    /// <summary>The options (settings apply to this object).</summary>
    public KafkaSinkOptions Options => _options;

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings => _options.Settings();

    /// <inheritdoc/>
    public bool IsTransactional => _options.Transactional;

    /// <summary>
    /// True: the transaction commits the consumed offsets to the source's group. With window state (checkpoints in
    /// <see cref="KafkaSinkOptions.CheckpointTopic"/>) false: the offsets are kept with the state, and the source
    /// commits them to its group afterwards, for tools that show lag.
    /// </summary>
    public bool CommitsSourcePositions => !_checkpointsState;

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<SourcePosition>?> ClaimPositionsAsync(string pipeline, string source, IReadOnlyList<SourcePosition> partitions, CancellationToken cancellationToken)
        => ValueTask.FromResult<IReadOnlyList<SourcePosition>?>(null); // positions live in the consumer group; the transaction fences zombies

    /// <inheritdoc/>
    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _options.Validate();
        _context = context;
        if (!_options.Transactional)
        {
            _shared = Build(transactionalId: null); // thread-safe: one producer for all partitions batches best
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition)
    {
        var context = _context ?? throw new InvalidOperationException("The sink is not open.");
        if (_shared is { } shared)
        {
            return new Writer(this, shared, owned: false, transactional: false);
        }

        if (_checkpointsState)
        {
            return new StagingWriter(this, partition); // the records are produced with their checkpoint, by its transaction
        }

        var producer = Build($"{_options.TransactionalIdPrefix ?? context.PipelineName}-{partition}");
        producer.InitTransactions(_options.FlushTimeout);
        producer.BeginTransaction();
        return new Writer(this, producer, owned: true, transactional: true);
    }

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        _shared?.Dispose();
        _shared = null;
        DisposeCommitters();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public string Describe() => $"kafka topic {_options.Topic} at {_options.BootstrapServers}{(_options.Transactional ? " (transactional)" : "")}";

    private IProducer<byte[]?, byte[]> Build(string? transactionalId)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = _options.BootstrapServers,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            TransactionalId = transactionalId,

            // A delivery report is read for its error only; Confluent.Kafka would otherwise build the message's headers,
            // timestamp and status into every report.
            DeliveryReportFields = "none",
        };
        KafkaConfig.Apply(config, _options.Properties);
        return new ProducerBuilder<byte[]?, byte[]>(config).SetLogHandler((_, _) => { }).Build();
    }

    private sealed class Writer(KafkaSink<T, TCodec> sink, IProducer<byte[]?, byte[]> producer, bool owned, bool transactional) : ISinkWriter<T>
    {
        private readonly ArrayBufferWriter<byte> _buffer = new();
        private readonly ExactArrays _values = new();
        private readonly ExactArrays _keys = new();
        private readonly Message<byte[]?, byte[]> _message = new();
        private readonly Lock _failureLock = new();
        private Action<DeliveryReport<byte[]?, byte[]>>? _delivered;
        private long _pending;
        private Error? _failure;

        public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            ThrowIfFailed();
            var topic = sink._options.Topic;
            // Confluent.Kafka copies key and value into librdkafka inside Produce (RD_KAFKA_MSG_F_COPY), so one message
            // object and one array per length serve every record: no allocation per record for them.
            var message = _message;
            foreach (var record in records.Span)
            {
                _buffer.ResetWrittenCount();
                TCodec.Encode(record, _buffer);
                message.Value = _values.Copy(_buffer.WrittenSpan);
                message.Key = sink._key?.Invoke(record) is { } key ? _keys.Utf8(key) : null;
                if (sink._headers is { } addHeaders)
                {
                    message.Headers = [];
                    addHeaders(record, message.Headers);
                }

                Produce(topic, message, cancellationToken);
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            var deadline = DateTime.UtcNow + sink._options.FlushTimeout;
            while (Interlocked.Read(ref _pending) > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (DateTime.UtcNow > deadline)
                {
                    throw new KafkaException(new Error(ErrorCode.Local_TimedOut, $"{Interlocked.Read(ref _pending)} records to topic {sink._options.Topic} were not acknowledged within {Setting.FormatDuration(sink._options.FlushTimeout)}"));
                }

                producer.Flush(TimeSpan.FromMilliseconds(100));
            }

            ThrowIfFailed();
            return ValueTask.CompletedTask;
        }

        public async ValueTask CommitAsync(Checkpoint checkpoint, CancellationToken cancellationToken)
        {
            if (!transactional)
            {
                await FlushAsync(cancellationToken).ConfigureAwait(false);
                return;
            }

            // One transaction: the records produced since the last checkpoint, and the offsets they were read up to.
            await FlushAsync(cancellationToken).ConfigureAwait(false);
            if (checkpoint.Positions.Count > 0)
            {
                if (checkpoint.SourceState is not IConsumerGroupMetadata group)
                {
                    throw new InvalidOperationException("A transactional KafkaSink commits the offsets of a KafkaSource; this pipeline's source is not one.");
                }

                var offsets = checkpoint.Positions.Select(p => new TopicPartitionOffset(p.Stream, p.Partition, p.Offset)).ToList();
                producer.SendOffsetsToTransaction(offsets, group, sink._options.FlushTimeout);
            }

            producer.CommitTransaction(sink._options.FlushTimeout);
            producer.BeginTransaction();
        }

        public ValueTask DisposeAsync()
        {
            if (owned)
            {
                if (transactional)
                {
                    try
                    {
                        producer.AbortTransaction(TimeSpan.FromSeconds(5)); // anything after the last checkpoint is not committed
                    }
                    catch (KafkaException)
                    {
                        // closing after a failure
                    }
                }

                producer.Dispose();
            }

            return ValueTask.CompletedTask;
        }

        private void Produce(string topic, Message<byte[]?, byte[]> message, CancellationToken cancellationToken)
        {
            while (true)
            {
                try
                {
                    Interlocked.Increment(ref _pending);
                    producer.Produce(topic, message, _delivered ??= Delivered);
                    return;
                }
                catch (ProduceException<byte[]?, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
                {
                    // The local queue is full: let deliveries drain, then try again (backpressure, not failure).
                    Interlocked.Decrement(ref _pending);
                    cancellationToken.ThrowIfCancellationRequested();
                    producer.Poll(TimeSpan.FromMilliseconds(100));
                }
                catch
                {
                    Interlocked.Decrement(ref _pending);
                    throw;
                }
            }
        }

        private void Delivered(DeliveryReport<byte[]?, byte[]> report)
        {
            if (report.Error.IsError)
            {
                lock (_failureLock)
                {
                    _failure ??= report.Error;
                }
            }

            Interlocked.Decrement(ref _pending);
        }

        private void ThrowIfFailed()
        {
            Error? failure;
            lock (_failureLock)
            {
                failure = _failure;
            }

            if (failure is not null)
            {
                throw new KafkaException(failure);
            }
        }
    }
}

/// <summary>
/// Byte arrays of exactly the length asked for, one per length up to <see cref="Largest"/> bytes, reused: for values the
/// producer copies before the next one is made (longer ones are allocated each time).
/// </summary>
internal sealed class ExactArrays
{
    public const int Largest = 1024;
    private readonly byte[]?[] _byLength = new byte[]?[Largest + 1];

    /// <summary>An array holding <paramref name="bytes"/>, valid until the next call.</summary>
    public byte[] Copy(ReadOnlySpan<byte> bytes)
    {
        var array = Of(bytes.Length);
        bytes.CopyTo(array);
        return array;
    }

    /// <summary>An array holding <paramref name="text"/> in UTF-8, valid until the next call.</summary>
    public byte[] Utf8(string text)
    {
        var length = Encoding.UTF8.GetByteCount(text);
        var array = Of(length);
        Encoding.UTF8.GetBytes(text, array);
        return array;
    }

    private byte[] Of(int length)
        => length > Largest ? new byte[length] : _byLength[length] ??= new byte[length];
}
