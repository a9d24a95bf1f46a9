using System.Collections;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using Compiled.Connectors;

namespace Compiled.Runtime.Tests.Hosting;

/// <summary>The Compiled meter, the Prometheus endpoint, and secrets kept out of everything printed.</summary>
public sealed class ObservabilityTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-metrics-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task The_meter_reports_records_read_written_failed_dead_letters_and_batches_of_a_known_run()
    {
        var measurements = new ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == CompiledMeter.Name)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Keep(i, v, tags));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Keep(i, v, tags));
        listener.Start();

        // 1..95: multiples of ten throw (9 records, dead-lettered), odd ones pass the filter (48 records).
        var pipeline = new MeteredPipeline { Numbers = new CollectionSource<long>(Enumerable.Range(1, 95).Select(i => (long)i).ToArray()) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 10, DeadLetterPath = Path.Combine(_work, "dead.jsonl") });
        Assert.Equal(48, result.Sinks[0].Records);

        var mine = measurements.Where(m => Equals(m.Tags.GetValueOrDefault("pipeline"), "metered")).ToList();
        double Sum(string instrument, Func<Dictionary<string, object?>, bool>? where = null) => mine.Where(m => m.Instrument == instrument && (where?.Invoke(m.Tags) ?? true)).Sum(m => m.Value);
        Assert.Equal(95, Sum("compiled.records.read", t => Equals(t["source"], "Numbers")));
        Assert.Equal(48, Sum("compiled.records.written", t => Equals(t["sink"], "Output")));
        Assert.Equal(9, Sum("compiled.records.failed", t => Equals(t["kind"], "operator") && Equals(t["stage"], "Check")));
        Assert.Equal(9, Sum("compiled.dead_letters.written"));
        Assert.Equal(10, mine.Count(m => m.Instrument == "compiled.batch.duration"));
        Assert.All(mine.Where(m => m.Instrument == "compiled.batch.duration"), m => Assert.True(m.Value >= 0));

        void Keep(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
            => measurements.Enqueue((instrument.Name, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
    }

    [Fact]
    public async Task The_sink_queue_gauge_reads_full_when_a_stalled_sink_holds_back_the_run()
    {
        const int batch = 8, capacity = 2;
        var source = new EndlessSource(signalAfter: (capacity + 2) * batch);
        var pipeline = new StalledPipeline
        {
            Numbers = source,
            Output = new TrackingSink<long> { Stall = token => new ValueTask(Task.Delay(Timeout.Infinite, token)) },
        };
        var fills = new ConcurrentQueue<double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == CompiledMeter.Name && instrument.Name == "compiled.sink.queue.fill")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, value, tags, _) =>
        {
            if (tags.ToArray().Any(t => t.Key == "pipeline" && Equals(t.Value, "stalled")))
            {
                fills.Enqueue(value);
            }
        });
        listener.Start();

        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = batch, SinkQueueCapacity = capacity, GracePeriod = TimeSpan.FromMilliseconds(100) }, stop.Token);

        // By the time batch capacity+2 is read, the writer holds batch 1 and the queue holds the next 'capacity'.
        await source.Reached;
        listener.RecordObservableInstruments();
        Assert.Equal(1.0, Assert.Single(fills));

        // The stalled writer never drains: the stop runs out of grace and aborts.
        await stop.CancelAsync();
        await Assert.ThrowsAsync<PipelineAbortedException>(() => run);
    }

    [Fact]
    public async Task The_prometheus_endpoint_serves_the_runs_counters_and_histogram_over_http()
    {
        await using var endpoint = new PrometheusEndpoint(IPAddress.Loopback, 0);
        endpoint.Start();
        var pipeline = new ScrapedPipeline { Numbers = new CollectionSource<long>(Enumerable.Range(1, 20).Select(i => (long)i).ToArray()) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 10 });

        using var http = new HttpClient { BaseAddress = new Uri($"http://{endpoint.EndPoint}") };
        using var response = await http.GetAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE compiled_records_read_total counter", text, StringComparison.Ordinal);
        Assert.Contains("compiled_records_read_total{pipeline=\"scraped\",source=\"Numbers\"} 20\n", text, StringComparison.Ordinal);
        Assert.Contains("compiled_records_written_total{pipeline=\"scraped\",sink=\"Output\"} 20\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE compiled_batch_duration_milliseconds histogram", text, StringComparison.Ordinal);
        Assert.Contains("compiled_batch_duration_milliseconds_count{pipeline=\"scraped\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("compiled_batch_duration_milliseconds_bucket{pipeline=\"scraped\",le=\"+Inf\"} 2\n", text, StringComparison.Ordinal);

        using var missing = await http.GetAsync(new Uri("/other", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task The_probes_say_live_always_and_ready_only_while_the_run_is_open_and_not_stopping()
    {
        var monitor = new PipelineMonitor();
        await using var endpoint = new PrometheusEndpoint(IPAddress.Loopback, 0) { Readiness = () => monitor.IsReady };
        endpoint.Start();
        using var http = new HttpClient { BaseAddress = new Uri($"http://{endpoint.EndPoint}") };

        async Task<HttpStatusCode> Probe(string path)
        {
            using var response = await http.GetAsync(new Uri(path, UriKind.Relative));
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await Probe("/healthz"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await Probe("/readyz")); // no run yet

        var source = new EndlessSource(signalAfter: 1_000);
        var pipeline = new StalledPipeline { Numbers = source, Output = new TrackingSink<long>() };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2, Monitor = monitor }, stop.Token);
        await source.Reached; // records flow: the sinks and the source opened, the partitions run
        Assert.Equal(HttpStatusCode.OK, await Probe("/readyz"));
        Assert.Equal(HttpStatusCode.OK, await Probe("/readyz?verbose"));
        Assert.Equal(HttpStatusCode.OK, await Probe("/healthz"));

        await stop.CancelAsync();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await Probe("/readyz")); // stopping: take it out of service
        await run;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await Probe("/readyz")); // ended
        Assert.Equal(HttpStatusCode.OK, await Probe("/healthz"));
        Assert.Equal(HttpStatusCode.NotFound, await Probe("/readyzz"));
    }

    [Fact]
    public async Task Secrets_never_appear_in_explain_help_logs_errors_or_summaries()
    {
        var printed = new List<string>();
        async Task Capture(string[] args)
        {
            var (_, output, error) = await HostTests.Run(new SecretivePipeline(), args, new Hashtable());
            printed.Add(output + error);
        }

        await Capture(["--explain"]);
        await Capture(["--explain", "mermaid"]);
        await Capture(["--help"]);
        await Capture(["-p", "1", "--log-level", "Trace"]);
        await Capture(["-p", "1", "--log-level", "Debug", "--set", $"Store.ConnectionString=Host=other;Password={SecretSink.Password}", "--set", $"Store.Key={SecretSink.ApiKey}"]);
        await Capture(["--set", $"Store.Nope={SecretSink.Password}"]);

        Assert.Contains(printed, p => p.Contains("Store.ConnectionString = host=db.internal;username=etl;password=***", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(printed, p => p.Contains("Store.Key = ***", StringComparison.Ordinal));
        Assert.Contains(printed, p => p.Contains("setting Store.ConnectionString = host=other;password=*** (from --set)", StringComparison.OrdinalIgnoreCase));
        Assert.All(printed, p =>
        {
            Assert.DoesNotContain(SecretSink.Password, p, StringComparison.Ordinal);
            Assert.DoesNotContain(SecretSink.ApiKey, p, StringComparison.Ordinal);
        });
    }

    [Theory]
    [InlineData("Host=db;Username=etl;Password=hunter2", "host=db;username=etl;password=***")]
    [InlineData("Server=db;User Id=sa;Pwd=x;Database=orders", "server=db;user id=sa;pwd=***;database=orders")]
    [InlineData("bootstrap.servers=k:9092;sasl.password=pw;sasl.username=u", "bootstrap.servers=k:9092;sasl.password=***;sasl.username=u")]
    [InlineData("Host=db;Access Token=abc", "host=db;access token=***")]
    [InlineData("Host=db", "host=db")]
    [InlineData("not a connection string", "***")]
    public void Connection_strings_are_shown_with_their_secrets_masked(string connectionString, string expected)
        => Assert.Equal(expected, Secrets.RedactConnectionString(connectionString), ignoreCase: true);
}

/// <summary>A pipeline only the queue-gauge test runs.</summary>
[Pipeline(Name = "stalled")]
public sealed partial class StalledPipeline
{
    [Source] public EndlessSource Numbers { get; set; } = new();

    [Sink] public TrackingSink<long> Output { get; set; } = new();
}

/// <summary>A pipeline only the endpoint test runs, so its counters are its own.</summary>
[Pipeline(Name = "scraped")]
public sealed partial class ScrapedPipeline
{
    [Source] public CollectionSource<long> Numbers { get; set; } = new();

    [Sink] public TrackingSink<long> Output { get; set; } = new();
}
