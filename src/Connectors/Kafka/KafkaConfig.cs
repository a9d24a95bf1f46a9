using System.Data.Common;
using System.Globalization;
using Confluent.Kafka;

namespace Compiled.Kafka;

/// <summary>Helpers shared by the Kafka connectors: extra librdkafka properties, and secret-free descriptions.</summary>
internal static class KafkaConfig
{
    /// <summary>
    /// Parses <c>key=value;key=value</c> librdkafka properties (<c>security.protocol=SASL_SSL;sasl.password=…</c>)
    /// into <paramref name="config"/>; throws naming a bad entry.
    /// </summary>
    public static void Apply(ClientConfig config, string? properties)
    {
        if (string.IsNullOrWhiteSpace(properties))
        {
            return;
        }

        var builder = new DbConnectionStringBuilder { ConnectionString = properties };
        foreach (string key in builder.Keys)
        {
            config.Set(key, Convert.ToString(builder[key], CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Checks that <paramref name="properties"/> parses; returns why not, or null.</summary>
    public static string? Check(string properties)
    {
        try
        {
            _ = new DbConnectionStringBuilder { ConnectionString = properties };
            return null;
        }
        catch (ArgumentException)
        {
            return "expected librdkafka properties as key=value;key=value";
        }
    }

    /// <summary>Splits a comma-separated list of topics.</summary>
    public static List<string> Topics(string topics) => [.. topics.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
}
