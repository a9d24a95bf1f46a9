using System.Diagnostics;
using System.Globalization;

namespace Compiled.Throughput;

/// <summary>One implementation's measurements over interleaved repetitions.</summary>
internal sealed class Measurement(string name, long records, int recordBytes)
{
    private readonly List<double> _seconds = [];
    private long _allocated;
    private int _gen0;
    private int _gen1;
    private int _gen2;

    public string Name { get; } = name;

    public long Records { get; } = records;

    public double MedianSeconds
    {
        get
        {
            var sorted = _seconds.Order().ToList();
            return sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2];
        }
    }

    public double RecordsPerSecond => Records / MedianSeconds;

    public double MegabytesPerSecond => Records * (double)recordBytes / MedianSeconds / 1e6;

    public double AllocatedBytesPerRecord => _seconds.Count == 0 ? 0 : _allocated / (double)_seconds.Count / Records;

    /// <summary>Runs <paramref name="body"/> once, timing it and counting what it allocated and collected.</summary>
    public Task RunAsync(Func<Task> body, bool record) => RunTimedAsync(async () => { await body(); return null; }, record);

    /// <summary>As <see cref="RunAsync"/>, but a body that returns seconds is timed by what it returns (e.g. excluding a start-up phase).</summary>
    public async Task RunTimedAsync(Func<Task<double?>> body, bool record)
    {
        // As BenchmarkDotNet does between iterations: the garbage of the implementation measured before (interleaved runs)
        // is collected here, not in the middle of this one's timing.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var gen0 = GC.CollectionCount(0);
        var gen1 = GC.CollectionCount(1);
        var gen2 = GC.CollectionCount(2);
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        var timed = await body();
        var elapsed = timed ?? clock.Elapsed.TotalSeconds;
        if (!record)
        {
            return;
        }

        _allocated += GC.GetTotalAllocatedBytes(precise: true) - allocated;
        _gen0 += GC.CollectionCount(0) - gen0;
        _gen1 += GC.CollectionCount(1) - gen1;
        _gen2 += GC.CollectionCount(2) - gen2;
        _seconds.Add(elapsed);
    }

    public string Row(double baselineSeconds) => string.Create(
        CultureInfo.InvariantCulture,
        $"{Name,-42} {MedianSeconds * 1000,9:F2} ms {RecordsPerSecond / 1e6,8:F1} M rec/s {MegabytesPerSecond,8:F0} MB/s {AllocatedBytesPerRecord,8:F4} B/rec  GC {_gen0}/{_gen1}/{_gen2}  x{baselineSeconds / MedianSeconds:F3}");
}
