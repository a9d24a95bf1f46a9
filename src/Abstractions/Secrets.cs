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

    /// <summary>
    /// Parts of keys that name secrets. Npgsql takes a password as <c>Password</c>, <c>PSW</c> or <c>PWD</c> (and
    /// <c>SSL Password</c>); librdkafka holds secrets in <c>sasl.password</c>, <c>ssl.key.password</c>,
    /// <c>ssl.keystore.password</c>, <c>ssl.key.pem</c> / <c>ssl_key</c> (an inline private key),
    /// <c>sasl.oauthbearer.config</c> and <c>sasl.oauthbearer.extensions</c> (may hold client secrets and tokens),
    /// <c>sasl.oauthbearer.client.secret</c>, <c>sasl.oauthbearer.client.credentials.client.secret</c>,
    /// <c>sasl.oauthbearer.assertion.private.key.pem</c> and <c>….passphrase</c> (librdkafka 2.16 CONFIGURATION.md).
    /// </summary>
    private static readonly string[] SecretWords =
    [
        "password", "pwd", "psw", "secret", "token", "credential", "apikey", "api_key", "api-key", "passphrase", "sasl.jaas",
        "key.pem", "ssl_key", "private.key", "oauthbearer.config", "oauthbearer.extensions",
    ];

    /// <summary>
    /// Whether a configuration key names a secret: <c>Password</c> and its Npgsql synonyms <c>PSW</c> and <c>PWD</c>,
    /// <c>sasl.password</c>, <c>ssl.key.pem</c>, <c>sasl.oauthbearer.config</c>, <c>sasl.oauthbearer.client.secret</c>,
    /// <c>Access Token</c> and the like. Keys that only locate a secret (<c>ssl.key.location</c>) are not secrets.
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
