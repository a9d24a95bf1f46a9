using System.Diagnostics;
using System.Globalization;
using Compiled.Runtime;

namespace Compiled.Throughput;

/// <summary>A click: a key (a page id) and an event time.</summary>
public readonly record struct PageHit(int Page, [property: EventTime] long Time);

/// <summary>Hits per page in 1-second tumbling windows, into a sink that only counts.</summary>
[Pipeline(Name = "bench-hits-per-page")]
public sealed partial class HitsPerPage
{
    [Source] public ISource<PageHit> Hits { get; set; } = new Compiled.Connectors.CollectionSource<PageHit>();

    [KeyBy] static int Page(PageHit hit) => hit.Page;

    [Window] public WindowSpec<PageHit, Count<PageHit>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] public ISink<WindowResult<int, long>> Counts { get; set; } = new CountingResults();
}

/// <summary>Counts what reaches it (inline: no queue in front of it).</summary>
public sealed class CountingResults : ISink<WindowResult<int, long>>
{
    private long _count;

    public long Count => Interlocked.Read(ref _count);

    public SinkExecution Execution => SinkExecution.Inline;

    public ValueTask OpenAsync(SinkContext<WindowResult<int, long>> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISinkWriter<WindowResult<int, long>> CreateWriter(int partition) => new Writer(this);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Writer(CountingResults sink) : ISinkWriter<WindowResult<int, long>>
    {
        public ValueTask WriteAsync(ReadOnlyMemory<WindowResult<int, long>> records, CancellationToken cancellationToken)
        {
            Interlocked.Add(ref sink._count, records.Length);
            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>
/// An in-memory log split into input partitions, read by the pipeline's partitions; with <c>positions</c> its readers
/// report and commit positions as Kafka's do — so the run checkpoints its window state — without, they do not.
/// With <c>stopAtEnd</c> false a reader at the end of its partitions waits (an unbounded source) until the run stops.
/// </summary>
public sealed class MemoryLog(PageHit[][] partitions, bool positions, bool stopAtEnd = true) : ISource<PageHit>
{
    private SourceContext<PageHit>? _context;
    private int _drained;
    private readonly TaskCompletionSource _allRead = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when every reader reached the end of its partitions.</summary>
    public Task AllRead => _allRead.Task;

    public ValueTask OpenAsync(SourceContext<PageHit> context, CancellationToken cancellationToken)
    {
        _context = context;
        return ValueTask.CompletedTask;
    }

    public ISourceReader<PageHit> CreateReader(int partition)
    {
        var owned = Enumerable.Range(0, partitions.Length).Where(p => p % _context!.Parallelism == partition).ToArray();
        var restored = _context!.RestoredPositions.ToDictionary(p => p.Partition, p => p.Offset);
        return new Reader(this, owned, owned.Select(p => restored.GetValueOrDefault(p)).ToArray(), _context.BatchSize);
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader(MemoryLog log, int[] owned, long[] next, int batchSize) : ISourceReader<PageHit>
    {
        private int _turn;
        private bool _drained;

        public bool CommitsPositions => log.Positions;

        public IReadOnlyList<SourcePosition> Positions => [.. owned.Select((p, i) => new SourcePosition("log", p, next[i]))];

        public async ValueTask<SourceBatch<PageHit>> ReadAsync(CancellationToken cancellationToken)
        {
            for (var attempt = 0; attempt < owned.Length; attempt++)
            {
                var i = _turn++ % owned.Length;
                var records = log.Partitions[owned[i]];
                if (next[i] < records.Length)
                {
                    var count = (int)Math.Min(batchSize, records.Length - next[i]);
                    var batch = new ReadOnlyMemory<PageHit>(records, (int)next[i], count);
                    next[i] += count;
                    return SourceBatch<PageHit>.Of(batch);
                }
            }

            if (!_drained)
            {
                _drained = true;
                if (Interlocked.Increment(ref log._drained) == log._context!.Parallelism)
                {
                    log._allRead.TrySetResult();
                }
            }

            if (log.StopAtEnd)
            {
                return SourceBatch<PageHit>.End;
            }

            await Task.Delay(5, cancellationToken);
            return SourceBatch<PageHit>.Of(ReadOnlyMemory<PageHit>.Empty);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private PageHit[][] Partitions => partitions;

    private bool Positions => positions;

    private bool StopAtEnd => stopAtEnd;
}

/// <summary>
/// Window state checkpoints: the cost of 1-second checkpoints to the local store on a keyed tumbling count (the same
/// pipeline and data behind a source without positions, which takes none, interleaved), and the time and bytes of
/// snapshotting a million keys at a stop and restoring them.
/// </summary>
internal static class StateScenario
{
    /// <summary>The checkpoint interval of the checkpointed runs (1 s; <c>--state-interval-ms</c> for experiments).</summary>
    public static TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(1);

    public static async Task RunAsync(int records, int repetitions, List<(string Name, string Value)> block)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"== keyed tumbling count, {records:N0} hits on 10,000 pages over 8 input partitions, parallelism 2"));
        var data = Hits(records, pages: 10_000, partitions: 8, hitsPerSecond: 20_000);
        var plain = new List<double>();
        var checkpointed = new List<double>();
        var checkpoints = new List<long>();
        for (var r = 0; r < repetitions + 1; r++)
        {
            var a = await Measure(data, positions: false);
            var b = await Measure(data, positions: true);
            if (r == 0)
            {
                continue; // warm-up
            }

            plain.Add(a.Rate);
            checkpointed.Add(b.Rate);
            checkpoints.Add(b.Checkpoints);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  rep {r}: no checkpoints {a.Rate / 1e6:F2} M/s, 1 s checkpoints {b.Rate / 1e6:F2} M/s ({b.Checkpoints} checkpoints)"));
        }

        var ratio = Median(checkpointed) / Median(plain);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  median: {Median(plain) / 1e6:F2} vs {Median(checkpointed) / 1e6:F2} M records/s -> ratio {ratio:F2}"));
        block.Add(("keyed_count_no_checkpoints_mrec_s", (Median(plain) / 1e6).ToString("F2", CultureInfo.InvariantCulture)));
        block.Add(("keyed_count_checkpoints_1s_mrec_s", (Median(checkpointed) / 1e6).ToString("F2", CultureInfo.InvariantCulture)));
        block.Add(("keyed_count_checkpoints_vs_none", ratio.ToString("F2", CultureInfo.InvariantCulture)));

        // A million keys, every one in an open window: a stop writes them all, the next start restores them.
        Console.WriteLine("== snapshot and restore of 1,000,000 keys");
        var snapshots = new List<double>();
        var restores = new List<double>();
        long bytes = 0;
        for (var r = 0; r < repetitions; r++)
        {
            var (snapshot, restore, written) = await SnapshotAndRestore(1_000_000);
            snapshots.Add(snapshot);
            restores.Add(restore);
            bytes = written;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  rep {r + 1}: stop with final checkpoint {snapshot:F0} ms, a run that restores and fires them {restore:F0} ms, {written / 1e6:F1} MB"));
        }

        block.Add(("state_1m_keys_stop_with_checkpoint_ms", Median(snapshots).ToString("F0", CultureInfo.InvariantCulture)));
        block.Add(("state_1m_keys_restore_and_fire_ms", Median(restores).ToString("F0", CultureInfo.InvariantCulture)));
        block.Add(("state_1m_keys_bytes", bytes.ToString(CultureInfo.InvariantCulture)));
    }

    private static PageHit[][] Hits(int records, int pages, int partitions, int hitsPerSecond)
    {
        var random = new Random(42);
        var data = Enumerable.Range(0, partitions).Select(_ => new List<PageHit>(records / partitions + 1)).ToArray();
        for (var i = 0; i < records; i++)
        {
            data[i % partitions].Add(new PageHit(random.Next(pages), 1_000_000L + (i * 1000L / hitsPerSecond)));
        }

        return [.. data.Select(d => d.ToArray())];
    }

    private static async Task<(double Rate, long Checkpoints)> Measure(PageHit[][] data, bool positions)
    {
        var state = Directory.CreateTempSubdirectory("compiled-bench-state-").FullName;
        try
        {
            var pipeline = new HitsPerPage { Hits = new MemoryLog(data, positions) };
            pipeline.PerSecond = new(Window.Tumbling(TimeSpan.FromSeconds(1))) { OutOfOrderness = TimeSpan.FromSeconds(1) };
            var watch = Stopwatch.StartNew();
            var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 2, StateDirectory = state, CheckpointInterval = Interval, RetainedCheckpoints = 1000 });
            watch.Stop();
            var written = Directory.Exists(state) ? Directory.GetFiles(state, "_checkpoint.json", SearchOption.AllDirectories).Length : 0;
            return (result.RecordsRead / watch.Elapsed.TotalSeconds, written);
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    private static async Task<(double SnapshotMs, double RestoreMs, long Bytes)> SnapshotAndRestore(int keys)
    {
        var state = Directory.CreateTempSubdirectory("compiled-bench-state-").FullName;
        try
        {
            var data = new[] { Enumerable.Range(0, keys).Select(k => new PageHit(k, 1_000_000L)).ToArray() };
            var first = new HitsPerPage { Hits = new MemoryLog(data, positions: true, stopAtEnd: false) };
            first.PerSecond = new(Window.Tumbling(TimeSpan.FromSeconds(1))) { OutOfOrderness = TimeSpan.FromDays(1) };
            var options = new PipelineOptions { Parallelism = 2, StateDirectory = state, CheckpointInterval = TimeSpan.FromHours(1) };
            using var stop = new CancellationTokenSource();
            var run = first.RunAsync(options, stop.Token);
            await ((MemoryLog)first.Hits).AllRead;
            var watch = Stopwatch.StartNew();
            await stop.CancelAsync();
            await run;
            var snapshot = watch.Elapsed.TotalMilliseconds;
            var bytes = Directory.GetFiles(state, "*.state", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

            // The second run restores the million keys and reads nothing new; with the data at an end it stops at once.
            var second = new HitsPerPage { Hits = new MemoryLog(data, positions: true) };
            second.PerSecond = first.PerSecond;
            watch.Restart();
            await second.RunAsync(options);
            var restore = watch.Elapsed.TotalMilliseconds;
            if (((CountingResults)second.Counts).Count != keys)
            {
                throw new InvalidOperationException($"the restored run emitted {((CountingResults)second.Counts).Count} windows, not {keys}");
            }

            return (snapshot, restore, bytes);
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[sorted.Count / 2];
    }
}
