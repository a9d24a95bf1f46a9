using Compiled.Parquet;
using Compiled.Postgres;
using Compiled.Connectors;

namespace Compiled.Integration.Tests;

/// <summary>A change of table <c>cdc_orders</c>: its columns, what happened, and the commit's LSN and time.</summary>
public sealed partial record CdcOrder
{
    [Key] public long Id { get; init; }

    public string? Customer { get; init; }

    public decimal Amount { get; init; }

    public int Seq { get; init; }

    public ChangeKind Op { get; init; }

    public long Lsn { get; init; }

    public DateTimeOffset CommitTime { get; init; }
}

[Pipeline(Name = "cdc-replica")]
public sealed partial class CdcToReplica
{
    [Source] public PostgresCdcSource<CdcOrder> Orders { get; set; } = new("", "cdc_orders");

    [Sink] public PostgresSink<CdcOrder> Replica { get; set; } = new(new PostgresSinkOptions { Table = "cdc_orders_replica", Mode = PostgresWriteMode.ApplyChanges, ExactlyOnce = true });
}

[Pipeline(Name = "cdc-lake")]
public sealed partial class CdcToLake
{
    [Source] public PostgresCdcSource<CdcOrder> Orders { get; set; } = new("", "cdc_orders");

    [Sink] public ParquetSink<CdcOrder> Lake { get; set; } = new(new ParquetSinkOptions { ExactlyOnce = true });
}

[Pipeline(Name = "cdc-collect")]
public sealed partial class CdcToMemory
{
    [Source] public PostgresCdcSource<CdcOrder> Orders { get; set; } = new("", "cdc_orders");

    [Sink] public CollectionSink<CdcOrder> Out { get; set; } = new();
}

/// <summary>A record that does not fit <c>cdc_orders</c>: Amount is text there, not an int.</summary>
public sealed partial record CdcWrongType
{
    [Key] public long Id { get; init; }

    public int Customer { get; init; }
}

[Pipeline(Name = "cdc-wrong")]
public sealed partial class CdcWrongTypePipeline
{
    [Source] public PostgresCdcSource<CdcWrongType> Orders { get; set; } = new("", "cdc_orders");

    [Sink] public CollectionSink<CdcWrongType> Out { get; set; } = new();
}

/// <summary>A change of table <c>cdc_notes</c>, whose key is text: its snapshot is one split.</summary>
public sealed partial record CdcNote
{
    [Key] public string Code { get; init; } = "";

    public string? Body { get; init; }

    public ChangeKind Op { get; init; }

    public long Lsn { get; init; }
}

[Pipeline(Name = "cdc-notes-lake")]
public sealed partial class CdcNotesToLake
{
    [Source] public PostgresCdcSource<CdcNote> Notes { get; set; } = new("", "cdc_notes");

    [Sink] public ParquetSink<CdcNote> Lake { get; set; } = new(new ParquetSinkOptions { ExactlyOnce = true });
}
