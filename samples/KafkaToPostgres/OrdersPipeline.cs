using Compiled;
using Compiled.Kafka;
using Compiled.Postgres;

namespace KafkaToPostgres;

/// <summary>An order as the shop publishes it to the topic <c>orders</c> (JSON, camelCase).</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Order(long Id, string Customer, decimal Amount, string Currency, string Status, DateTimeOffset PlacedAt);

/// <summary>An order as the table <c>orders</c> keeps it: one row per order id, the last version wins.</summary>
public readonly record struct OrderRow(
    [property: Key] long Id,
    string Customer,
    decimal Amount,
    decimal AmountEur,
    string Size,
    string Status,
    DateTimeOffset PlacedAt);

/// <summary>
/// The seed's canonical job: Kafka in → filter → enrich → PostgreSQL out, exactly-once. Each database transaction
/// writes the rows and the Kafka offsets they came from; after a crash the source resumes from those offsets, so no
/// order is lost and none is written twice.
/// </summary>
[Pipeline(Name = "orders-to-postgres")]
public sealed partial class OrdersPipeline
{
    [Source]
    public KafkaSource<Order, Order.JsonCodec> Orders { get; } = new(new KafkaSourceOptions
    {
        BootstrapServers = "localhost:9092",
        Topics = "orders",
    });

    /// <summary>Cancelled orders never reach the table.</summary>
    [Transform]
    static bool NotCancelled(Order order) => order.Status != "cancelled";

    [Transform]
    static OrderRow Enrich(Order order) => new(
        order.Id,
        order.Customer,
        order.Amount,
        Math.Round(order.Amount * Rates.ToEur(order.Currency), 2),
        order.Amount >= 500m ? "large" : order.Amount >= 50m ? "medium" : "small",
        order.Status,
        order.PlacedAt);

    [Sink]
    public PostgresSink<OrderRow> Table { get; } = new(new PostgresSinkOptions
    {
        ConnectionString = "Host=localhost;Database=orders;Username=postgres",
        Table = "orders",
        Mode = PostgresWriteMode.Upsert,
        ExactlyOnce = true,
    });
}

/// <summary>Exchange rates of the demo (fixed: the point is the pipeline, not the rates).</summary>
public static class Rates
{
    public static decimal ToEur(string currency) => currency switch
    {
        "EUR" => 1m,
        "USD" => 0.92m,
        "GBP" => 1.17m,
        _ => throw new ArgumentException($"unknown currency '{currency}'", nameof(currency)), // a dead letter, not a crash

    };
}
