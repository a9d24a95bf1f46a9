using System.Buffers;
using System.Globalization;
using Compiled.Runtime.CompilerServices;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Compiled.Kafka;

/// <summary>
/// Reads records from Kafka topics, decoded by <typeparamref name="TCodec"/> from each message's value. Every pipeline
/// partition is one member of the consumer group, so Kafka spreads the topic partitions over the pipeline's
/// partitions — and over every copy of the binary running in the same group.
/// </summary>
/// <remarks>
/// <para>Delivery. Offsets are committed only at checkpoints, after every sink made the records before them durable:
/// at-least-once. When the pipeline's only sink is transactional (a <c>PostgresSink</c> in exactly-once mode), the
/// sink stores the offsets with the rows in one transaction and the source resumes from the sink's offsets, not
/// Kafka's: exactly-once. When partitions are revoked in a rebalance, the partition takes a checkpoint before it lets
/// them go, so their new owner starts exactly where this one stopped.</para>
/// <para>Malformed messages go to the dead-letter channel with topic, partition and offset; the run goes on. So do
/// messages without a value (tombstones), unless a <see cref="KafkaTombstone{T}"/> callback turns each into a record
/// (on a changelog topic, the delete of its key).</para>
/// <para>Values are decoded by the codec; a <see cref="KafkaMetadata{T}"/> callback may copy keys, timestamps,
/// headers, partitions and offsets into the records.</para>
/// </remarks>
/// <typeparam name="T">The record type.</typeparam>
/// <typeparam name="TCodec">The format of message values.</typeparam>
[System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "Two constructors with different required parameters (options, or servers and topics); the optional ones follow each.")]
public sealed class KafkaSource<T, TCodec> : ISource<T>, IConfigurable, ISourceProgress, IRepartitionSource<T>
    where TCodec : IRecordCodec<T>
{
    private readonly KafkaSourceOptions _options;
    private readonly KafkaMetadata<T>? _metadata;
    private readonly KafkaTombstone<T>? _tombstone;
    private readonly Lock _lock = new();
    private readonly List<Reader> _readers = [];
    private SourceContext<T>? _context;
    private KafkaGroupMember? _member;
    private string? _pipeline;
    private string? _hop; // the repartition topic the keyed half reads (Distributed without PartitionedByKey)
    private int _hopPartitions;

    /// <summary>
    /// Creates a source with <paramref name="options"/>; <paramref name="metadata"/>, when given, copies each message's
    /// key, partition, offset, timestamp or headers into its decoded record; <paramref name="tombstone"/>, when given,
    /// builds the record of each message without a value (else such messages are dead-lettered).
    /// </summary>
    public KafkaSource(KafkaSourceOptions options, KafkaMetadata<T>? metadata = null, KafkaTombstone<T>? tombstone = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _metadata = metadata;
        _tombstone = tombstone;
    }

    /// <summary>Reads <paramref name="topics"/> (comma-separated) from <paramref name="bootstrapServers"/>.</summary>
    public KafkaSource(string bootstrapServers, string topics, string? groupId = null)
        : this(new KafkaSourceOptions { BootstrapServers = bootstrapServers, Topics = topics, GroupId = groupId })
    {
    }

    /// <summary>The options (settings apply to this object).</summary>
    public KafkaSourceOptions Options => _options;

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings => _options.Settings();

    /// <summary>Transient client errors so far (a broker unreachable, a connection lost): librdkafka retries them by itself.</summary>
    public long ClientErrors => Interlocked.Read(ref _clientErrors);

    private long _clientErrors;
    private long _repeats;

    /// <summary>Records of a repartition topic dropped as written twice (a writer restarted from an earlier commit).</summary>
    internal long Repeats => Interlocked.Read(ref _repeats);

    /// <summary>Records consumed so far, and behind them the consumer lag: records in the assigned partitions not yet read.</summary>
    public SourceProgress Progress
    {
        get
        {
            long done = 0, lag = 0;
            lock (_lock)
            {
                foreach (var reader in _readers)
                {
                    done += reader.Consumed;
                    lag += reader.Lag;
                }
            }

            return new SourceProgress(done, done + lag, "records");
        }
    }

    /// <inheritdoc/>
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            _options.Validate();
        }
        catch (ArgumentException ex)
        {
            // A setting that cannot work: the run cannot start (exit 2), and retrying would not help.
            throw new NonRetryableException($"Source '{context.SourceName}': {ex.Message}", ex);
        }

        if (_options.Distributed && context.Assignment is null)
        {
            throw new NonRetryableException($"Source '{context.SourceName}': Distributed is set, but pipeline '{context.PipelineName}' does not run as a distributed job (it reads several sources, or has no window behind this one); unset Distributed. See docs/deployment.md.");
        }

        _context = context;
        lock (_lock)
        {
            _readers.Clear();
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISourceReader<T> CreateReader(int partition)
    {
        var context = _context ?? throw new InvalidOperationException("The source is not open.");
        var reader = new Reader(this, context, partition);
        lock (_lock)
        {
            _readers.Add(reader);
        }

        return reader;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The readers' consumers leave the group here, all together, not each as its partition finishes: a member leaving
    /// makes the group rebalance, and a commit a reader still draining makes during a rebalance is refused — its
    /// partitions' next owner (the next run) would read those records again.
    /// </remarks>
    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        Reader[] readers;
        lock (_lock)
        {
            readers = [.. _readers];
            _readers.Clear();
        }

        await Task.WhenAll(readers.Select(r => r.LeaveAsync().AsTask())).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public bool IsDistributed => _options.Distributed;

    /// <inheritdoc/>
    public ValueTask<PartitionLease> AcquireAsync(string pipeline, CancellationToken cancellationToken)
    {
        _options.Validate();
        if (_member is null)
        {
            var config = new ConsumerConfig
            {
                BootstrapServers = _options.BootstrapServers,
                GroupId = KeyedGroupId(pipeline),
                ClientId = $"{pipeline}-member",
                EnableAutoCommit = false,
                EnableAutoOffsetStore = false,
                SessionTimeoutMs = (int)_options.SessionTimeout.TotalMilliseconds,
                HeartbeatIntervalMs = (int)Math.Max(100, _options.SessionTimeout.TotalMilliseconds / 5),
                PartitionAssignmentStrategy = PartitionAssignmentStrategy.RoundRobin,
            };
            KafkaConfig.Apply(config, _options.Properties);
            _member = new KafkaGroupMember(config, KafkaConfig.Topics(ReadTopics));
        }

        return _member.AcquireAsync(cancellationToken);
    }

    /// <inheritdoc/>
    public async ValueTask RejoinAsync(CancellationToken cancellationToken)
    {
        if (_member is { } member)
        {
            await member.RejoinAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async ValueTask LeaveAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _member, null) is { } member)
        {
            await member.LeaveAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public string Describe() => $"kafka {_options.Topics} at {_options.BootstrapServers} (group {(_context is null && string.IsNullOrWhiteSpace(_options.GroupId) ? "named after the pipeline" : GroupId(_context?.PipelineName ?? ""))}{(_hop is null ? "" : $"; keyed through repartition topic {_hop}")}{(_tombstone is null ? "" : "; tombstones become records")})";

    private string GroupId(string pipeline) => string.IsNullOrWhiteSpace(_options.GroupId) ? pipeline : _options.GroupId;

    /// <summary>
    /// The group of the keyed run's members and readers: the source's group, or, behind a repartition hop, a group of
    /// the hop's own (named like its topic) — the writers hold the source's group, and a group whose members subscribe
    /// to different topics would rebalance both halves together.
    /// </summary>
    private string KeyedGroupId(string pipeline) => _hop ?? GroupId(pipeline);

    /// <summary>The topics the keyed run reads: the source's, or its repartition topic.</summary>
    private string ReadTopics => _hop ?? _options.Topics;

    /// <summary>The topic whose records the topic read carries through a repartition hop; null: none.</summary>
    private string? HopOf => _hop is not null ? KafkaConfig.Topics(_options.Topics)[0] : _options.HopOf;

    /// <inheritdoc/>
    public bool Repartitions => _options.Distributed && !_options.PartitionedByKey;

    /// <inheritdoc/>
    public async ValueTask<string> PrepareRepartitionAsync(string pipeline, string stage, CancellationToken cancellationToken)
    {
        _options.Validate();
        _pipeline = pipeline;
        var config = new AdminClientConfig { BootstrapServers = _options.BootstrapServers, ClientId = $"{pipeline}-admin" };
        KafkaConfig.Apply(config, _options.Properties);
        using var admin = new AdminClientBuilder(config).SetLogHandler((_, _) => { }).Build();
        var topic = KafkaConfig.Topics(_options.Topics)[0];
        var origins = PartitionCount(admin, topic) ?? throw new ArgumentException($"Topics: topic '{topic}' does not exist; create it before a distributed run (its partition count sets the repartition topic's).");
        var hop = RepartitionTopic(GroupId(pipeline), stage);
        var wanted = _options.RepartitionPartitions ?? origins;
        var partitions = PartitionCount(admin, hop);
        if (partitions is null)
        {
            try
            {
                var create = new CreateTopicsOptions { RequestTimeout = CreateTopicTimeout, OperationTimeout = CreateTopicTimeout };
                await admin.CreateTopicsAsync([new TopicSpecification { Name = hop, NumPartitions = wanted, ReplicationFactor = _options.RepartitionReplicationFactor }], create).WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (CreateTopicsException ex) when (ex.Results.All(r => r.Error.Code is ErrorCode.TopicAlreadyExists or ErrorCode.NoError))
            {
                // Another copy created it first.
            }
            catch (KafkaException ex)
            {
                var refused = ex is CreateTopicsException created ? created.Results.Select(r => r.Error).FirstOrDefault(e => e.IsError) ?? ex.Error : ex.Error;
                var message = $"could not create the repartition topic '{hop}' with {wanted} partitions ({refused.Reason}); create it before the run (kafka-topics.sh --create --topic {hop} --partitions {wanted}), or let this copy create topics";
                if (refused.Code is ErrorCode.TopicAuthorizationFailed or ErrorCode.ClusterAuthorizationFailed or ErrorCode.PolicyViolation
                    or ErrorCode.InvalidReplicationFactor or ErrorCode.InvalidPartitions or ErrorCode.InvalidReplicaAssignment or ErrorCode.InvalidConfig or ErrorCode.TopicException)
                {
                    throw new ArgumentException($"Topics: {message}.", ex); // the cluster said no: trying again would not help (exit 2)
                }

                throw new KafkaException(new Error(refused.Code, message), ex);
            }

            partitions = PartitionCount(admin, hop) ?? throw new KafkaException(new Error(ErrorCode.UnknownTopicOrPart, $"the repartition topic '{hop}' was created but is not in the cluster's metadata"));
        }

        if (_options.RepartitionPartitions is { } set && set != partitions)
        {
            throw new ArgumentException($"RepartitionPartitions: the repartition topic '{hop}' exists with {partitions} partitions, not {set}. Its partitions own the keys' state, so their number cannot change under a running job: keep {partitions}, or start over (delete the topic and the pipeline's checkpoints: its rows in compiled_partitions and compiled_partition_state, or a Kafka sink's CheckpointTopic).");
        }

        _hop = hop;
        _hopPartitions = partitions.Value;
        return $"repartition topic {hop} ({partitions} partitions, group {hop}), written from {topic} ({origins} partitions, group {GroupId(pipeline)})";
    }

    /// <inheritdoc/>
    public Task RunRepartitionAsync(IRepartitionKey<T> key, TimeSpan commitInterval, CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(key);
        var hop = _hop ?? throw new InvalidOperationException("PrepareRepartitionAsync comes first.");
        var writer = new KafkaRepartitionWriter<T, TCodec>(_options, GroupId(_pipeline!), hop, _hopPartitions, key, commitInterval);
        return writer.RunAsync(stopping);
    }

    /// <summary>
    /// The repartition topic of <paramref name="stage"/>: <c>{group}-{stage}-repartition</c> (Kafka Streams' naming),
    /// with characters Kafka does not allow in a topic's name replaced by <c>_</c>.
    /// </summary>
    internal static string RepartitionTopic(string group, string stage)
    {
        var name = $"{group}-{stage}-repartition";
        var chars = name.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!(char.IsAsciiLetterOrDigit(chars[i]) || chars[i] is '.' or '_' or '-'))
            {
                chars[i] = '_';
            }
        }

        return chars.Length > MaxTopicName ? throw new ArgumentException($"GroupId: the repartition topic's name '{name}' is longer than Kafka's {MaxTopicName} characters; choose a shorter group.") : new string(chars);
    }

    /// <summary>How long creating the repartition topic may take: 15 s, many times what a cluster needs, short enough that a copy denied the right says so soon.</summary>
    private static readonly TimeSpan CreateTopicTimeout = TimeSpan.FromSeconds(15);

    /// <summary>Kafka's limit on a topic's name.</summary>
    private const int MaxTopicName = 249;

    /// <remarks>
    /// Asks for every topic's metadata, not <paramref name="topic"/>'s: a request naming a topic that does not exist
    /// creates it on brokers (and the mock cluster) that create topics on first use, with their default partitions.
    /// </remarks>
    private static int? PartitionCount(IAdminClient admin, string topic)
    {
        var described = admin.GetMetadata(TimeSpan.FromSeconds(30)).Topics.FirstOrDefault(t => t.Topic == topic);
        return described is null || described.Error.IsError || described.Partitions.Count == 0 ? null : described.Partitions.Count;
    }

    /// <summary>One pipeline partition: one consumer, one member of the group.</summary>
    private sealed class Reader : ISourceReader<T>, IRecordOrigins, ISplitStateReader
    {
        private readonly KafkaSource<T, TCodec> _source;
        private readonly SourceContext<T> _context;
        private readonly int _partition;
        private readonly KafkaSourceOptions _options;
        private readonly IConsumer<ValueSlice, ValueSlice> _consumer;
        private readonly ArenaDeserializer _values = new();
        private readonly PollThread _poller;
        private int _left;
        private readonly Dictionary<TopicPartition, Owned> _owned = [];
        private readonly string? _topic; // the one topic read, when Confluent.Kafka is asked not to name it per message
        private TopicPartition?[] _partitions = new TopicPartition?[16]; // that topic's partitions, by number
        private readonly Dictionary<TopicPartition, int> _splitIds = [];
        private readonly SourceSplits _splits = new();
        private readonly List<(TopicPartition Partition, long Offset)> _atEnd = [];
        private readonly T[] _records;
        private readonly Message[] _consumed;
        private readonly int[] _originOf;
        private Exception? _handlerFailure;
        private bool _closing;
        private int _pending;
        private long _consumedCount;

        /// <summary>How long a partition woken from idleness (<see cref="WakeIdle"/>) holds the watermark back at most without reaching its end.</summary>
        private const long WakeLimit = 10_000;

        /// <summary>When idle partitions' brokers were last asked whether they hold messages past the end (<see cref="WakeIdle"/>).</summary>
        private long _idleAsked = long.MinValue;
        private long _lag;

        public Reader(KafkaSource<T, TCodec> source, SourceContext<T> context, int partition)
        {
            _source = source;
            _context = context;
            _partition = partition;
            _options = source._options;
            _records = new T[context.BatchSize];
            _consumed = new Message[context.BatchSize];
            _originOf = new int[context.BatchSize];
            var config = KafkaConfig.Reader(_options, source.KeyedGroupId(context.PipelineName), $"{context.PipelineName}-{partition}");

            // Confluent.Kafka builds a Headers list, a timestamp and the topic's name into every message it returns unless
            // told not to (~200 B per message): ask only for what this source uses. Metadata and tombstone callbacks see
            // everything; a source of one topic knows the topic's name without it (not of a pattern: librdkafka reads
            // "^…" as a regex).
            var callbacks = source._metadata is not null || source._tombstone is not null;
            var topics = KafkaConfig.Topics(source.ReadTopics);
            _topic = topics.Count == 1 && !topics[0].StartsWith('^') && !callbacks ? topics[0] : null;
            var fields = new List<string>(2);
            if (_topic is null)
            {
                fields.Add("topic");
            }

            if (source.HopOf is not null)
            {
                fields.Add("headers"); // a repartition topic's messages carry their origin
            }

            config.ConsumeResultFields = callbacks ? "all" : fields.Count == 0 ? "none" : string.Join(',', fields);
            KafkaConfig.Apply(config, _options.Properties);

            // A partition read to its end (for IdleAfterEnd) is idle for the watermark until its next message (see SourceSplits).
            config.EnablePartitionEof = true;
            _consumer = new ConsumerBuilder<ValueSlice, ValueSlice>(config)
                .SetKeyDeserializer(callbacks ? _values : NoSlice.Instance)
                .SetValueDeserializer(_values)
                .SetPartitionsAssignedHandler((consumer, partitions) => Guard(() => Assigned(consumer, partitions), () => partitions.Select(p => new TopicPartitionOffset(p, Offset.Unset)).ToList()))
                .SetPartitionsRevokedHandler((_, partitions) => Guard(() => Revoked(partitions)))
                .SetPartitionsLostHandler((_, partitions) => Guard(() => Lost(partitions)))
                .SetErrorHandler((_, error) =>
                {
                    if (error.IsFatal)
                    {
                        _handlerFailure ??= new KafkaException(error);
                    }
                    else
                    {
                        // Transient (a broker down, a lost connection): librdkafka retries by itself.
                        Interlocked.Increment(ref source._clientErrors);
                    }
                })
                .SetLogHandler((_, _) => { })
                .Build();
            if (!context.CheckpointsState)
            {
                _consumer.Subscribe(KafkaConfig.Topics(source.ReadTopics));
            }

            _poller = new PollThread($"kafka {context.PipelineName}/{partition}");
        }

        /// <summary>Whether the reader has taken its share of the topics' partitions (runs with checkpointed state).</summary>
        private bool _assigned;

        /// <summary>
        /// Runs with checkpointed keyed state: the partitions of the topics are spread over the pipeline's readers by the
        /// source itself — the i-th partition (topics in order, partitions by number) goes to reader i mod parallelism —
        /// and never move while the run lasts, so every checkpoint's positions describe exactly what its state holds.
        /// No group rebalance takes part (the group only stores committed offsets, for tools that show lag).
        /// </summary>
        private void AssignStatically()
        {
            _assigned = true;
            if (_context.Assignment is { } assignment)
            {
                // Distributed: the group leased these to this copy; the i-th is split i, which keyed partition i owns.
                var leased = new List<TopicPartition>();
                for (var i = _partition; i < assignment.Count; i += _context.Parallelism)
                {
                    var partition = new TopicPartition(assignment[i].Stream, assignment[i].Partition);
                    _splitIds[partition] = i;
                    leased.Add(partition);
                }

                _consumer.Assign(Assigned(_consumer, leased));
                MarkRestoredAtEnd();
                return;
            }

            using var admin = new DependentAdminClientBuilder(_consumer.Handle).Build();
            var all = new List<TopicPartition>();
            foreach (var topic in KafkaConfig.Topics(_source.ReadTopics))
            {
                var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(30));
                var described = metadata.Topics.FirstOrDefault(t => t.Topic == topic);
                if (described is null || described.Error.IsError || described.Partitions.Count == 0)
                {
                    throw new KafkaException(new Error(ErrorCode.UnknownTopicOrPart, $"topic '{topic}' has no partitions the source can read ({described?.Error.Reason ?? "not in the cluster's metadata"}); create it before the run: a run with checkpointed state assigns partitions once, at start"));
                }

                all.AddRange(described.Partitions.OrderBy(p => p.PartitionId).Select(p => new TopicPartition(topic, p.PartitionId)));
            }

            var restored = _context.RestoredPositions;
            if (_partition == 0 && restored.Count > 0 && !restored.Any(p => all.Contains(new TopicPartition(p.Stream, p.Partition))))
            {
                // Found writing a test that reused a pipeline name with new topics: every record was late, and nothing said why.
                _context.Inform($"the restored checkpoint has offsets of {string.Join(", ", restored.Select(p => p.Stream).Distinct())}, none of the partitions read now; its state and watermark still apply, so records behind that watermark are late — to start afresh, delete the pipeline's checkpoints");
            }

            var mine = all.Where((_, i) => i % _context.Parallelism == _partition).ToList();
            _consumer.Assign(Assigned(_consumer, mine));
            MarkRestoredAtEnd();
        }

        /// <summary>
        /// A partition resumed exactly at its end (everything in it was read before the checkpoint) may never deliver a
        /// message nor an end-of-partition event, and would hold the watermark back for good: it counts as read to its
        /// end now, so it turns idle after <see cref="KafkaSourceOptions.IdleAfterEnd"/> like any partition at its end.
        /// </summary>
        private void MarkRestoredAtEnd()
        {
            foreach (var (partition, owned) in _owned)
            {
                if (owned.Next < 0)
                {
                    continue;
                }

                try
                {
                    var marks = _consumer.QueryWatermarkOffsets(partition, TimeSpan.FromSeconds(10));
                    if (marks.High != Offset.Unset && marks.High.Value <= owned.Next)
                    {
                        _atEnd.Add((partition, owned.Next));
                    }
                }
                catch (KafkaException)
                {
                    // Unknown for now: the partition waits for its end-of-partition event as before.
                }
            }
        }

        public long Consumed => Interlocked.Read(ref _consumedCount);

        public long Lag => Interlocked.Read(ref _lag);

        public bool CommitsPositions => true;

        public IReadOnlyList<SourcePosition> Positions
            => [.. _owned.Where(o => o.Value.Next >= 0).Select(o => new SourcePosition(o.Key.Topic, o.Key.Partition.Value, o.Value.Next, o.Value.Epoch))];

        public object? CheckpointState => _consumer.ConsumerGroupMetadata;

        public RecordOrigin this[int index]
        {
            get
            {
                ref readonly var consumed = ref _consumed[_originOf[index]];
                return Origin(consumed);
            }
        }

        /// <summary>
        /// Polls on the reader's own thread: librdkafka's Consume blocks for up to the poll timeout, which must not hold a
        /// thread-pool thread (a run with more partitions than cores would starve). The worker awaits the poll, so the
        /// rebalance callbacks that run inside it — and the checkpoint a revoke takes — still run while the worker is
        /// inside ReadAsync, never beside its processing.
        /// </summary>
        public ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
            => new(_poller.Run(() => Read(cancellationToken)));

        private SourceBatch<T> Read(CancellationToken cancellationToken)
        {
            ThrowHandlerFailure();
            _values.Reset();
            _pending = 0;
            _splits.ClearRuns();
            _atEnd.Clear();
            _originEnds.Clear();
            _originEndFailed = false;
            if (!_assigned && _context.CheckpointsState)
            {
                AssignStatically();
            }

            if (!cancellationToken.IsCancellationRequested)
            {
                var result = _consumer.Consume(_options.PollTimeout);
                ThrowHandlerFailure();
                while (result is not null)
                {
                    if (result.IsPartitionEOF)
                    {
                        _atEnd.Add((PartitionOf(result), result.Offset.Value)); // idle once its messages before are decoded

                        result = _consumer.Consume(TimeSpan.Zero);
                        ThrowHandlerFailure();
                        continue;
                    }

                    _consumed[_pending++] = new Message(PartitionOf(result), result.Offset.Value, result.Message.Value, result.Message.Key, result.Message.Timestamp, result.Message.Headers);
                    if (_pending == _consumed.Length)
                    {
                        break;
                    }

                    result = _consumer.Consume(TimeSpan.Zero);
                    ThrowHandlerFailure();
                }
            }

            // A rebalance inside one of the polls above dropped the messages of the partitions it took away (Revoked).
            var count = _pending;
            _pending = 0;
            if (count == 0)
            {
                MoveHopClocks();
                MarkAtEnd();
                return _owned.Count == 0 ? SourceBatch<T>.Idle : SourceBatch<T>.Of(ReadOnlyMemory<T>.Empty, null, _splits);
            }

            // Decode only now: the arena no longer moves, so records may point into it (Utf8Text).
            var arena = _values.Arena;
            var resumed = false;
            var records = 0;
            for (var i = 0; i < count; i++)
            {
                ref readonly var consumed = ref _consumed[i];
                var split = -1;
                if (_owned.TryGetValue(consumed.Partition, out var owned))
                {
                    resumed |= owned.EndSince >= 0 || owned.Next < 0; // at its end (or unread) until now: others may be getting records at this moment too
                    owned.Next = consumed.Offset + 1;
                    owned.EndSince = -1;
                    owned.WokenAt = -1;
                    owned.HopIdle = false;
                    split = owned.Split;
                    if (owned.Ledger is not null && !AdmitFromHop(owned, consumed))
                    {
                        // A mark, or a record written twice: the partition is not at its end, but it may only idle
                        // again once every origin is at its end too.
                        if (!owned.Clock!.AllAtEnd)
                        {
                            _splits.SetIdle(split, idle: false);
                        }

                        continue;
                    }
                }

                if (consumed.Value.IsNull)
                {
                    // A tombstone deletes its key; one without a key (a compacted topic refuses those) deletes nothing.
                    if (_source._tombstone is { } tombstone && !consumed.Key.IsNull)
                    {
                        _originOf[records] = i;
                        _records[records++] = tombstone(MessageOf(consumed, arena));
                        _splits.Append(split);
                        continue;
                    }

                    Report(consumed, "NoValue", _source._tombstone is null ? "the message has no value (a tombstone)" : "the message has neither a value nor a key (a tombstone of no key)");
                }
                else if (TCodec.TryDecode(arena.AsMemory(consumed.Value.Start, consumed.Value.Length), out var record, out var failure))
                {
                    if (_source._metadata is { } metadata)
                    {
                        metadata(ref record, MessageOf(consumed, arena));
                    }

                    _originOf[records] = i;
                    _records[records++] = record;
                    _splits.Append(split);
                    continue;
                }
                else
                {
                    Report(consumed, "DecodeError", failure.ToString());
                }

                _splits.SetIdle(split, idle: false); // a message not handed on still shows the partition is not at its end
            }

            MoveHopClocks();
            MarkAtEnd();
            WakeIdle(resumed);
            Interlocked.Add(ref _consumedCount, count);
            UpdateLag();
            return SourceBatch<T>.Of(new ReadOnlyMemory<T>(_records, 0, records), this, _splits);
        }

        /// <summary>
        /// The partitions this read found at their end are at their end since now — unless a message after that end
        /// was read too — and a partition at its end for <see cref="KafkaSourceOptions.IdleAfterEnd"/> is idle. Done
        /// after decoding, since a partition's records in the batch make it active again.
        /// </summary>
        private void MarkAtEnd()
        {
            var now = Environment.TickCount64;
            foreach (var (partition, end) in _atEnd)
            {
                if (_owned.TryGetValue(partition, out var owned) && (owned.Next < 0 || owned.Next == end) && owned.EndSince < 0)
                {
                    owned.EndSince = now;
                    owned.EndAt = Math.Max(owned.EndAt, end);
                    owned.WokenAt = -1;
                }
            }

            var wait = (long)_options.IdleAfterEnd.TotalMilliseconds;
            foreach (var owned in _owned.Values)
            {
                if (owned.WokenAt >= 0 && owned.EndSince < 0 && now - owned.WokenAt >= Math.Max(wait, WakeLimit))
                {
                    owned.EndSince = owned.WokenAt; // woken, but its messages never came (an open transaction's): idle again
                    owned.WokenAt = -1;
                }

                if (owned.EndSince < 0 || now - owned.EndSince < wait)
                {
                    continue;
                }

                // A repartition topic's partition read to its end still waits for the writers that lag behind: it is
                // idle only once every origin is at its end too — checked, once per spell of idleness.
                if (owned.Clock is { } clock)
                {
                    if (owned.HopIdle || !clock.AllAtEnd)
                    {
                        continue;
                    }

                    CheckOriginEnds(clock);
                    if (!clock.AllAtEnd)
                    {
                        continue;
                    }

                    owned.HopIdle = true;
                }

                _splits.SetIdle(owned.Split, idle: true);
            }
        }

        /// <summary>
        /// A partition idle since it reached its end, whose broker already holds messages past that end, stops being
        /// idle until it reaches its end anew (its messages read), for at most <see cref="WakeLimit"/> or
        /// <see cref="KafkaSourceOptions.IdleAfterEnd"/>, the longer: an open transaction's messages, not readable yet,
        /// hold it back that long once, not for good. Asked when a batch brings the first records of a partition that was
        /// at its end or not read yet, and otherwise at most every 100 ms while batches bring records. Without it,
        /// when records came to every partition at once after a quiet spell (a producer writing in bursts), the records of
        /// the partitions read first moved the watermark past those of the partitions read after them, which were late.
        /// Partitions of a repartition topic are left to their writers' clocks.
        /// </summary>
        private void WakeIdle(bool resumed)
        {
            var now = Environment.TickCount64;
            var wait = (long)_options.IdleAfterEnd.TotalMilliseconds;
            if (!resumed && now - _idleAsked < 100)
            {
                return;
            }

            _idleAsked = now;
            List<TopicPartitionTimestamp>? idle = null;
            foreach (var (partition, owned) in _owned)
            {
                if (owned.Clock is null && owned.EndSince >= 0 && now - owned.EndSince >= wait && owned.EndAt >= 0)
                {
                    // Timestamp −1 asks for the end offset (with read_committed, the last stable one).
                    (idle ??= []).Add(new TopicPartitionTimestamp(partition, new Timestamp(-1, TimestampType.CreateTime)));
                }
            }

            if (idle is null)
            {
                return;
            }

            List<TopicPartitionOffset> ends;
            try
            {
                ends = _consumer.OffsetsForTimes(idle, TimeSpan.FromSeconds(1)); // one request per broker, not per partition
            }
            catch (KafkaException)
            {
                return; // the brokers did not answer: the partitions stay idle, as before
            }

            foreach (var end in ends)
            {
                if (_owned.TryGetValue(end.TopicPartition, out var owned) && end.Offset.Value > owned.EndAt && end.Offset.Value > owned.Woken)
                {
                    owned.Woken = end.Offset.Value;
                    owned.WokenAt = now;
                    owned.EndSince = -1; // not at its end: idle again only once it reaches its end anew, or the wake runs out
                    _splits.SetIdle(owned.Split, idle: false);
                }
            }
        }

        /// <summary>Runs with checkpointed state: commits the offsets a completed checkpoint recorded (not the current ones).</summary>
        public ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken)
        {
            var offsets = new List<TopicPartitionOffset>();
            foreach (var position in positions)
            {
                var partition = new TopicPartition(position.Stream, position.Partition);
                if (position.Offset >= 0 && _owned.TryGetValue(partition, out var owned) && owned.Committed != position.Offset)
                {
                    offsets.Add(new TopicPartitionOffset(partition, new Offset(position.Offset)));
                }
            }

            return Commit(offsets);
        }

        public ValueTask CommitAsync(CancellationToken cancellationToken)
        {
            if (_context.PositionStore is { CommitsSourcePositions: true })
            {
                return ValueTask.CompletedTask; // the sink commits them in its own transaction
            }

            if (_context.Assignment is not null)
            {
                return ValueTask.CompletedTask; // distributed: this reader is no member of the group (the copy's member is), so the group refuses its commits; the sink stores the offsets
            }

            var offsets = new List<TopicPartitionOffset>();
            foreach (var (partition, owned) in _owned)
            {
                if (owned.Next >= 0 && owned.Next != owned.Committed)
                {
                    offsets.Add(new TopicPartitionOffset(partition, new Offset(owned.Next)));
                }
            }

            return Commit(offsets);
        }

        /// <summary>Commits <paramref name="offsets"/> to the group; a commit the group cannot take now waits for the next checkpoint.</summary>
        private ValueTask Commit(List<TopicPartitionOffset> offsets)
        {
            if (offsets.Count == 0)
            {
                return ValueTask.CompletedTask;
            }

            try
            {
                _consumer.Commit(offsets);
            }
            catch (KafkaException) when (_context.Delivery == DeliveryGuarantee.ExactlyOnce)
            {
                // Exactly-once: the sink's store is the truth; Kafka's committed offsets only show progress to tools.
                return ValueTask.CompletedTask;
            }
            catch (KafkaException ex) when (IsRetriable(ex.Error.Code))
            {
                // The group is rebalancing or its coordinator moved: the records are durable, only the commit waits for
                // the next checkpoint (or the revoke handler's). At worst their new owner reads them again: at-least-once.
                _context.Inform($"partition {_partition}: committing offsets deferred to the next checkpoint ({ex.Error.Reason})");
                return ValueTask.CompletedTask;
            }

            foreach (var offset in offsets)
            {
                _owned[offset.TopicPartition].Committed = offset.Offset.Value;
            }

            return ValueTask.CompletedTask;
        }

        /// <summary>The reader is done: it stops checkpointing on revokes; its consumer leaves the group when the source closes.</summary>
        public ValueTask DisposeAsync()
        {
            _closing = true;
            return ValueTask.CompletedTask;
        }

        /// <summary>Leaves the group and releases the consumer (once).</summary>
        public async ValueTask LeaveAsync()
        {
            if (Interlocked.Exchange(ref _left, 1) != 0)
            {
                return;
            }

            _closing = true;
            try
            {
                // On the poll thread, like every call that may run the rebalance callbacks.
                await _poller.Run(() =>
                {
                    try
                    {
                        _consumer.Close(); // leaves the group at once, so that others get its partitions without waiting for a timeout
                    }
                    catch (KafkaException)
                    {
                        // closing after a failure: the group will time this member out
                    }
                    finally
                    {
                        _consumer.Dispose();
                    }

                    return true;
                }).ConfigureAwait(false);
            }
            finally
            {
                _poller.Dispose();
            }
        }

        private List<TopicPartitionOffset> Assigned(IConsumer<ValueSlice, ValueSlice> consumer, List<TopicPartition> partitions)
        {
            // Exactly-once: claim the partitions in the sink's store (fencing off their previous owner) and resume there.
            Dictionary<TopicPartition, SourcePosition>? claimed = null;
            if (_context.Delivery == DeliveryGuarantee.ExactlyOnce && _context.PositionStore is { } store && !_context.CheckpointsState)
            {
                var request = partitions.Select(p => new SourcePosition(p.Topic, p.Partition.Value, -1)).ToList();
                var positions = store.ClaimPositionsAsync(_context.PipelineName, _context.SourceName, request, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                claimed = positions?.ToDictionary(p => new TopicPartition(p.Stream, p.Partition));
            }

            var restored = _context.RestoredPositions.ToDictionary(p => new TopicPartition(p.Stream, p.Partition), p => p.Offset);
            var start = new List<TopicPartitionOffset>(partitions.Count);
            foreach (var partition in partitions)
            {
                var owned = new Owned { Split = SplitOf(partition) };
                _splits.Add(owned.Split);
                if (_source.HopOf is not null)
                {
                    RestoreHop(owned);
                }

                var offset = Offset.Unset; // the committed offset, else auto.offset.reset
                if (restored.TryGetValue(partition, out var checkpointed) && checkpointed >= 0)
                {
                    // The restored checkpoint's state holds everything before this offset: resume exactly there.
                    offset = new Offset(checkpointed);
                    owned.Next = checkpointed;
                    _owned[partition] = owned;
                    start.Add(new TopicPartitionOffset(partition, offset));
                    continue;
                }

                if (_context.CheckpointsState && _context.Delivery == DeliveryGuarantee.ExactlyOnce)
                {
                    // Exactly-once windows: the sink's checkpoint is the only truth; a partition it has no offset for
                    // starts where StartFrom says, never at Kafka's committed offset.
                    _owned[partition] = owned;
                    start.Add(new TopicPartitionOffset(partition, Configured(consumer, partition)));
                    continue;
                }

                if (claimed is not null && claimed.TryGetValue(partition, out var position))
                {
                    owned.Epoch = position.Epoch;
                    if (position.Offset >= 0)
                    {
                        offset = new Offset(position.Offset);
                        owned.Next = position.Offset;
                        owned.Committed = position.Offset;
                    }
                    else
                    {
                        // Exactly-once: the sink's store is the only truth. A partition it has never seen starts where
                        // StartFrom says, never at Kafka's committed offset (e.g. after the table was recreated).
                        offset = Configured(consumer, partition);
                    }
                }

                // Unset: the group's committed offset, else auto.offset.reset (StartFrom Earliest or Latest). A start
                // time applies only to partitions the group never committed — like the other start positions.
                if (offset == Offset.Unset && _options.StartFrom == KafkaStart.Timestamp
                    && consumer.Committed([partition], TimeSpan.FromSeconds(30))[0].Offset == Offset.Unset)
                {
                    offset = consumer.OffsetsForTimes([new TopicPartitionTimestamp(partition, new Timestamp(_options.StartTimestamp!.Value))], TimeSpan.FromSeconds(30))[0].Offset;
                }

                _owned[partition] = owned;
                start.Add(new TopicPartitionOffset(partition, offset));
            }

            _context.Inform($"partition {_partition} assigned {Describe(start)}");
            return start;
        }

        /// <summary>
        /// A partition of a repartition topic: its origin ledger and its writers' clock as the checkpoint this run
        /// restored kept them (<see cref="ISplitStateReader"/>), else empty; the split's event time is the clock's.
        /// </summary>
        private void RestoreHop(Owned owned)
        {
            if (_context.RestoredSplitStates.TryGetValue(owned.Split, out var state))
            {
                var reader = new StateReader(state);
                owned.Ledger = OriginLedger.ReadFrom(ref reader);
                owned.Clock = HopClock.ReadFrom(ref reader);
            }
            else
            {
                owned.Ledger = new OriginLedger();
                owned.Clock = new HopClock();
            }

            owned.Reached = owned.Clock.Reached;
            _splits.SetReached(owned.Split, owned.Reached);
        }

        /// <summary>
        /// Gives each repartition partition's split the event time its clock reached with this batch's marks. A clock
        /// that moves on the word of origins at their end first has their ends checked (<see cref="CheckOriginEnds"/>).
        /// </summary>
        private void MoveHopClocks()
        {
            foreach (var owned in _owned.Values)
            {
                if (owned.Clock is not { } clock || !owned.ClockMoved)
                {
                    continue;
                }

                owned.ClockMoved = false;
                if (clock.Reached > owned.Reached && clock.AnyAtEnd)
                {
                    CheckOriginEnds(clock);
                }

                if (clock.Reached > owned.Reached)
                {
                    owned.Reached = clock.Reached;
                    _splits.SetReached(owned.Split, owned.Reached);
                }
            }
        }

        /// <summary>
        /// Withdraws the word of every origin that said it is at its end but has records after where it was read to:
        /// its writer died or froze before it could say so, and its records will come, written by the next one. Until
        /// then it holds the clock back — else the others' progress would make its records late. One query per
        /// origin and batch (<see cref="_originEnds"/>); an origin whose end cannot be read counts as not at its end.
        /// </summary>
        private void CheckOriginEnds(HopClock clock)
        {
            for (var origin = 0; origin < clock.Origins; origin++)
            {
                if (!clock.IsAtEnd(origin, out var end))
                {
                    continue;
                }

                if (!_originEnds.TryGetValue(origin, out var high))
                {
                    try
                    {
                        // After one failure (a broker away) the batch asks no more: each would wait as long.
                        high = _originEndFailed ? long.MaxValue : _consumer.QueryWatermarkOffsets(new TopicPartition(_source.HopOf!, origin), OriginEndTimeout).High.Value;
                    }
                    catch (KafkaException)
                    {
                        high = long.MaxValue;
                        _originEndFailed = true;
                    }

                    _originEnds[origin] = high;
                }

                if (high > end)
                {
                    clock.Wake(origin);
                }
            }
        }

        /// <summary>How long reading an origin's end may take before it counts as not at its end: 10 s, far longer than a broker needs.</summary>
        private static readonly TimeSpan OriginEndTimeout = TimeSpan.FromSeconds(10);

        /// <summary>The ends of origins read in this batch (by <see cref="CheckOriginEnds"/>).</summary>
        private readonly Dictionary<int, long> _originEnds = [];

        /// <summary>Whether reading an origin's end failed in this batch.</summary>
        private bool _originEndFailed;

        public void WriteSplitState(int split, IBufferWriter<byte> output)
        {
            foreach (var owned in _owned.Values)
            {
                if (owned.Split == split && owned.Ledger is { } ledger)
                {
                    var writer = new StateWriter(256);
                    ledger.WriteTo(writer);
                    owned.Clock!.WriteTo(writer);
                    output.Write(writer.Written.Span);
                    return;
                }
            }
        }

        /// <summary>
        /// A message of a repartition topic: a writer's mark moves its origin's clock (it is no record); a record
        /// admitted by the ledger goes on (true), one written again after a writer's restart is dropped.
        /// </summary>
        private bool AdmitFromHop(Owned owned, in Message consumed)
        {
            if (RepartitionHeaders.TryReadMark(consumed.Headers, out var markOf, out var eventTime, out var origins, out var atEnd, out var end))
            {
                owned.Clock!.Mark(markOf, eventTime, origins, atEnd, end);
                owned.ClockMoved = true; // given to the split after the batch (MoveHopClocks)
                return false;
            }

            if (!RepartitionHeaders.TryReadOrigin(consumed.Headers, out var origin, out var offset))
            {
                Report(consumed, "NoOrigin", "the message names no origin: it was not written by the repartition writer");
                return false;
            }

            if (!owned.Ledger!.Admit(_source.HopOf!, origin, offset))
            {
                Interlocked.Increment(ref _source._repeats);
                return false;
            }

            owned.Clock!.Record(origin);
            return true;
        }

        /// <summary>The reader's id of <paramref name="partition"/> for the watermark (<see cref="SourceSplits"/>): one per topic partition, kept across reassignments.</summary>
        private int SplitOf(TopicPartition partition)
        {
            if (!_splitIds.TryGetValue(partition, out var split))
            {
                split = _splitIds.Count;
                _splitIds[partition] = split;
            }

            return split;
        }

        /// <summary>Where <see cref="KafkaSourceOptions.StartFrom"/> says a partition without a stored position starts.</summary>
        private Offset Configured(IConsumer<ValueSlice, ValueSlice> consumer, TopicPartition partition) => _source.HopOf is not null ? Offset.Beginning : _options.StartFrom switch
        {
            KafkaStart.Latest => Offset.End,
            KafkaStart.Timestamp => consumer.OffsetsForTimes([new TopicPartitionTimestamp(partition, new Timestamp(_options.StartTimestamp!.Value))], TimeSpan.FromSeconds(30))[0].Offset,
            _ => Offset.Beginning,
        };

        private void Revoked(List<TopicPartitionOffset> partitions)
        {
            if (!_closing)
            {
                // Before the partitions go to another member: everything read from them is made durable and committed.
                _context.CheckpointAsync(_partition, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }

            Forget(partitions);
            _context.Inform($"partition {_partition} released {Describe(partitions)}");
        }

        private static string Describe(List<TopicPartitionOffset> partitions)
            => partitions.Count == 0 ? "no Kafka partitions" : string.Join(", ", partitions.Select(p => p.Offset == Offset.Unset
                ? $"{p.Topic}[{p.Partition.Value}]"
                : string.Create(CultureInfo.InvariantCulture, $"{p.Topic}[{p.Partition.Value}]@{p.Offset}")));

        private void Lost(List<TopicPartitionOffset> partitions)
        {
            if (_context.Delivery == DeliveryGuarantee.ExactlyOnce)
            {
                // Their new owner may already be reading them; committing our open transaction would write their rows twice.
                throw new KafkaException(new Error(ErrorCode.Local_State, $"partitions {string.Join(", ", partitions.Select(p => p.TopicPartition))} were lost (this member's session timed out); stopping without committing, so that their new owner resumes from the last committed positions"));
            }

            Forget(partitions);
        }

        /// <summary>
        /// Lets <paramref name="partitions"/> go: their positions, and the messages of theirs polled in the current
        /// read but not yet handed downstream — the checkpoint did not include them, so their next owner reads them
        /// (handing them on here as well would write them twice).
        /// </summary>
        private void Forget(List<TopicPartitionOffset> partitions)
        {
            var gone = partitions.Select(p => p.TopicPartition).ToHashSet();
            foreach (var partition in gone)
            {
                if (_owned.Remove(partition, out var owned))
                {
                    _splits.Remove(owned.Split);
                }
            }

            var kept = 0;
            for (var i = 0; i < _pending; i++)
            {
                if (!gone.Contains(_consumed[i].Partition))
                {
                    _consumed[kept++] = _consumed[i];
                }
            }

            _pending = kept;
        }

        private List<TopicPartitionOffset> Guard(Func<List<TopicPartitionOffset>> handler, Func<List<TopicPartitionOffset>> fallback)
        {
            // librdkafka calls these from inside Consume; an exception is kept and thrown from ReadAsync instead.
            try
            {
                return handler();
            }
            catch (Exception ex)
            {
                _handlerFailure ??= ex;
                return fallback();
            }
        }

        private void Guard(Action handler)
        {
            try
            {
                handler();
            }
            catch (Exception ex)
            {
                _handlerFailure ??= ex;
            }
        }

        private static bool IsRetriable(ErrorCode code) => code is ErrorCode.RebalanceInProgress or ErrorCode.IllegalGeneration
            or ErrorCode.UnknownMemberId or ErrorCode.NotCoordinatorForGroup or ErrorCode.GroupLoadInProgress
            or ErrorCode.GroupCoordinatorNotAvailable or ErrorCode.RequestTimedOut or ErrorCode.Local_TimedOut
            or ErrorCode.Local_Transport or ErrorCode.Local_AllBrokersDown or ErrorCode.Local_WaitCoord;

        private void ThrowHandlerFailure()
        {
            if (_handlerFailure is { } failure)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
            }
        }

        private void UpdateLag()
        {
            long lag = 0;
            foreach (var (partition, owned) in _owned)
            {
                var marks = _consumer.GetWatermarkOffsets(partition);
                if (marks.High != Offset.Unset && owned.Next >= 0)
                {
                    lag += Math.Max(0, marks.High.Value - owned.Next);
                }
            }

            Interlocked.Exchange(ref _lag, lag);
        }

        private RecordOrigin Origin(in Message consumed)
            => new(
                _context.SourceName,
                string.Create(CultureInfo.InvariantCulture, $"{consumed.Partition.Topic}[{consumed.Partition.Partition.Value}]"),
                null,
                consumed.Offset,
                consumed.Value.IsNull ? ReadOnlyMemory<byte>.Empty : _values.Arena.AsMemory(consumed.Value.Start, consumed.Value.Length));

        /// <summary>What the metadata and tombstone callbacks see of <paramref name="consumed"/>: its key points into <paramref name="arena"/>.</summary>
        private static KafkaMessage MessageOf(in Message consumed, byte[] arena)
            => new(consumed.Partition.Topic, consumed.Partition.Partition.Value, consumed.Offset, consumed.Timestamp, arena.AsSpan(consumed.Key.Start, consumed.Key.Length), !consumed.Key.IsNull, consumed.Headers);

        private void Report(in Message consumed, string errorType, string message)
            => _context.DeadLetters.Report(new FailedRecord(FailureKind.Decode, _partition, _context.SourceName, Origin(consumed), errorType, message));

        private sealed class Owned
        {
            public int Split { get; init; }

            public long Next { get; set; } = -1;

            public long Committed { get; set; } = -1;

            public long Epoch { get; set; }

            /// <summary>When the partition was found at its end with nothing read after it (<see cref="Environment.TickCount64"/>), or −1.</summary>
            public long EndSince { get; set; } = -1;

            /// <summary>The offset of the last end it was found at, or −1.</summary>
            public long EndAt { get; set; } = -1;

            /// <summary>The broker's end offset that last woke it from idleness (<see cref="WakeIdle"/>), or −1.</summary>
            public long Woken { get; set; } = -1;

            /// <summary>When it was woken from idleness and has not reached its end since (<see cref="Environment.TickCount64"/>), or −1.</summary>
            public long WokenAt { get; set; } = -1;

            /// <summary>A partition of a repartition topic: the origins admitted so far (else null).</summary>
            public OriginLedger? Ledger { get; set; }

            /// <summary>A partition of a repartition topic: how far its writers have got (else null).</summary>
            public HopClock? Clock { get; set; }

            /// <summary>A partition of a repartition topic: the event time last given to its split, and whether marks since moved the clock.</summary>
            public long Reached { get; set; } = long.MinValue;

            public bool ClockMoved { get; set; }

            /// <summary>A partition of a repartition topic: made idle (its origins' ends checked) since its last message.</summary>
            public bool HopIdle { get; set; }
        }

        /// <summary>
        /// A message's partition, one object per partition: <c>ConsumeResult.TopicPartition</c> builds a new one on every
        /// call, and without the topic's name (one topic, see the constructor) it would name no topic.
        /// </summary>
        private TopicPartition PartitionOf(ConsumeResult<ValueSlice, ValueSlice> result)
        {
            if (_topic is null)
            {
                return result.TopicPartition; // several topics: named by Confluent.Kafka per message
            }

            var number = result.Partition.Value;
            if ((uint)number < (uint)_partitions.Length && _partitions[number] is { } cached)
            {
                return cached;
            }

            var partition = new TopicPartition(_topic, number);
            if (number >= 0)
            {
                if (number >= _partitions.Length)
                {
                    Array.Resize(ref _partitions, Math.Max(number + 1, _partitions.Length * 2));
                }

                _partitions[number] = partition;
            }

            return partition;
        }

        private readonly record struct Message(TopicPartition Partition, long Offset, ValueSlice Value, ValueSlice Key, Timestamp Timestamp, Headers? Headers);
    }
}

/// <summary>Keys, when no one reads them: nothing is copied.</summary>
internal sealed class NoSlice : IDeserializer<ValueSlice>
{
    public static readonly NoSlice Instance = new();

    public ValueSlice Deserialize(ReadOnlySpan<byte> data, bool isNull, SerializationContext context) => new(0, 0, true);
}

/// <summary>Where a message's value was copied in the reader's arena.</summary>
internal readonly record struct ValueSlice(int Start, int Length, bool IsNull);

/// <summary>
/// Copies each message value into one growing buffer per batch instead of a byte array per message, so that decoding
/// allocates nothing and decoded records may point into the buffer until the next batch.
/// </summary>
internal sealed class ArenaDeserializer : IDeserializer<ValueSlice>
{
    private byte[] _arena = new byte[64 * 1024];
    private int _used;

    public byte[] Arena => _arena;

    public void Reset() => _used = 0;

    public ValueSlice Deserialize(ReadOnlySpan<byte> data, bool isNull, SerializationContext context)
    {
        if (isNull)
        {
            return new ValueSlice(_used, 0, true);
        }

        if (_used + data.Length > _arena.Length)
        {
            Array.Resize(ref _arena, Math.Max(_arena.Length * 2, _used + data.Length));
        }

        data.CopyTo(_arena.AsSpan(_used));
        var slice = new ValueSlice(_used, data.Length, false);
        _used += data.Length;
        return slice;
    }
}
