using System.Collections.Concurrent;
using Compiled.Connectors;
using Compiled.Kafka;
using Compiled.Postgres;

namespace Compiled.Integration.Tests;

public enum Colour
{
    Red,
    Green,
    Blue,
}

/// <summary>A record with every field type the PostgreSQL sink maps (no codec: it never travels as bytes).</summary>
public readonly partial record struct Everything(
    [property: Key] long Id,
    int Count,
    short Small,
    byte Tiny,
    uint Unsigned,
    ulong Huge,
    bool Flag,
    double Ratio,
    float Single,
    decimal Money,
    string Text,
    string? Maybe,
    char Letter,
    DateTime Local,
    DateTimeOffset At,
    Guid Guid,
    DateOnly Day,
    TimeOnly Time,
    TimeSpan Span,
    Colour Colour,
    int? Missing);

/// <summary>An order as it arrives in Kafka (JSON).</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Order([property: Key] long Id, string Customer, decimal Amount, string Status);

[Pipeline(Name = "pg-everything")]
public sealed partial class EverythingPipeline
{
    [Source] public CollectionSource<Everything> Input { get; set; } = new();

    [Sink] public PostgresSink<Everything> Table { get; set; } = new(new PostgresSinkOptions());
}

public readonly record struct Keyless(long A, string B);

[Pipeline(Name = "pg-keyless")]
public sealed partial class KeylessPipeline
{
    [Source] public CollectionSource<Keyless> Input { get; set; } = new();

    [Sink] public PostgresSink<Keyless> Table { get; set; } = new(new PostgresSinkOptions());
}

[Pipeline(Name = "pg-orders")]
public sealed partial class OrdersToPostgres
{
    [Source] public CollectionSource<Order> Input { get; set; } = new();

    [Sink] public PostgresSink<Order> Table { get; set; } = new(new PostgresSinkOptions());
}

[Pipeline(Name = "kafka-orders")]
public sealed partial class KafkaOrders
{
    [Source] public KafkaSource<Order, Order.JsonCodec> Orders { get; set; } = new(new KafkaSourceOptions());

    [Transform] static Order Touch(Order order) => order.Amount < 0 ? throw new ArgumentOutOfRangeException(nameof(order), "negative amount") : order;

    [Sink] public CountingSink<Order> Output { get; set; } = new();
}

/// <summary>An order with where it came from in Kafka, filled in by the source's metadata callback.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct TracedOrder(long Id, string Customer, decimal Amount, string Status, string? Key, int? Partition, long? Offset, DateTime? Time, string? Trace);

[Pipeline(Name = "kafka-traced")]
public sealed partial class KafkaTraced
{
    [Source] public KafkaSource<TracedOrder, TracedOrder.JsonCodec> Orders { get; set; } = new(new KafkaSourceOptions());

    [Sink] public CountingSink<TracedOrder> Output { get; set; } = new();
}

/// <summary>A trade in a currency, at a time (milliseconds).</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct FxTrade(long Id, string Currency, long Amount, [property: EventTime] long Time);

/// <summary>A change of a currency's rate on a compacted topic; a tombstone becomes a <see cref="ChangeKind.Delete"/>.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct FxRate(string Currency, long Value, [property: EventTime] long Time, ChangeKind Kind = ChangeKind.Insert);

/// <summary>Trades at the rate of their time, the rates read from a changelog topic whose deletes are tombstones.</summary>
[Pipeline(Name = "kafka-trades-at-rate")]
public sealed partial class KafkaTradesAtRate
{
    [Source] public KafkaSource<FxTrade, FxTrade.JsonCodec> Trades { get; set; } = new(new KafkaSourceOptions());

    [KeyBy] static string TradeCurrency(FxTrade t) => t.Currency;

    [Source] public KafkaSource<FxRate, FxRate.JsonCodec> Rates { get; set; } = new(new KafkaSourceOptions());

    [KeyBy] static string RateCurrency(FxRate r) => r.Currency;

    [Join] public JoinSpec<FxTrade, FxRate> AtRate { get; set; } = Join.Table<FxTrade, FxRate>() with { Kind = JoinKind.LeftOuter };

    [Transform] static (long Trade, long Rate) Priced(Joined<FxTrade, FxRate> j) => (j.Left.Id, j.HasRight ? j.Right.Value : -1);

    [Sink] public CountingSink<(long Trade, long Rate)> Output { get; set; } = new();
}

[Pipeline(Name = "kafka-to-postgres")]
public sealed partial class KafkaToPostgres
{
    [Source] public KafkaSource<Order, Order.JsonCodec> Orders { get; set; } = new(new KafkaSourceOptions());

    [Sink] public PostgresSink<Order> Table { get; set; } = new(new PostgresSinkOptions());
}

[Pipeline(Name = "kafka-to-kafka")]
public sealed partial class KafkaToKafka
{
    [Source] public KafkaSource<Order, Order.JsonCodec> Orders { get; set; } = new(new KafkaSourceOptions());

    [Transform] static bool IsPaid(Order order) => order.Status == "paid";

    [Sink] public KafkaSink<Order, Order.JsonCodec> Paid { get; set; } = new(new KafkaSinkOptions());
}

[Pipeline(Name = "to-kafka")]
public sealed partial class CollectionToKafka
{
    [Source] public CollectionSource<Order> Input { get; set; } = new();

    [Sink] public KafkaSink<Order, Order.JsonCodec> Output { get; set; } = new(new KafkaSinkOptions());
}

/// <summary>A memory sink that can signal when it holds a number of records.</summary>
public sealed class CountingSink<T> : ISink<T>
{
    private readonly ConcurrentQueue<T> _items = new();
    private readonly Lock _lock = new();
    private readonly List<(long Count, TaskCompletionSource Reached)> _waiters = [];
    private long _count;

    public IReadOnlyCollection<T> Items => _items;

    public long Count => Interlocked.Read(ref _count);

    public SinkExecution Execution => SinkExecution.Inline;

    /// <summary>Completes once the sink has received at least <paramref name="count"/> records.</summary>
    public Task WhenCount(long count)
    {
        lock (_lock)
        {
            if (Count >= count)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, reached));
            return reached.Task;
        }
    }

    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Writer(CountingSink<T> sink) : ISinkWriter<T>
    {
        public ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            foreach (var record in records.Span)
            {
                sink._items.Enqueue(record);
            }

            var total = Interlocked.Add(ref sink._count, records.Length);
            lock (sink._lock)
            {
                foreach (var waiter in sink._waiters.Where(w => total >= w.Count).ToList())
                {
                    waiter.Reached.TrySetResult();
                    sink._waiters.Remove(waiter);
                }
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Ids to look up, with the lookup's every-field-type rows.</summary>
public readonly record struct Wanted(long Id, int Copy);

[Pipeline(Name = "pg-lookup-everything")]
public sealed partial class EverythingLookup
{
    [Source] public CollectionSource<Wanted> Input { get; set; } = new();

    [KeyBy] static long IdOf(Wanted w) => w.Id;

    [Lookup] public PostgresLookup<long, Everything> Rows { get; set; } = new("", "everything") { Join = JoinKind.LeftOuter };

    [Sink] public CollectionSink<Joined<Wanted, Everything>> Out { get; set; } = new();
}

public readonly record struct Purchase(int Id, int CustomerId, decimal Amount);

public sealed record Buyer([property: Key] int Id, string Name, string? Country);

public readonly record struct EnrichedPurchase(int Id, string Buyer, string? Country, decimal Amount);

public sealed record Holder([property: Key] string Code, string Owner);

public readonly record struct Payment(int Id, string Code);

public readonly record struct HeldBy(int Id, string Code, string? Owner);

/// <summary>Payments joined with account holders by a text key (left outer: a payment without a holder is kept).</summary>
[Pipeline(Name = "payments-with-holders")]
public sealed partial class PaymentsWithHolders
{
    [Source] public CollectionSource<Payment> Input { get; set; } = new();

    [KeyBy] static string CodeOf(Payment p) => p.Code;

    [Lookup] public PostgresLookup<string, Holder> Holders { get; set; } = new("", "holders") { Join = JoinKind.LeftOuter };

    [Transform] static HeldBy Hold(Joined<Payment, Holder> j) => new(j.Left.Id, j.Left.Code, j.Right?.Owner);

    [Sink] public CollectionSink<HeldBy> Out { get; set; } = new();
}

[Pipeline(Name = "pg-lookup-purchases")]
public sealed partial class PurchasesWithBuyers
{
    [Source] public CollectionSource<Purchase> Input { get; set; } = new();

    [KeyBy] static int BuyerOf(Purchase p) => p.CustomerId;

    [Lookup] public PostgresLookup<int, Buyer> Buyers { get; set; } = new("", "buyers");

    [Transform] static EnrichedPurchase Enrich(Joined<Purchase, Buyer> j) => new(j.Left.Id, j.Right!.Name, j.Right.Country, j.Left.Amount);

    [Sink] public CollectionSink<EnrichedPurchase> Out { get; set; } = new();
}
