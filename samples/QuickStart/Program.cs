using Compiled.Runtime;
using QuickStart;

// --postgres "<connection string>" writes the same table to PostgreSQL instead of the embedded people.db.
var context = new PipelineHostContext
{
    SettingOptions = [new("--postgres", "Table.ConnectionString", "Write the table to this PostgreSQL database instead of people.db", "connection")],
};

return args.Contains("--postgres")
    ? await PipelineHost.RunAsync(new PeopleToPostgres(), args, context)
    : await PipelineHost.RunAsync(new PeopleEtl(), args, context);
