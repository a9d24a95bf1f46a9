using System.Globalization;
using System.Text.RegularExpressions;

namespace Compiled.Samples.Tests;

/// <summary>
/// The KafkaToPostgres sample's one-command demo — librdkafka's mock cluster, a producer, a throwaway PostgreSQL —
/// under the JIT and as a Native AOT binary (only a run of the native binary catches Confluent.Kafka's trimming crash).
/// </summary>
[Collection(nameof(SdkBuilds))]
public sealed partial class KafkaToPostgresTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-k2p-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task The_demo_shows_the_orders_arriving_in_postgres()
    {
        var result = await Processes.DotnetAsync([Repository.SampleDll("KafkaToPostgres"), "--demo", "--demo-orders", "3000"], _work, Timeout);
        AssertDemoDidItsJob(result, 3000);
    }

    [Fact]
    public async Task The_native_aot_binary_publishes_without_warnings_and_runs_the_demo()
    {
        var binary = await Repository.PublishNativeAsync("KafkaToPostgres", Path.Combine(_work, "publish"), Timeout);

        var run = await Processes.RunAsync(binary, ["--demo", "--demo-orders", "3000"], _work, Timeout);
        AssertDemoDidItsJob(run, 3000);
    }

    private static void AssertDemoDidItsJob(ProcessResult result, int orders)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        var produced = Number(Produced(), result.Error, result);
        var read = Number(Read(), result.Error, result);
        var filtered = Number(Filtered(), result.Error, result);
        var failed = OperatorFailures().Match(result.Error) is { Success: true } f ? long.Parse(f.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        var rows = Number(Rows(), result.Output, result);
        Assert.True(produced >= orders, result.ToString());
        Assert.Equal(orders, read); // every order (the malformed messages are not records)
        Assert.True(filtered > 0, "the demo has cancelled orders to filter out");
        Assert.Equal(read - filtered - failed, rows); // upserted by id: one row per order that passed
        Assert.Contains("delivery: exactly-once", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("password=compiled-test", result.Error + result.Output, StringComparison.OrdinalIgnoreCase);
    }

    private static long Number(Regex pattern, string text, ProcessResult result)
    {
        var match = pattern.Match(text);
        Assert.True(match.Success, $"'{pattern}' not found in\n{result}");
        return long.Parse(match.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"demo: produced (\d+) messages")]
    private static partial Regex Produced();

    [GeneratedRegex(@"stopped in [^:]+: ([\d,]+) records read")]
    private static partial Regex Read();

    [GeneratedRegex(@"filtered out: ([\d,]+) records")]
    private static partial Regex Filtered();

    [GeneratedRegex(@"(\d+) operator failures")]
    private static partial Regex OperatorFailures();

    [GeneratedRegex(@"table orders: (\d+) rows")]
    private static partial Regex Rows();
}
