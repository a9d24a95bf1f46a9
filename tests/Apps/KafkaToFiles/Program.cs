using Compiled;
using Compiled.Connectors;
using Compiled.Kafka;

return await KafkaToFiles.Files.RunAsync(args);

namespace KafkaToFiles
{
    /// <summary>The orders of the KafkaToPostgres sample, as JSON.</summary>
    [Record(Naming = FieldNaming.CamelCase)]
    public readonly partial record struct Order(long Id, string Customer, decimal Amount, string Currency, string Status, DateTimeOffset PlacedAt);

    /// <summary>Kafka → JSON Lines files, at-least-once: offsets are committed only after the files holding the records are complete.</summary>
    [Pipeline(Name = "kafka-to-files")]
    public sealed partial class Files
    {
        [Source] KafkaSource<Order, Order.JsonCodec> Orders { get; } = new(new KafkaSourceOptions { Topics = "orders" });

        [Sink] FileSink<Order, Order.JsonCodec> Output { get; } = new("out");
    }
}
