using Compiled;
using Compiled.Kafka;
using Compiled.MySql;
using Compiled.Runtime;

var context = new PipelineHostContext
{
    SettingOptions =
    [
        new("--bootstrap", "Orders.BootstrapServers", "Kafka bootstrap servers (host:port,…)", "servers"),
        new("--mysql", "Table.ConnectionString", "MySQL connection string (Server=…;Database=…;User=…;Password=…)", "connection"),
    ],
};

return await PipelineHost.RunAsync(new KafkaToMySql.OrdersToMySql(), args, context);

namespace KafkaToMySql
{
    /// <summary>The orders of the KafkaToPostgres sample, as JSON.</summary>
    [Record(Naming = FieldNaming.CamelCase)]
    public readonly partial record struct Order(long Id, string Customer, decimal Amount, string Currency, string Status, DateTimeOffset PlacedAt);

    /// <summary>The row the KafkaToPostgres sample writes, here to MySQL.</summary>
    public readonly record struct OrderRow([property: Key] long Id, string Customer, decimal Amount, decimal AmountEur, string Size, string Status, DateTimeOffset PlacedAt);

    /// <summary>Kafka → enrich → MySQL, exactly-once: rows and offsets in one MySQL transaction.</summary>
    [Pipeline(Name = "orders-to-mysql")]
    public sealed partial class OrdersToMySql
    {
        [Source] KafkaSource<Order, Order.JsonCodec> Orders { get; } = new(new KafkaSourceOptions { Topics = "orders" });

        [Transform]
        static OrderRow Enrich(Order order) => new(
            order.Id,
            order.Customer,
            order.Amount,
            Math.Round(order.Amount * (order.Currency switch { "EUR" => 1m, "USD" => 0.92m, _ => 1.17m }), 2),
            order.Amount >= 500m ? "large" : order.Amount >= 50m ? "medium" : "small",
            order.Status,
            order.PlacedAt);

        [Sink] MySqlSink<OrderRow> Table { get; } = new(new MySqlSinkOptions { Table = "orders", ExactlyOnce = true });
    }
}
