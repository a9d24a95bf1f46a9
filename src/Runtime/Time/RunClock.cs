namespace Compiled.Runtime;

/// <summary>
/// The run's clock in Unix milliseconds, read from the options' <see cref="TimeProvider"/>: the wall-clock time at the
/// start plus the monotonic time elapsed since, so processing-time windows and idle timeouts never see time step back
/// when the wall clock is adjusted.
/// </summary>
internal sealed class RunClock
{
    private readonly TimeProvider _time;
    private readonly long _origin;
    private readonly long _started;

    public RunClock(TimeProvider time)
    {
        _time = time;
        _origin = time.GetUtcNow().ToUnixTimeMilliseconds();
        _started = time.GetTimestamp();
    }

    /// <summary>The provider the clock reads (timers are created on it).</summary>
    public TimeProvider Provider => _time;

    /// <summary>Now, in Unix milliseconds.</summary>
    public long Now => _origin + (long)_time.GetElapsedTime(_started).TotalMilliseconds;
}
