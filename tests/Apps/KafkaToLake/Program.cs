using Compiled;
using Compiled.Kafka;
using Compiled.Parquet;
using Compiled.Runtime;

var context = new PipelineHostContext
{
    SettingOptions = [new("--bootstrap", "Orders.BootstrapServers", "Kafka bootstrap servers (host:port,…)", "servers")],
};

return await PipelineHost.RunAsync(new KafkaToLake.OrdersToLake(), args, context);

namespace KafkaToLake
{
    /// <summary>The orders of the KafkaToPostgres sample, as JSON.</summary>
    [Record(Naming = FieldNaming.CamelCase)]
    public readonly partial record struct Order(long Id, string Customer, decimal Amount, string Currency, string Status, DateTimeOffset PlacedAt);

    /// <summary>Kafka → a Parquet lake partitioned by currency and day, exactly-once: files committed with the offsets.</summary>
    [Pipeline(Name = "orders-to-lake")]
    public sealed partial class OrdersToLake
    {
        [Source] KafkaSource<Order, Order.JsonCodec> Orders { get; } = new(new KafkaSourceOptions { Topics = "orders" });

        [Sink] ParquetSink<Order> Lake { get; } = new(new ParquetSinkOptions
        {
            Directory = "lake",
            PartitionBy = "currency={Currency}/dt={PlacedAt:yyyy-MM-dd}",
            RowGroupRows = 2_000,
            RollBytes = 64 * 1024,
            ExactlyOnce = true,
        });
    }
}
