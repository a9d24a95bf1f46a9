using System.Globalization;
using System.Text;
using System.Text.Json;
using Compiled.Kafka;
using Compiled.Postgres;
using Compiled.Runtime;
using Confluent.Kafka;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>
/// Distributed runs (KafkaSourceOptions.Distributed): copies of a keyed pipeline in one consumer group, each holding
/// its share of the partitions and their state, over the mock cluster and a real PostgreSQL. The copies here are
/// runs in one process (separate consumers, sinks and connections); tests/Crash.Tests runs them as processes.
/// </summary>
[Collection(nameof(Infrastructure))]
public sealed class DistributedTests(KafkaFixture kafka, PostgresFixture postgres) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Two_copies_share_the_partitions_and_a_copy_that_leaves_hands_its_state_over_with_no_row_lost_or_repeated()
    {
        const int partitions = 8;
        var topic = kafka.NewTopic("dist", partitions);
        var connection = await postgres.NewDatabaseAsync();
        var views = Views(24_000, seed: 11);
        var quarter = views.Length / 4;
        kafka.Produce(topic, Keyed(views[..quarter]));
        var source = Source(topic);

        // Copy A alone: it holds all eight partitions and commits checkpoints with their state.
        var a = Pipeline(source, connection);
        var b = Pipeline(source, connection);
        using var stopA = new CancellationTokenSource();
        using var stopB = new CancellationTokenSource();
        var runA = a.RunAsync(Options(), stopA.Token);
        await WaitUntil(() => Scalar(connection, "SELECT coalesce(min(checkpoint_id), 0) FROM compiled_partitions") >= 2, [runA], "A's checkpoints of every partition");

        // Copy B joins: the group splits the partitions, each copy restores the state of those it got.
        var runB = b.RunAsync(Options(), stopB.Token);
        await WaitUntil(() => Scalar(connection, "SELECT coalesce(min(epoch), 0) FROM compiled_partitions") >= 2, [runA, runB], "the partitions claimed again after B joined");
        kafka.Produce(topic, Keyed(views[quarter..(2 * quarter)]));
        await WaitUntil(() => a.Views.Progress.Done > 0 && b.Views.Progress.Done > 0, [runA, runB], "records read by both copies");
        await WaitUntil(() => Scalar(connection, "SELECT coalesce(sum(next_offset), 0)::bigint FROM compiled_partitions") >= 2 * quarter, [runA, runB], "the second quarter committed", connection);

        // Copy A leaves: its last checkpoint commits, and B takes over its partitions and their open windows.
        await stopA.CancelAsync();
        await runA.WaitAsync(Patience);
        kafka.Produce(topic, Keyed(views[(2 * quarter)..]));
        await ProduceSentinels(topic, partitions, views[^1].Time);
        var expected = Expected(views);
        await WaitUntil(() => Scalar(connection, "SELECT count(*) FROM page_counts WHERE page <> 'sentinel'") >= expected.Count, [runB], $"{expected.Count} rows", connection);
        await stopB.CancelAsync();
        await runB.WaitAsync(Patience);

        Assert.True(Scalar(connection, "SELECT coalesce(min(epoch), 0) FROM compiled_partitions") >= 3, "every partition was claimed again when A left");
        Assert.False(_log.Contains("' came from partitions", except: "key 'sentinel'"), _log.ToString()); // the pages' topic is keyed by page (the sentinels are in every partition)
        Assert.Equal(expected.OrderBy(e => e.Key), await Rows(connection)); // one row per window: none lost, none repeated
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Two_copies_writing_to_kafka_share_the_partitions_and_a_copy_that_leaves_hands_its_state_over_with_no_record_lost_or_repeated(bool repartition)
    {
        // The same as above into a Kafka topic, over a topic keyed by page or (repartition) by view through the
        // repartition topic: each partition's records, offset and state go in a transaction of the partition's own
        // producer, the offsets and state to the checkpoint topic. (The mock cluster does not enforce transactions or
        // fence producers: what this shows is the hand-over of state through the checkpoint topic.)
        const int partitions = 8;
        var topic = kafka.NewTopic("dist-k2k", partitions);
        var output = kafka.NewTopic("dist-k2k-out", 3);
        var checkpoints = kafka.NewTopic("dist-k2k-checkpoints", 1);
        var views = Views(24_000, seed: 12);
        var quarter = views.Length / 4;
        IEnumerable<(string?, byte[]?)> Produced(int from, int to) => repartition ? Numbered(views[from..to], from) : Keyed(views[from..to]);
        kafka.Produce(topic, Produced(0, quarter));
        var source = Source(topic);
        var owners = partitions; // the partitions that hold the state: the topic's, or the repartition topic's
        if (repartition)
        {
            source.PartitionedByKey = false;
            source.RepartitionPartitions = owners = 3;
            kafka.NewTopic(KafkaSource<PageView, PageView.JsonCodec>.RepartitionTopic(source.GroupId!, "PerSecond"), owners, exactName: true); // as an operator creates it (the mock cannot)
        }

        KafkaPageCountsToKafka Copy() => new()
        {
            Views = new(source),
            Counts = new(new KafkaSinkOptions { BootstrapServers = kafka.BootstrapServers, Topic = output, Transactional = true, CheckpointTopic = checkpoints }, key: c => c.Page),
        };

        // Copy A alone: it holds all eight partitions and commits checkpoints of each (a chunk, a manifest and the
        // transaction's marker per partition).
        var a = Copy();
        var b = Copy();
        using var stopA = new CancellationTokenSource();
        using var stopB = new CancellationTokenSource();
        var runA = a.RunAsync(Options(), stopA.Token);
        await WaitUntil(() => kafka.Offsets(checkpoints) >= 2 * owners * 3, [runA], "A's checkpoints of every partition");

        // Copy B joins: the group splits the partitions, each copy restores the state of those it got (A's first run
        // restored none), and only then does more come, so that both read some of it.
        var runB = b.RunAsync(Options(), stopB.Token);
        await WaitUntil(() => _log.Count("restored checkpoint") >= 2, [runA, runB], "both copies' runs after B joined");
        kafka.Produce(topic, Produced(quarter, 2 * quarter));
        await WaitUntil(() => a.Views.Progress.Done > 0 && b.Views.Progress.Done > 0, [runA, runB], "records read by both copies");

        // Copy A leaves: its last checkpoint commits, and B takes over its partitions and their open windows.
        await stopA.CancelAsync();
        var left = await runA.WaitAsync(Patience);
        Assert.NotNull(left.State);
        Assert.Contains(checkpoints, left.State.Location, StringComparison.Ordinal);
        kafka.Produce(topic, Produced(2 * quarter, views.Length));
        await ProduceSentinels(topic, partitions, views[^1].Time);
        var expected = Expected(views);
        List<KeyValuePair<(string, long), long>> Counts() => [.. kafka.ReadAll(output)
            .Select(value => JsonSerializer.Deserialize<JsonElement>(value))
            .Select(e => KeyValuePair.Create((e.GetProperty("page").GetString()!, e.GetProperty("windowStart").GetInt64()), e.GetProperty("views").GetInt64()))
            .Where(c => c.Key.Item1 != "sentinel")
            .OrderBy(c => c.Key)];
        await WaitUntil(() => Counts().Count >= expected.Count, [runB], $"{expected.Count} records");
        await stopB.CancelAsync();
        await runB.WaitAsync(Patience);

        Assert.Equal(expected.OrderBy(e => e.Key), Counts()); // one record per window, with its full count: none lost, none repeated
    }

    [Fact]
    public async Task A_kafka_checkpoint_topic_of_a_single_process_is_refused_by_a_distributed_run_and_the_other_way_round()
    {
        // A single process's state is spread over its keyed partitions by a hash, a distributed run's by the Kafka
        // partitions: neither can take the other's checkpoints over, so each refuses them (exit 2), naming the topic.
        var topic = kafka.NewTopic("dist-k2k-mixed", 2);
        kafka.Produce(topic, Keyed(Views(200, seed: 5)));
        async Task<string> CheckpointOnce(KafkaSourceOptions source, string checkpoints)
        {
            var pipeline = new KafkaPageCountsToKafka
            {
                Views = new(source),
                Counts = new(new KafkaSinkOptions { BootstrapServers = kafka.BootstrapServers, Topic = kafka.NewTopic("dist-k2k-mixed-out", 1), Transactional = true, CheckpointTopic = checkpoints }),
            };
            using var stop = new CancellationTokenSource();
            var run = pipeline.RunAsync(Options(), stop.Token);
            await WaitUntil(() => pipeline.Views.Progress.Done >= 200, [run], "every view read");
            await stop.CancelAsync();
            return (await run.WaitAsync(Patience)).State!.Location;
        }

        async Task<string> Refused(KafkaSourceOptions source, string checkpoints)
        {
            var pipeline = new KafkaPageCountsToKafka
            {
                Views = new(source),
                Counts = new(new KafkaSinkOptions { BootstrapServers = kafka.BootstrapServers, Topic = kafka.NewTopic("dist-k2k-mixed-out", 1), Transactional = true, CheckpointTopic = checkpoints }),
            };
            var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(Options()).WaitAsync(Patience));
            Assert.True(NonRetryableException.IsCause(error), error.ToString());
            return error.Message;
        }

        var single = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, GroupId = "mixed-" + Guid.NewGuid().ToString("N"), StartFrom = KafkaStart.Earliest };
        var ofSingle = kafka.NewTopic("dist-k2k-mixed-checkpoints", 1);
        Assert.Contains(ofSingle, await CheckpointOnce(single, ofSingle), StringComparison.Ordinal);
        Assert.Contains("of a run as a single process", await Refused(Source(topic), ofSingle), StringComparison.Ordinal);

        var ofDistributed = kafka.NewTopic("dist-k2k-mixed-checkpoints", 1);
        Assert.Contains(ofDistributed, await CheckpointOnce(Source(topic), ofDistributed), StringComparison.Ordinal);
        single.GroupId = "mixed-" + Guid.NewGuid().ToString("N");
        Assert.Contains("holds checkpoints of a distributed run", await Refused(single, ofDistributed), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_copy_whose_partitions_were_claimed_behind_its_back_commits_nothing_more_and_joins_again()
    {
        const int partitions = 4;
        var topic = kafka.NewTopic("dist-fenced", partitions);
        var connection = await postgres.NewDatabaseAsync();
        var views = Views(12_000, seed: 5);
        var half = views.Length / 2;
        kafka.Produce(topic, Keyed(views[..half]));
        var pipeline = Pipeline(Source(topic), connection);
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(Options(), stop.Token);
        await WaitUntil(() => Scalar(connection, "SELECT coalesce(min(checkpoint_id), 0) FROM compiled_partitions") >= 2, [run], "checkpoints of every partition");

        // Another copy's claim, as it looks to this one: every partition's epoch moves on. This copy's next commit is
        // refused whole; it leaves the group, joins again, claims the partitions anew and restores what was committed.
        var fencedAt = Scalar(connection, "SELECT coalesce(max(checkpoint_id), 0) FROM compiled_partitions");
        var rowsAt = Scalar(connection, "SELECT count(*) FROM page_counts");
        Execute(connection, "UPDATE compiled_partitions SET epoch = epoch + 1, updated_at = '2020-01-02 03:04:05+00'"); // the time shows in the restore's log line
        await WaitUntil(() => Scalar(connection, "SELECT coalesce(min(epoch), 0) FROM compiled_partitions") >= 3, [run], "the partitions claimed again after the fence");
        Assert.True(Scalar(connection, "SELECT count(*) FROM page_counts") >= rowsAt);

        kafka.Produce(topic, Keyed(views[half..]));
        await ProduceSentinels(topic, partitions, views[^1].Time);
        var expected = Expected(views);
        await WaitUntil(() => Scalar(connection, "SELECT count(*) FROM page_counts WHERE page <> 'sentinel'") >= expected.Count, [run], $"{expected.Count} rows");
        await stop.CancelAsync();
        await run.WaitAsync(Patience);

        Assert.True(fencedAt >= 2);
        Assert.True(_log.Contains("(taken 2020-01-02 03:04:05Z)"), _log.ToString()); // when the restored checkpoint was committed, not when it was claimed
        Assert.Equal(expected.OrderBy(e => e.Key), await Rows(connection));
    }

    [Fact]
    public async Task Two_copies_count_a_topic_keyed_otherwise_exactly_through_the_repartition_topic_they_create()
    {
        // Views keyed by their number, so every page is in every partition: without PartitionedByKey each copy writes
        // its share of the topic to a repartition topic keyed by page, which it creates, and keys its windows by that
        // topic's partitions. A copy joins, the other leaves: every window's count equals the views'.
        const int origins = 4;
        var topic = kafka.NewTopic("dist-hop", origins);
        var connection = await postgres.NewDatabaseAsync();
        var views = Views(16_000, seed: 31);
        var third = views.Length / 3;
        kafka.Produce(topic, Numbered(views[..third], 0));
        var source = Source(topic);
        source.PartitionedByKey = false;
        source.RepartitionPartitions = 3;

        // The mock cluster cannot create topics through the admin API (a controller call; see docs/deployment.md): the
        // test creates the repartition topic, as an operator who does not let applications create topics would.
        var hop = KafkaSource<PageView, PageView.JsonCodec>.RepartitionTopic(source.GroupId!, "PerSecond");
        kafka.NewTopic(hop, 3, exactName: true);

        var a = Pipeline(source, connection);
        var b = Pipeline(source, connection);
        using var stopA = new CancellationTokenSource();
        using var stopB = new CancellationTokenSource();
        var runA = a.RunAsync(Options(), stopA.Token);
        await WaitUntil(() => Scalar(connection, "SELECT count(*) FROM compiled_partitions WHERE checkpoint_id >= 2") == 3, [runA], "A's checkpoints of every repartition partition", connection);
        Assert.Equal(3, Partitions(hop));
        Assert.True(_log.Contains($"is keyed through a repartition topic {hop} (3 partitions"), _log.ToString());

        var runB = b.RunAsync(Options(), stopB.Token);
        await WaitUntil(() => Scalar(connection, "SELECT coalesce(min(epoch), 0) FROM compiled_partitions") >= 2, [runA, runB], "the partitions claimed again after B joined");
        kafka.Produce(topic, Numbered(views[third..(2 * third)], third));
        await WaitUntil(() => a.Views.Progress.Done > 0 && b.Views.Progress.Done > 0, [runA, runB], "records read by both copies");

        await stopA.CancelAsync();
        await runA.WaitAsync(Patience);
        kafka.Produce(topic, Numbered(views[(2 * third)..], 2 * third));
        await ProduceSentinels(topic, origins, views[^1].Time);
        var expected = Expected(views);
        await WaitUntil(() => Scalar(connection, "SELECT count(*) FROM page_counts WHERE page <> 'sentinel'") >= expected.Count, [runB], $"{expected.Count} rows", connection);
        await stopB.CancelAsync();
        await runB.WaitAsync(Patience);

        Assert.True(Scalar(connection, "SELECT coalesce(min(epoch), 0) FROM compiled_partitions") >= 3, "every partition was claimed again when A left");
        Assert.False(_log.Contains("' came from partitions", except: "key 'sentinel'"), _log.ToString()); // the repartition topic is keyed by page
        Assert.Equal(expected.OrderBy(e => e.Key), await Rows(connection)); // one row per window: none lost, none repeated
    }

    [Fact]
    public async Task A_distributed_run_that_cannot_repartition_or_has_no_exactly_once_sink_is_refused()
    {
        var topic = kafka.NewTopic("dist-refused", 2);
        var connection = await postgres.NewDatabaseAsync();

        // A transform in front of the [KeyBy]: the repartition topic's writers could not key the source's records.
        var transformed = new KafkaTrimmedPageCounts
        {
            Views = new(new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, Distributed = true }),
            Table = new(new PostgresSinkOptions { ConnectionString = connection, Table = "page_counts", ExactlyOnce = true }),
        };
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => transformed.RunAsync(Options()).WaitAsync(Patience));
        Assert.Contains("does not read the source's records directly", error.Message, StringComparison.Ordinal);

        // Declared partitioned by the key, the same pipeline needs no repartition topic and is not refused for it.
        transformed.Views.Options.PartitionedByKey = true;
        transformed.Views.Options.GroupId = "dist-refused-" + Guid.NewGuid().ToString("N");
        using (var stop = new CancellationTokenSource())
        {
            var run = transformed.RunAsync(Options(), stop.Token);
            await WaitUntil(() => Scalar(connection, "SELECT coalesce(min(checkpoint_id), 0) FROM compiled_partitions") >= 1, [run], "a checkpoint");
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        // A repartition topic the copy cannot create (the mock cluster cannot: a controller call) is named with its
        // partitions, for the operator to create; one of a different number of partitions than asked is refused.
        var source = Source(topic);
        source.PartitionedByKey = false;
        var other = await postgres.NewDatabaseAsync();
        var hop = KafkaSource<PageView, PageView.JsonCodec>.RepartitionTopic(source.GroupId!, "PerSecond");
        var cannotCreate = await Assert.ThrowsAsync<ConnectorException>(() => Pipeline(source, other).RunAsync(Options()).WaitAsync(Patience));
        Assert.Contains($"could not create the repartition topic '{hop}' with 2 partitions", cannotCreate.Message, StringComparison.Ordinal); // as many as the topic's

        source.GroupId = "dist-" + Guid.NewGuid().ToString("N"); // the mock cluster created the first group's topic in the end
        hop = KafkaSource<PageView, PageView.JsonCodec>.RepartitionTopic(source.GroupId, "PerSecond");
        kafka.NewTopic(hop, 5, exactName: true);
        source.RepartitionPartitions = 2;
        var wrongCount = await Assert.ThrowsAsync<PipelineConfigurationException>(() => Pipeline(source, other).RunAsync(Options()).WaitAsync(Patience));
        Assert.Contains($"exists with 5 partitions, not 2", wrongCount.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("(Parameter", wrongCount.Message, StringComparison.Ordinal);

        // PartitionedByKey means something only to a distributed run: refused, not ignored (exit 2 from the host).
        var plain = Source(topic);
        plain.Distributed = false;
        var notDistributed = Pipeline(plain, await postgres.NewDatabaseAsync());
        var ignored = await Assert.ThrowsAsync<ConnectorException>(() => notDistributed.RunAsync(Options()).WaitAsync(Patience));
        Assert.True(NonRetryableException.IsCause(ignored), ignored.ToString());
        Assert.Contains("PartitionedByKey", ignored.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("(Parameter", ignored.Message, StringComparison.Ordinal);

        // So do the repartition topic's settings, on a run that has none.
        var single = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, RepartitionPartitions = 4 };
        var singleDatabase = await postgres.NewDatabaseAsync();
        var noHop = await Assert.ThrowsAsync<ConnectorException>(() => Pipeline(single, singleDatabase).RunAsync(Options()).WaitAsync(Patience));
        Assert.True(NonRetryableException.IsCause(noHop), noHop.ToString());
        Assert.Contains("RepartitionPartitions and RepartitionReplicationFactor shape the repartition topic", noHop.Message, StringComparison.Ordinal);

        var atLeastOnce = new KafkaPageCountsToPostgres
        {
            Views = new(Source(topic)),
            Table = new(new PostgresSinkOptions { ConnectionString = connection, Table = "page_counts" }),
        };
        var refused = await Assert.ThrowsAsync<PipelineConfigurationException>(() => atLeastOnce.RunAsync(Options()).WaitAsync(Patience));
        Assert.Contains("exactly-once", refused.Message, StringComparison.Ordinal);
        Assert.Contains("cannot run distributed", refused.Message, StringComparison.Ordinal); // refused before the copy joined the group
        Assert.Equal(-1, Scalar(connection, "SELECT 0")); // no sink opened: none of its tables exists
    }

    [Fact]
    public async Task A_copy_whose_sink_cannot_open_or_writes_another_table_is_refused_before_it_disturbs_the_running_copy()
    {
        var topic = kafka.NewTopic("dist-bad-copy", 2);
        var connection = await postgres.NewDatabaseAsync();
        kafka.Produce(topic, Keyed(Views(2_000, seed: 3)));
        var source = Source(topic);
        var running = Pipeline(source, connection);
        using var stop = new CancellationTokenSource();
        var run = running.RunAsync(Options(), stop.Token);
        await WaitUntil(() => Scalar(connection, "SELECT coalesce(min(checkpoint_id), 0) FROM compiled_partitions") >= 2, [run], "checkpoints of every partition");

        // Same pipeline, group and database, another table: it would take over partitions with their state, and the
        // windows' rows would go to two tables. Refused when its sink opens, before it joins the group.
        var otherTable = new KafkaPageCountsToPostgres
        {
            Views = new(source),
            Table = new(new PostgresSinkOptions { ConnectionString = connection, Table = "other_counts", ExactlyOnce = true }),
        };
        var refused = await Assert.ThrowsAsync<ConnectorException>(() => otherTable.RunAsync(Options()).WaitAsync(Patience));
        Assert.True(NonRetryableException.IsCause(refused), refused.ToString());
        Assert.Contains("writing table 'page_counts'", refused.Message, StringComparison.Ordinal);

        // A sink that cannot open (its records have no [Key] for an upsert) fails the same way, before joining.
        var cannotOpen = new KafkaPageCountsToPostgres
        {
            Views = new(source),
            Table = new(new PostgresSinkOptions { ConnectionString = connection, Table = "page_counts", ExactlyOnce = true, Mode = PostgresWriteMode.Upsert }),
        };
        var failed = await Assert.ThrowsAsync<ConnectorException>(() => cannotOpen.RunAsync(Options()).WaitAsync(Patience));
        Assert.Contains("before joining the group", failed.Message, StringComparison.Ordinal);

        // Neither copy joined: the running copy was never asked to give its partitions back (no epoch moved on).
        Assert.Equal(1, Scalar(connection, "SELECT max(epoch) FROM compiled_partitions"));
        Assert.False(run.IsCompleted);
        await stop.CancelAsync();
        await run.WaitAsync(Patience);
    }

    [Fact]
    public async Task A_topic_declared_partitioned_by_the_key_that_is_not_is_reported()
    {
        // Messages keyed by something else (a user) than the [KeyBy] key (the page): every page comes from several
        // partitions, and each would count its share of a page's window. Compiled cannot prevent it, but says so.
        var topic = kafka.NewTopic("dist-unkeyed", 4);
        var connection = await postgres.NewDatabaseAsync();
        kafka.Produce(topic, Views(8_000, seed: 9).Select((v, i) => ((string?)("user" + (i % 97)), (byte[]?)Json(v))));
        var pipeline = Pipeline(Source(topic), connection);
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(Options(), stop.Token);
        await WaitUntil(() => _log.Contains("is declared PartitionedByKey but its messages are not keyed by the [KeyBy] key") || pipeline.Views.Progress.Done >= 8_000 && Scalar(connection, "SELECT coalesce(sum(greatest(next_offset, 0)), 0)::bigint FROM compiled_partitions") >= 8_000, [run], "the warning, or everything read without it");
        await stop.CancelAsync();
        await run.WaitAsync(Patience);
        Assert.True(_log.Contains("is declared PartitionedByKey but its messages are not keyed by the [KeyBy] key"), _log.ToString());
    }

    [Fact]
    public async Task A_topic_keyed_otherwise_is_counted_exactly_through_a_repartition_topic_though_a_writer_restart_writes_records_again()
    {
        // Issue 15's repartition topic, its two halves driven by hand (nothing runs them together yet): views keyed by
        // their number, so every page is in every source partition, re-keyed by page into a topic of three partitions; the first
        // writer commits half-way, has the rest acknowledged and crashes, so the second writes that rest again. The
        // distributed pipeline reads the hop topic, stopping in between (its ledgers go with its checkpoint): every
        // window's count equals the views', none counted twice.
        const int origins = 4;
        var topic = kafka.NewTopic("hop-views", origins);
        var hop = kafka.NewTopic("hop-views-by-page", 3);
        var connection = await postgres.NewDatabaseAsync();
        var views = Views(8_000, seed: 23);
        var half = views.Length / 2;
        var writerSource = new KafkaSourceOptions { BootstrapServers = kafka.BootstrapServers, Topics = topic, SessionTimeout = kafka.KilledConsumerSessionTimeout };
        var writerGroup = "hop-writer-" + Guid.NewGuid().ToString("N");
        var key = new PageKey();

        kafka.Produce(topic, views[..half].Select((v, i) => ((string?)$"v{i}", (byte[]?)Json(v))));
        var first = new KafkaRepartitionWriter<PageView, PageView.JsonCodec>(writerSource, writerGroup, hop, 3, key, Timeout.InfiniteTimeSpan);
        using (var stop = new CancellationTokenSource())
        using (var crash = new CancellationTokenSource())
        {
            var run = first.RunAsync(stop.Token, crash.Token);
            await WaitUntil(() => first.Forwarded == half, [run], "the first half forwarded");
            first.RequestCommit();
            await WaitUntil(() => first.Commits == 1, [run], "the first writer's commit");
            kafka.Produce(topic, views[half..].Select((v, i) => ((string?)$"v{half + i}", (byte[]?)Json(v))));
            await WaitUntil(() => first.Acknowledged == views.Length, [run], "every view acknowledged");
            await crash.CancelAsync();
            await run;
        }

        // The keyed side reads what the first writer wrote and commits it, with each partition's ledger, and stops.
        var source = Source(hop);
        source.HopOf = topic;
        using (var stop = new CancellationTokenSource())
        {
            var before = Pipeline(source, connection);
            var run = before.RunAsync(Options(), stop.Token);
            var written = Written(hop, 3);
            await WaitUntil(() => Scalar(connection, "SELECT coalesce(sum(next_offset), 0)::bigint FROM compiled_partitions") >= written, [run], "the first writer's records and marks committed", connection);
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
            Assert.Equal(0, before.Views.Repeats);
        }

        await ProduceSentinels(topic, origins, views[^1].Time);
        var second = new KafkaRepartitionWriter<PageView, PageView.JsonCodec>(writerSource, writerGroup, hop, 3, key, TimeSpan.FromMilliseconds(100));
        using (var stop = new CancellationTokenSource())
        {
            var run = second.RunAsync(stop.Token);
            await WaitUntil(() => second.Forwarded == views.Length - half + origins, [run], "the rest and the sentinels forwarded again");
            await stop.CancelAsync();
            await run;
        }

        // The next run restores each partition's ledger with its state: the rest, written again, is dropped.
        var pipeline = Pipeline(source, connection);
        var expected = Expected(views);
        using (var stop = new CancellationTokenSource())
        {
            var run = pipeline.RunAsync(Options(), stop.Token);
            await WaitUntil(() => Scalar(connection, "SELECT count(*) FROM page_counts WHERE page <> 'sentinel'") >= expected.Count, [run], $"{expected.Count} rows", connection);
            await stop.CancelAsync();
            await run.WaitAsync(Patience);
        }

        Assert.Equal(expected.OrderBy(e => e.Key), await Rows(connection)); // one row per window: none lost, none repeated
        Assert.Equal(views.Length - half, pipeline.Views.Repeats);
    }

    [Fact]
    public async Task An_origin_that_said_it_was_at_its_end_but_has_more_records_holds_the_repartition_partitions_clock_back()
    {
        // A repartition partition written by hand: origin 0's writer said it was at its end at offset 5 and then died,
        // while its topic partition has 10 records; origin 1 went ten minutes further. Taken at its word, origin 0
        // would let the clock follow origin 1, and its next writer's records (offsets 5–9, half a minute later than
        // the first) would be late. Its end is checked instead, and the clock waits for it: every view is counted.
        var topic = kafka.NewTopic("stale-origin", 2);
        var hop = kafka.NewTopic("stale-origin-hop", 1);
        var connection = await postgres.NewDatabaseAsync();
        await ProduceInOrderAsync(topic, Enumerable.Range(0, 10).Select(i => new Message<string?, byte[]?> { Value = Json(new PageView("origin", i)) }));
        const long start = 1_700_000_000_000L;
        var views = new List<(int Origin, long Offset, PageView View)>();
        for (var i = 0; i < 5; i++)
        {
            views.Add((0, i, new PageView("a", start + (i * 1_000))));
            views.Add((1, i, new PageView("b", start + (i * 1_000))));
        }

        var late = Enumerable.Range(5, 5).Select(i => (Origin: 0, Offset: (long)i, View: new PageView("a", start + 30_000 + (i * 1_000)))).ToList();
        await ProduceInOrderAsync(hop, views.Select(v => Hop(v.Origin, v.Offset, v.View)).Concat(
        [
            Mark(0, start + 4_000, atEnd: true, end: 5),
            Mark(1, start + 600_000, atEnd: false, end: 5),
        ]));
        Assert.Equal(10, Written(topic, 1)); // partition 0

        var source = Source(hop);
        source.HopOf = topic;
        var pipeline = Pipeline(source, connection);
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(Options(), stop.Token);
        var written = Written(hop, 1);
        await WaitUntil(() => Scalar(connection, "SELECT coalesce(sum(next_offset), 0)::bigint FROM compiled_partitions") >= written, [run], "the first records and marks committed", connection);

        // Origin 0's next writer: the rest of its records, then both origins a day later.
        await ProduceInOrderAsync(hop, late.Select(v => Hop(v.Origin, v.Offset, v.View)).Concat(
        [
            Mark(0, start + 86_400_000, atEnd: false, end: 10),
            Mark(1, start + 86_400_000, atEnd: false, end: 5),
        ]));
        var expected = Expected([.. views.Concat(late).Select(v => v.View)]);
        await WaitUntil(() => Scalar(connection, "SELECT count(*) FROM page_counts") >= expected.Count, [run], $"{expected.Count} rows", connection);
        await stop.CancelAsync();
        await run.WaitAsync(Patience);
        Assert.Equal(expected.OrderBy(e => e.Key), await Rows(connection)); // none late
    }

    private static Message<string?, byte[]?> Hop(int origin, long offset, PageView view)
        => new() { Key = view.Page, Value = Json(view), Headers = [new Header(RepartitionHeaders.Origin, RepartitionHeaders.OriginValue(origin, offset))] };

    private static Message<string?, byte[]?> Mark(int origin, long eventTime, bool atEnd, long end)
        => new() { Headers = [new Header(RepartitionHeaders.Mark, RepartitionHeaders.MarkValue(origin, eventTime, 2, atEnd, end))] };

    /// <summary>Writes <paramref name="messages"/> to partition 0 of <paramref name="topic"/>, in order.</summary>
    private async Task ProduceInOrderAsync(string topic, IEnumerable<Message<string?, byte[]?>> messages)
    {
        using var producer = new ProducerBuilder<string?, byte[]?>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, EnableIdempotence = true }).SetLogHandler((_, _) => { }).Build();
        foreach (var message in messages)
        {
            await producer.ProduceAsync(new TopicPartition(topic, 0), message);
        }
    }

    /// <summary>The number of messages in <paramref name="topic"/>'s partitions (its high watermarks: the mock cluster starts them at 0).</summary>
    private long Written(string topic, int partitions)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "count-" + Guid.NewGuid().ToString("N") }).SetLogHandler((_, _) => { }).Build();
        return Enumerable.Range(0, partitions).Sum(p => consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(30)).High.Value);
    }

    /// <summary>Views keyed by page for the repartition writer, by a hash of the page's characters.</summary>
    private sealed class PageKey : IRepartitionKey<PageView>
    {
        public bool HasEventTime => true;

        public int PartitionOf(in PageView record, int partitions, out long eventTime)
        {
            eventTime = record.Time;
            var hash = 17u;
            foreach (var c in record.Page)
            {
                hash = (hash * 31) + c;
            }

            return (int)(hash % (uint)partitions);
        }
    }

    private KafkaSourceOptions Source(string topic) => new()
    {
        BootstrapServers = kafka.BootstrapServers,
        Topics = topic,
        GroupId = "dist-" + Guid.NewGuid().ToString("N"),
        StartFrom = KafkaStart.Earliest,
        SessionTimeout = kafka.KilledConsumerSessionTimeout,
        Distributed = true,
        PartitionedByKey = true,
    };

    private static KafkaPageCountsToPostgres Pipeline(KafkaSourceOptions source, string connection) => new()
    {
        Views = new(source),
        Table = new(new PostgresSinkOptions { ConnectionString = connection, Table = "page_counts", ExactlyOnce = true }), // append: a repeat would be a second row
    };

    private readonly LogLines _log = new();

    public void Dispose() => _log.Dispose();

    private PipelineOptions Options() => new() { Parallelism = 2, CheckpointInterval = TimeSpan.FromMilliseconds(200), LoggerFactory = _log };

    private static PageView[] Views(int count, int seed)
    {
        var random = new Random(seed);
        var time = 1_700_000_000_000L;
        return [.. Enumerable.Range(0, count).Select(_ => new PageView("page" + random.Next(0, 24), time += random.Next(0, 12)))];
    }

    private static Dictionary<(string, long), long> Expected(PageView[] views)
        => views.GroupBy(v => (v.Page, v.Time - (v.Time % 1000))).ToDictionary(g => g.Key, g => (long)g.Count());

    /// <summary>Views keyed by their number from <paramref name="first"/> on, not by page: every page lands in every partition.</summary>
    private static IEnumerable<(string?, byte[]?)> Numbered(IEnumerable<PageView> views, int first) => views.Select((v, i) => ((string?)$"v{first + i}", (byte[]?)Json(v)));

    /// <summary>The number of partitions of <paramref name="topic"/> in the cluster's metadata (0: it does not exist).</summary>
    private int Partitions(string topic)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = kafka.BootstrapServers }).SetLogHandler((_, _) => { }).Build();
        return admin.GetMetadata(topic, TimeSpan.FromSeconds(30)).Topics.FirstOrDefault(t => t.Topic == topic && !t.Error.IsError)?.Partitions.Count ?? 0;
    }

    private static IEnumerable<(string?, byte[]?)> Keyed(IEnumerable<PageView> views) => views.Select(v => ((string?)v.Page, (byte[]?)Json(v)));

    private static byte[] Json(PageView view) => Encoding.UTF8.GetBytes($$"""{"page":"{{view.Page}}","time":{{view.Time.ToString(CultureInfo.InvariantCulture)}}}""");

    /// <summary>A view a day later in every partition: every real window fires.</summary>
    private Task ProduceSentinels(string topic, int partitions, long last) => kafka.ProduceToEveryPartitionAsync(topic, partitions, Json(new PageView("sentinel", last + 86_400_000)));

    private static async Task<List<KeyValuePair<(string, long), long>>> Rows(string connection)
    {
        var rows = new List<KeyValuePair<(string, long), long>>();
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var select = new NpgsqlCommand("SELECT page, window_start, views FROM page_counts WHERE page <> 'sentinel'", db);
        await using var reader = await select.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(KeyValuePair.Create((reader.GetString(0), reader.GetInt64(1)), reader.GetInt64(2)));
        }

        return [.. rows.OrderBy(r => r.Key)];
    }

    private static string Dump(string connection)
    {
        using var db = new NpgsqlConnection(connection);
        db.Open();
        using var command = new NpgsqlCommand("SELECT string_agg(partition || ':' || next_offset || ':' || epoch || ':' || checkpoint_id, ' ') FROM compiled_partitions", db);
        return command.ExecuteScalar()?.ToString() ?? "";
    }

    private static void Execute(string connection, string sql)
    {
        using var db = new NpgsqlConnection(connection);
        db.Open();
        using var command = new NpgsqlCommand(sql, db);
        command.ExecuteNonQuery();
    }

    /// <summary>A figure from the database; -1 until the sink has created its tables.</summary>
    private static long Scalar(string connection, string sql)
    {
        using var db = new NpgsqlConnection(connection);
        db.Open();
        using var exists = new NpgsqlCommand("SELECT to_regclass('page_counts') IS NOT NULL AND to_regclass('compiled_partitions') IS NOT NULL", db);
        if (exists.ExecuteScalar() is not true)
        {
            return -1;
        }

        using var command = new NpgsqlCommand(sql, db);
        return command.ExecuteScalar() is long value ? value : -1;
    }

    private async Task WaitUntil(Func<bool> condition, Task[] runs, string what, string? connection = null)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (runs.FirstOrDefault(r => r.IsCompleted) is { } ended)
            {
                await ended;
                Assert.Fail($"a run ended before {what}");
            }

            if (DateTime.UtcNow >= deadline)
            {
                Assert.Fail($"not within {Patience}: {what} {(connection is null ? "" : Dump(connection))}\n{_log}"); // the database's state only now: its tables may not exist before
            }

            await Task.Delay(20); // polling the database, with a deadline
        }
    }
}
