using Compiled.Runtime;
using KafkaToPostgres;

// --bootstrap and --postgres are shorthands for the two settings everyone changes; --help lists them with the rest.
var context = new PipelineHostContext
{
    SettingOptions =
    [
        new("--bootstrap", "Orders.BootstrapServers", "Kafka bootstrap servers (host:port,…)", "servers"),
        new("--postgres", "Table.ConnectionString", "PostgreSQL connection string (Host=…;Database=…;Username=…;Password=…)", "connection"),
    ],
};

if (Demo.Requested(args, out var rest, out var orders))
{
    return await Demo.RunAsync(rest, orders, context);
}

return await PipelineHost.RunAsync(new OrdersPipeline(), args, context);
