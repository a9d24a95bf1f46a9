using System.Data.Common;

namespace Compiled;

/// <summary>
/// Keeps secrets out of plans, logs, metrics and error messages. Connectors describe themselves through these
/// helpers; the host only ever prints a setting's <see cref="Setting.DisplayValue"/>.
/// </summary>
public static class Secrets
{
    /// <summary>What is printed in place of a secret.</summary>
    public const string Mask = "***";

    private static readonly string[] SecretWords = ["password", "pwd", "secret", "token", "credential", "apikey", "api_key", "api-key", "passphrase", "sasl.jaas"];

    /// <summary>
    /// Whether a configuration key names a secret: <c>Password</c>, <c>sasl.password</c>, <c>ssl.key.password</c>,
    /// <c>sasl.oauthbearer.client.secret</c>, <c>Access Token</c> and the like.
    /// </summary>
    public static bool IsSecretKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        foreach (var word in SecretWords)
        {
            if (key.Contains(word, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// A connection string with the value of every secret key (<see cref="IsSecretKey"/>) replaced by
    /// <see cref="Mask"/>: <c>Host=db;Username=etl;Password=***</c>. Text that does not parse as a connection string
    /// is masked whole, since it cannot be told apart.
    /// </summary>
    public static string RedactConnectionString(string connectionString)
    {
        if (string.IsNullOrEmpty(connectionString))
        {
            return connectionString ?? "";
        }

        DbConnectionStringBuilder builder;
        try
        {
            builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
        }
        catch (ArgumentException)
        {
            return Mask;
        }

        var redacted = new DbConnectionStringBuilder();
        foreach (string key in builder.Keys)
        {
            redacted[key] = IsSecretKey(key) ? Mask : builder[key];
        }

        return redacted.ConnectionString;
    }
}
