using System.Collections.Concurrent;
using System.Text;
using System.Text.Unicode;

namespace Compiled.Runtime;

/// <summary>
/// The runtime's dead-letter channel: applies the error policy, counts failures, queues envelopes and writes them to
/// the dead-letter sink at batch boundaries (the partition worker flushes it, as it flushes its output ports). The
/// run checks the sink when it starts (<see cref="ValidateAsync"/>); a dead-letter file is created only when the first
/// dead letter arrives, so a clean run leaves no empty file.
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
    private long _malformedLines;
    private long _operatorFailures;
    private long _written;
    private long _enqueued;
    private long _durable;
    private Exception? _writeFailure;
    private readonly Queue<(DateTimeOffset Time, string Kind, string Stage, RecordOrigin Origin, string Message)> _recent = new(RecentKept + 1);

    /// <summary>How many failures <see cref="Recent"/> keeps.</summary>
    private const int RecentKept = 5;

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

    /// <summary>Input lines the malformed records covered (more than <see cref="Malformed"/> when a CSV record spanned lines).</summary>
    public long MalformedLines => Interlocked.Read(ref _malformedLines);

    public long OperatorFailures => Interlocked.Read(ref _operatorFailures);

    public long Written => Interlocked.Read(ref _written);

    /// <summary>Whether letters were reported that are not durable yet (queued, or being written by another partition).</summary>
    public bool HasPending => Interlocked.Read(ref _enqueued) > Interlocked.Read(ref _durable);

    public string Destination => _sink.Describe();

    /// <summary>The last few failures reported, oldest first: where and why, as the log shows them (no record contents).</summary>
    public IReadOnlyList<FailureSnapshot> Recent()
    {
        lock (_recent)
        {
            // Formatted when asked for (the console, once a second), not for every failed record.
            return [.. _recent.Select(f => new FailureSnapshot(f.Time, f.Kind, f.Stage, SafeText.Escape(f.Origin.Describe(), SafeText.MaxQuotedChars), SafeText.Escape(f.Message, SafeText.MaxQuotedChars * 2)))];
        }
    }

    public void Report(in FailedRecord failure)
    {
        if (failure.Kind == FailureKind.Decode)
        {
            Interlocked.Increment(ref _malformed);
            Interlocked.Add(ref _malformedLines, failure.Origin.Lines ?? 1);
        }
        else
        {
            Interlocked.Increment(ref _operatorFailures);
        }

        var kind = failure.Kind switch
        {
            FailureKind.Decode => "decode",
            FailureKind.Rejected => "rejected",
            _ => "operator",
        };
        CompiledMeter.RecordsFailed.Add(1, new KeyValuePair<string, object?>("pipeline", _pipeline), new("kind", kind), new("stage", failure.Stage));
        lock (_recent)
        {
            _recent.Enqueue((DateTimeOffset.UtcNow, kind, failure.Stage, failure.Origin with { Raw = default }, failure.Message)); // not the bytes: their buffer is reused
            if (_recent.Count > RecentKept)
            {
                _recent.Dequeue();
            }
        }

        if (_logger is not null && Interlocked.Exchange(ref _logged, 1) == 0)
        {
            var then = Policy switch
            {
                ErrorPolicy.FailFast => "the run stops (error policy FailFast)",
                ErrorPolicy.Skip => "further failures are counted and skipped, not kept (error policy Skip), without a log line each",
                _ => "further failures are counted and dead-lettered without a log line each",
            };
            Log.FirstFailure(_logger, _pipeline, kind, failure.Stage, failure.Origin.Describe(), failure.Message, then);
        }

        switch (Policy)
        {
            case ErrorPolicy.FailFast:
                var error = new InvalidDataException($"{failure.Origin.Describe()}: {failure.Message}");

                // Input that does not decode fails the same way on every run: exit code 2, not 1 (which a restart
                // policy retries). An operator's or a sink's failure may be passing, so it stays a runtime failure.
                throw failure.Kind == FailureKind.Decode ? new NonRetryableException(error.Message, error) : error;
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
            kind,
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
            DateTimeOffset.UtcNow,
            failure.Origin.Lines));
        Interlocked.Increment(ref _enqueued);
    }

    /// <summary>
    /// Makes every letter reported before the call durable — the caller's own among them, even when another partition
    /// is writing them right now (the caller then waits for that write) — so a partition may commit its source's
    /// positions past the records those letters stand for.
    /// </summary>
    public async ValueTask FlushAsync(PipelineOptions options, CancellationToken cancellationToken)
    {
        var target = Interlocked.Read(ref _enqueued);
        while (Interlocked.Read(ref _durable) < target)
        {
            await _writing.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (_writeFailure is { } failure)
                {
                    throw new IOException($"Writing dead letters to {Destination} failed earlier: {failure.Message}", failure);
                }

                if (Interlocked.Read(ref _durable) >= target)
                {
                    break; // another partition's write covered this caller's letters
                }

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

                if (batch.Count == 0)
                {
                    break; // counted but not queued: a policy that queues nothing (Skip never counts as pending)
                }

                try
                {
                    await _writer.WriteAsync(batch.ToArray(), cancellationToken).ConfigureAwait(false);
                    await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    _writeFailure = ex; // these letters are lost to this run: later flushes must not wait for them
                    throw;
                }

                Interlocked.Add(ref _written, batch.Count);
                Interlocked.Add(ref _durable, batch.Count);
                CompiledMeter.DeadLetters.Add(batch.Count, new KeyValuePair<string, object?>("pipeline", _pipeline));
            }
            finally
            {
                _writing.Release();
            }
        }
    }

    /// <summary>
    /// Checks at the start of a run that dead letters can be written, so that an unwritable destination stops the run
    /// before it reads anything rather than at its first bad record. A <see cref="DeadLetterFile"/> is probed without
    /// creating the file (a clean run leaves none); any other sink is opened now. Nothing to check unless the policy
    /// writes dead letters.
    /// </summary>
    public async ValueTask ValidateAsync(PipelineOptions options, CancellationToken cancellationToken)
    {
        if (Policy != ErrorPolicy.DeadLetter)
        {
            return;
        }

        if (_sink is DeadLetterFile file)
        {
            file.Probe();
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
