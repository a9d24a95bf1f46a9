using Compiled.Runtime;
using OrderEnrichment;

// --bootstrap and --postgres are shorthands for the settings everyone changes; --help lists them with the rest.
var context = new PipelineHostContext
{
    SettingOptions =
    [
        new("--bootstrap", "Orders.BootstrapServers", "Kafka bootstrap servers of the orders (host:port,…)", "servers"),
        new("--rates-bootstrap", "Rates.BootstrapServers", "Kafka bootstrap servers of the exchange rates", "servers"),
        new("--postgres", "Table.ConnectionString", "PostgreSQL connection string of the output table", "connection"),
        new("--crm", "Customers.ConnectionString", "PostgreSQL connection string of the customers table", "connection"),
    ],
};

if (Demo.Requested(args, out var rest, out var orders))
{
    return await Demo.RunAsync(rest, orders, context);
}

return await PipelineHost.RunAsync(new OrderEnrichmentPipeline(), args, context);
