using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Compiled.Runtime;

/// <summary>
/// Standard error as the host uses it: log lines, and — on a terminal — one live status line kept at the bottom.
/// Both go through here so that a log line first clears the status line instead of tearing it.
/// </summary>
internal sealed class StatusWriter(TextWriter error, bool live)
{
    private readonly Lock _lock = new();
    private bool _statusShown;

    public bool Live => live;

    public void Status(string line)
    {
        if (!live)
        {
            return;
        }

        lock (_lock)
        {
            error.Write("\r\u001b[2K" + line);
            error.Flush();
            _statusShown = true;
        }
    }

    public void ClearStatus()
    {
        lock (_lock)
        {
            ClearLocked();
        }
    }

    public void Line(string line)
    {
        lock (_lock)
        {
            ClearLocked();
            error.WriteLine(line);
            error.Flush();
        }
    }

    private void ClearLocked()
    {
        if (_statusShown)
        {
            error.Write("\r\u001b[2K");
            _statusShown = false;
        }
    }
}

/// <summary>A logger provider writing one line per message to the host's standard error, below the status line.</summary>
internal sealed class StatusLoggerProvider(StatusWriter writer) : ILoggerProvider
{
    /// <summary>The event id of <see cref="Log.Failed"/>: a failed run, which the host reports itself.</summary>
    private const int RunFailedEventId = 6;

    public ILogger CreateLogger(string categoryName) => new StatusLogger(writer, categoryName);

    public void Dispose()
    {
    }

    private sealed class StatusLogger(StatusWriter writer, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            ArgumentNullException.ThrowIfNull(formatter);
            if (eventId.Id == RunFailedEventId && category == "Compiled.Pipeline")
            {
                return; // the host prints the run's error itself, once, with its exit code
            }

            var level = logLevel switch
            {
                LogLevel.Trace => "trce",
                LogLevel.Debug => "dbug",
                LogLevel.Information => "info",
                LogLevel.Warning => "warn",
                LogLevel.Error => "fail",
                _ => "crit",
            };
            var time = DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
            var message = formatter(state, exception);
            var line = exception is null || message.Contains(exception.Message, StringComparison.Ordinal)
                ? $"{message}"
                : $"{message} ({exception.GetType().Name}: {exception.Message})";
            writer.Line($"{time} {level} {category}: {SafeText.Escape(line)}"); // messages may quote input: no control characters, bounded length
        }
    }
}

/// <summary>
/// The live status line: records in and out per second, failures, source lag, elapsed, and an ETA for bounded
/// sources. It samples <see cref="PipelineMonitor"/> once a second on a timer — the hot path never sees it.
/// </summary>
internal sealed class ProgressReporter : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly PipelineMonitor _monitor;
    private readonly StatusWriter _writer;
    private readonly PeriodicTimer _timer = new(Interval);
    private readonly Task _loop;
    private PipelineSnapshot? _last;

    public ProgressReporter(PipelineMonitor monitor, StatusWriter writer)
    {
        _monitor = monitor;
        _writer = writer;
        _loop = Task.Run(LoopAsync, CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        _timer.Dispose();
        await _loop.ConfigureAwait(false);
        _writer.ClearStatus();
    }

    /// <summary>The status line for <paramref name="now"/>, with rates against <paramref name="before"/>.</summary>
    public static string Format(PipelineSnapshot now, PipelineSnapshot? before)
    {
        var seconds = before is null ? now.Elapsed.TotalSeconds : (now.Elapsed - before.Elapsed).TotalSeconds;
        seconds = Math.Max(seconds, 1e-3);
        var read = now.RecordsRead - (before?.RecordsRead ?? 0);
        var written = now.Sinks.Sum(s => s.Written) - (before?.Sinks.Sum(s => s.Written) ?? 0);
        var line = string.Create(CultureInfo.InvariantCulture, $"{now.Pipeline} {Elapsed(now.Elapsed)}  in {now.RecordsRead:N0} ({read / seconds:N0}/s)  out {now.Sinks.Sum(s => s.Written):N0} ({written / seconds:N0}/s)");
        var failed = now.Malformed + now.OperatorFailures;
        if (failed > 0)
        {
            line += string.Create(CultureInfo.InvariantCulture, $"  failed {failed:N0} (dead letters {now.DeadLettered:N0})");
        }

        if (now.LateRecords > 0)
        {
            line += string.Create(CultureInfo.InvariantCulture, $"  late {now.LateRecords:N0}");
        }

        // A window that has not fired for longer than its size, with an input holding its watermark back: name it.
        if (now.Windows.FirstOrDefault(w => w.Stalled) is { } stalled)
        {
            line += string.Create(CultureInfo.InvariantCulture, $"  {stalled.Window} waits for input {stalled.HoldingInput} (watermark {Elapsed(stalled.Lag!.Value)} behind)");
        }

        if (now.Sinks.Any(s => s.Capacity > 0))
        {
            var fill = now.Sinks.Where(s => s.Capacity > 0).Max(s => (double)s.Queued / s.Capacity);
            line += string.Create(CultureInfo.InvariantCulture, $"  queues {fill:P0}");
        }

        if (now.Source is { } progress)
        {
            if (progress.Total is { } total)
            {
                var left = Math.Max(0, total - progress.Done);
                line += $"  left {Amount(left, progress.Unit)}";
                var done = progress.Done - (before?.Source?.Done ?? 0);
                if (done > 0 && left > 0)
                {
                    line += "  ETA " + Elapsed(TimeSpan.FromSeconds(left / (done / seconds)));
                }
            }
        }

        return now.Stopping ? line + "  stopping…" : line;
    }

    private async Task LoopAsync()
    {
        try
        {
            while (await _timer.WaitForNextTickAsync().ConfigureAwait(false))
            {
                if (_monitor.Snapshot() is { } now)
                {
                    _writer.Status(Format(now, _last));
                    _last = now;
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // the run ended
        }
    }

    private static string Elapsed(TimeSpan time) => time.TotalHours >= 1
        ? time.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture)
        : time.ToString(@"m\:ss", CultureInfo.InvariantCulture);

    private static string Amount(long value, string unit) => unit == "bytes"
        ? value switch
        {
            >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{value / (double)(1L << 30):F1} GiB"),
            >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{value / (double)(1L << 20):F1} MiB"),
            >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{value / 1024.0:F1} KiB"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{value} bytes"),
        }
        : string.Create(CultureInfo.InvariantCulture, $"{value:N0} {unit}");
}
