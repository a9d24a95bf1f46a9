using System.Threading.Channels;
using Confluent.Kafka;

namespace Compiled.Kafka;

/// <summary>
/// A distributed run's membership in its consumer group: one consumer that subscribes to the topic only to take part
/// in the group protocol — it never hands on a message (its partitions are paused as soon as they are assigned) — and
/// turns each assignment into a <see cref="PartitionLease"/>. The run's readers read the leased partitions with
/// consumers of their own, assigned by hand. A revoke waits, on this member's own thread, until the run using the
/// lease has written its last checkpoint and released it, so the next owner restores exactly that.
/// </summary>
internal sealed class KafkaGroupMember
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);
    private readonly ConsumerConfig _config;
    private readonly IReadOnlyList<string> _topics;
    private readonly Channel<PartitionLease> _leases = Channel.CreateUnbounded<PartitionLease>();
    private readonly Thread _thread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile TaskCompletionSource? _rejoin;
    private volatile bool _closing;
    private PartitionLease? _current;
    private bool _pause;

    public KafkaGroupMember(ConsumerConfig config, IReadOnlyList<string> topics)
    {
        _config = config;
        _topics = topics;
        _thread = new Thread(Loop) { IsBackground = true, Name = $"kafka group {config.GroupId}" };
        _thread.Start();
    }

    /// <summary>The next assignment (one already taken back before the run saw it is released and skipped).</summary>
    public async ValueTask<PartitionLease> AcquireAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var lease = await _leases.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (!lease.Revoked.IsCancellationRequested && !lease.Lost.IsCancellationRequested)
            {
                return lease;
            }

            lease.Release();
        }
    }

    /// <summary>Leaves the group and joins it again with a new consumer (after a fenced commit).</summary>
    public Task RejoinAsync()
    {
        ReleaseWaiting();
        var rejoin = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _rejoin = rejoin;
        return rejoin.Task;
    }

    /// <summary>Leaves the group for good.</summary>
    public Task LeaveAsync()
    {
        _closing = true;
        ReleaseWaiting();
        Volatile.Read(ref _current)?.Release();
        return _stopped.Task;
    }

    private void ReleaseWaiting()
    {
        while (_leases.Reader.TryRead(out var stale))
        {
            stale.Release();
        }
    }

    private void Loop()
    {
        try
        {
            var consumer = Join();
            while (!_closing)
            {
                if (_rejoin is { } rejoin)
                {
                    Leave(consumer);
                    consumer = Join();
                    _rejoin = null;
                    rejoin.TrySetResult();
                }

                try
                {
                    consumer.Consume(Poll); // runs the rebalance callbacks; messages are not handed on (the partitions are paused)
                }
                catch (ConsumeException)
                {
                    // A message the member does not read (it never should get one)
                }

                if (_pause)
                {
                    _pause = false;
                    consumer.Pause(consumer.Assignment);
                }
            }

            Leave(consumer);
            _leases.Writer.TryComplete();
            _stopped.TrySetResult();
        }
        catch (Exception ex)
        {
            _leases.Writer.TryComplete(ex);
            _rejoin?.TrySetException(ex);
            _stopped.TrySetResult();
        }
    }

    private IConsumer<Ignore, Ignore> Join()
    {
        var consumer = new ConsumerBuilder<Ignore, Ignore>(_config)
            .SetPartitionsAssignedHandler((_, partitions) =>
            {
                var lease = new PartitionLease([.. partitions.OrderBy(p => p.Topic, StringComparer.Ordinal).ThenBy(p => p.Partition.Value).Select(p => new SourcePosition(p.Topic, p.Partition.Value, -1))]);
                Volatile.Write(ref _current, lease);
                _pause = true;
                _leases.Writer.TryWrite(lease);
                return partitions.Select(p => new TopicPartitionOffset(p, Offset.End)).ToList();
            })
            .SetPartitionsRevokedHandler((_, _) => Give(lose: false))
            .SetPartitionsLostHandler((_, _) => Give(lose: true))
            .SetErrorHandler((_, _) => { }) // transient: librdkafka retries; a lost session shows as lost partitions
            .SetLogHandler((_, _) => { })
            .Build();
        consumer.Subscribe(_topics);
        return consumer;
    }

    /// <summary>The group takes the partitions back: the run stops (with a last checkpoint, unless they are lost already) and releases them.</summary>
    private void Give(bool lose)
    {
        var lease = Interlocked.Exchange(ref _current, null);
        if (lease is null)
        {
            return;
        }

        if (_closing)
        {
            lease.Release(); // leaving for good: no run waits for it any more
        }

        if (lose)
        {
            lease.Lose();
        }
        else
        {
            lease.Revoke();
        }

        lease.Released.GetAwaiter().GetResult(); // on this member's own thread: the group waits (up to max.poll.interval.ms)
    }

    private static void Leave(IConsumer<Ignore, Ignore> consumer)
    {
        try
        {
            consumer.Close();
        }
        catch (KafkaException)
        {
            // the group times the member out
        }
        finally
        {
            consumer.Dispose();
        }
    }
}
