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
}
