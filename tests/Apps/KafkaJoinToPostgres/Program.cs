using Compiled;
using Compiled.Kafka;
using Compiled.Postgres;
using Compiled.Runtime;

var context = new PipelineHostContext
{
    SettingOptions =
    [
        new("--bootstrap", "Orders.BootstrapServers", "Kafka bootstrap servers of the orders (host:port,…)", "servers"),
        new("--payments-bootstrap", "Payments.BootstrapServers", "Kafka bootstrap servers of the payments", "servers"),
        new("--postgres", "Table.ConnectionString", "PostgreSQL connection string", "connection"),
    ],
};

return await PipelineHost.RunAsync(new KafkaJoinToPostgres.PaidOrders(), args, context);

namespace KafkaJoinToPostgres
{
    /// <summary>The orders of the KafkaToPostgres sample, as JSON.</summary>
    [Record(Naming = FieldNaming.CamelCase)]
    public readonly partial record struct Order(long Id, string Customer, decimal Amount, string Currency, string Status, [property: EventTime] DateTimeOffset PlacedAt);

    /// <summary>A payment of an order, from a topic of its own.</summary>
    [Record(Naming = FieldNaming.CamelCase)]
    public readonly partial record struct Payment(long OrderId, decimal Amount, [property: EventTime] DateTimeOffset PaidAt);

    /// <summary>An order with its payment, if one came within 15 minutes (paid -1 otherwise).</summary>
    public readonly record struct PaidOrder(long Id, string Customer, decimal Amount, decimal Paid);

    /// <summary>Two Kafka topics joined by order id (an interval join, left outer) → PostgreSQL, exactly-once.</summary>
    [Pipeline(Name = "paid-orders")]
    public sealed partial class PaidOrders
    {
        [Source] KafkaSource<Order, Order.JsonCodec> Orders { get; } = new(new KafkaSourceOptions { Topics = "orders" });

        [KeyBy] static long OrderId(Order o) => o.Id;

        [Source] KafkaSource<Payment, Payment.JsonCodec> Payments { get; } = new(new KafkaSourceOptions { Topics = "payments" });

        [KeyBy] static long PaidOrder(Payment p) => p.OrderId;

        [Join] JoinSpec<Order, Payment> Paid { get; } = Join.Interval<Order, Payment>(TimeSpan.Zero, TimeSpan.FromMinutes(15))
            with { Kind = JoinKind.LeftOuter, OutOfOrderness = TimeSpan.FromMinutes(15) };

        [Transform] static PaidOrder Row(Joined<Order, Payment> j) => new(j.Left.Id, j.Left.Customer, j.Left.Amount, j.HasRight ? j.Right.Amount : -1);

        [Sink] PostgresSink<PaidOrder> Table { get; } = new(new PostgresSinkOptions { Table = "paid_orders", ExactlyOnce = true });
    }
}
