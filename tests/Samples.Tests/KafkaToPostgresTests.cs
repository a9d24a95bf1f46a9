namespace Compiled.Samples.Tests;

/// <summary>
/// The KafkaToPostgres sample's one-command demo — librdkafka's mock cluster, a producer, a throwaway PostgreSQL —
/// under the JIT (the native binary's run is in tests/Publish.Tests: only it catches Confluent.Kafka's trimming crash).
/// </summary>
[Collection(nameof(SdkBuilds))]
public sealed class KafkaToPostgresTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-k2p-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task The_demo_shows_the_orders_arriving_in_postgres()
    {
        var result = await Processes.DotnetAsync([Repository.SampleDll("KafkaToPostgres"), "--demo", "--demo-orders", "3000"], _work, Timeout);
        SampleAssertions.KafkaToPostgresDemo(result, 3000);
    }
}
