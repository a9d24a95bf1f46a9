using System.Globalization;
using Compiled;
using Compiled.Kafka;
using Compiled.Postgres;
using Compiled.Runtime;

var context = new PipelineHostContext
{
    SettingOptions =
    [
        new("--bootstrap", "Orders.BootstrapServers", "Kafka bootstrap servers (host:port,…)", "servers"),
        new("--postgres", "Table.ConnectionString", "PostgreSQL connection string", "connection"),
    ],
};

return await PipelineHost.RunAsync(new KafkaAsyncToPostgres.OrdersWithRates(), args, context);

namespace KafkaAsyncToPostgres
{
    /// <summary>The orders of the KafkaToPostgres sample, as JSON.</summary>
    [Record(Naming = FieldNaming.CamelCase)]
    public readonly partial record struct Order(long Id, string Customer, decimal Amount, string Currency, string Status, DateTimeOffset PlacedAt);

    /// <summary>An order priced by the rate service.</summary>
    public readonly record struct RatedOrder(long Id, string Customer, decimal Amount, decimal Rate, decimal Priced);

    /// <summary>Kafka → a rate service over HTTP (an asynchronous transform) → PostgreSQL, exactly-once.</summary>
    [Pipeline(Name = "orders-with-rates")]
    public sealed partial class OrdersWithRates
    {
        // The service's address comes from the environment, as a deployment would give it.
        private static readonly HttpClient Rates = new() { BaseAddress = new Uri(Environment.GetEnvironmentVariable("RATES_URL") ?? "http://127.0.0.1:9/") };

        [Source] KafkaSource<Order, Order.JsonCodec> Orders { get; } = new(new KafkaSourceOptions { Topics = "orders" });

        [Transform, AsyncOptions(MaxInFlight = 32, TimeoutMilliseconds = 10_000, MaxAttempts = 3)]
        static async ValueTask<RatedOrder> Rate(Order order, CancellationToken cancellationToken)
        {
            var text = await Rates.GetStringAsync($"rate/{order.Id}", cancellationToken);
            var rate = decimal.Parse(text, CultureInfo.InvariantCulture);
            return new RatedOrder(order.Id, order.Customer, order.Amount, rate, order.Amount * rate);
        }

        [Sink] PostgresSink<RatedOrder> Table { get; } = new(new PostgresSinkOptions { Table = "rated_orders", ExactlyOnce = true });
    }
}
