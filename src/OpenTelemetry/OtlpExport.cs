using Compiled.Runtime;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Compiled.OpenTelemetry;

/// <summary>
/// Exports the run's <c>Compiled</c> meter over OTLP to an OpenTelemetry collector, through the OpenTelemetry SDK's
/// exporter. Add it to the host — <c>new PipelineHostContext { Extensions = [new OtlpExport()] }</c> — and set
/// <c>Otlp.Endpoint</c> (configuration, <c>COMPILED__Otlp__Endpoint</c> or <c>--set</c>); without an endpoint it does
/// nothing. The Prometheus endpoint (<c>--metrics-port</c>) works beside it.
/// </summary>
public sealed class OtlpExport : IHostExtension
{
    private string _endpoint = "";
    private OtlpExportProtocol _protocol = OtlpExportProtocol.Grpc;
    private TimeSpan _interval = TimeSpan.FromSeconds(10);
    private string _headers = "";

    /// <inheritdoc/>
    public string Name => "Otlp";

    /// <summary>
    /// The collector's address: <c>http://collector:4317</c> for gRPC; for HTTP/protobuf the full metrics address,
    /// <c>http://collector:4318/v1/metrics</c>. Empty (default): no export.
    /// </summary>
    public string Endpoint { get => _endpoint; set => _endpoint = value ?? ""; }

    /// <summary><see cref="OtlpExportProtocol.Grpc"/> (default) or <see cref="OtlpExportProtocol.HttpProtobuf"/>.</summary>
    public OtlpExportProtocol Protocol { get => _protocol; set => _protocol = value; }

    /// <summary>How often metrics are exported (default 10 s); the last export happens when the run ends.</summary>
    public TimeSpan Interval { get => _interval; set => _interval = value; }

    /// <summary>Headers sent with each export (<c>api-key=…,tenant=…</c>), often a credential: shown masked.</summary>
    public string Headers { get => _headers; set => _headers = value ?? ""; }

    /// <inheritdoc/>
    public bool Enabled => _endpoint.Length > 0;

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings =>
    [
        Setting.Text(nameof(Endpoint), "Export the Compiled meter over OTLP to this collector (gRPC: http://host:4317; HTTP: http://host:4318/v1/metrics); empty: no export", () => _endpoint, v => _endpoint = v, allowEmpty: true),
        Setting.Choice(nameof(Protocol), "The OTLP transport", () => _protocol, v => _protocol = v),
        Setting.Duration(nameof(Interval), "How often metrics are exported (and once more when the run ends)", () => _interval, v => _interval = v!.Value),
        Setting.Text(nameof(Headers), "Headers sent with each export (name=value,…)", () => _headers, v => _headers = v, secret: true, allowEmpty: true),
    ];

    /// <inheritdoc/>
    public string Describe() => $"metrics exported over OTLP ({_protocol}) to {_endpoint} every {Setting.FormatDuration(_interval)}";

    /// <inheritdoc/>
    public IAsyncDisposable Start(IPipelineJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (!Uri.TryCreate(_endpoint, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException($"Otlp.Endpoint '{_endpoint}' is not an http:// or https:// address");
        }

        var provider = Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(resource => resource.AddService(job.Descriptor.Name))
            .AddMeter(CompiledMeter.Name)
            .AddOtlpExporter((exporter, reader) =>
            {
                exporter.Endpoint = endpoint;
                exporter.Protocol = _protocol;
                exporter.Headers = _headers.Length == 0 ? null : _headers;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)Math.Clamp(_interval.TotalMilliseconds, 1, int.MaxValue);
            })
            .Build();
        return new Running(provider);
    }

    private sealed class Running(MeterProvider provider) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            provider.ForceFlush(10_000);
            provider.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
