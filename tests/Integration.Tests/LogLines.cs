using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Compiled.Integration.Tests;

/// <summary>A run's log lines, to look for a line and to show when a wait fails.</summary>
internal sealed class LogLines : ILoggerFactory, ILogger
{
    private readonly ConcurrentQueue<string> _lines = new();

    public bool Contains(string text, string? except = null) => _lines.Any(l => l.Contains(text, StringComparison.Ordinal) && (except is null || !l.Contains(except, StringComparison.Ordinal)));

    /// <summary>How many lines contain <paramref name="text"/>.</summary>
    public int Count(string text) => _lines.Count(l => l.Contains(text, StringComparison.Ordinal));

    public override string ToString() => string.Join("\n", _lines.Where(l => !l.Contains(" Debug ", StringComparison.Ordinal)).TakeLast(80).Concat(_lines.TakeLast(5)));

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => this;

    public void Dispose()
    {
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => _lines.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {formatter(state, exception)}");
}
