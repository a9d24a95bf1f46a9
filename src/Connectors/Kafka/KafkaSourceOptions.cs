using System.Globalization;

namespace Compiled.Kafka;

/// <summary>
/// Where a Kafka source starts reading a partition its consumer group has no committed position for. A committed
/// position always wins — otherwise a partition moving between members (a rebalance, another copy of the binary)
/// would be read again from its start. To replay a topic, run with a new <see cref="KafkaSourceOptions.GroupId"/>.
/// </summary>
public enum KafkaStart
{
    /// <summary>The committed position; a partition without one starts at its beginning. The default.</summary>
    Committed,

    /// <summary>A partition without a committed position starts at its beginning (the same as <see cref="Committed"/>, said explicitly).</summary>
    Earliest,

    /// <summary>A partition without a committed position starts at its end: only records produced from now on.</summary>
    Latest,

    /// <summary>A partition without a committed position starts at the first record at or after <see cref="KafkaSourceOptions.StartTimestamp"/>.</summary>
    Timestamp,
}

/// <summary>Options of a <see cref="KafkaSource{T, TCodec}"/>. Every one is also a setting (<c>--set Orders.Topics=…</c>).</summary>
public sealed class KafkaSourceOptions
{
    /// <summary>
    /// How long a poll waits for records before the partition checks whether it should stop or checkpoint: 100 ms,
    /// short enough that a stop is prompt, long enough that an idle consumer costs nothing.
    /// </summary>
    public static readonly TimeSpan DefaultPollTimeout = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// How long the group waits for a silent member before giving its partitions to others: 10 s, a quick hand-over
    /// after a crash without evicting a member that pauses for a long GC or checkpoint.
    /// </summary>
    public static readonly TimeSpan DefaultSessionTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a partition read to its end keeps holding back the watermark, waiting for more messages, before it
    /// counts as idle (until its next message): 2 s, so that what a producer writes across partitions in one burst
    /// (a backfill, an upstream job's hour of events) lands before windows fire on the partitions that got theirs first
    /// — an idle partition's late-arriving records would be late — while a partition that stays quiet delays windows
    /// by only that long.
    /// </summary>
    public static readonly TimeSpan DefaultIdleAfterEnd = TimeSpan.FromSeconds(2);

    /// <summary>The brokers to bootstrap from, <c>host:port,host:port</c>.</summary>
    public string BootstrapServers { get; set; } = "localhost:9092";

    /// <summary>The topics to read, comma-separated.</summary>
    public string Topics { get; set; } = "";

    /// <summary>The consumer group. Default: the pipeline's name, so that copies of one binary share the work.</summary>
    public string? GroupId { get; set; }

    /// <summary>Where partitions start. Default: <see cref="KafkaStart.Committed"/>.</summary>
    public KafkaStart StartFrom { get; set; }

    /// <summary>With <see cref="KafkaStart.Timestamp"/>: the time to start at.</summary>
    public DateTimeOffset? StartTimestamp { get; set; }

    /// <summary>Default: <see cref="DefaultSessionTimeout"/>.</summary>
    public TimeSpan SessionTimeout { get; set; } = DefaultSessionTimeout;

    /// <summary>Default: <see cref="DefaultPollTimeout"/>.</summary>
    public TimeSpan PollTimeout { get; set; } = DefaultPollTimeout;

    /// <summary>
    /// Behind a window: how long a partition read to its end waits for more before it stops holding the watermark back
    /// (zero: at once). An idle partition whose broker is found to hold messages past its end — asked when another
    /// partition's records resume — holds it back again until it has read them (docs/windows.md). Default: <see cref="DefaultIdleAfterEnd"/>.
    /// </summary>
    public TimeSpan IdleAfterEnd { get; set; } = DefaultIdleAfterEnd;

    /// <summary>Read only committed records of transactional producers (Kafka's <c>read_committed</c>). Default: true.</summary>
    public bool ReadCommitted { get; set; } = true;

    /// <summary>
    /// Run as one of several copies of the pipeline in the consumer group, each holding its share of the keyed state,
    /// which moves with its partition when the group rebalances. For pipelines with windows behind this source and an
    /// exactly-once <c>PostgresSink</c>. Unless <see cref="PartitionedByKey"/> says the topic is keyed by the
    /// <c>[KeyBy]</c> key already, each copy also writes its share of the topic to a repartition topic keyed by it, whose
    /// partitions the keyed state belongs to. See docs/deployment.md. Default: false (one process holds all the state).
    /// </summary>
    public bool Distributed { get; set; }

    /// <summary>
    /// Declares that the topic is partitioned by the pipeline's <c>[KeyBy]</c> key (its producers key each message by it,
    /// so all of a key's messages are in one partition). A distributed run then keeps each key's state with its
    /// partition and needs no repartition topic. Only with <see cref="Distributed"/> (a run that is not distributed refuses
    /// it rather than ignore it). Default: false.
    /// </summary>
    public bool PartitionedByKey { get; set; }

    /// <summary>
    /// A distributed run through a repartition topic: its number of partitions when this copy creates it (the most
    /// copies that hold keyed state at once); when set, a topic that exists already must have this many. Null: a topic
    /// that exists keeps its count; one this copy creates gets as many as the source topic has.
    /// </summary>
    public int? RepartitionPartitions { get; set; }

    /// <summary>A distributed run through a repartition topic: the replication factor it is created with. Default: -1, the brokers' default.</summary>
    public short RepartitionReplicationFactor { get; set; } = -1;

    /// <summary>
    /// Tests that drive a repartition topic's writers by hand: the topic read is the repartition topic of this one, whose
    /// messages carry their origin and the writers' marks (<see cref="KafkaRepartitionWriter{T, TCodec}"/>), and each
    /// partition keeps an origin ledger and a clock as its split's state. Null: an ordinary topic (a distributed run
    /// without <see cref="PartitionedByKey"/> sets up its repartition topic itself).
    /// </summary>
    internal string? HopOf { get; set; }

    /// <summary>
    /// Further librdkafka properties, <c>key=value;key=value</c> (<c>security.protocol=SASL_SSL;sasl.mechanism=PLAIN;
    /// sasl.username=…;sasl.password=…</c>). Shown with secrets masked.
    /// </summary>
    public string? Properties { get; set; }

    /// <summary>The options as settings.</summary>
    public IEnumerable<Setting> Settings() =>
    [
        Setting.Text(nameof(BootstrapServers), "The Kafka brokers to bootstrap from (host:port,…)", () => BootstrapServers, v => BootstrapServers = v),
        Setting.Text(nameof(Topics), "The topics to read, comma-separated", () => Topics, v => Topics = v),
        Setting.Text(nameof(GroupId), "The consumer group (default: the pipeline's name)", () => GroupId, v => GroupId = v),
        Setting.Choice(nameof(StartFrom), "Where partitions without a committed position start", () => StartFrom, v => StartFrom = v),
        Setting.Custom(nameof(StartTimestamp), "With StartFrom=Timestamp: the time to start at", "an ISO 8601 time such as 2026-11-25T08:00:00Z, or none", () => StartTimestamp?.ToString("O", CultureInfo.InvariantCulture) ?? "none", text =>
        {
            if (text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase))
            {
                StartTimestamp = null;
                return null;
            }

            if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
            {
                return "expected an ISO 8601 time such as 2026-11-25T08:00:00Z, or none";
            }

            StartTimestamp = time;
            return null;
        }),
        Setting.Duration(nameof(SessionTimeout), "How long the group waits for a silent member before moving its partitions", () => SessionTimeout, v => SessionTimeout = v!.Value),
        Setting.Duration(nameof(PollTimeout), "How long a poll waits for records", () => PollTimeout, v => PollTimeout = v!.Value),
        Setting.Duration(nameof(IdleAfterEnd), "How long a partition read to its end holds the watermark back waiting for more (0: idle at once)", () => IdleAfterEnd, v => IdleAfterEnd = v ?? TimeSpan.Zero, zeroAllowed: true),
        Setting.Boolean(nameof(ReadCommitted), "Read only committed records of transactional producers", () => ReadCommitted, v => ReadCommitted = v),
        Setting.Boolean(nameof(Distributed), "Run as one of several copies in the group; keyed state moves with its partitions", () => Distributed, v => Distributed = v),
        Setting.Boolean(nameof(PartitionedByKey), "The topic is partitioned by the [KeyBy] key (its messages are keyed by it)", () => PartitionedByKey, v => PartitionedByKey = v),
        Setting.OptionalNumber(nameof(RepartitionPartitions), "Distributed through a repartition topic: its partitions (default: as many as the topic's)", () => RepartitionPartitions, v => RepartitionPartitions = v is null ? null : (int)Math.Min(v.Value, int.MaxValue)),
        Setting.Number(nameof(RepartitionReplicationFactor), "Distributed through a repartition topic: its replication factor (-1: the brokers' default)", () => RepartitionReplicationFactor, v => RepartitionReplicationFactor = (short)v, min: -1, max: short.MaxValue),
        Setting.ConnectionString(nameof(Properties), "Further librdkafka properties, key=value;key=value (secrets masked)", () => Properties, v => Properties = v),
    ];

    /// <summary>Checks the options, naming the bad one.</summary>
    public void Validate()
    {
        if (KafkaConfig.Topics(Topics).Count == 0)
        {
            throw new ArgumentException("Topics must name at least one topic.", nameof(Topics));
        }

        if (StartFrom == KafkaStart.Timestamp && StartTimestamp is null)
        {
            throw new ArgumentException("StartFrom=Timestamp needs a StartTimestamp.", nameof(StartTimestamp));
        }

        if (Properties is not null && KafkaConfig.Check(Properties) is { } problem)
        {
            throw new ArgumentException($"Properties: {problem}.", nameof(Properties));
        }

        if (SessionTimeout < TimeSpan.FromSeconds(1) || PollTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("SessionTimeout must be at least 1 s and PollTimeout positive.", nameof(SessionTimeout));
        }

        if ((RepartitionPartitions is not null || RepartitionReplicationFactor != -1) && !(Distributed && !PartitionedByKey))
        {
            throw new ArgumentException("RepartitionPartitions and RepartitionReplicationFactor shape the repartition topic of a distributed run, and this run has none (it is not Distributed, or its topic is PartitionedByKey): remove them.", nameof(RepartitionPartitions));
        }

        if (RepartitionPartitions is < 1 || RepartitionReplicationFactor is 0 or < -1)
        {
            throw new ArgumentException("RepartitionPartitions must be at least 1, and RepartitionReplicationFactor at least 1 (or -1, the brokers' default).", nameof(RepartitionPartitions));
        }

        if (PartitionedByKey && !Distributed)
        {
            throw new ArgumentException("PartitionedByKey=true declares how the topic is partitioned for a distributed run, and this run is not one: set Distributed=true as well (see docs/deployment.md), or remove PartitionedByKey.", nameof(PartitionedByKey));
        }

        if (Distributed && KafkaConfig.Topics(Topics).Count != 1)
        {
            throw new ArgumentException("Distributed reads exactly one topic.", nameof(Topics));
        }

        if (IdleAfterEnd < TimeSpan.Zero)
        {
            throw new ArgumentException("IdleAfterEnd cannot be negative.", nameof(IdleAfterEnd));
        }
    }
}
