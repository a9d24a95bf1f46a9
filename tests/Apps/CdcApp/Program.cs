using Compiled;
using Compiled.Parquet;
using Compiled.Postgres;
using Compiled.Runtime;

// CdcApp lake|replica --source "Host=…" [pipeline options]: table cdc_orders captured into a Parquet lake or a replica table.
var context = new PipelineHostContext
{
    SettingOptions = [new("--source", "Orders.ConnectionString", "PostgreSQL connection string of the captured database", "connection")],
};
var rest = args.Skip(1).ToArray();
return args.FirstOrDefault() switch
{
    "lake" => await PipelineHost.RunAsync(new CdcApp.ToLake(), rest, context),
    "replica" => await PipelineHost.RunAsync(new CdcApp.ToReplica(), rest, context),
    _ => 2,
};

namespace CdcApp
{
    /// <summary>A change of table <c>cdc_orders</c> (the integration tests' writer's table).</summary>
    public sealed partial record OrderChange
    {
        [Key] public long Id { get; init; }

        public string? Customer { get; init; }

        public decimal Amount { get; init; }

        public int Seq { get; init; }

        public ChangeKind Op { get; init; }

        public long Lsn { get; init; }

        public DateTimeOffset CommitTime { get; init; }
    }

    /// <summary>Every change into a Parquet lake partitioned by kind, files rolled small: exactly-once.</summary>
    [Pipeline(Name = "cdc-app-lake")]
    public sealed partial class ToLake
    {
        [Source] PostgresCdcSource<OrderChange> Orders { get; } = new("", "cdc_orders");

        [Sink] ParquetSink<OrderChange> Lake { get; } = new(new ParquetSinkOptions
        {
            Directory = "lake",
            PartitionBy = "op={Op}",
            RowGroupRows = 2_000,
            RollBytes = 64 * 1024,
            ExactlyOnce = true,
        });
    }

    /// <summary>The changes applied to a replica table in the same database: exactly-once.</summary>
    [Pipeline(Name = "cdc-app-replica")]
    public sealed partial class ToReplica
    {
        [Source] PostgresCdcSource<OrderChange> Orders { get; } = new("", "cdc_orders");

        [Sink] PostgresSink<OrderChange> Replica { get; } = new(new PostgresSinkOptions { Table = "cdc_orders_replica", Mode = PostgresWriteMode.ApplyChanges, ExactlyOnce = true });
    }
}
