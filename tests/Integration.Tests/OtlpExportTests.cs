using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Compiled.Connectors;
using Compiled.OpenTelemetry;
using Compiled.Runtime;

namespace Compiled.Integration.Tests;

/// <summary>A small bounded pipeline whose metrics are exported.</summary>
[Pipeline(Name = "otlp-doubling")]
public sealed partial class OtlpDoubling
{
    [Source] public CollectionSource<int> Numbers { get; set; } = new([.. Enumerable.Range(1, 5_000)]);

    [Transform] static long Double(int x) => x * 2L;

    [Sink] public CollectionSink<long> Out { get; set; } = new();
}

/// <summary>The OTLP export of the Compiled meter, received by a real HTTP server speaking OTLP/HTTP's endpoint.</summary>
public sealed class OtlpExportTests
{
    /// <summary>An OTLP/HTTP receiver: keeps the body and content type of every POST to /v1/metrics.</summary>
    private sealed class Collector() : LoopbackHttpServer("/v1/")
    {
        public ConcurrentQueue<(string Path, string? ContentType, byte[] Body, string? ApiKey)> Received { get; } = new();

        protected override async Task AnswerAsync(HttpListenerContext context)
        {
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            Received.Enqueue((context.Request.Url!.AbsolutePath, context.Request.ContentType, body.ToArray(), context.Request.Headers["api-key"]));
            context.Response.StatusCode = 200;
            context.Response.Close();
        }
    }

    [Fact]
    public async Task The_runs_metrics_reach_the_collector_over_otlp_http_with_the_pipeline_as_the_service()
    {
        await using var collector = new Collector();
        var error = new StringWriter();
        var exit = await PipelineHost.RunAsync(
            new OtlpDoubling(),
            ["-q", "--set", $"Otlp.Endpoint={collector.Root}metrics", "--set", "Otlp.Protocol=HttpProtobuf", "--set", "Otlp.Interval=100ms", "--set", "Otlp.Headers=api-key=k3y-value"],
            new PipelineHostContext { Output = TextWriter.Null, Error = error, HandleSignals = false, Extensions = [new OtlpExport()] });

        Assert.True(exit == 0, error.ToString());

        // The last export happens when the run ends, so the run's counters are in what was received by then.
        var exports = collector.Received.ToList();
        Assert.NotEmpty(exports);
        Assert.All(exports, e => Assert.Equal(("/v1/metrics", "application/x-protobuf", "k3y-value"), (e.Path, e.ContentType, e.ApiKey)));
        var text = Encoding.UTF8.GetString([.. exports.SelectMany(e => e.Body)]); // protobuf strings are plain UTF-8
        Assert.Contains("compiled.records.read", text, StringComparison.Ordinal);
        Assert.Contains("compiled.records.written", text, StringComparison.Ordinal);
        Assert.Contains("otlp-doubling", text, StringComparison.Ordinal); // service.name and the pipeline tag
        Assert.DoesNotContain("k3y-value", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_an_endpoint_nothing_is_exported_and_help_lists_the_settings()
    {
        var output = new StringWriter();
        var exit = await PipelineHost.RunAsync(new OtlpDoubling(), ["--help"], new PipelineHostContext { Output = output, Error = TextWriter.Null, HandleSignals = false, Extensions = [new OtlpExport()] });

        Assert.Equal(0, exit);
        var help = output.ToString();
        foreach (var setting in new[] { "Otlp.Endpoint", "Otlp.Protocol", "Otlp.Interval", "Otlp.Headers" })
        {
            Assert.Contains(setting, help, StringComparison.Ordinal);
        }

        Assert.False(new OtlpExport().Enabled);
    }

    [Fact]
    public async Task An_endpoint_that_is_not_an_http_address_is_a_configuration_error()
    {
        var error = new StringWriter();
        var exit = await PipelineHost.RunAsync(new OtlpDoubling(), ["-q", "--set", "Otlp.Endpoint=collector:4317"], new PipelineHostContext { Output = TextWriter.Null, Error = error, HandleSignals = false, Extensions = [new OtlpExport()] });

        Assert.Equal(ExitCodes.ConfigurationError, exit);
        Assert.Contains("Otlp.Endpoint 'collector:4317' is not an http:// or https:// address", error.ToString(), StringComparison.Ordinal);
    }
}
