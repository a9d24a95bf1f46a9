using Compiled.Connectors;
using Compiled.Runtime.Tests.Connectors;

namespace Compiled.Runtime.Tests.Hosting;

/// <summary>A pipeline whose operator throws with a message that quotes hostile input, as int.Parse does.</summary>
[Pipeline(Name = "quoting")]
public sealed partial class QuotingPipeline
{
    public static readonly string Hostile = "\u001b[31mred\u0000\u0007" + new string('x', 30_000);

    [Source] public CollectionSource<long> Numbers { get; set; } = new(1, 2, 3);

    [Transform] static long Parse(long x) => throw new FormatException($"The input string '{Hostile}' was not in a correct format.");

    [Sink] public CollectionSink<long> Output { get; } = new();
}

/// <summary>Exit codes and messages of the host for errors a first user meets (issue 18, items 6 and 8).</summary>
public sealed class HostHardeningTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-host-hardening-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private static void AssertPrintable(string text, int maxLineLength)
    {
        foreach (var line in text.Split('\n'))
        {
            Assert.DoesNotContain(line, c => char.IsControl(c));
            Assert.True(line.Length <= maxLineLength, $"a line of {line.Length} characters: {line[..Math.Min(200, line.Length)]}…");
        }
    }

    [Fact]
    public async Task A_binary_file_read_as_csv_is_named_without_echoing_its_bytes_and_exits_2()
    {
        var path = Path.Combine(_work, "image.csv");
        var random = new Random(18);
        var bytes = new byte[26_000];
        random.NextBytes(bytes);
        bytes.AsSpan().Replace((byte)'\n', (byte)0x1B);
        bytes[10] = 0;
        File.WriteAllBytes(path, bytes);

        var (code, _, error) = await HostTests.Run(new CsvFilePipeline(), ["--set", $"Input.Path={path}", "-p", "1"]);

        Assert.Equal(ExitCodes.ConfigurationError, code);
        Assert.Contains("does not match the record's fields 'seq,path,status'", error, StringComparison.Ordinal);
        Assert.Contains("\\x00", error, StringComparison.Ordinal);
        AssertPrintable(error.TrimEnd('\n'), 1000);
    }

    [Theory]
    [InlineData("DeadLetter")]
    [InlineData("FailFast")]
    public async Task Input_quoted_in_an_error_or_a_log_line_is_escaped_and_capped(string policy)
    {
        var (_, _, error) = await HostTests.Run(new QuotingPipeline(), ["--error-policy", policy, "-p", "1", "--dead-letters", Path.Combine(_work, "dead.jsonl")]);
        Assert.Contains("The input string '\\x1b[31mred\\x00\\x07xxx", error, StringComparison.Ordinal);
        AssertPrintable(error.TrimEnd('\n'), 1200);
    }

    [Theory]
    [InlineData("--parallelism", "abc", "invalid value 'abc' for setting 'Parallelism' (from --parallelism): expected an integer from 1 to 1024")]
    [InlineData("--batch-size", "lots", "invalid value 'lots' for setting 'BatchSize' (from --batch-size): expected an integer")]
    [InlineData("--metrics-port", "http", "invalid value 'http' for setting 'MetricsPort' (from --metrics-port): expected")]
    [InlineData("--log-level", "Loud", "invalid value 'Loud' for setting 'LogLevel' (from --log-level): expected one of")]
    [InlineData("--error-policy", "Sometimes", "invalid value 'Sometimes' for setting 'ErrorPolicy' (from --error-policy): expected one of DeadLetter, Skip, FailFast")]
    public async Task A_bad_option_value_is_named_like_a_bad_setting(string option, string value, string expected)
    {
        var (code, _, error) = await HostTests.Run(new JsonFilePipeline(), [option, value]);
        Assert.Equal(ExitCodes.ConfigurationError, code);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_input_file_exits_2_and_its_error_is_printed_once()
    {
        var path = Path.Combine(_work, "missing.jsonl");
        var (code, _, error) = await HostTests.Run(new JsonFilePipeline(), ["--set", $"Input.Path={path}", "--log-level", "Information"]);
        Assert.Equal(ExitCodes.ConfigurationError, code);
        Assert.Single(error.Split('\n'), line => line.Contains($"No file matches '{path}'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_runtime_failure_still_exits_1_and_is_printed_once()
    {
        var (code, _, error) = await HostTests.Run(new FragilePipeline { Numbers = new CollectionSource<long>(4241, 4242) }, ["-p", "1"]);
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Single(error.Split('\n'), line => line.Contains("stage 2 'Explode'", StringComparison.Ordinal));
    }
}
