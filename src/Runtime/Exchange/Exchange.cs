using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Compiled.Runtime;

/// <summary>How an exchange spreads a producer's records over the consumer's partitions.</summary>
internal enum ExchangeRouting
{
    /// <summary>Producer partition p feeds consumer partition p only (same parallelism, records stay where they are).</summary>
    Forward,

    /// <summary>Each record goes to the partition that owns its key: its key hash modulo the consumer's parallelism.</summary>
    Hash,

    /// <summary>Every record goes to every consumer partition (a side input every partition needs whole).</summary>
    Broadcast,

    /// <summary>Each batch goes to the next consumer partition in turn (work spread over every partition, whatever reads it).</summary>
    Rebalance,

    /// <summary>
    /// Each record goes to the consumer partition numbered like the source split it was read from (a distributed run:
    /// the i-th input partition this copy holds feeds keyed partition i, which owns the state of its keys).
    /// </summary>
    BySplit,
}

/// <summary>A record that can cross an exchange: it carries its key's hash and its event time.</summary>
internal interface IExchangeRecord
{
    /// <summary>The key's mixed hash (<see cref="KeyHash.Of{TKey}"/>).</summary>
    int Hash { get; }

    /// <summary>Event time, Unix milliseconds.</summary>
    long Timestamp { get; }
}

/// <summary>A consumer partition fed on the producer's own worker (an inline exchange).</summary>
internal interface IExchangeConsumer<T>
{
    /// <summary>Takes a batch (and returns it to the exchange's pool), runs the consumer's loop over it, and flushes the consumer's outputs.</summary>
    ValueTask ReceiveAsync(ExchangeBatch<T> batch, CancellationToken cancellationToken);
}

/// <summary>
/// The edge between the partitions of one stage (the producers: the loop before a <c>[KeyBy]</c>) and the partitions of
/// the next (the consumers: a window and the loop after it). Producers write through an <see cref="ExchangePort{T}"/>;
/// each consumer reads one bounded channel that every producer writes into (batches are tagged with their producer,
/// so a consumer keeps one watermark per input). A full channel makes the producer wait: backpressure reaches the
/// source. Inline, the consumer runs on the producer's worker instead (no channel, no thread hop): the runtime
/// chooses that for a forward edge whose consumer needs no clock of its own, and the test driver for every edge.
/// </summary>
internal abstract class Exchange(string name, ExchangeRouting routing, int producers, int consumers, bool inline)
{
    /// <summary>The window the exchange feeds, for messages and metrics.</summary>
    public string Name { get; } = name;

    public ExchangeRouting Routing { get; } = routing;

    public int Producers { get; } = producers;

    public int Consumers { get; } = consumers;

    /// <summary>Whether consumers run on the producers' workers.</summary>
    public bool Inline { get; } = inline;

    /// <summary>Completes when every consumer partition has ended (set by the run once it starts them).</summary>
    public Task Completion { get; set; } = Task.CompletedTask;

    /// <summary>The inputs of consumer partition <paramref name="consumer"/>: the producers that can send to it.</summary>
    public int InputsOf(int consumer) => Routing == ExchangeRouting.Forward ? 1 : Producers;

    /// <summary>Batches waiting in the consumers' channels, and their capacity (both 0 inline).</summary>
    public abstract (int Queued, int Capacity) Fill();
}

/// <summary>An exchange of <typeparamref name="T"/> records.</summary>
internal sealed class Exchange<T> : Exchange
    where T : IExchangeRecord
{
    private readonly Channel<ExchangeBatch<T>>[] _inboxes;
    private readonly IExchangeConsumer<T>?[] _receivers;
    private readonly ConcurrentQueue<ExchangeBatch<T>> _spare = new();
    private readonly int _capacity;

    public Exchange(string name, ExchangeRouting routing, int producers, int consumers, bool inline, int queueCapacity)
        : base(name, routing, producers, consumers, inline)
    {
        if (routing == ExchangeRouting.Forward && producers != consumers)
        {
            throw new ArgumentException($"A forward exchange needs as many consumers ({consumers}) as producers ({producers}).", nameof(consumers));
        }

        _receivers = new IExchangeConsumer<T>?[consumers];
        if (inline)
        {
            _inboxes = [];
            return;
        }

        // Every producer may have a batch in flight to every consumer: the channel holds a few rounds of them.
        _capacity = Math.Max(2, queueCapacity) * InputsOf(0);
        _inboxes = new Channel<ExchangeBatch<T>>[consumers];
        for (var c = 0; c < consumers; c++)
        {
            _inboxes[c] = Channel.CreateBounded<ExchangeBatch<T>>(new BoundedChannelOptions(_capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        }
    }

    /// <summary>Registers the consumer partition that receives inline batches.</summary>
    public void Attach(int consumer, IExchangeConsumer<T> receiver) => _receivers[consumer] = receiver;

    /// <summary>The channel consumer partition <paramref name="consumer"/> reads (threaded exchanges only).</summary>
    public ChannelReader<ExchangeBatch<T>> Inbox(int consumer) => _inboxes[consumer].Reader;

    public override (int Queued, int Capacity) Fill()
    {
        var queued = 0;
        foreach (var inbox in _inboxes)
        {
            queued += inbox.Reader.Count;
        }

        return (queued, _capacity * _inboxes.Length);
    }

    /// <summary>A pooled, empty batch from input <paramref name="input"/>.</summary>
    public ExchangeBatch<T> Rent(int input)
    {
        if (!_spare.TryDequeue(out var batch))
        {
            batch = new ExchangeBatch<T>();
        }

        batch.Reset(input);
        return batch;
    }

    /// <summary>Gives a batch back to the pool once its records have been used.</summary>
    public void Return(ExchangeBatch<T> batch)
    {
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            batch.Items.AsSpan(0, batch.Count).Clear();
        }

        batch.Count = 0;
        _spare.Enqueue(batch);
    }

    /// <summary>Sends <paramref name="batch"/> to consumer partition <paramref name="consumer"/>, waiting while its channel is full.</summary>
    public ValueTask SendAsync(int consumer, ExchangeBatch<T> batch, CancellationToken cancellationToken)
        => Inline
            ? (_receivers[consumer] ?? throw new InvalidOperationException($"Exchange to '{Name}': consumer {consumer} is not attached.")).ReceiveAsync(batch, cancellationToken)
            : _inboxes[consumer].Writer.WriteAsync(batch, cancellationToken);

    /// <summary>Posts a clock tick to consumer partition <paramref name="consumer"/> unless its channel is full (then it is busy and will look at the clock anyway).</summary>
    public void PostTick(int consumer)
    {
        var tick = Rent(0);
        tick.Signal = ExchangeSignal.Tick;
        if (!_inboxes[consumer].Writer.TryWrite(tick))
        {
            Return(tick);
        }
    }
}
