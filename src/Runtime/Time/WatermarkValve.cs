namespace Compiled.Runtime;

/// <summary>
/// Combines the watermarks of a partition's inputs: the minimum over the inputs that are neither finished nor idle.
/// An input is idle when it has sent nothing for the idle timeout (processing time), or when it said so (its source
/// partition has nothing to read: no split, no file yet); it rejoins with its next records.
/// The combined watermark never goes back; when every remaining input is idle it moves to the largest of their watermarks.
/// </summary>
public sealed class WatermarkValve
{
    private readonly long[] _watermarks;
    private readonly long[] _lastActive;
    private readonly bool[] _ended;
    private readonly bool[] _declaredIdle;
    private readonly long _idleMs;
    private int _endedCount;

    /// <summary>Creates a valve over <paramref name="inputs"/> inputs; <paramref name="idleTimeout"/> zero disables idleness.</summary>
    public WatermarkValve(int inputs, TimeSpan idleTimeout, long nowMs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inputs, 1);
        _watermarks = new long[inputs];
        _lastActive = new long[inputs];
        _ended = new bool[inputs];
        _declaredIdle = new bool[inputs];
        Array.Fill(_watermarks, long.MinValue);
        Array.Fill(_lastActive, nowMs);
        _idleMs = TimeMath.Millis(idleTimeout);
    }

    /// <summary>The combined watermark.</summary>
    public long Current { get; private set; } = long.MinValue;

    /// <summary>Whether every input has ended.</summary>
    public bool AllEnded => _endedCount == _ended.Length;

    /// <summary>The number of inputs.</summary>
    public int Inputs => _watermarks.Length;

    /// <summary>Whether input <paramref name="input"/> counts as idle at <paramref name="nowMs"/>.</summary>
    public bool IsIdle(int input, long nowMs) => !_ended[input] && (_declaredIdle[input] || (_idleMs > 0 && nowMs - _lastActive[input] >= _idleMs));

    /// <summary>Whether input <paramref name="input"/> has ended.</summary>
    public bool HasEnded(int input) => _ended[input];

    /// <summary>The watermark input <paramref name="input"/> last sent.</summary>
    public long WatermarkOf(int input) => _watermarks[input];

    /// <summary>Input <paramref name="input"/> says it has nothing to read for now: it stops holding the watermark back until it sends records.</summary>
    public void DeclareIdle(int input) => _declaredIdle[input] = true;

    /// <summary>
    /// The input holding the combined watermark back at <paramref name="nowMs"/>: the active input with the smallest
    /// watermark, or -1 when none is active.
    /// </summary>
    public int Slowest(long nowMs)
    {
        var slowest = -1;
        for (var i = 0; i < _watermarks.Length; i++)
        {
            if (!_ended[i] && !IsIdle(i, nowMs) && (slowest < 0 || _watermarks[i] < _watermarks[slowest]))
            {
                slowest = i;
            }
        }

        return slowest;
    }

    /// <summary>The inputs idle at <paramref name="nowMs"/>.</summary>
    public int IdleCount(long nowMs)
    {
        var idle = 0;
        for (var i = 0; i < _watermarks.Length; i++)
        {
            idle += IsIdle(i, nowMs) ? 1 : 0;
        }

        return idle;
    }

    /// <summary>Input <paramref name="input"/> sent records (or a watermark) at <paramref name="nowMs"/>.</summary>
    public void Update(int input, long watermark, long nowMs, bool hadRecords)
    {
        if (watermark > _watermarks[input])
        {
            _watermarks[input] = watermark;
        }

        if (hadRecords || watermark > long.MinValue)
        {
            _lastActive[input] = nowMs;
        }

        if (hadRecords)
        {
            _declaredIdle[input] = false;
        }
    }

    /// <summary>Input <paramref name="input"/> has ended: it no longer holds the watermark back.</summary>
    public void End(int input)
    {
        if (!_ended[input])
        {
            _ended[input] = true;
            _endedCount++;
        }
    }

    private bool AllDeclaredIdle()
    {
        for (var i = 0; i < _watermarks.Length; i++)
        {
            if (!_ended[i] && !_declaredIdle[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Recomputes the combined watermark at <paramref name="nowMs"/> and returns it. With every remaining input idle by
    /// its own word (not by the timeout, which only guesses), it moves to at least <paramref name="reached"/>: what the
    /// inputs had reached before a restart (<see cref="KeyedOperator{TKey, TIn, TResult}.Reached"/>), which inputs that
    /// resumed with nothing new to read cannot know.
    /// </summary>
    public long Combine(long nowMs, long reached = long.MinValue)
    {
        if (AllEnded)
        {
            return Current = long.MaxValue;
        }

        var min = long.MaxValue;
        var maxIdle = long.MinValue;
        var active = false;
        for (var i = 0; i < _watermarks.Length; i++)
        {
            if (_ended[i])
            {
                continue;
            }

            if (IsIdle(i, nowMs))
            {
                maxIdle = Math.Max(maxIdle, _watermarks[i]);
                continue;
            }

            active = true;
            min = Math.Min(min, _watermarks[i]);
        }

        // With every remaining input idle, the watermark goes to the largest of theirs (as Flink's valve does): idleness
        // is checked on a tick, so inputs that fall quiet at about the same time must not hold each other back.
        var candidate = active ? min : maxIdle;
        if (!active && reached > candidate && AllDeclaredIdle())
        {
            candidate = reached;
        }

        if (candidate > Current)
        {
            Current = candidate;
        }

        return Current;
    }
}
