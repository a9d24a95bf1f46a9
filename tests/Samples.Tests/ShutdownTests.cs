using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Compiled.Samples.Tests;

/// <summary>
/// A pipeline binary stopped by a real SIGTERM (sent twice, as <c>timeout</c> does): it drains what it read, renames its files to their final names,
/// writes its dead letters, exits 0 — and loses nothing.
/// </summary>
public sealed partial class ShutdownTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-sigterm-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task Sigterm_drains_every_record_read_in_follow_mode_and_exits_0()
    {
        var sample = File.ReadAllLines(Path.Combine(Repository.Root, "samples", "LogEtl", "data", "access.jsonl"), Encoding.Latin1);
        var (malformed, serverErrors) = AccessLogFacts.Read(sample);
        var input = Path.Combine(_work, "access.jsonl");
        File.WriteAllLines(input, sample, Encoding.Latin1);

        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = _work,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { Repository.SampleDll("LogEtl"), "--set", $"Log.Path={input}", "--set", "Log.Follow=true", "--set", "Log.PollInterval=50ms", "-p", "2", "--metrics-port", "0", "--set", "MetricsHost=127.0.0.1" })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var error = new StringBuilder();
        var endpoint = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (error)
            {
                error.AppendLine(e.Data);
            }

            if (MetricsLine().Match(e.Data) is { Success: true } match)
            {
                endpoint.TrySetResult(new Uri($"http://{match.Groups[1].Value}/metrics"));
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            using var http = new HttpClient();
            var metrics = await endpoint.Task.WaitAsync(Timeout);

            // Everything in the file is read and handed to the sink; then more lines arrive and are picked up too.
            var valid = sample.Length - malformed.Count;
            await WaitForMetrics(http, metrics, valid, serverErrors);
            await File.AppendAllLinesAsync(input, sample, Encoding.Latin1);
            await WaitForMetrics(http, metrics, 2 * valid, 2 * serverErrors);

            // Twice, as `timeout` and process supervisors do (the process, then its process group): still one graceful stop.
            Assert.Equal(0, Signals.Send(process.Id, Signals.Term));
            Assert.Equal(0, Signals.Send(process.Id, Signals.Term));
            await process.WaitForExitAsync().WaitAsync(Timeout);
            process.WaitForExit();
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        var log = error.ToString();
        Assert.True(process.ExitCode == 0, log);
        Assert.Contains("log-etl: stopping", log, StringComparison.Ordinal);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"log-etl stopped in"), log, StringComparison.Ordinal);

        // Nothing lost, nothing half-written: every server error is in a finished CSV file, every malformed line a dead letter.
        var output = Path.Combine(_work, "out", "server-errors");
        Assert.Empty(Directory.GetFiles(output, "*.inprogress"));
        var rows = Directory.GetFiles(output, "*.csv").SelectMany(f => File.ReadAllLines(f).Skip(1)).ToList();
        Assert.Equal(2 * serverErrors, rows.Count);
        Assert.Equal(2 * malformed.Count, File.ReadAllLines(Path.Combine(_work, "out", "deadletters.jsonl")).Length);
    }

    private static async Task WaitForMetrics(HttpClient http, Uri metrics, int read, int written)
    {
        // The child is another process: its progress can only be observed, so poll its metrics until they match.
        using var timeout = new CancellationTokenSource(Timeout);
        var text = "";
        while (!timeout.IsCancellationRequested)
        {
            text = await http.GetStringAsync(metrics, timeout.Token);
            if (Value(text, "compiled_records_read_total") == read && Value(text, "compiled_records_written_total") == written)
            {
                return;
            }

            await Task.Delay(50, timeout.Token);
        }

        Assert.Fail($"the child never reached {read} records read and {written} written:\n{text}");
    }

    private static long Value(string metrics, string name)
        => metrics.Split('\n').Where(l => l.StartsWith(name + "{", StringComparison.Ordinal)).Sum(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));

    [GeneratedRegex(@"metrics at http://([0-9.:]+)/metrics")]
    private static partial Regex MetricsLine();
}
