namespace Compiled;

/// <summary>What a pipeline does with a record that fails to decode or makes an operator throw.</summary>
public enum ErrorPolicy
{
    /// <summary>Write it to the dead-letter sink with an envelope saying what, where and why, and go on (the default).</summary>
    DeadLetter,

    /// <summary>Count it and go on; nothing is written.</summary>
    Skip,

    /// <summary>Stop the run with an error naming the record's position, stage and partition.</summary>
    FailFast,
}
