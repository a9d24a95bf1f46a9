namespace Compiled.Runtime;

/// <summary>The exit codes of a pipeline binary (documented in docs/operations.md).</summary>
public static class ExitCodes
{
    /// <summary>The run completed, or was stopped gracefully and drained.</summary>
    public const int Success = 0;

    /// <summary>The pipeline failed at run time (an operator or connector error).</summary>
    public const int RuntimeFailure = 1;

    /// <summary>The command line or configuration was invalid; nothing ran.</summary>
    public const int ConfigurationError = 2;

    /// <summary>The run was aborted (a second Ctrl+C) without draining.</summary>
    public const int Aborted = 3;

    /// <summary>
    /// The run was stopped gracefully and drained, but before the end of a bounded input (files that are not followed,
    /// a collection, a counted generator) whose source stores no positions: what it wrote is complete for the records
    /// it read, and a rerun reads the input from the start again (docs/delivery.md).
    /// </summary>
    public const int StoppedBeforeEnd = 4;
}
