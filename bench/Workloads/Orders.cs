using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Compiled.Connectors;

namespace Compiled.Bench;

/// <summary>
/// The DESIGN.md workload record: a 32-byte struct (8 + 4 + 4 padding + 8 + 8). Four fields, not five: the JIT
/// promotes structs of at most four fields to registers; with a fifth field every <c>with</c> copies the record
/// through the stack (see bench/RESULTS.md).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct Order(long Id, int Age, double Amount, long Timestamp);

/// <summary>The workload: map (Age + 1) → filter (Age ≥ 18) → map (Amount × 1.1) → sum of Amount and count.</summary>
public static class OrderWorkload
{
    public const int DefaultCount = 10_000_000;

    public static Order[] Create(int count)
    {
        var orders = new Order[count];
        for (var i = 0; i < orders.Length; i++)
        {
            orders[i] = new Order(i, i % 40, (i % 1000) * 0.25, 1_700_000_000_000 + i);
        }

        return orders;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Order Birthday(Order o) => o with { Age = o.Age + 1 };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsAdult(Order o) => o.Age >= 18;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Order WithTax(Order o) => o with { Amount = o.Amount * 1.1 };

    /// <summary>Records per push when a benchmark drives the generated loop directly (see the benchmark's remarks).</summary>
    public const int PushChunk = 64 * 1024;

    /// <summary>Pushes <paramref name="orders"/> through <paramref name="driver"/> in chunks of <see cref="PushChunk"/>.</summary>
    public static void PushInChunks(Compiled.Testing.PipelineTestDriver<Order> driver, Order[] orders)
    {
        ArgumentNullException.ThrowIfNull(driver);
        ArgumentNullException.ThrowIfNull(orders);
        for (var start = 0; start < orders.Length; start += PushChunk)
        {
            driver.Push(orders.AsSpan(start, Math.Min(PushChunk, orders.Length - start)));
        }
    }

    /// <summary>The hand-written loop: the limit every other implementation is measured against.</summary>
    public static Result HandLoop(ReadOnlySpan<Order> orders)
    {
        double sum = 0;
        long count = 0;
        for (var i = 0; i < orders.Length; i++)
        {
            var o = orders[i];
            o = o with { Age = o.Age + 1 };
            if (o.Age < 18)
            {
                continue;
            }

            o = o with { Amount = o.Amount * 1.1 };
            sum += o.Amount;
            count++;
        }

        return new Result(count, sum);
    }
}

/// <summary>A benchmark's answer: how many records reached the end, and the sum of their amounts.</summary>
public readonly record struct Result(long Count, double Sum)
{
    /// <summary>Throws unless this equals <paramref name="expected"/> (sums within rounding: partitions add in another order).</summary>
    public Result Verify(Result expected, string implementation)
    {
        if (Count != expected.Count || Math.Abs(Sum - expected.Sum) > Math.Abs(expected.Sum) * 1e-9)
        {
            throw new InvalidOperationException($"{implementation} computed {this}, expected {expected}: the benchmark is wrong.");
        }

        return this;
    }
}

/// <summary>
/// Sums amounts and counts records: a struct sink operator. The generated loop keeps it in registers for a whole
/// batch (and writes it back after each call), as a hand-written loop keeps its accumulators in locals.
/// </summary>
public struct Totals
{
    public double Sum { get; private set; }

    public long Count { get; private set; }

    public void Add(Order order)
    {
        Sum += order.Amount;
        Count++;
    }

    public readonly Result Result => new(Count, Sum);
}

/// <summary>The workload as a Compiled pipeline whose sink is a struct operator: the whole chain, sum included, is one loop.</summary>
[Pipeline]
public sealed partial class FusedOrders : IDisposable
{
    private static readonly Lock SharedLock = new();
    private static Result s_shared;

    [Source] public ISource<Order> Orders { get; set; } = new CollectionSource<Order>();

    [Transform] static Order Birthday(Order o) => OrderWorkload.Birthday(o);

    [Transform] static bool IsAdult(Order o) => OrderWorkload.IsAdult(o);

    [Transform] static Order WithTax(Order o) => OrderWorkload.WithTax(o);

    [Sink] public Totals Total { get; set; }

    /// <summary>
    /// The totals of every partition: this object's (partition 0) plus those other partitions' objects handed in when
    /// the runtime disposed them at the end of the run.
    /// </summary>
    public Result Result
    {
        get
        {
            lock (SharedLock)
            {
                return new Result(Total.Count + s_shared.Count, Total.Sum + s_shared.Sum);
            }
        }
    }

    public static void ResetShared()
    {
        lock (SharedLock)
        {
            s_shared = default;
        }
    }

    public void Dispose()
    {
        lock (SharedLock)
        {
            s_shared = new Result(s_shared.Count + Total.Count, s_shared.Sum + Total.Sum);
        }
    }
}

/// <summary>The workload through the runtime: a source, partitions, output ports, and a summing connector sink.</summary>
[Pipeline]
public sealed partial class RuntimeOrders
{
    [Source] public CollectionSource<Order> Orders { get; set; } = new();

    [Transform] static Order Birthday(Order o) => OrderWorkload.Birthday(o);

    [Transform] static bool IsAdult(Order o) => OrderWorkload.IsAdult(o);

    [Transform] static Order WithTax(Order o) => OrderWorkload.WithTax(o);

    [Sink] public SumSink Total { get; } = new();
}

/// <summary>Sums amounts and counts records, per partition, on the partition's worker (an inline sink).</summary>
public sealed class SumSink : ISink<Order>
{
    private Writer[] _writers = [];

    public SinkExecution Execution => SinkExecution.Inline;

    public Result Result => new(_writers.Sum(w => w.Count), _writers.Sum(w => w.Sum));

    public ValueTask OpenAsync(SinkContext<Order> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _writers = new Writer[context.Parallelism];
        return ValueTask.CompletedTask;
    }

    public ISinkWriter<Order> CreateWriter(int partition) => _writers[partition] = new Writer();

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public string Describe() => "sum";

    private sealed class Writer : ISinkWriter<Order>
    {
        public double Sum { get; private set; }

        public long Count { get; private set; }

        public ValueTask WriteAsync(ReadOnlyMemory<Order> records, CancellationToken cancellationToken)
        {
            // An indexed loop: with 'foreach (ref readonly ...)' the JIT kept the sum on the stack (a load and a
            // store per record); see bench/RESULTS.md.
            var span = records.Span;
            double sum = 0;
            for (var i = 0; i < span.Length; i++)
            {
                sum += span[i].Amount;
            }

            Sum += sum;
            Count += records.Length;
            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>The tax as an operator object a user writes to configure it: a class with its rate set once (it cannot change).</summary>
public sealed class TaxRate(double rate)
{
    private readonly double _rate = rate;

    public Order Apply(Order o) => o with { Amount = o.Amount * _rate };
}

/// <summary>An adult filter that counts what it saw: a class operator with state (a mutable field).</summary>
public sealed class CountingAdults
{
    public long Seen { get; private set; }

    public bool Apply(Order o)
    {
        Seen++;
        return OrderWorkload.IsAdult(o);
    }
}

/// <summary>The workload with the tax as a class operator that cannot change: the loop keeps its fast path.</summary>
[Pipeline]
public sealed partial class ClassOperatorOrders
{
    [Source] public ISource<Order> Orders { get; set; } = new CollectionSource<Order>();

    [Transform] static Order Birthday(Order o) => OrderWorkload.Birthday(o);

    [Transform] static bool IsAdult(Order o) => OrderWorkload.IsAdult(o);

    [Transform] public TaxRate Tax { get; } = new(1.1);

    [Sink] public Totals Total { get; set; }
}

/// <summary>The workload with the adult filter as a class operator with state: the loop saves its counter before each batch (the fast path).</summary>
[Pipeline]
public sealed partial class StatefulClassOrders
{
    [Source] public ISource<Order> Orders { get; set; } = new CollectionSource<Order>();

    [Transform] static Order Birthday(Order o) => OrderWorkload.Birthday(o);

    [Transform] public CountingAdults Adults { get; } = new();

    [Transform] static Order WithTax(Order o) => OrderWorkload.WithTax(o);

    [Sink] public Totals Total { get; set; }
}

/// <summary>The workload by hand with the same operator objects, as a user who wrote those classes would loop over them.</summary>
public static class ClassOperatorHandLoops
{
    public static Result WithTaxRate(ReadOnlySpan<Order> orders, TaxRate tax)
    {
        double sum = 0;
        long count = 0;
        foreach (var order in orders)
        {
            var o = order with { Age = order.Age + 1 };
            if (o.Age < 18)
            {
                continue;
            }

            o = tax.Apply(o);
            sum += o.Amount;
            count++;
        }

        return new Result(count, sum);
    }

    public static Result WithCountingAdults(ReadOnlySpan<Order> orders, CountingAdults adults)
    {
        double sum = 0;
        long count = 0;
        foreach (var order in orders)
        {
            var o = order with { Age = order.Age + 1 };
            if (!adults.Apply(o))
            {
                continue;
            }

            o = o with { Amount = o.Amount * 1.1 };
            sum += o.Amount;
            count++;
        }

        return new Result(count, sum);
    }
}
