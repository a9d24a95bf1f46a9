using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;

namespace Compiled.Http;

/// <summary>How an <see cref="HttpSink{T, TCodec}"/> groups records into requests.</summary>
public enum HttpSinkMode
{
    /// <summary>Up to <see cref="HttpSinkOptions.MaxRecordsPerRequest"/> records per request, one per line (JSON Lines: <c>application/x-ndjson</c>).</summary>
    Batch,

    /// <summary>One request per record, its body the encoded record (JSON: <c>application/json</c>).</summary>
    PerRecord,
}

/// <summary>Options of an <see cref="HttpSink{T, TCodec}"/>; every one is also a setting.</summary>
public sealed class HttpSinkOptions
{
    /// <summary>The URL records are POSTed to. Treated as a secret (a query string often carries a token): shown without its query.</summary>
    public string Url { get; set; } = "";

    /// <summary>Batches (default) or one request per record.</summary>
    public HttpSinkMode Mode { get; set; }

    /// <summary>Records per request in batch mode: 500.</summary>
    public int MaxRecordsPerRequest { get; set; } = 500;

    /// <summary>Requests one partition has in flight at most: 4. A writer that has this many waits for the oldest (backpressure).</summary>
    public int MaxInFlight { get; set; } = 4;

    /// <summary>How long one attempt of a request may take: 10 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Attempts of a request that fails transiently (a connection error, a timeout, 408, 429, 5xx) before the run fails: 6.</summary>
    public int MaxAttempts { get; set; } = 6;

    /// <summary>The wait before the second attempt: 200 ms, doubling per attempt up to <see cref="MaxBackoff"/>; a <c>Retry-After</c> header overrides it.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest wait between attempts: 10 s.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Extra request headers, <c>Name: value; Other: value</c>. A secret: never shown.</summary>
    public string Headers { get; set; } = "";

    /// <summary>The <c>Authorization</c> header's value (<c>Bearer …</c>). A secret: never shown.</summary>
    public string Authorization { get; set; } = "";

    /// <summary>The options as settings.</summary>
    public IEnumerable<Setting> Settings() =>
    [
        Setting.Text(nameof(Url), "The URL records are POSTed to", () => Url, v => Url = v, secret: true),
        Setting.Choice(nameof(Mode), "Batch: many records per request, one per line; PerRecord: one request per record", () => Mode, v => Mode = v),
        Setting.Number(nameof(MaxRecordsPerRequest), "Records per request in batch mode", () => MaxRecordsPerRequest, v => MaxRecordsPerRequest = (int)v, 1, 1_000_000),
        Setting.Number(nameof(MaxInFlight), "Requests one partition has in flight at most", () => MaxInFlight, v => MaxInFlight = (int)v, 1, 1024),
        Setting.Duration(nameof(Timeout), "How long one attempt of a request may take", () => Timeout, v => Timeout = v!.Value),
        Setting.Number(nameof(MaxAttempts), "Attempts of a request that fails transiently before the run fails", () => MaxAttempts, v => MaxAttempts = (int)v, 1, 1000),
        Setting.Duration(nameof(InitialBackoff), "The wait before the second attempt (doubling per attempt)", () => InitialBackoff, v => InitialBackoff = v!.Value),
        Setting.Duration(nameof(MaxBackoff), "The longest wait between attempts", () => MaxBackoff, v => MaxBackoff = v!.Value),
        Setting.Text(nameof(Headers), "Extra request headers: Name: value; Other: value", () => Headers, v => Headers = v, secret: true, allowEmpty: true),
        Setting.Text(nameof(Authorization), "The Authorization header (Bearer …)", () => Authorization, v => Authorization = v, secret: true, allowEmpty: true),
    ];
}

/// <summary>
/// POSTs records to an HTTP endpoint — a webhook, an ingestion API — encoded by <typeparamref name="TCodec"/>: in
/// batches of JSON Lines, or one request per record. A request is acknowledged by a 2xx; a connection error, a
/// timeout, 408, 429 or a 5xx is retried with exponential backoff (honouring <c>Retry-After</c>) up to
/// <see cref="HttpSinkOptions.MaxAttempts"/>, after which the run fails (at-least-once: the records are sent again by
/// the next run). Any other 4xx rejects the records for good: a rejected batch is sent again in halves until the
/// records the server rejects are found, and each becomes a dead letter with its bytes and the server's answer. A flush
/// returns once every request of the partition was acknowledged or rejected, so the source commits only what the
/// server took. Requests of one partition may be in flight together (<see cref="HttpSinkOptions.MaxInFlight"/>), so
/// the server may see them out of order.
/// </summary>
/// <remarks>Written against Compiled's public API only, as the worked example of docs/connector-guide.md.</remarks>
/// <typeparam name="T">The record type.</typeparam>
/// <typeparam name="TCodec">How records are encoded (<c>T.JsonCodec</c> for JSON).</typeparam>
public sealed class HttpSink<T, TCodec> : ISink<T>, IConfigurable, IDisposable
    where TCodec : IRecordCodec<T>
{
    private readonly HttpSinkOptions _options;
    private HttpClient? _client;
    private Uri? _uri;
    private (string Name, string Value)[] _headers = [];
    private string _sinkName = "";
    private string _pipeline = "";
    private IDeadLetterChannel? _deadLetters;
    private Action<string>? _warn;
    private long _requests;
    private long _retries;
    private long _rejected;

    /// <summary>Creates a sink with <paramref name="options"/>.</summary>
    public HttpSink(HttpSinkOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <summary>POSTs to <paramref name="url"/>, in batches or one request per record.</summary>
    public HttpSink(string url, HttpSinkMode mode = HttpSinkMode.Batch)
        : this(new HttpSinkOptions { Url = url, Mode = mode })
    {
    }

    /// <summary>The options (settings apply to this object).</summary>
    public HttpSinkOptions Options => _options;

    /// <summary>Requests sent so far, retries included.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Attempts that failed transiently and were retried.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Records the server rejected for good (dead-lettered).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings => _options.Settings();

    /// <inheritdoc/>
    public string Describe()
    {
        var retries = Retries;
        var retried = retries == 0 ? "" : $", {retries} transient {(retries == 1 ? "failure" : "failures")} retried";
        var shape = _options.Mode == HttpSinkMode.Batch ? $"batches of {_options.MaxRecordsPerRequest} {TCodec.Format}" : $"one {TCodec.Format} record per request";
        return $"http POST {DisplayUrl(_options.Url)} ({shape}, {_options.MaxInFlight} in flight per partition{retried})";
    }

    /// <summary>The URL without what may be secret: credentials and query string.</summary>
    private static string DisplayUrl(string url)
        => Uri.TryCreate(url, UriKind.Absolute, out var uri)
            ? $"{uri.Scheme}://{uri.Authority}{uri.AbsolutePath}{(uri.Query.Length > 0 ? "?…" : "")}"
            : "(no valid URL)";

    /// <inheritdoc/>
    public ValueTask OpenAsync(SinkContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!Uri.TryCreate(_options.Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new NonRetryableException($"HttpSink '{context.SinkName}': Url must be an absolute http:// or https:// URL; it is {(string.IsNullOrWhiteSpace(_options.Url) ? "empty" : "'" + DisplayUrl(_options.Url) + "'")}.");
        }

        if (_options.Mode == HttpSinkMode.PerRecord && TCodec.Framing != RecordFraming.Lines)
        {
            throw new NonRetryableException($"HttpSink '{context.SinkName}': codec {TCodec.Format} does not write text lines; use a JSON or CSV codec.");
        }

        _uri = uri;
        _headers = ParseHeaders(_options.Headers, context.SinkName);
        _sinkName = context.SinkName;
        _pipeline = context.PipelineName;
        _deadLetters = context.DeadLetters;
        _warn = context.Warn;
        _client?.Dispose();
        _client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2) })
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan, // each attempt has its own timeout
        };
        return ValueTask.CompletedTask;
    }

    private static (string, string)[] ParseHeaders(string text, string sink)
    {
        var headers = new List<(string, string)>();
        foreach (var part in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = part.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new NonRetryableException($"HttpSink '{sink}': Headers must be 'Name: value' pairs separated by ';' (one pair has no name).");
            }

            headers.Add((part[..colon].Trim(), part[(colon + 1)..].Trim()));
        }

        return [.. headers];
    }

    /// <inheritdoc/>
    public ISinkWriter<T> CreateWriter(int partition) => new Writer(this, partition);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Releases the HTTP client if a run left it open.</summary>
    public void Dispose()
    {
        _client?.Dispose();
        _client = null;
    }

    private string ContentType => _options.Mode == HttpSinkMode.Batch
        ? TCodec.Format switch { "jsonl" => "application/x-ndjson", "csv" => "text/csv", _ => "application/octet-stream" }
        : TCodec.Format == "jsonl" ? "application/json" : "text/plain";

    /// <summary>The outcome of a request: acknowledged, or rejected for good with the status and the server's words.</summary>
    private readonly record struct Outcome(bool Accepted, int Status, string Answer);

    /// <summary>POSTs <paramref name="body"/>, retrying transient failures; throws once they outlast <see cref="HttpSinkOptions.MaxAttempts"/>.</summary>
    private async Task<Outcome> PostAsync(ReadOnlyMemory<byte> body, string contentType, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            string failure;
            TimeSpan? retryAfter = null;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.Timeout);
            try
            {
                Interlocked.Increment(ref _requests);
                using var request = new HttpRequestMessage(HttpMethod.Post, _uri) { Content = new ReadOnlyMemoryContent(body) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
                foreach (var (name, value) in _headers)
                {
                    request.Headers.TryAddWithoutValidation(name, value);
                }

                if (_options.Authorization.Length > 0)
                {
                    request.Headers.TryAddWithoutValidation("Authorization", _options.Authorization);
                }

                using var response = await _client!.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                var status = (int)response.StatusCode;
                if (response.IsSuccessStatusCode)
                {
                    return new Outcome(true, status, "");
                }

                var answer = await Answer(response, timeout.Token).ConfigureAwait(false);
                if (!Transient(response.StatusCode))
                {
                    return new Outcome(false, status, answer);
                }

                failure = $"HTTP {status} {response.ReasonPhrase}{(answer.Length > 0 ? ": " + answer : "")}";
                retryAfter = RetryAfter(response);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                failure = ex is OperationCanceledException ? $"no answer within {Setting.FormatDuration(_options.Timeout)} (Timeout)" : ex.Message;
            }

            if (attempt >= _options.MaxAttempts)
            {
                throw new IOException($"HTTP POST to {DisplayUrl(_options.Url)} failed after {_options.MaxAttempts} attempts (MaxAttempts): {failure}");
            }

            Interlocked.Increment(ref _retries);
            var backoff = TimeSpan.FromTicks(Math.Min(_options.MaxBackoff.Ticks, _options.InitialBackoff.Ticks << Math.Min(attempt - 1, 20)));
            var delay = retryAfter is { } after ? TimeSpan.FromTicks(Math.Min(after.Ticks, _options.MaxBackoff.Ticks)) : backoff;
            _warn?.Invoke($"HTTP POST to {DisplayUrl(_options.Url)} (attempt {attempt} of {_options.MaxAttempts}): {failure}; retrying in {Setting.FormatDuration(delay)}");
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Worth another attempt: the request timed out, the server is overloaded or failing (408, 429, 5xx but 501 and 505).</summary>
    private static bool Transient(HttpStatusCode status)
        => status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests
            || ((int)status >= 500 && status is not (HttpStatusCode.NotImplemented or HttpStatusCode.HttpVersionNotSupported));

    private static TimeSpan? RetryAfter(HttpResponseMessage response) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date - DateTimeOffset.UtcNow is var wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero,
        _ => null,
    };

    /// <summary>The start of the server's answer, for messages and dead letters.</summary>
    private static async Task<string> Answer(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            return text.Length > 500 ? text[..500] + "…" : text.Trim();
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            return "";
        }
    }

    /// <summary>
    /// One partition's writer: encodes records into request bodies, keeps up to <see cref="HttpSinkOptions.MaxInFlight"/>
    /// requests in flight, and on a flush waits for all of them.
    /// </summary>
    private sealed class Writer(HttpSink<T, TCodec> sink, int partition) : ISinkWriter<T>
    {
        private readonly ArrayBufferWriter<byte> _body = new();
        private readonly List<int> _ends = [];
        private readonly Queue<Task> _inFlight = new();
        private readonly CancellationTokenSource _aborted = new();

        public async ValueTask WriteAsync(ReadOnlyMemory<T> records, CancellationToken cancellationToken)
        {
            var limit = sink._options.Mode == HttpSinkMode.Batch ? sink._options.MaxRecordsPerRequest : 1;
            for (var i = 0; i < records.Length; i++)
            {
                TCodec.Encode(records.Span[i], _body);
                if (sink._options.Mode == HttpSinkMode.Batch && TCodec.Framing == RecordFraming.Lines)
                {
                    _body.Write("\n"u8);
                }

                _ends.Add(_body.WrittenCount);
                if (_ends.Count >= limit)
                {
                    await SendAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }

        public async ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            if (_ends.Count > 0)
            {
                await SendAsync(cancellationToken).ConfigureAwait(false);
            }

            while (_inFlight.TryDequeue(out var request))
            {
                await request.ConfigureAwait(false);
            }
        }

        /// <summary>Starts the request of what is buffered; waits for the oldest request first when the partition has the most in flight.</summary>
        private async ValueTask SendAsync(CancellationToken cancellationToken)
        {
            while (_inFlight.Count >= sink._options.MaxInFlight)
            {
                await _inFlight.Dequeue().ConfigureAwait(false);
            }

            var body = _body.WrittenSpan.ToArray();
            var ends = _ends.ToArray();
            _body.ResetWrittenCount();
            _ends.Clear();
            _inFlight.Enqueue(DeliverAsync(body, ends, _aborted.Token)); // cancelled by AbortAsync, not by one write's token
        }

        /// <summary>Sends a body; when the server rejects a batch, finds the records it rejects by halves and dead-letters them.</summary>
        private async Task DeliverAsync(byte[] body, int[] ends, CancellationToken cancellationToken)
        {
            await Task.Yield(); // the request runs beside the writer, which goes on encoding
            await DeliverAsync(body, ends, 0, ends.Length, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// Sends records [<paramref name="first"/>, <paramref name="end"/>) of a body. A rejected range of several records
        /// is sent again as two halves, so a batch with one bad record costs about 2·log2(n) more requests, not n.
        /// </summary>
        private async Task DeliverAsync(byte[] body, int[] ends, int first, int end, CancellationToken cancellationToken)
        {
            var start = first == 0 ? 0 : ends[first - 1];
            var bytes = body.AsMemory(start, ends[end - 1] - start);
            var outcome = await sink.PostAsync(bytes, sink.ContentType, cancellationToken).ConfigureAwait(false);
            if (outcome.Accepted)
            {
                return;
            }

            if (end - first == 1)
            {
                Reject(body.AsMemory(start, Trimmed(body, start, ends[first]) - start), outcome);
                return;
            }

            var middle = first + ((end - first) / 2);
            await DeliverAsync(body, ends, first, middle, cancellationToken).ConfigureAwait(false);
            await DeliverAsync(body, ends, middle, end, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>The end of a record's bytes without its line break.</summary>
        private static int Trimmed(byte[] body, int start, int end) => end > start && body[end - 1] == (byte)'\n' ? end - 1 : end;

        private void Reject(ReadOnlyMemory<byte> record, Outcome outcome)
        {
            Interlocked.Increment(ref sink._rejected);
            var message = $"HTTP {outcome.Status.ToString(CultureInfo.InvariantCulture)} from {DisplayUrl(sink._options.Url)}{(outcome.Answer.Length > 0 ? ": " + outcome.Answer : "")}";
            var channel = sink._deadLetters ?? throw new InvalidDataException($"Pipeline '{sink._pipeline}': sink '{sink._sinkName}' was refused a record ({message}) and has no dead-letter channel to put it in.");
            channel.Report(new FailedRecord(FailureKind.Rejected, partition, sink._sinkName, new RecordOrigin(sink._sinkName, null, null, null, record), "HTTP " + outcome.Status.ToString(CultureInfo.InvariantCulture), message));
        }

        public async ValueTask DisposeAsync()
        {
            while (_inFlight.TryDequeue(out var request))
            {
                await request.ConfigureAwait(false);
            }

            _aborted.Dispose();
        }

        public async ValueTask AbortAsync()
        {
            await _aborted.CancelAsync().ConfigureAwait(false);
            while (_inFlight.TryDequeue(out var request))
            {
                try
                {
                    await request.ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // aborted: what was in flight is not acknowledged, and the next run sends it again
                }
            }

            _aborted.Dispose();
        }
    }
}
