using Compiled;
using Compiled.Parquet;
using Compiled.Postgres;

namespace CdcToLake;

/// <summary>
/// A change of the shop's <c>orders</c> table: its columns (matched by name, snake_case), what happened to the row,
/// and the LSN and time of the transaction that did it.
/// </summary>
public sealed partial record OrderChange
{
    [Key] public long Id { get; init; }

    public string Customer { get; init; } = "";

    public decimal Amount { get; init; }

    public string Status { get; init; } = "";

    public DateTimeOffset PlacedAt { get; init; }

    public ChangeKind Op { get; init; }

    public long Lsn { get; init; }

    public DateTimeOffset CommitTime { get; init; }
}

/// <summary>Every change of <c>orders</c>, snapshot first, into a Parquet lake partitioned by the day it committed: exactly-once.</summary>
[Pipeline(Name = "orders-cdc-lake")]
public sealed partial class OrdersToLake
{
    [Source] public PostgresCdcSource<OrderChange> Orders { get; } = new("", "orders");

    [Sink] public ParquetSink<OrderChange> Lake { get; } = new(new ParquetSinkOptions
    {
        Directory = "lake",
        PartitionBy = "dt={CommitTime:yyyy-MM-dd}",
        ExactlyOnce = true,
    });
}

/// <summary>The same changes applied to a replica table (in another database): exactly-once.</summary>
[Pipeline(Name = "orders-cdc-replica")]
public sealed partial class OrdersToReplica
{
    [Source] public PostgresCdcSource<OrderChange> Orders { get; } = new("", "orders");

    [Sink] public PostgresSink<OrderChange> Replica { get; } = new(new PostgresSinkOptions
    {
        Table = "orders",
        Mode = PostgresWriteMode.ApplyChanges,
        ExactlyOnce = true,
    });
}
