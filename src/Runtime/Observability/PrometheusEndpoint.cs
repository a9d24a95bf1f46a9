using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Compiled.Runtime;

/// <summary>
/// Serves the <c>Compiled</c> meter at <c>http://host:port/metrics</c> in the Prometheus text format (version 0.0.4),
/// so a Prometheus server, or <c>curl</c>, can scrape a running pipeline; and the probes a Kubernetes deployment
/// needs: <c>/healthz</c> (live: 200 while the process serves) and <c>/readyz</c> (200 while <see cref="Readiness"/>
/// says so, 503 otherwise). A <see cref="MeterListener"/> aggregates
/// the measurements (counters summed, gauges last value, histograms bucketed); observable gauges are read at each
/// scrape. Plain HTTP/1.1 over a <see cref="TcpListener"/>: no reflection, no ASP.NET Core, works under Native AOT.
/// </summary>
public sealed class PrometheusEndpoint : IAsyncDisposable
{
    private const int MaxRequestBytes = 8 * 1024;

    private readonly Lock _lock = new();
    private readonly MeterListener _listener = new();
    private readonly Dictionary<(Instrument Instrument, string Labels), double> _values = [];
    private readonly Dictionary<(Instrument Instrument, string Labels), HistogramState> _histograms = [];
    private readonly TcpListener _tcp;
    private readonly CancellationTokenSource _stop = new();
    private Task? _serving;

    /// <summary>Creates an endpoint on <paramref name="address"/>:<paramref name="port"/> (0: any free port); call <see cref="Start"/>.</summary>
    public PrometheusEndpoint(IPAddress address, int port)
    {
        ArgumentNullException.ThrowIfNull(address);
        _tcp = new TcpListener(address, port);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == CompiledMeter.Name)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
    }

    /// <summary>
    /// Whether the run is ready, for <c>/readyz</c>; the command-line host sets it to
    /// <see cref="PipelineMonitor.IsReady"/>. Null: always ready.
    /// </summary>
    public Func<bool>? Readiness { get; init; }

    /// <summary>
    /// The live console served at <c>/</c> (the page), <c>/api/status</c> (JSON) and <c>/api/events</c> (the same JSON
    /// once a second as server-sent events); null: not served.
    /// </summary>
    public PipelineConsole? Console { get; init; }

    /// <summary>How often <c>/api/events</c> sends the console's state.</summary>
    public TimeSpan ConsoleInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Where the endpoint listens, once started.</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_tcp.LocalEndpoint;

    /// <summary>Starts listening and aggregating.</summary>
    public void Start()
    {
        _listener.Start();
        _tcp.Start();
        _serving = Task.Run(ServeAsync, CancellationToken.None);
    }

    /// <summary>The current metrics in the Prometheus text format.</summary>
    public string Scrape()
    {
        lock (_lock)
        {
            // Observable instruments report absolute values: forget the last ones, so that ended runs disappear.
            foreach (var key in _values.Keys.Where(k => k.Instrument.IsObservable).ToList())
            {
                _values.Remove(key);
            }
        }

        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        lock (_lock)
        {
            foreach (var group in _values.GroupBy(p => p.Key.Instrument).OrderBy(g => g.Key.Name, StringComparer.Ordinal))
            {
                var instrument = group.Key;
                var counter = instrument is Counter<long> or Counter<int> or Counter<double> or ObservableCounter<long>;
                var name = Name(instrument) + (counter ? "_total" : "");
                Header(text, name, instrument, counter ? "counter" : "gauge");
                foreach (var (key, value) in group.OrderBy(p => p.Key.Labels, StringComparer.Ordinal))
                {
                    text.Append(name).Append(Braces(key.Labels)).Append(' ').Append(Number(value)).Append('\n');
                }
            }

            foreach (var group in _histograms.GroupBy(p => p.Key.Instrument).OrderBy(g => g.Key.Name, StringComparer.Ordinal))
            {
                var name = Name(group.Key);
                Header(text, name, group.Key, "histogram");
                foreach (var (key, state) in group.OrderBy(p => p.Key.Labels, StringComparer.Ordinal))
                {
                    long cumulative = 0;
                    for (var b = 0; b < HistogramState.Bounds.Length; b++)
                    {
                        cumulative += state.Buckets[b];
                        text.Append(name).Append("_bucket").Append(Braces(Join(key.Labels, $"le=\"{Number(HistogramState.Bounds[b])}\""))).Append(' ').Append(cumulative).Append('\n');
                    }

                    text.Append(name).Append("_bucket").Append(Braces(Join(key.Labels, "le=\"+Inf\""))).Append(' ').Append(state.Count).Append('\n');
                    text.Append(name).Append("_sum").Append(Braces(key.Labels)).Append(' ').Append(Number(state.Sum)).Append('\n');
                    text.Append(name).Append("_count").Append(Braces(key.Labels)).Append(' ').Append(state.Count).Append('\n');
                }
            }
        }

        return text.ToString();
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _tcp.Stop();
        if (_serving is not null)
        {
            try
            {
                await _serving.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // stopping
            }
        }

        _listener.Dispose();
        _stop.Dispose();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = Labels(tags);
        lock (_lock)
        {
            if (instrument is Histogram<double> or Histogram<long> or Histogram<int>)
            {
                if (!_histograms.TryGetValue((instrument, labels), out var state))
                {
                    _histograms[(instrument, labels)] = state = new HistogramState();
                }

                state.Add(value);
            }
            else if (instrument.IsObservable || instrument is Gauge<long> or Gauge<double> or Gauge<int>)
            {
                _values[(instrument, labels)] = value;
            }
            else
            {
                _values[(instrument, labels)] = _values.GetValueOrDefault((instrument, labels)) + value;
            }
        }
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _tcp.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException && _stop.IsCancellationRequested)
            {
                return;
            }

            _ = Task.Run(() => RespondAsync(socket), CancellationToken.None);
        }
    }

    private async Task RespondAsync(Socket socket)
    {
        using (socket)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                var request = await ReadRequestAsync(socket, timeout.Token).ConfigureAwait(false);
                if (Console is { } console && request is not null && Is(request, "/api/events"))
                {
                    await StreamAsync(socket, console).ConfigureAwait(false);
                    return;
                }

                if (Console is { } page && request is not null && (Is(request, "/") || Is(request, "/api/status")))
                {
                    var html = Is(request, "/");
                    await SendAsync(socket, "200 OK", html ? Encoding.UTF8.GetBytes(PipelineConsole.Page) : page.Status(), html ? "text/html; charset=utf-8" : "application/json", timeout.Token).ConfigureAwait(false);
                    return;
                }

                var (status, body, type) = request switch
                {
                    null => ("400 Bad Request", "bad request\n", "text/plain; charset=utf-8"),
                    var line when Is(line, "/metrics") => ("200 OK", Scrape(), "text/plain; version=0.0.4; charset=utf-8"),
                    var line when Is(line, "/healthz") => ("200 OK", "ok\n", "text/plain; charset=utf-8"),
                    var line when Is(line, "/readyz") => Readiness?.Invoke() ?? true
                        ? ("200 OK", "ready\n", "text/plain; charset=utf-8")
                        : ("503 Service Unavailable", "not ready\n", "text/plain; charset=utf-8"),
                    var line when line.StartsWith("GET ", StringComparison.Ordinal) => ("404 Not Found", Console is null ? "not found: metrics are at /metrics, probes at /healthz and /readyz\n" : "not found: the console is at /, metrics at /metrics, probes at /healthz and /readyz\n", "text/plain; charset=utf-8"),
                    _ => ("405 Method Not Allowed", "only GET /metrics, /healthz, /readyz\n", "text/plain; charset=utf-8"),
                };
                await SendAsync(socket, status, Encoding.UTF8.GetBytes(body), type, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // a client that goes away or stalls is not the pipeline's problem
            }
        }
    }

    private static async Task SendAsync(Socket socket, string status, byte[] payload, string type, CancellationToken cancellationToken)
    {
        var head = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"HTTP/1.1 {status}\r\nContent-Type: {type}\r\nContent-Length: {payload.Length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"));
        await socket.SendAsync(head, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        await socket.SendAsync(payload, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        socket.Shutdown(SocketShutdown.Both);
    }

    /// <summary>Server-sent events: the console's state now and then every <see cref="ConsoleInterval"/>, until the client goes away or the endpoint stops.</summary>
    private async Task StreamAsync(Socket socket, PipelineConsole console)
    {
        var token = _stop.Token;
        var head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nretry: 1000\n\n"u8.ToArray();
        await socket.SendAsync(head, SocketFlags.None, token).ConfigureAwait(false);
        using var timer = new PeriodicTimer(ConsoleInterval);
        do
        {
            var json = console.Status(); // one line: Utf8JsonWriter writes no line breaks unless indented
            var frame = new byte[json.Length + 8];
            "data: "u8.CopyTo(frame);
            json.CopyTo(frame.AsSpan(6));
            frame[^2] = (byte)'\n';
            frame[^1] = (byte)'\n';
            await socket.SendAsync(frame, SocketFlags.None, token).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false));
    }

    /// <summary>Whether a request line asks for <paramref name="path"/> (with or without a query).</summary>
    private static bool Is(string line, string path)
        => line.StartsWith("GET " + path, StringComparison.Ordinal) && line.Length > path.Length + 4 && line[path.Length + 4] is ' ' or '?';

    private static async Task<string?> ReadRequestAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxRequestBytes];
        var length = 0;
        while (length < buffer.Length)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            length += read;
            if (buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8) >= 0)
            {
                var end = buffer.AsSpan(0, length).IndexOf("\r\n"u8);
                return Encoding.ASCII.GetString(buffer, 0, end);
            }
        }

        return null;
    }

    private static void Header(StringBuilder text, string name, Instrument instrument, string type)
    {
        var help = instrument.Description ?? instrument.Name;
        if (!string.IsNullOrEmpty(instrument.Unit))
        {
            help += $" (unit: {instrument.Unit})";
        }

        text.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
    }

    private static string Name(Instrument instrument)
    {
        var name = new StringBuilder(instrument.Name.Length + 4);
        foreach (var c in instrument.Name)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_');
        }

        if (instrument.Unit == "ms")
        {
            name.Append("_milliseconds");
        }

        return name.ToString();
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return "";
        }

        var pairs = new List<string>(tags.Length);
        foreach (var tag in tags)
        {
            var value = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "";
            pairs.Add($"{tag.Key}=\"{value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\"");
        }

        pairs.Sort(StringComparer.Ordinal);
        return string.Join(",", pairs);
    }

    private static string Join(string labels, string extra) => labels.Length == 0 ? extra : labels + "," + extra;

    private static string Braces(string labels) => labels.Length == 0 ? "" : "{" + labels + "}";

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private sealed class HistogramState
    {
        public static readonly double[] Bounds = CompiledMeter.BatchDurationBounds;

        public long[] Buckets { get; } = new long[Bounds.Length];

        public long Count { get; private set; }

        public double Sum { get; private set; }

        public void Add(double value)
        {
            var bucket = Array.BinarySearch(Bounds, value);
            bucket = bucket >= 0 ? bucket : ~bucket;
            if (bucket < Bounds.Length)
            {
                Buckets[bucket]++;
            }

            Count++;
            Sum += value;
        }
    }
}
