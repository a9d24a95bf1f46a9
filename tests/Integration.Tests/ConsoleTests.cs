using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Compiled.Runtime;
using Xunit.Abstractions;

namespace Compiled.Integration.Tests;

/// <summary>A reading: an unbounded source makes one every few milliseconds until the run stops.</summary>
public readonly record struct Reading(int Sensor, long Time, double Value);

/// <summary>An unbounded source that hands on a small batch every 10 ms per partition until the run stops.</summary>
public sealed class TrickleSource : ISource<Reading>, IConfigurable
{
    private string _token = "s3cret-token-value";

    public IEnumerable<Setting> Settings => [Setting.Text("Token", "A secret the console must not show", () => _token, v => _token = v, secret: true)];

    public ValueTask OpenAsync(SourceContext<Reading> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISourceReader<Reading> CreateReader(int partition) => new Reader(partition);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader(int partition) : ISourceReader<Reading>
    {
        private readonly Reading[] _batch = new Reading[20];
        private long _next;

        public async ValueTask<SourceBatch<Reading>> ReadAsync(CancellationToken cancellationToken)
        {
            await Task.Delay(10, cancellationToken);
            for (var i = 0; i < _batch.Length; i++, _next++)
            {
                _batch[i] = new Reading((int)(_next % 7) + partition * 7, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), _next % 50);
            }

            return SourceBatch<Reading>.Of(_batch);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Readings per sensor per second, with a stage that fails on some records so the console has failures to show.</summary>
[Pipeline(Name = "sensor-console")]
public sealed partial class SensorConsole
{
    [Source] public TrickleSource Readings { get; set; } = new();

    [Transform] static Reading Checked(Reading r) => r.Value == 13 ? throw new InvalidDataException("value 13 is out of range") : r;

    [KeyBy] static int Sensor(Reading r) => r.Sensor;

    [Window] public WindowSpec<Reading, Count<Reading>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1))) { Time = TimeMode.Processing };

    [Sink] public Compiled.Connectors.CollectionSink<WindowResult<int, long>> Counts { get; set; } = new();
}

/// <summary>The live console (<c>--ui</c>) of a running pipeline, loaded in headless Chromium.</summary>
public sealed partial class ConsoleTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-console-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [GeneratedRegex(@"console at (http://[0-9.]+:\d+/)")]
    private static partial Regex ConsoleUrl();

    [Fact]
    public async Task The_console_shows_the_graph_and_counters_that_move_in_a_real_browser()
    {
        var error = new StringWriter();
        var synchronizedError = TextWriter.Synchronized(error);
        using var stop = new CancellationTokenSource();
        var deadLetters = Path.Combine(_work, "dead.jsonl");
        var run = PipelineHost.RunAsync(new SensorConsole(), ["--ui", "0", "-p", "2", "--dead-letters", deadLetters], new PipelineHostContext { Output = TextWriter.Null, Error = synchronizedError, Interactive = false, HandleSignals = false }, stop.Token);
        try
        {
            var url = await Eventually(() => ConsoleUrl().Match(Text(synchronizedError, error)) is { Success: true } match ? match.Groups[1].Value : null, run, "the console's address on standard error");
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            await Eventually(async () => (await http.GetAsync("readyz")).StatusCode == HttpStatusCode.OK ? "ready" : null, run, "the run ready");

            // The JSON the page reads: the graph, settings with the secret masked, counters that move.
            using var first = JsonDocument.Parse(await http.GetStringAsync("api/status"));
            Assert.Equal(["Readings", "Checked", "Sensor", "PerSecond", "Counts"], first.RootElement.GetProperty("stages").EnumerateArray().Select(s => s.GetProperty("name").GetString()));
            var settings = first.RootElement.GetProperty("settings").EnumerateArray().ToDictionary(s => s.GetProperty("name").GetString()!, s => s.GetProperty("value").GetString());
            Assert.Equal("***", settings["Readings.Token"]);
            Assert.DoesNotContain("s3cret-token-value", first.RootElement.GetRawText(), StringComparison.Ordinal);
            Assert.DoesNotContain("s3cret-token-value", await http.GetStringAsync(""), StringComparison.Ordinal);
            var readBefore = first.RootElement.GetProperty("run").GetProperty("recordsRead").GetInt64();
            await Eventually(async () =>
            {
                using var later = JsonDocument.Parse(await http.GetStringAsync("api/status"));
                var run = later.RootElement.GetProperty("run");
                return run.GetProperty("recordsRead").GetInt64() > readBefore && run.GetProperty("failures").GetProperty("recent").GetArrayLength() > 0 ? "moved" : null;
            }, run, "records read and a failure");

            // The same JSON as server-sent events, for tools: two events a second apart.
            using (var events = new StreamReader(await http.GetStreamAsync("api/events")))
            {
                var data = new List<string>();
                while (data.Count < 2 && await events.ReadLineAsync() is { } line)
                {
                    if (line.StartsWith("data: ", StringComparison.Ordinal))
                    {
                        data.Add(line);
                    }
                }

                Assert.All(data, d => Assert.Equal("sensor-console", JsonDocument.Parse(d["data: ".Length..]).RootElement.GetProperty("pipeline").GetString()));
            }

            // The page in headless Chromium: its DOM once the event stream has delivered, twice, and a screenshot.
            var dom1 = await ChromiumAsync(url, "--dump-dom");
            var dom2 = await ChromiumAsync(url, "--dump-dom");
            foreach (var stage in new[] { "Readings", "Checked", "Sensor", "PerSecond", "Counts" })
            {
                Assert.Contains($"data-stage=\"{stage}\"", dom1, StringComparison.Ordinal);
            }

            Assert.Contains("<h1 id=\"pipeline\">sensor-console</h1>", dom1, StringComparison.Ordinal);
            Assert.Matches("class=\"badge ok\">running<", dom1);
            Assert.True(RecordsRead(dom2) > RecordsRead(dom1), $"records read did not move: {RecordsRead(dom1)} then {RecordsRead(dom2)}");
            Assert.Contains("value 13 is out of range", dom2, StringComparison.Ordinal);
            Assert.Contains("<td>PerSecond</td>", dom2, StringComparison.Ordinal); // the window's watermark row
            Assert.DoesNotContain("s3cret-token-value", dom2, StringComparison.Ordinal);
            Assert.Contains("<td>Readings.Token</td><td>***</td>", dom2, StringComparison.Ordinal);

            var screenshot = Path.Combine(AppContext.BaseDirectory, "console.png");
            File.Delete(screenshot);
            await ChromiumAsync(url, $"--screenshot={screenshot}", "--window-size=1400,1000");
            Assert.True(new FileInfo(screenshot).Length > 10_000, "the screenshot is empty");
            log.WriteLine($"screenshot: {screenshot}");
        }
        finally
        {
            await stop.CancelAsync();
            await run.WaitAsync(TimeSpan.FromMinutes(1));
        }
    }

    private static string Text(TextWriter synchronized, StringWriter writer)
    {
        lock (synchronized)
        {
            return writer.ToString();
        }
    }

    private static readonly string[] ChromiumFlags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars", "--virtual-time-budget=3000"];

    private static long RecordsRead(string dom)
        => long.Parse(Regex.Match(dom, "id=\"records-read\">([0-9,]+)<").Groups[1].Value.Replace(",", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Runs headless Chromium on the page for three seconds of its (virtual) time — it reads the status once a second — and returns what it printed.</summary>
    private static async Task<string> ChromiumAsync(string url, params string[] action)
    {
        var start = new ProcessStartInfo("chromium") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in ChromiumFlags.Concat(action))
        {
            start.ArgumentList.Add(argument);
        }

        start.ArgumentList.Add(url);
        using var chromium = Process.Start(start) ?? throw new InvalidOperationException("chromium did not start (install Debian's chromium package; .ci/run does)");
        var output = chromium.StandardOutput.ReadToEndAsync();
        var errors = chromium.StandardError.ReadToEndAsync();
        await chromium.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        Assert.True(chromium.ExitCode == 0, $"chromium exited with {chromium.ExitCode}: {await errors}");
        return await output;
    }

    private static async Task<string> Eventually(Func<string?> probe, Task run, string what)
        => await Eventually(() => Task.FromResult(probe()), run, what);

    private static async Task<string> Eventually(Func<Task<string?>> probe, Task run, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(run.IsCompleted, $"the run ended before {what}");
            if (await probe() is { } value)
            {
                return value;
            }

            await Task.Delay(50); // polling what the run serves; nothing waits on the delay for correctness
        }

        throw new TimeoutException($"not reached within a minute: {what}");
    }
}
