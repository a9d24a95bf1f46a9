namespace Compiled.Connectors;

/// <summary>What a table sink does with its table when the run starts.</summary>
public enum TableMode
{
    /// <summary>Create the table from the record's schema if it does not exist; append to it if it does.</summary>
    CreateIfMissing,

    /// <summary>Drop the table if it exists and create it afresh: the run's output replaces the previous one.</summary>
    Recreate,

    /// <summary>The table must exist; the run fails at start, naming the table, if it does not.</summary>
    MustExist,
}
