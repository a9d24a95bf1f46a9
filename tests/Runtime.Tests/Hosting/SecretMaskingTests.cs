namespace Compiled.Runtime.Tests.Hosting;

/// <summary>
/// Every key a connector's driver accepts for a secret is masked in every place a setting or a connector is shown:
/// the end-of-run summary, the "sink … ->" log line, --explain and the Debug log of applied settings (issue 18, item 4).
/// </summary>
public sealed class SecretMaskingTests
{
    private const string Secret = "s3cr3t-Value-18";

    /// <summary>The password keys Npgsql's connection-string builder accepts (its synonyms, any case and spacing it takes).</summary>
    public static TheoryData<string> PostgresKeys => ["Password", "PSW", "PWD", "psw", "pwd", "SSL Password", "SslPassword", "sslpassword"];

    /// <summary>librdkafka properties that hold a key, password, secret or token.</summary>
    public static TheoryData<string> KafkaKeys =>
    [
        "sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem", "ssl_key", "sasl.oauthbearer.config",
        "sasl.oauthbearer.client.secret", "sasl.oauthbearer.client.credentials.client.secret", "sasl.oauthbearer.assertion.private.key.pem",
        "sasl.oauthbearer.assertion.private.key.passphrase", "sasl.oauthbearer.extensions", "sasl.jaas.config",
    ];

    [Theory]
    [MemberData(nameof(PostgresKeys))]
    [MemberData(nameof(KafkaKeys))]
    public async Task A_secret_key_is_masked_in_the_summary_the_sink_line_explain_and_the_debug_log(string key)
    {
        string[] set = ["--set", $"Store.ConnectionString=Host=db.internal;Username=etl;{key}={Secret}"];
        var (code, _, error) = await HostTests.Run(new SecretivePipeline(), [.. set, "--log-level", "Debug", "-p", "1"]);
        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("setting Store.ConnectionString = ", error, StringComparison.Ordinal); // the Debug log line
        Assert.Contains("sink Store -> secret store", error, StringComparison.Ordinal);         // the sink log line
        Assert.Contains("Store -> secret store", error, StringComparison.Ordinal);              // the summary
        Assert.DoesNotContain(Secret, error, StringComparison.Ordinal);
        Assert.Contains(Secrets.Mask, error, StringComparison.Ordinal);

        var (explained, output, explainError) = await HostTests.Run(new SecretivePipeline(), [.. set, "--explain"]);
        Assert.Equal(ExitCodes.Success, explained);
        Assert.Contains("ConnectionString = ", output, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, output + explainError, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(PostgresKeys))]
    [MemberData(nameof(KafkaKeys))]
    public void A_secret_key_is_recognised(string key) => Assert.True(Secrets.IsSecretKey(key), key);

    [Theory]
    [InlineData("Host")]
    [InlineData("Username")]
    [InlineData("ssl.key.location")]
    [InlineData("sasl.username")]
    [InlineData("bootstrap.servers")]
    public void Keys_that_hold_no_secret_are_shown(string key) => Assert.False(Secrets.IsSecretKey(key), key);
}
