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

    /// <summary>
    /// A consumer that reads a source's partitions for a group member: offsets committed by hand, where to start and
    /// which isolation level from <paramref name="options"/>. Extra properties are applied by the caller, last.
    /// </summary>
    public static ConsumerConfig Reader(KafkaSourceOptions options, string groupId, string clientId) => new()
    {
        BootstrapServers = options.BootstrapServers,
        GroupId = groupId,
        ClientId = clientId,
        EnableAutoCommit = false,
        EnableAutoOffsetStore = false,
        AutoOffsetReset = options.StartFrom == KafkaStart.Latest ? AutoOffsetReset.Latest : AutoOffsetReset.Earliest,
        SessionTimeoutMs = (int)options.SessionTimeout.TotalMilliseconds,
        HeartbeatIntervalMs = (int)Math.Max(100, options.SessionTimeout.TotalMilliseconds / 5),
        IsolationLevel = options.ReadCommitted ? IsolationLevel.ReadCommitted : IsolationLevel.ReadUncommitted,
        PartitionAssignmentStrategy = PartitionAssignmentStrategy.RoundRobin,
    };

    /// <summary>Splits a comma-separated list of topics.</summary>
    public static List<string> Topics(string topics) => [.. topics.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
}
