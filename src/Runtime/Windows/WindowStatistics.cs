namespace Compiled.Runtime;

/// <summary>
/// What a window's keyed partitions report while a run goes on — watermark, idle inputs, the input holding the
/// watermark back, when results were last emitted, records dropped as late — for the summary, the status line and the
/// meter. Each partition writes its own slots (plain stores after each batch); readers may see a slightly old value.
/// </summary>
internal sealed class WindowStatistics
{
    private readonly long[] _watermarks;
    private readonly int[] _idleInputs;
    private readonly int[] _slowest;
    private readonly long[] _lastFired;
    private long _late;

    public WindowStatistics(string window, string? lateSink, int partitions, TimeSpan size, long startedMs)
    {
        Window = window;
        LateSink = lateSink;
        Size = size;
        _watermarks = new long[partitions];
        _idleInputs = new int[partitions];
        _slowest = new int[partitions];
        _lastFired = new long[partitions];
        Array.Fill(_watermarks, long.MinValue);
        Array.Fill(_slowest, -1);
        Array.Fill(_lastFired, startedMs);
    }

    /// <summary>The window member's name.</summary>
    public string Window { get; }

    /// <summary>The <c>[LateData]</c> sink of the window, or null (late records are dropped and counted).</summary>
    public string? LateSink { get; }

    /// <summary>Whether the stage is a join of two streams.</summary>
    public bool IsJoin { get; init; }

    /// <summary>The window's size (a session's gap; zero for a running aggregate).</summary>
    public TimeSpan Size { get; }

    /// <summary>The number of keyed partitions.</summary>
    public int Partitions => _watermarks.Length;

    /// <summary>Records dropped as too late for every window, over all partitions.</summary>
    public long LateRecords => Interlocked.Read(ref _late);

    public void AddLate(long records) => Interlocked.Add(ref _late, records);

    /// <summary>Keys dropped because their state outlived its time-to-live, over all partitions.</summary>
    public long ExpiredKeys => Interlocked.Read(ref _expired);

    public void AddExpired(long keys) => Interlocked.Add(ref _expired, keys);

    private long _expired;

    public void Update(int partition, long watermark, int idleInputs, int slowest, bool fired, long nowMs)
    {
        Volatile.Write(ref _watermarks[partition], watermark);
        Volatile.Write(ref _idleInputs[partition], idleInputs);
        Volatile.Write(ref _slowest[partition], slowest);
        if (fired)
        {
            Volatile.Write(ref _lastFired[partition], nowMs);
        }
    }

    /// <summary>Partition <paramref name="partition"/>'s watermark (<see cref="long.MinValue"/> before any).</summary>
    public long WatermarkOf(int partition) => Volatile.Read(ref _watermarks[partition]);

    /// <summary>Partition <paramref name="partition"/>'s idle inputs.</summary>
    public int IdleInputsOf(int partition) => Volatile.Read(ref _idleInputs[partition]);

    /// <summary>The smallest watermark over the partitions.</summary>
    public long Watermark
    {
        get
        {
            var min = long.MaxValue;
            for (var p = 0; p < _watermarks.Length; p++)
            {
                min = Math.Min(min, WatermarkOf(p));
            }

            return min;
        }
    }

    /// <summary>The last time any partition emitted results (the run's start before that).</summary>
    public long LastFired
    {
        get
        {
            var last = long.MinValue;
            for (var p = 0; p < _lastFired.Length; p++)
            {
                last = Math.Max(last, Volatile.Read(ref _lastFired[p]));
            }

            return last;
        }
    }

    /// <summary>The input (producer partition) holding back the partition with the smallest watermark, or -1.</summary>
    public int HoldingInput
    {
        get
        {
            var partition = -1;
            for (var p = 0; p < _watermarks.Length; p++)
            {
                if (partition < 0 || WatermarkOf(p) < WatermarkOf(partition))
                {
                    partition = p;
                }
            }

            return partition < 0 ? -1 : Volatile.Read(ref _slowest[partition]);
        }
    }
}
