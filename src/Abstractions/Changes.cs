namespace Compiled;

/// <summary>
/// What a change record of a change-data-capture source (<c>PostgresCdcSource</c>) says happened to its row. A record
/// type gets the kind through a field or property of this type; sinks that apply changes to a replica
/// (<c>PostgresSink</c> in <c>ApplyChanges</c> mode) read it there. The order follows Flink's row kinds, with the
/// snapshot read of Debezium's <c>r</c> first.
/// </summary>
public enum ChangeKind
{
    /// <summary>The row as the initial snapshot read it (it existed before the change stream starts).</summary>
    Snapshot,

    /// <summary>The row was inserted.</summary>
    Insert,

    /// <summary>
    /// The row before an update. Emitted only when the server sends the old row: with <c>REPLICA IDENTITY FULL</c>
    /// (every column), or when an update changed the key (the old key columns only; the others are null/default).
    /// </summary>
    UpdateBefore,

    /// <summary>The row after an update.</summary>
    UpdateAfter,

    /// <summary>
    /// The row was deleted. With the default replica identity only its key columns are set (the others are
    /// null/default); with <c>REPLICA IDENTITY FULL</c> every column holds the deleted row's value.
    /// </summary>
    Delete,
}
