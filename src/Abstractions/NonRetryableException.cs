namespace Compiled;

/// <summary>
/// A failure that running the pipeline again cannot fix: credentials refused, a missing database, table or input
/// file, a CSV header that does not match the record, a configuration the connector cannot work with (an upsert
/// without <c>[Key]</c>). The command-line host exits with code 2 for it, as for a configuration error, so that a
/// restart policy does not loop on it; transient failures (a lost connection) keep exit code 1. Connectors of your own
/// throw it for the same kind of failure.
/// </summary>
public class NonRetryableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NonRetryableException()
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public NonRetryableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/>, caused by <paramref name="innerException"/>.</summary>
    public NonRetryableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>
    /// Whether <paramref name="exception"/> or one of its causes is a failure a retry cannot fix: a
    /// <see cref="NonRetryableException"/>, or a missing file or directory.
    /// </summary>
    public static bool IsCause(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is NonRetryableException or FileNotFoundException or DirectoryNotFoundException)
            {
                return true;
            }

            if (e is AggregateException aggregate && aggregate.InnerExceptions.Any(IsCause))
            {
                return true;
            }
        }

        return false;
    }
}
