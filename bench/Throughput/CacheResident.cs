using Compiled.Bench;

namespace Compiled.Throughput;

/// <summary>
/// A block of orders small enough to stay in a core's L2 cache, handed out <c>repeats</c> times: the same work as the
/// memory scenario without the memory bandwidth, which two cores share. Each reader hands its share of the repeats.
/// </summary>
public sealed class RepeatedBlockSource(Order[] block, int repeats) : ISource<Order>
{
    private int _parallelism = 1;

    public ValueTask OpenAsync(SourceContext<Order> context, CancellationToken cancellationToken)
    {
        _parallelism = context.Parallelism;
        return ValueTask.CompletedTask;
    }

    public ISourceReader<Order> CreateReader(int partition)
        => new Reader(block, (repeats / _parallelism) + (partition < repeats % _parallelism ? 1 : 0));

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader(Order[] block, int count) : ISourceReader<Order>
    {
        private int _sent;

        public ValueTask<SourceBatch<Order>> ReadAsync(CancellationToken cancellationToken)
            => ValueTask.FromResult(_sent++ < count ? SourceBatch<Order>.Of(block) : SourceBatch<Order>.End);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>What a user would write to use both cores on the memory scenario: the array in two halves, one task each.</summary>
internal static class TwoThreadHandLoop
{
    public static async Task<Result> RunAsync(Order[] orders)
    {
        var half = orders.Length / 2;
        var first = Task.Run(() => OrderWorkload.HandLoop(orders.AsSpan(0, half)));
        var second = Task.Run(() => OrderWorkload.HandLoop(orders.AsSpan(half)));
        var (a, b) = (await first, await second);
        return new Result(a.Count + b.Count, a.Sum + b.Sum);
    }

    /// <summary>The block <paramref name="repeats"/> times on two threads, half the repeats each.</summary>
    public static async Task<Result> RunRepeatedAsync(Order[] block, int repeats)
    {
        var first = Task.Run(() => Repeated(block, repeats / 2));
        var second = Task.Run(() => Repeated(block, repeats - (repeats / 2)));
        var (a, b) = (await first, await second);
        return new Result(a.Count + b.Count, a.Sum + b.Sum);
    }

    public static Result Repeated(Order[] block, int repeats)
    {
        long count = 0;
        double sum = 0;
        for (var r = 0; r < repeats; r++)
        {
            var part = OrderWorkload.HandLoop(block);
            count += part.Count;
            sum += part.Sum;
        }

        return new Result(count, sum);
    }
}
