using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Compiled.Connectors;
using Compiled.Http;
using Compiled.Runtime;

namespace Compiled.Integration.Tests;

[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Alert(int Id, string Service, string Text);

[Pipeline(Name = "alerts-to-webhook")]
public sealed partial class AlertsToWebhook
{
    [Source] public CollectionSource<Alert> Input { get; set; } = new();

    [Sink] public HttpSink<Alert, Alert.JsonCodec> Hook { get; set; } = new("http://127.0.0.1:1/");
}

/// <summary>
/// A real HTTP server on loopback (<see cref="HttpListener"/>) that fails on purpose: the first requests answer 503 or
/// 429, a body with a record whose text says "reject" answers 400, and every request is held a little so requests
/// overlap. It keeps the records of every 2xx request, and the most requests it saw at once.
/// </summary>
internal sealed class FlakyWebhook : LoopbackHttpServer
{
    private int _inFlight;
    private int _failuresLeft;

    public FlakyWebhook(int transientFailures, TimeSpan hold)
        : base("/hook/")
    {
        Url = Root + "?token=secret-token";
        _failuresLeft = transientFailures;
        Hold = hold;
    }

    public string Url { get; }

    public TimeSpan Hold { get; }

    public ConcurrentQueue<string> Accepted { get; } = new();

    public ConcurrentQueue<string> Authorizations { get; } = new();

    public ConcurrentQueue<string> ContentTypes { get; } = new();

    public int MostInFlight;

    public int Requests;

    protected override async Task AnswerAsync(HttpListenerContext context)
    {
        var now = Interlocked.Increment(ref _inFlight);
        InterlockedMax(ref MostInFlight, now);
        Interlocked.Increment(ref Requests);
        try
        {
            using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
            var body = await reader.ReadToEndAsync();
            Authorizations.Enqueue(context.Request.Headers["Authorization"] ?? "");
            ContentTypes.Enqueue(context.Request.ContentType ?? "");
            await Task.Delay(Hold); // a slow service: requests of a partition overlap
            var failure = Interlocked.Decrement(ref _failuresLeft);
            if (failure >= 0)
            {
                context.Response.StatusCode = failure % 2 == 0 ? 503 : 429;
                context.Response.Headers["Retry-After"] = "0";
            }
            else if (body.Contains("reject", StringComparison.Ordinal))
            {
                context.Response.StatusCode = 400;
                var answer = Encoding.UTF8.GetBytes("{\"error\":\"text may not say reject\"}");
                await context.Response.OutputStream.WriteAsync(answer);
            }
            else
            {
                foreach (var line in body.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    Accepted.Enqueue(line);
                }

                context.Response.StatusCode = 204;
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            context.Response.Close();
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current && Interlocked.CompareExchange(ref target, value, current) is var seen && seen != current)
        {
            current = seen;
        }
    }
}

/// <summary>The HTTP sink against a local server that fails on purpose.</summary>
public sealed class HttpSinkTests
{
    private static Alert[] Alerts(int count) => [.. Enumerable.Range(1, count).Select(i => new Alert(i, "service" + (i % 7), i % 250 == 0 ? "please reject me" : $"latency {i} ms \"quoted\" ünïcødé"))];

    private static string Json(Alert alert)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        Alert.JsonCodec.Encode(alert, buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    [Theory]
    [InlineData(HttpSinkMode.Batch, 1)]
    [InlineData(HttpSinkMode.Batch, 3)]
    [InlineData(HttpSinkMode.PerRecord, 2)]
    public async Task Every_record_is_delivered_once_through_retries_and_rejected_ones_become_dead_letters(HttpSinkMode mode, int parallelism)
    {
        await using var server = new FlakyWebhook(transientFailures: 6, hold: TimeSpan.FromMilliseconds(5));
        var alerts = Alerts(mode == HttpSinkMode.Batch ? 5_000 : 600);
        var deadLetters = new CollectionSink<DeadLetter>();
        var pipeline = new AlertsToWebhook
        {
            Input = new CollectionSource<Alert>(alerts),
            Hook = new HttpSink<Alert, Alert.JsonCodec>(new HttpSinkOptions
            {
                Url = server.Url,
                Mode = mode,
                MaxRecordsPerRequest = 100,
                MaxInFlight = 3,
                InitialBackoff = TimeSpan.FromMilliseconds(1),
                Authorization = "Bearer s3cret",
            }),
        };

        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 256, DeadLetterSink = deadLetters });

        var rejected = alerts.Where(a => a.Text.Contains("reject", StringComparison.Ordinal)).ToList();
        Assert.Equal(alerts.Except(rejected).Select(Json).Order(StringComparer.Ordinal), server.Accepted.Order(StringComparer.Ordinal)); // once each: none lost, none twice
        Assert.Equal(rejected.Select(Json).Order(StringComparer.Ordinal), deadLetters.Items.Select(d => d.Raw).Order(StringComparer.Ordinal));
        Assert.All(deadLetters.Items, d =>
        {
            Assert.Equal("rejected", d.Kind);
            Assert.Equal("Hook", d.Stage);
            Assert.Contains("HTTP 400", d.Message, StringComparison.Ordinal);
            Assert.Contains("text may not say reject", d.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("secret-token", d.Message, StringComparison.Ordinal);
        });
        Assert.Equal(6, pipeline.Hook.Retries);
        Assert.Equal(rejected.Count, pipeline.Hook.Rejected);
        Assert.InRange(server.MostInFlight, 1, 3 * parallelism); // never more than MaxInFlight per partition
        Assert.All(server.Authorizations, a => Assert.Equal("Bearer s3cret", a));
        Assert.All(server.ContentTypes, c => Assert.StartsWith(mode == HttpSinkMode.Batch ? "application/x-ndjson" : "application/json", c, StringComparison.Ordinal));
        Assert.Equal(rejected.Count, result.OperatorFailures);
    }

    [Fact]
    public async Task A_partition_never_has_more_requests_in_flight_than_allowed()
    {
        await using var server = new FlakyWebhook(transientFailures: 0, hold: TimeSpan.FromMilliseconds(10));
        var alerts = Alerts(3_000).Where(a => !a.Text.Contains("reject", StringComparison.Ordinal)).ToArray();
        var pipeline = new AlertsToWebhook
        {
            Input = new CollectionSource<Alert>(alerts),
            Hook = new HttpSink<Alert, Alert.JsonCodec>(new HttpSinkOptions { Url = server.Url, MaxRecordsPerRequest = 10, MaxInFlight = 2 }),
        };

        // Each write hands the sink 1,500 records: 150 requests, of which the writer may start only two at a time.
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 1_500 });

        Assert.Equal(alerts.Length, server.Accepted.Count);
        Assert.Equal(2, server.MostInFlight); // overlapping, and bounded
    }

    [Fact]
    public async Task A_server_that_keeps_failing_fails_the_run_naming_the_sink_and_not_the_secrets()
    {
        await using var server = new FlakyWebhook(transientFailures: 1_000, hold: TimeSpan.Zero);
        var pipeline = new AlertsToWebhook
        {
            Input = new CollectionSource<Alert>(Alerts(10)),
            Hook = new HttpSink<Alert, Alert.JsonCodec>(new HttpSinkOptions { Url = server.Url, MaxAttempts = 3, InitialBackoff = TimeSpan.FromMilliseconds(1), Authorization = "Bearer s3cret" }),
        };

        var error = await Assert.ThrowsAnyAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }));
        var text = error.ToString();
        Assert.Contains("Hook", error.Message, StringComparison.Ordinal);
        Assert.Contains("after 3 attempts (MaxAttempts)", text, StringComparison.Ordinal);
        Assert.Matches("HTTP (503|429)", text);
        Assert.DoesNotContain("secret-token", text, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", text, StringComparison.Ordinal);
        Assert.Equal(3, server.Requests);
    }

    [Fact]
    public void Secrets_are_never_shown_in_settings_or_descriptions()
    {
        var sink = new HttpSink<Alert, Alert.JsonCodec>(new HttpSinkOptions { Url = "https://hooks.example.com/alerts?token=abc123", Headers = "X-Api-Key: key-456", Authorization = "Bearer tok-789" });
        var shown = string.Join("\n", sink.Settings.Select(s => s.Name + "=" + s.DisplayValue)) + "\n" + sink.Describe();
        Assert.Contains("https://hooks.example.com/alerts?…", sink.Describe(), StringComparison.Ordinal);
        foreach (var secret in new[] { "abc123", "key-456", "tok-789" })
        {
            Assert.DoesNotContain(secret, shown, StringComparison.Ordinal);
        }
    }
}
