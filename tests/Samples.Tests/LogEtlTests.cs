using System.Text;
using System.Text.Json;

namespace Compiled.Samples.Tests;

public sealed class LogEtlTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-logetl-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task LogEtl_writes_every_server_error_to_csv_and_exactly_the_malformed_lines_to_the_dead_letter_file()
    {
        var result = await Processes.DotnetAsync([Repository.SampleDll("LogEtl")], _work, Timeout);
        Assert.True(result.ExitCode == 0, result.ToString());

        // What the input holds, read independently of Compiled.
        var input = File.ReadAllLines(Path.Combine(Repository.Root, "samples", "LogEtl", "data", "access.jsonl"), Encoding.Latin1);
        var (malformed, serverErrors) = AccessLogFacts.Read(input);

        var csvFiles = Directory.GetFiles(Path.Combine(_work, "out", "server-errors"), "*.csv");
        Assert.NotEmpty(csvFiles);
        var rows = csvFiles.SelectMany(f => File.ReadAllLines(f).Skip(1)).ToList();
        Assert.Equal(serverErrors, rows.Count);
        Assert.All(csvFiles, f => Assert.StartsWith("time,service,method,path,status,duration_ms,severity,from_bot", File.ReadLines(f).First(), StringComparison.Ordinal));

        var letters = File.ReadAllLines(Path.Combine(_work, "out", "deadletters.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(malformed, letters.Select(l => (int)l.GetProperty("line").GetInt64()).Order());
        foreach (var letter in letters)
        {
            var line = (int)letter.GetProperty("line").GetInt64();
            var raw = letter.GetProperty("rawEncoding").GetString() == "base64"
                ? Convert.FromBase64String(letter.GetProperty("raw").GetString()!)
                : Encoding.UTF8.GetBytes(letter.GetProperty("raw").GetString()!);
            Assert.Equal(Encoding.Latin1.GetBytes(input[line - 1]), raw);
        }

        Assert.Contains($"failed: {malformed.Count} malformed", result.Error, StringComparison.Ordinal);
    }
}

/// <summary>What an access log holds, worked out with System.Text.Json — independently of Compiled's codecs.</summary>
internal static class AccessLogFacts
{
    /// <summary>The 1-based numbers of the malformed lines, and the number of server errors (status ≥ 500) among the rest.</summary>
    public static (List<int> Malformed, int ServerErrors) Read(string[] latin1Lines)
    {
        var malformed = new List<int>();
        var serverErrors = 0;
        for (var i = 0; i < latin1Lines.Length; i++)
        {
            var bytes = Encoding.Latin1.GetBytes(latin1Lines[i]);
            if (!System.Text.Unicode.Utf8.IsValid(bytes))
            {
                malformed.Add(i + 1);
                continue;
            }

            try
            {
                using var json = JsonDocument.Parse(bytes);
                var root = json.RootElement;
                if (!root.GetProperty("status").TryGetInt32(out var status) || !DateTimeOffset.TryParse(root.GetProperty("time").GetString(), System.Globalization.CultureInfo.InvariantCulture, out _))
                {
                    malformed.Add(i + 1);
                }
                else if (status >= 500)
                {
                    serverErrors++;
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException)
            {
                malformed.Add(i + 1);
            }
        }

        return (malformed, serverErrors);
    }
}
