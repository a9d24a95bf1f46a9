using System.Collections.Concurrent;
using Compiled.Connectors;
using Compiled.Runtime.Tests.Graph;
using Microsoft.Extensions.Logging;

namespace Compiled.Runtime.Tests.State;

/// <summary>A page view with an event time (Unix ms).</summary>
public readonly record struct Click(string Page, [property: EventTime] long Time);

/// <summary>
/// Clicks per page in 1-second tumbling windows, behind a source that commits positions (as Kafka's does). The
/// out-of-orderness covers the whole stream: a reader's watermark follows the most advanced of its input partitions,
/// and after a restart at another parallelism readers own other mixes of partitions (see docs/state.md), so with a
/// tight bound the records of lagging partitions would be late — a property of the data's skew, not of checkpoints.
/// </summary>
[Pipeline(Name = "clicks-per-page")]
public sealed partial class ClicksPerPage
{
    [Source] public ISource<Click> Clicks { get; set; } = new CollectionSource<Click>();

    [KeyBy] static string Page(Click c) => c.Page;

    [Window] public WindowSpec<Click, Count<Click>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1))) { OutOfOrderness = TimeSpan.FromMinutes(10) };

    [Sink] public ISink<WindowResult<string, long>> Counts { get; set; } = new CollectionSink<WindowResult<string, long>>();
}

/// <summary>
/// Runs with keyed state behind a source that commits positions: checkpoints are written, restored at another
/// parallelism, and nothing is lost or counted twice across a stop; a crash replays from the last checkpoint.
/// </summary>
public sealed class CheckpointedRunTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(1);
    private readonly string _state = Directory.CreateTempSubdirectory("compiled-state-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private static Click[] Clicks(int count, int seed)
    {
        var random = new Random(seed);
        var clicks = new Click[count];
        var time = 1_000_000L;
        for (var i = 0; i < count; i++)
        {
            time += random.Next(0, 20);
            clicks[i] = new Click("page" + random.Next(0, 12), time - random.Next(0, 5));
        }

        return clicks;
    }

    /// <summary>What an uninterrupted run emits: the count per page per window, as an independent computation.</summary>
    private static Dictionary<(string Page, long Start), long> Expected(IEnumerable<Click> clicks, long outOfOrderness = 0)
        => clicks.GroupBy(c => (c.Page, Start: Math.DivRem(c.Time, 1000).Quotient * 1000)).ToDictionary(g => g.Key, g => (long)g.Count());

    // onDisk: the windows in RocksDB (StateBackend=Disk) with 4 pane entries in memory, so nearly everything goes to disk and back.
    private PipelineOptions Options(int parallelism, TimeSpan? interval = null, bool onDisk = false) => new()
    {
        Parallelism = parallelism,
        BatchSize = 64,
        StateDirectory = _state,
        CheckpointInterval = interval ?? TimeSpan.FromMilliseconds(20),
        StateBackend = onDisk ? StateBackend.Disk : StateBackend.Memory,
        StateCacheKeys = onDisk ? 4 : PipelineOptions.DefaultStateCacheKeys,
    };

    [Theory]
    [InlineData(4, 1, false)]
    [InlineData(4, 2, false)]
    [InlineData(4, 3, false)]
    [InlineData(2, 4, false)]
    [InlineData(3, 1, true)]
    [InlineData(2, 4, true)]
    public async Task A_run_stopped_with_a_final_checkpoint_and_restarted_at_another_parallelism_emits_every_window_once(int before, int after, bool onDisk)
    {
        var clicks = Clicks(20_000, seed: before * 10 + after);
        var log = new Partitioned<Click>(clicks, partitions: 8);

        // Run 1 reads 60% of every partition, then its source has nothing new; stop it there.
        var first = new ClicksPerPage { Clicks = log.Source(pauseAt: 0.6), Counts = new TrackingSink<WindowResult<string, long>>() };
        using var stop = new CancellationTokenSource();
        var run = first.RunAsync(Options(before, onDisk: onDisk), stop.Token);
        await log.Paused.WaitAsync(Patience);
        await stop.CancelAsync();
        var result = await run.WaitAsync(Patience);
        Assert.Equal(PipelineOutcome.Stopped, result.Outcome);
        Assert.False(log.Committed.IsEmpty, "the final checkpoint's positions were committed");
        Assert.Null(result.State!.Restored);
        Assert.True(result.State.KeptOpen);
        Assert.Matches(@"state: started empty, \d+ checkpoints written to .*clicks-per-page; stopped with a final checkpoint", PipelineHost.Summary(result));

        // Run 2 restores the state, resumes at the checkpoint's positions and reads to the end.
        var second = new ClicksPerPage { Clicks = log.Source(pauseAt: null), Counts = new TrackingSink<WindowResult<string, long>>() };
        var finished = await second.RunAsync(Options(after, onDisk: onDisk)).WaitAsync(Patience);
        Assert.Equal(result.State.Written, finished.State!.Restored); // the first run's last checkpoint was its final one
        Assert.False(finished.State.KeptOpen);

        var emitted = ((TrackingSink<WindowResult<string, long>>)first.Counts).Items.Concat(((TrackingSink<WindowResult<string, long>>)second.Counts).Items).ToList();
        var expected = Expected(clicks);
        Assert.Equal(expected.Count, emitted.Count); // each window once: none lost, none repeated
        Assert.Equal(expected.OrderBy(e => e.Key), emitted.Select(w => KeyValuePair.Create((w.Key, w.Start), w.Value)).OrderBy(e => e.Key));
        Assert.Equal(clicks.Length, log.ReadCount - log.ReadAgain);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_aborted_run_replays_from_the_last_checkpoint_and_every_window_has_its_full_count(bool onDisk)
    {
        var clicks = Clicks(30_000, seed: 7);
        var log = new Partitioned<Click>(clicks, partitions: 8) { Throttle = true };
        var first = new ClicksPerPage { Clicks = log.Source(pauseAt: 0.7), Counts = new TrackingSink<WindowResult<string, long>>() };
        using var abort = new CancellationTokenSource();
        var run = ((ICompiledPipeline)first).CreateJob().RunAsync(Options(3, onDisk: onDisk), CancellationToken.None, abort.Token);
        await log.Paused.WaitAsync(Patience);
        await WaitForCheckpointAsync();
        await abort.CancelAsync(); // no final checkpoint: what was read after the last one is read again
        await Assert.ThrowsAsync<PipelineAbortedException>(() => run.WaitAsync(Patience));

        var second = new ClicksPerPage { Clicks = log.Source(pauseAt: null), Counts = new TrackingSink<WindowResult<string, long>>() };
        await second.RunAsync(Options(2, onDisk: onDisk)).WaitAsync(Patience);

        // At-least-once: a window fired between the last checkpoint and the abort fires again, with the same count.
        var emitted = ((TrackingSink<WindowResult<string, long>>)first.Counts).Items.Concat(((TrackingSink<WindowResult<string, long>>)second.Counts).Items)
            .Select(w => KeyValuePair.Create((w.Key, w.Start), w.Value)).Distinct().ToList();
        Assert.Equal(Expected(clicks).OrderBy(e => e.Key), emitted.OrderBy(e => e.Key));
    }

    [Fact]
    public async Task A_savepoint_of_a_changed_window_is_refused_naming_what_changed()
    {
        var log = new Partitioned<Click>(Clicks(2_000, seed: 3), partitions: 2);
        var first = new ClicksPerPage { Clicks = log.Source(pauseAt: 0.5) };
        var savepoint = Path.Combine(_state, "savepoint");
        using var stop = new CancellationTokenSource();
        var options = Options(2);
        options.SavepointDirectory = savepoint;
        var run = first.RunAsync(options, stop.Token);
        await log.Paused.WaitAsync(Patience);
        await stop.CancelAsync();
        await run.WaitAsync(Patience);

        var changed = new ClicksPerPage { Clicks = log.Source(pauseAt: null), PerSecond = new(Window.Tumbling(TimeSpan.FromSeconds(2))) { OutOfOrderness = TimeSpan.FromMinutes(10) } };
        var restore = Options(2);
        restore.RestoreFrom = savepoint;
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => changed.RunAsync(restore).WaitAsync(Patience));
        Assert.Contains("was taken by an incompatible build: window 'PerSecond': the window changed from tumbling 1000 ms", error.Message, StringComparison.Ordinal);
        Assert.Contains("to tumbling 2000 ms", error.Message, StringComparison.Ordinal);

        // The state directory's own checkpoint is refused the same way.
        error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => changed.RunAsync(Options(2)).WaitAsync(Patience));
        Assert.Contains("the window changed from tumbling 1000 ms", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_run_stopped_with_a_savepoint_is_finished_from_it_at_another_parallelism_after_its_state_directory_is_gone(bool onDisk)
    {
        var clicks = Clicks(12_000, seed: 21);
        var log = new Partitioned<Click>(clicks, partitions: 6);
        var savepoint = Path.Combine(Directory.CreateTempSubdirectory("compiled-savepoint-").FullName, "clicks");
        try
        {
            var first = new ClicksPerPage { Clicks = log.Source(pauseAt: 0.5), Counts = new TrackingSink<WindowResult<string, long>>() };
            var options = Options(3, onDisk: onDisk);
            options.SavepointDirectory = savepoint;
            using (var stop = new CancellationTokenSource())
            {
                var run = first.RunAsync(options, stop.Token);
                await log.Paused.WaitAsync(Patience);
                await stop.CancelAsync();
                await run.WaitAsync(Patience);
            }

            Assert.Single(Directory.GetFiles(savepoint, "_checkpoint.json", SearchOption.AllDirectories));
            Assert.Equal(onDisk ? 1 : 0, Directory.GetDirectories(savepoint, "chk-*.disk").Length); // state on disk: its RocksDB checkpoints copied whole
            Directory.Delete(Path.Combine(_state, "clicks-per-page"), recursive: true);

            var second = new ClicksPerPage { Clicks = log.Source(pauseAt: null), Counts = new TrackingSink<WindowResult<string, long>>() };
            var restore = Options(2, onDisk: onDisk);
            restore.RestoreFrom = savepoint;
            await second.RunAsync(restore).WaitAsync(Patience);

            var emitted = ((TrackingSink<WindowResult<string, long>>)first.Counts).Items.Concat(((TrackingSink<WindowResult<string, long>>)second.Counts).Items).ToList();
            var expected = Expected(clicks);
            Assert.Equal(expected.Count, emitted.Count);
            Assert.Equal(expected.OrderBy(e => e.Key), emitted.Select(w => KeyValuePair.Create((w.Key, w.Start), w.Value)).OrderBy(e => e.Key));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(savepoint)!, recursive: true);
        }
    }

    [Fact]
    public async Task Savepoint_options_on_a_pipeline_without_checkpointed_state_are_configuration_errors()
    {
        var pipeline = new ClicksPerPage { Clicks = new CollectionSource<Click>(Clicks(10, seed: 1)) };
        var options = Options(1);
        options.SavepointDirectory = Path.Combine(_state, "sp");
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => pipeline.RunAsync(options).WaitAsync(Patience));
        Assert.Contains("savepoints (--savepoint, --from-savepoint) hold window state checkpointed behind a source that commits positions", error.Message, StringComparison.Ordinal);

        var missing = Options(1);
        missing.RestoreFrom = Path.Combine(_state, "nowhere");
        var log = new Partitioned<Click>(Clicks(10, seed: 1), partitions: 1);
        error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => new ClicksPerPage { Clicks = log.Source(pauseAt: null) }.RunAsync(missing).WaitAsync(Patience));
        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task A_state_directory_that_cannot_be_written_is_a_configuration_error_before_anything_is_read(bool onDisk, bool savepoint)
    {
        // Under a regular file: no directory can be made there (a read-only mount does the same; the tests run as root).
        var file = Path.Combine(_state, "a-file");
        await File.WriteAllTextAsync(file, "not a directory");
        var log = new Partitioned<Click>(Clicks(1_000, seed: 3), partitions: 2);
        var pipeline = new ClicksPerPage { Clicks = log.Source(pauseAt: null), Counts = new TrackingSink<WindowResult<string, long>>() };
        var options = Options(2, onDisk: onDisk);
        if (savepoint)
        {
            options.SavepointDirectory = Path.Combine(file, "savepoint");
        }
        else
        {
            options.StateDirectory = Path.Combine(file, "state");
        }

        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => pipeline.RunAsync(options).WaitAsync(Patience));
        Assert.Contains(savepoint ? "the savepoint (--savepoint) cannot be written to" : onDisk ? "the state on disk could not be opened" : "checkpoints of window state (StateDirectory, --state-dir) cannot be written to", error.Message, StringComparison.Ordinal);
        Assert.Contains(file, error.Message, StringComparison.Ordinal);
        Assert.Equal(0, log.ReadCount);
        Assert.Empty(((TrackingSink<WindowResult<string, long>>)pipeline.Counts).Items);
    }

    [Fact]
    public async Task A_torn_newest_checkpoint_is_skipped_with_a_warning_and_the_one_before_is_restored()
    {
        var clicks = Clicks(10_000, seed: 11);
        var log = new Partitioned<Click>(clicks, partitions: 4);

        // Two stops leave at least two checkpoints; the newest is then torn (a state file cut short). The one before
        // it is the first stop's, or one the second run took on its interval before it stopped.
        var first = new ClicksPerPage { Clicks = log.Source(pauseAt: 0.3), Counts = new TrackingSink<WindowResult<string, long>>() };
        await StopAtPauseAsync(first, log, 2);
        var second = new ClicksPerPage { Clicks = log.Source(pauseAt: 0.6), Counts = new TrackingSink<WindowResult<string, long>>() };
        await StopAtPauseAsync(second, log, 2);
        var folders = Directory.GetDirectories(Path.Combine(_state, "clicks-per-page"), "chk-*").Order().ToList();
        var (intact, newest) = (folders[^2], folders[^1]);
        var file = Directory.GetFiles(newest, "*.state").First(f => new FileInfo(f).Length > 20);
        File.WriteAllBytes(file, File.ReadAllBytes(file)[..10]);

        // The third run restores the first stop's checkpoint and replays from its positions: windows the second run
        // emitted are emitted again, with the same counts, and every window has its full count.
        var logs = new ListLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        var third = new ClicksPerPage { Clicks = log.Source(pauseAt: null), Counts = new TrackingSink<WindowResult<string, long>>() };
        var options = Options(2);
        options.LoggerFactory = factory;
        await third.RunAsync(options).WaitAsync(Patience);
        Assert.True(logs.Messages.Any(l => l.Contains($"checkpoint", StringComparison.Ordinal) && l.Contains("is skipped", StringComparison.Ordinal) && l.Contains("torn", StringComparison.Ordinal)), string.Join(Environment.NewLine, logs.Messages));
        Assert.Contains(logs.Messages, l => l.Contains("restored checkpoint", StringComparison.Ordinal) && l.Contains(Path.GetFileName(intact)[4..].TrimStart('0'), StringComparison.Ordinal));
        var emitted = new[] { first, second, third }.SelectMany(p => ((TrackingSink<WindowResult<string, long>>)p.Counts).Items)
            .Select(w => KeyValuePair.Create((w.Key, w.Start), w.Value)).Distinct().ToList();
        Assert.Equal(Expected(clicks).OrderBy(e => e.Key), emitted.OrderBy(e => e.Key));
    }

    [Fact]
    public async Task A_window_whose_accumulator_has_no_codec_is_refused_behind_a_committing_source()
    {
        var log = new Partitioned<Click>(Clicks(100, seed: 5), partitions: 1);
        var pipeline = new ClicksTopPages { Clicks = log.Source(pauseAt: null) };
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => pipeline.RunAsync(Options(1)).WaitAsync(Patience));
        Assert.Contains("window 'Top' runs behind 'Clicks', whose positions are committed at checkpoints", error.Message, StringComparison.Ordinal);
        Assert.Contains("its accumulator type 'Pages' has no checkpoint codec", error.Message, StringComparison.Ordinal);
    }

    private async Task StopAtPauseAsync(ClicksPerPage pipeline, Partitioned<Click> log, int parallelism)
    {
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(Options(parallelism), stop.Token);
        await log.Paused.WaitAsync(Patience);
        await stop.CancelAsync();
        await run.WaitAsync(Patience);
    }

    /// <summary>Waits until a checkpoint's manifest is on disk (polling the directory, with a deadline).</summary>
    private Task WaitForCheckpointAsync() => WaitForCheckpointAsync(Path.Combine(_state, "clicks-per-page"));

    /// <summary>Polls until a complete checkpoint (a manifest) is in <paramref name="folder"/>: the run writes them on its own schedule.</summary>
    internal static async Task WaitForCheckpointAsync(string folder)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!(Directory.Exists(folder) && Directory.GetFiles(folder, "_checkpoint.json", SearchOption.AllDirectories).Length > 0))
        {
            Assert.True(DateTime.UtcNow < deadline, "no checkpoint was written");
            await Task.Delay(10);
        }
    }
}

/// <summary>An accumulator of a reference type without a codec: it cannot be checkpointed.</summary>
public sealed class Pages
{
    public List<string> Seen { get; } = [];
}

/// <summary>Collects the pages seen per window (an aggregator whose accumulator is a class).</summary>
public readonly struct CollectPages : IAggregator<Click, Pages, int>
{
    public static void Add(ref Pages accumulator, in Click input) => (accumulator ??= new()).Seen.Add(input.Page);

    public static void Merge(ref Pages accumulator, in Pages other) => (accumulator ??= new()).Seen.AddRange(other.Seen);

    public static int Result(in Pages accumulator) => accumulator.Seen.Count;
}

[Pipeline(Name = "clicks-top-pages")]
public sealed partial class ClicksTopPages
{
    [Source] public ISource<Click> Clicks { get; set; } = new CollectionSource<Click>();

    [KeyBy] static string Page(Click c) => c.Page;

    [Window] public WindowSpec<Click, CollectPages> Top { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] public ISink<WindowResult<string, int>> Counts { get; set; } = new CollectionSink<WindowResult<string, int>>();
}

/// <summary>
/// A partitioned, replayable log (a stand-in for a Kafka topic in unit tests of pure runtime logic): records are spread
/// round-robin over input partitions; a run's readers split the input partitions among themselves, resume at the
/// restored positions (else at what was committed), report their positions and record commits.
/// </summary>
public sealed class Partitioned<T>(T[] records, int partitions)
{
    private readonly List<T>[] _partitions = Enumerable.Range(0, partitions).Select(p => records.Where((_, i) => i % partitions == p).ToList()).ToArray();
    private long _read;
    private long _readAgain;
    private TaskCompletionSource _paused = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The committed next offset of each input partition.</summary>
    public ConcurrentDictionary<int, long> Committed { get; } = new();

    /// <summary>Records handed to readers over every run.</summary>
    public long ReadCount => Interlocked.Read(ref _read);

    /// <summary>Records handed out again (below the highest offset read before).</summary>
    public long ReadAgain => Interlocked.Read(ref _readAgain);

    /// <summary>Completes when every input partition of the current source reached its pause point.</summary>
    public Task Paused => _paused.Task;

    /// <summary>Yield between batches, so that checkpoints fall between them.</summary>
    public bool Throttle { get; init; }

    /// <summary>The stream name positions carry (two logs read by one pipeline need two names).</summary>
    public string Topic { get; init; } = "log";

    private readonly long[] _highest = new long[partitions];

    /// <summary>Where a partition without a restored position starts: at its committed offset (true), else at its start (as an exactly-once Kafka source does).</summary>
    public bool ResumeFromCommitted { get; init; } = true;

    /// <summary>
    /// A source over the log; with <paramref name="pauseAt"/> (a fraction), each input partition stops there and waits
    /// (unbounded), else it ends at the end. With <paramref name="assigned"/>, a reader knows its partitions — and
    /// reports positions — only once its first read, which waits for that task, is done (as a Kafka reader assigns its
    /// partitions inside its first poll).
    /// </summary>
    public ISource<T> Source(double? pauseAt, Task? assigned = null)
    {
        _paused = new(TaskCreationOptions.RunContinuationsAsynchronously);
        return new LogSource(this, pauseAt, assigned);
    }

    private sealed class LogSource(Partitioned<T> log, double? pauseAt, Task? assigned) : ISource<T>
    {
        private SourceContext<T>? _context;
        private int _pausedPartitions;

        public string Topic => log.Topic;

        public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
        {
            _context = context;
            return ValueTask.CompletedTask;
        }

        public ISourceReader<T> CreateReader(int partition)
        {
            var owned = Enumerable.Range(0, log._partitions.Length).Where(p => p % _context!.Parallelism == partition).ToArray();
            var restored = _context!.RestoredPositions.Where(p => p.Stream == log.Topic).ToDictionary(p => p.Partition, p => p.Offset);
            var next = owned.ToDictionary(p => p, p => restored.TryGetValue(p, out var offset) ? offset : log.ResumeFromCommitted ? log.Committed.GetValueOrDefault(p) : 0);
            return new Reader(this, owned, next, _context.BatchSize, assigned);
        }

        public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        private void PartitionPaused()
        {
            if (Interlocked.Increment(ref _pausedPartitions) == log._partitions.Length)
            {
                log._paused.TrySetResult();
            }
        }

        private sealed class Reader(LogSource source, int[] owned, Dictionary<int, long> next, int batchSize, Task? assigned) : ISourceReader<T>
        {
            private readonly HashSet<int> _pausedHere = [];
            private int _turn;
            private volatile bool _known = assigned is null;

            public bool CommitsPositions => true;

            public IReadOnlyList<SourcePosition> Positions => _known ? owned.Select(p => new SourcePosition(source.Topic, p, next[p])).ToList() : [];

            public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
            {
                if (!_known)
                {
                    await assigned!.WaitAsync(cancellationToken);
                    _known = true;
                }

                var log = source.Log;
                if (log.Throttle)
                {
                    await Task.Yield();
                }

                for (var attempt = 0; attempt < owned.Length; attempt++)
                {
                    var p = owned[_turn++ % owned.Length];
                    var records = log._partitions[p];
                    var limit = source.PauseAt is { } fraction ? (long)(records.Count * fraction) : records.Count;
                    var from = next[p];
                    if (from >= limit)
                    {
                        if (source.PauseAt is not null && _pausedHere.Add(p))
                        {
                            source.PartitionPaused();
                        }

                        continue;
                    }

                    var count = (int)Math.Min(batchSize, limit - from);
                    var batch = records.GetRange((int)from, count).ToArray();
                    next[p] = from + count;
                    Interlocked.Add(ref log._read, count);
                    lock (log._highest)
                    {
                        var again = Math.Max(0, Math.Min(log._highest[p], from + count) - from);
                        Interlocked.Add(ref log._readAgain, again);
                        log._highest[p] = Math.Max(log._highest[p], from + count);
                    }

                    return SourceBatch<T>.Of(batch);
                }

                if (source.PauseAt is null)
                {
                    return SourceBatch<T>.End;
                }

                await Task.Delay(5, cancellationToken); // nothing new: an unbounded reader waits for data, as Kafka's polls
                return SourceBatch<T>.Of(ReadOnlyMemory<T>.Empty);
            }

            public ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken)
            {
                foreach (var position in positions)
                {
                    source.Log.Committed[position.Partition] = position.Offset;
                }

                return ValueTask.CompletedTask;
            }

            public ValueTask CommitAsync(CancellationToken cancellationToken) => CommitAsync(Positions, cancellationToken);

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }

        public Partitioned<T> Log => log;

        public double? PauseAt => pauseAt;
    }
}
