namespace Compiled.Runtime;

/// <summary>What a batch crossing an exchange carries besides records.</summary>
internal enum ExchangeSignal : byte
{
    /// <summary>Records (possibly none) and the producer's watermark.</summary>
    Data,

    /// <summary>The producer has nothing to read for now: it stops holding watermarks back until it sends records.</summary>
    Idle,

    /// <summary>The producer has ended: nothing more comes from it.</summary>
    End,

    /// <summary>Not from a producer: the consumer's clock ticked (processing-time windows, idle timeouts).</summary>
    Tick,

    /// <summary>
    /// A checkpoint barrier (<see cref="ExchangeBatch{T}.Barrier"/>): everything the producer sent before it belongs to
    /// the checkpoint, everything after it to the next one.
    /// </summary>
    Barrier,
}

/// <summary>
/// A batch crossing an exchange: records for one consumer partition from one producer (the consumer's input
/// <see cref="Input"/>), with that producer's watermark — or a signal. Batches are pooled by their exchange.
/// </summary>
internal sealed class ExchangeBatch<T>
{
    public T[] Items = new T[64];
    public int Count;
    public int Input;
    public long Watermark = long.MinValue;
    public ExchangeSignal Signal;
    public long Barrier;

    /// <summary>With a barrier: the watermark the producer would send if every split it reads fell idle (its largest event time less the out-of-orderness).</summary>
    public long Reached = long.MinValue;

    /// <summary>The producer was idle and sends records again (to this consumer or another): it holds watermarks back again.</summary>
    public bool Active;

    /// <summary>With a barrier of a by-split exchange: the state of the consumer's split, from the reader that reads it (<see cref="ISplitStateReader"/>).</summary>
    public byte[]? SplitState;

    public void Add(in T item)
    {
        if (Count == Items.Length)
        {
            Array.Resize(ref Items, Count * 2);
        }

        Items[Count++] = item;
    }

    public void Reset(int input)
    {
        Count = 0;
        Input = input;
        Watermark = long.MinValue;
        Signal = ExchangeSignal.Data;
        Barrier = 0;
        Reached = long.MinValue;
        Active = false;
        SplitState = null;
    }
}
