using CdcToLake;
using Compiled.Runtime;

// CdcToLake lake    --source "Host=…;Database=shop;…" [--lake DIR]    every change of table orders into a Parquet lake
// CdcToLake replica --source "Host=…;Database=shop;…" --replica "…"   the same changes applied to a replica table
// CdcToLake --demo                                                     both, against a throwaway PostgreSQL under a write load
var context = new PipelineHostContext
{
    SettingOptions =
    [
        new("--source", "Orders.ConnectionString", "PostgreSQL connection string of the shop's database (a role with REPLICATION)", "connection"),
        new("--lake", "Lake.Directory", "The lake's directory", "directory"),
        new("--replica", "Replica.ConnectionString", "PostgreSQL connection string of the replica's database", "connection"),
    ],
};

if (args.Contains("--demo"))
{
    return await Demo.RunAsync([.. args.Where(a => a != "--demo")], context);
}

var rest = args.Skip(1).ToArray();
switch (args.FirstOrDefault())
{
    case "lake":
        return await PipelineHost.RunAsync(new OrdersToLake(), rest, context);
    case "replica":
        return await PipelineHost.RunAsync(new OrdersToReplica(), rest, context);
    default:
        await Console.Error.WriteLineAsync("usage: CdcToLake lake|replica --source <connection> [options]   (lake|replica --help for the options), or CdcToLake --demo");
        return 2;
}
