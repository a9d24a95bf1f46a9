using Compiled;
using Compiled.Kafka;
using Compiled.Postgres;

namespace OrderEnrichment;

/// <summary>An order as the shop publishes it to Kafka.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Order(long Id, string Customer, decimal Amount, string Currency, [property: EventTime] DateTimeOffset PlacedAt);

/// <summary>
/// A change of an exchange rate (a compacted changelog topic keyed by currency): from <c>ValidFrom</c> on, one unit is
/// worth <c>Euro</c>. A tombstone on the topic (a message without a value) withdraws the currency: <c>Kind</c> is then
/// <see cref="ChangeKind.Delete"/>, and orders placed after it find no rate. The topic's JSON values leave <c>kind</c>
/// out: it defaults to an insert.
/// </summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Rate(string Currency, decimal Euro, [property: EventTime] DateTimeOffset ValidFrom, ChangeKind Kind = ChangeKind.Insert);

/// <summary>A row of the CRM's customers table, looked up by id.</summary>
public sealed record Customer([property: Key] string Id, string Name, string Country);

/// <summary>What the pipeline writes: the order, its customer, and its amount in euro at the rate of its time.</summary>
public readonly record struct EnrichedOrder(long Id, string Customer, string Name, string Country, decimal Amount, string Currency, decimal Rate, decimal AmountEur, DateTimeOffset PlacedAt);

/// <summary>
/// Orders from Kafka, priced at the exchange rate valid when each was placed (a stream–table join over the rates
/// changelog topic), joined with their customer from PostgreSQL (a cached lookup), into PostgreSQL, exactly-once.
/// </summary>
[Pipeline(Name = "order-enrichment")]
public sealed partial class OrderEnrichmentPipeline
{
    [Source] KafkaSource<Order, Order.JsonCodec> Orders { get; } = new(new KafkaSourceOptions { Topics = "orders", GroupId = "order-enrichment" });

    [KeyBy] static string OrderCurrency(Order o) => o.Currency;

    [Source] KafkaSource<Rate, Rate.JsonCodec> Rates { get; } = new(
        new KafkaSourceOptions { Topics = "rates", GroupId = "order-enrichment-rates" },
        tombstone: message => new Rate(System.Text.Encoding.UTF8.GetString(message.Key), 0, message.Timestamp ?? DateTime.UtcNow, ChangeKind.Delete));

    [KeyBy] static string RateCurrency(Rate r) => r.Currency;

    // Each order at the rate valid when it was placed; an order in a currency without a rate then is dropped.
    [Join] JoinSpec<Order, Rate> AtRate { get; } = Join.Table<Order, Rate>() with { OutOfOrderness = TimeSpan.FromSeconds(5) };

    [KeyBy] static string CustomerOf(Joined<Order, Rate> j) => j.Left.Customer;

    // Customers from the CRM, cached per partition, fetched a batch of missing ids per query; unknown customers kept.
    [Lookup] PostgresLookup<string, Customer> Customers { get; } = new("Host=localhost;Database=crm", "customers") { Join = JoinKind.LeftOuter };

    [Transform]
    static EnrichedOrder Enrich(Joined<Joined<Order, Rate>, Customer> j)
    {
        var (order, rate) = (j.Left.Left, j.Left.Right);
        return new EnrichedOrder(order.Id, order.Customer, j.Right?.Name ?? "unknown", j.Right?.Country ?? "??", order.Amount, order.Currency, rate.Euro, decimal.Round(order.Amount * rate.Euro, 4, MidpointRounding.AwayFromZero), order.PlacedAt);
    }

    [Sink] PostgresSink<EnrichedOrder> Table { get; } = new(new PostgresSinkOptions { Table = "enriched_orders", ExactlyOnce = true });
}
