using System.Collections.Concurrent;
using System.Text;
using System.Text.Unicode;

namespace Compiled.Runtime;

/// <summary>
/// The runtime's dead-letter channel: applies the error policy, counts failures, queues envelopes and writes them to
/// the dead-letter sink at batch boundaries (the partition worker flushes it, as it flushes its output ports). The
/// sink is opened only when the first dead letter arrives, so a clean run leaves no empty file.
/// </summary>
internal sealed class DeadLetterChannel : IDeadLetterChannel, IAsyncDisposable
{
    /// <summary>The most raw bytes kept in one envelope: enough to recognise a record, small enough for an oversize one.</summary>
    public const int MaxRawBytes = 16 * 1024;

    private readonly string _pipeline;
    private readonly ISink<DeadLetter> _sink;
    private readonly ConcurrentQueue<DeadLetter> _pending = new();
    private readonly SemaphoreSlim _writing = new(1, 1);
    private ISinkWriter<DeadLetter>? _writer;
    private long _malformed;
    private long _operatorFailures;
    private long _written;

    public DeadLetterChannel(string pipeline, ErrorPolicy policy, ISink<DeadLetter> sink, Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        _pipeline = pipeline;
        Policy = policy;
        _sink = sink;
        _logger = logger;
    }

    private readonly Microsoft.Extensions.Logging.ILogger? _logger;
    private int _logged;

    public ErrorPolicy Policy { get; }

    public long Malformed => Interlocked.Read(ref _malformed);

    public long OperatorFailures => Interlocked.Read(ref _operatorFailures);

    public long Written => Interlocked.Read(ref _written);

    public bool HasPending => !_pending.IsEmpty;

    public string Destination => _sink.Describe();

    public void Report(in FailedRecord failure)
    {
        if (failure.Kind == FailureKind.Decode)
        {
            Interlocked.Increment(ref _malformed);
        }
        else
        {
            Interlocked.Increment(ref _operatorFailures);
        }

        var kind = failure.Kind == FailureKind.Decode ? "decode" : "operator";
        CompiledMeter.RecordsFailed.Add(1, new KeyValuePair<string, object?>("pipeline", _pipeline), new("kind", kind), new("stage", failure.Stage));
        if (_logger is not null && Interlocked.Exchange(ref _logged, 1) == 0)
        {
            Log.FirstFailure(_logger, _pipeline, kind, failure.Stage, failure.Origin.Describe(), failure.Message);
        }

        switch (Policy)
        {
            case ErrorPolicy.FailFast:
                throw new InvalidDataException($"{failure.Origin.Describe()}: {failure.Message}");
            case ErrorPolicy.Skip:
                return;
        }

        var raw = failure.Origin.Raw.Span;
        var truncated = failure.Origin.RawTruncated || raw.Length > MaxRawBytes;
        if (raw.Length > MaxRawBytes)
        {
            raw = raw[..MaxRawBytes];
        }

        var text = Utf8.IsValid(raw);
        _pending.Enqueue(new DeadLetter(
            _pipeline,
            failure.Kind == FailureKind.Decode ? "decode" : "operator",
            failure.Stage,
            failure.Origin.Source,
            failure.Partition,
            failure.Origin.Describe(),
            failure.Origin.File,
            failure.Origin.Line,
            failure.Origin.Offset,
            text ? Encoding.UTF8.GetString(raw) : Convert.ToBase64String(raw),
            text ? "utf8" : "base64",
            truncated,
            failure.ErrorType,
            failure.Message,
            DateTimeOffset.UtcNow));
    }

    /// <summary>Writes the queued envelopes and makes them durable.</summary>
    public async ValueTask FlushAsync(PipelineOptions options, CancellationToken cancellationToken)
    {
        if (_pending.IsEmpty)
        {
            return;
        }

        await _writing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_writer is null)
            {
                await _sink.OpenAsync(new SinkContext<DeadLetter>(_pipeline, "dead letters", 1, options.BatchSize, null), cancellationToken).ConfigureAwait(false);
                _writer = _sink.CreateWriter(0);
            }

            var batch = new List<DeadLetter>();
            while (_pending.TryDequeue(out var letter))
            {
                batch.Add(letter);
            }

            await _writer.WriteAsync(batch.ToArray(), cancellationToken).ConfigureAwait(false);
            await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref _written, batch.Count);
            CompiledMeter.DeadLetters.Add(batch.Count, new KeyValuePair<string, object?>("pipeline", _pipeline));
        }
        finally
        {
            _writing.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_writer is not null)
        {
            await _writer.DisposeAsync().ConfigureAwait(false);
            await _sink.CloseAsync(CancellationToken.None).ConfigureAwait(false);
            _writer = null;
        }

        _writing.Dispose();
    }
}
