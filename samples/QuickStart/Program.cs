using Compiled.Runtime;
using QuickStart;

// --postgres "<connection string>" or --mysql "<connection string>" writes the same table to PostgreSQL or to
// MySQL/MariaDB instead of the embedded people.db.
var context = new PipelineHostContext
{
    SettingOptions =
    [
        new("--postgres", "Table.ConnectionString", "Write the table to this PostgreSQL database instead of people.db", "connection"),
        new("--mysql", "Table.ConnectionString", "Write the table to this MySQL or MariaDB database instead of people.db (Server=…;Database=…;User=…;Password=…)", "connection"),
    ],
};

if (args.Contains("--postgres") && args.Contains("--mysql"))
{
    await Console.Error.WriteLineAsync("--postgres and --mysql name two different databases for the one table; give one of them.");
    return 2;
}

return args.Contains("--postgres")
    ? await PipelineHost.RunAsync(new PeopleToPostgres(), args, context)
    : args.Contains("--mysql")
        ? await PipelineHost.RunAsync(new PeopleToMySql(), args, context)
        : await PipelineHost.RunAsync(new PeopleEtl(), args, context);
