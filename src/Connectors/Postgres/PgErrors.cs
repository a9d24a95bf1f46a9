using Npgsql;

namespace Compiled.Postgres;

/// <summary>How the PostgreSQL connectors judge and describe failures.</summary>
internal static class PgErrors
{
    /// <summary>
    /// Whether a failure may pass if the work is tried again: Npgsql's own judgement (network errors, timeouts), and
    /// serialization failures, deadlocks, and a server shutting down or starting up.
    /// </summary>
    public static bool IsTransient(Exception exception) => exception switch
    {
        PostgresException pg => pg.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
            or PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
            or PostgresErrorCodes.TooManyConnections or "25P03" || pg.SqlState.StartsWith("08", StringComparison.Ordinal),
        NpgsqlException npgsql => npgsql.IsTransient || npgsql.InnerException is IOException or System.Net.Sockets.SocketException,
        IOException or System.Net.Sockets.SocketException or TimeoutException => true,
        _ => false,
    };

    /// <summary>
    /// Parses <paramref name="connectionString"/> as Npgsql will, so that a malformed one (no <c>key=value</c> pairs,
    /// an unknown key, a port that is not a number) is a bad setting — exit code 2, which no restart fixes — rather
    /// than a failure to connect. Npgsql's message names the key, never a value.
    /// </summary>
    public static void CheckConnectionString(string connectionString, string owner)
    {
        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidCastException or OverflowException)
        {
            throw new NonRetryableException($"{owner}: ConnectionString is not a PostgreSQL connection string: {ex.Message}", ex);
        }
    }

    /// <summary>A failure in words: PostgreSQL's message and SQLSTATE, or the exception's message.</summary>
    public static string Reason(Exception ex) => ex is PostgresException pg ? $"{pg.MessageText} (SQLSTATE {pg.SqlState})" : ex.InnerException is { } inner && ex.Message.Length < 40 ? $"{ex.Message} ({inner.Message})" : ex.Message;
}
