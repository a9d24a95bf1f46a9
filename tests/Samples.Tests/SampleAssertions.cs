using System.Globalization;
using System.Text.RegularExpressions;

namespace Compiled.Samples.Tests;

/// <summary>What each sample must print: shared by the tests of its JIT build and of its Native AOT binary (tests/Publish.Tests).</summary>
internal static partial class SampleAssertions
{
    public static void QuickStartDidItsJob(ProcessResult result, string? workingDirectory = null)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order().ToList();
        Assert.Equal(["Person { Name = Alice, Age = 26 }", "Person { Name = Bob, Age = 31 }"], lines);
        Assert.Contains("Table -> sqlite people.db table people: 2 records", result.Error, StringComparison.Ordinal);
    }

    public static void MonitoringOutput(ProcessResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.Output.Split('\n', StringSplitOptions.TrimEntries);

        // data/events.jsonl: checkout has 4 errors in 09:00 on time, a fifth from 09:00:55 arrives 30 s late (within the
        // allowed lateness) and a sixth from 09:00:20 arrives after 09:03 (past it); auth has 5 errors in 09:03.
        Assert.Equal(
            [
                "ALERT 1m checkout  4 errors in [09:00:00, 09:01:00)",
                "ALERT 1m checkout  5 errors in [09:00:00, 09:01:00)  (updated by a late event)",
                "ALERT 1m auth      5 errors in [09:03:00, 09:04:00)",
            ],
            lines.Where(l => l.StartsWith("ALERT 1m", StringComparison.Ordinal)));
        Assert.Equal(["LATE  checkout  error at 09:00:20: too late for every 1-minute window -> side output"], lines.Where(l => l.StartsWith("LATE", StringComparison.Ordinal)));

        // The 5-minute windows of the same pipeline still accept the 09:00:20 event (their ends are later), so it updates them.
        var perFive = lines.Where(l => l.StartsWith("ALERT 5m", StringComparison.Ordinal)).ToList();
        Assert.Contains("ALERT 5m checkout  6 errors in [08:58:00, 09:03:00)  (updated by a late event)", perFive);
        Assert.Contains("ALERT 5m search    6 errors in [09:00:00, 09:05:00)", perFive);

        // One pipeline, one read of the file: the summary counts each event once.
        Assert.Contains("Late -> console: 1 records", result.Error, StringComparison.Ordinal);
        Assert.Single(result.Error.Split('\n'), l => l.Contains("service-alerts", StringComparison.Ordinal) && l.Contains("records read", StringComparison.Ordinal));
    }

    public static void KafkaToPostgresDemo(ProcessResult result, int orders)
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

    public static void ClickCountsDemo(ProcessResult result, int clicks)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"demo: produced {clicks} clicks"), result.Error, StringComparison.Ordinal);
        var verdict = Regex.Match(result.Output, @"table page_minutes matches what was produced: (\d+) page-minutes, (\d+) clicks");
        Assert.True(verdict.Success, result.ToString());
        Assert.Equal(clicks, long.Parse(verdict.Groups[2].Value, CultureInfo.InvariantCulture));
        Assert.Contains("delivery: exactly-once", result.Error, StringComparison.Ordinal);
    }
}
