using ClickCounts;
using Compiled.Runtime;

// --bootstrap and --postgres are shorthands for the two settings everyone changes; --help lists them with the rest.
var context = new PipelineHostContext
{
    SettingOptions =
    [
        new("--bootstrap", "Clicks.BootstrapServers", "Kafka bootstrap servers (host:port,…)", "servers"),
        new("--postgres", "Table.ConnectionString", "PostgreSQL connection string (Host=…;Database=…;Username=…;Password=…)", "connection"),
    ],
};

if (Demo.Requested(args, out var rest, out var clicks))
{
    return await Demo.RunAsync(rest, clicks, context);
}

return await PipelineHost.RunAsync(new ClicksPipeline(), args, context);
