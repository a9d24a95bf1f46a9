using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Compiled.Runtime;

/// <summary>
/// One run of a pipeline: the object that owns everything the run creates — the opened sinks and source, the dead-letter
/// channel, the exchanges, and every worker with its reader and ports — and frees it in order on every way out: the
/// input ended, a stop, a failure, an abort, or a failure while setting up (after some partitions were created).
/// </summary>
/// <remarks>
/// The job is a graph of fused loops (segments) joined by exchanges. Segment 0 reads the source, one worker per
/// source partition; every window starts a further segment behind the exchange its key selector writes into, with one
/// worker per keyed partition. Workers are all of one kind (<see cref="Worker"/>); what differs is their input.
/// </remarks>
internal sealed class PipelineRun : IAsyncDisposable
{
    private readonly PipelineDescriptor _descriptor;
    private readonly PipelineOptions _options;
    private readonly IReadOnlyList<ISinkSlot> _slots;
    private readonly IReadOnlyList<KeyedStage> _keyed;
    private readonly bool _synchronous;
    private readonly List<ISinkSlot> _opened = [];
    private readonly List<KeyedStage> _openedKeyed = [];
    private readonly List<Worker> _workers = [];
    private readonly List<Task> _tasks = [];
    private readonly Exchange?[] _exchanges;
    private readonly WindowStatistics[] _windows;
    private Func<ValueTask>? _closeSource;
    private int _disposed;
    private ICheckpointStore? _store;
    private FileCheckpointStore? _savepoint;
    private CheckpointData? _restored;
    private PartitionLease? _lease;
    private ILogger _logger = NullLogger.Instance;

    private PipelineRun(PipelineDescriptor descriptor, PipelineOptions options, IReadOnlyList<ISinkSlot> slots, IReadOnlyList<KeyedStage> keyed, DeadLetterChannel deadLetters, RunClock clock, bool synchronous, CancellationToken stop, CancellationToken abort)
    {
        _descriptor = descriptor;
        _options = options;
        _slots = slots;
        _keyed = keyed;
        _synchronous = synchronous;
        _exchanges = new Exchange?[keyed.Count];
        _windows = new WindowStatistics[keyed.Count];
        Context = new RunContext(descriptor, options, deadLetters, clock, stop, abort);
    }

    /// <summary>What the workers share.</summary>
    public RunContext Context { get; }

    /// <summary>Every worker, stage by stage.</summary>
    public IReadOnlyList<Worker> Workers => _workers;

    /// <summary>Each window's live statistics.</summary>
    public IReadOnlyList<WindowStatistics> Windows => _windows;

    /// <summary>Each exchange (null where none was created).</summary>
    public IReadOnlyList<Exchange?> Exchanges => _exchanges;

    /// <summary>Records read by the source partitions.</summary>
    public long RecordsRead => _workers.Where(w => w.Stage == 0).Sum(w => w.RecordsRead);

    /// <summary>Records dropped as late, over every window.</summary>
    public long LateRecords => _windows.Where(w => w is not null).Sum(w => w.LateRecords);

    /// <summary>Runs <paramref name="job"/>. See <see cref="IPipelineJob.RunAsync"/>.</summary>
    public static Task<PipelineResult> RunAsync<TIn>(PipelineJob<TIn> job, PipelineOptions options, CancellationToken stopToken, CancellationToken abortToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(options);
        return job.BoundSource is IDistributedSource { IsDistributed: true } distributed
            ? DistributedRun.RunAsync(job, options, distributed, stopToken, abortToken)
            : RunOnceAsync(job, options, lease: null, stopToken, abortToken);
    }

    /// <summary>
    /// One run: to the end of the input or a stop — or, in a distributed run, of one assignment
    /// (<paramref name="lease"/>: its partitions are all the source reads, one keyed partition each).
    /// </summary>
    internal static async Task<PipelineResult> RunOnceAsync<TIn>(PipelineJob<TIn> job, PipelineOptions options, PartitionLease? lease, CancellationToken stopToken, CancellationToken abortToken)
    {
        var descriptor = job.Descriptor;
        var name = descriptor.Name;
        options.Validate(name);
        var keyed = job.KeyedStages;
        foreach (var stage in keyed)
        {
            stage.Validate(name);
        }

        if (options.StateBackend == StateBackend.Disk && keyed.FirstOrDefault(k => k.HasState) is { } onDisk
            && job.BoundSinks.Slots.FirstOrDefault(s => s.Connector is ITransactionalSink { IsTransactional: true }) is { } exactlyOnce)
        {
            // Before any sink connects: the refusal needs no database (the same check after opening covers sinks that
            // become transactional only when opened).
            throw DiskBackend.Unsupported(name, $"window '{onDisk.WindowName}' would keep its state on disk while the exactly-once sink '{exactlyOnce.Name}' commits checkpoints to its database, and state on disk is checkpointed to the state directory");
        }

        var started = Stopwatch.StartNew();
        var logger = (ILogger?)options.LoggerFactory?.CreateLogger("Compiled.Pipeline") ?? NullLogger.Instance;
        var sourceName = descriptor.Stages[0].Name;
        var source = job.BoundSource;
        var slots = job.BoundSinks.Slots;
        var deadLetters = new DeadLetterChannel(name, options.ErrorPolicy ?? descriptor.ErrorPolicy, PipelineRunner.DeadLetterSinkFor(job, options), logger);
        var run = new PipelineRun(descriptor, options, slots, keyed, deadLetters, new RunClock(options.TimeProvider), synchronous: false, stopToken, abortToken) { _lease = lease };
        var keyedParallelism = lease?.Partitions.Count ?? options.Parallelism;
        var sourceParallelism = Math.Min(options.Parallelism, keyedParallelism);
        var state = new RunState(name, sourceName, source, slots, deadLetters, run.Context.Stop);
        var grace = new GracePeriod(run.Context, options, logger, stopToken);
        CompiledMeter.Started(state);
        options.Monitor?.Attach(state);
        Exception? failure = null;
        try
        {
            var sourceDescription = source.Describe();
            Log.Starting(logger, name, options.Parallelism, options.BatchSize, sourceDescription);
            await run.OpenSinksAsync(logger).ConfigureAwait(false);
            await Guard(name, "dead letters", "open", () => deadLetters.ValidateAsync(options, run.Context.Abort)).ConfigureAwait(false); // hardening: fail at start, not at the first letter
            var (delivery, positionStore) = PipelineRunner.DeliveryOf(descriptor, slots);
            run._logger = logger;
            if (keyed.Count > 0)
            {
                // Windows behind a source that commits positions checkpoint their state here; whether the source does is
                // known once its readers exist, but where they resume must be known before the source opens.
                if (lease is not null)
                {
                    // Distributed: this copy's partitions are claimed (fencing off their previous owner) with their state.
                    var partitioned = positionStore as IPartitionedCheckpointCommitter
                        ?? throw new PipelineConfigurationException(name, $"Pipeline '{name}': a distributed run keeps each Kafka partition's state in its exactly-once sink's store, with the output; {(positionStore is null ? "it has no exactly-once sink" : $"its sink '{slots.First(s => s.Connector == positionStore).Name}' cannot keep checkpoints per partition")}. Use an exactly-once PostgresSink or a transactional KafkaSink. See docs/deployment.md.");
                    var claimed = await Guard(name, slots.First(s => s.Connector == positionStore).Name, "claim the partitions' checkpoints", () => partitioned.ClaimPartitionsAsync(name, lease.Partitions, run.Context.Abort)).ConfigureAwait(false);
                    var store = new PartitionedCheckpointStore(partitioned, name, claimed);
                    run._restored = store.Restored(claimed.Taken ?? run.Context.Clock.Provider.GetUtcNow());
                    run._store = store;
                }
                else if (positionStore is ICheckpointCommitter committer)
                {
                    // Exactly-once: the sink's store holds the checkpoints, committed with the rows they produced.
                    var claimed = await Guard(name, slots.First(s => s.Connector == positionStore).Name, "claim the pipeline's checkpoints", () => committer.ClaimCheckpointAsync(name, run.Context.Abort)).ConfigureAwait(false);
                    run._restored = claimed is null ? null : CommitterCheckpointStore.FromStored(claimed, claimed.Taken ?? run.Context.Clock.Provider.GetUtcNow());
                    run._store = new CommitterCheckpointStore(committer, name, claimed?.Id ?? 0);
                }
                else
                {
                    var files = new FileCheckpointStore(name, Path.Combine(options.StateDirectory, FileName(name)), options.RetainedCheckpoints, logger);
                    run._restored = options.RestoreFrom is { } savepoint ? LoadSavepoint(name, savepoint, logger) : files.LoadLatest();
                    run._store = files;
                }

                if (options.SavepointDirectory is { } directory)
                {
                    run._savepoint = new FileCheckpointStore(name, directory, int.MaxValue, logger);
                }
            }

            var context = new SourceContext<TIn>(
                name,
                sourceName,
                sourceParallelism,
                options.BatchSize,
                job.Schema(),
                deadLetters,
                delivery,
                positionStore,
                (partition, token) => run.SourceWorker(partition).CheckpointAsync(token.CanBeCanceled ? token : run.Context.Abort))
            {
                Inform = message => Log.SourceEvent(logger, name, sourceName, message),
                CheckpointsState = keyed.Count > 0,
                RestoredPositions = run._restored?.Positions ?? [],
                Assignment = (run._store as PartitionedCheckpointStore)?.Claimed,
                RestoredSplitStates = run.RestoredSplitStates(),
            };
            await Guard(name, sourceName, "open", () => source.OpenAsync(context, run.Context.Abort)).ConfigureAwait(false);
            run._closeSource = () => source.CloseAsync(CancellationToken.None);
            await run.BuildAsync(job, sourceParallelism, keyedParallelism, partition => source.CreateReader(partition)).ConfigureAwait(false);
            if (delivery == DeliveryGuarantee.ExactlyOnce && run.Workers.FirstOrDefault(w => w.Stage == 0 && !w.Input.CommitsPositions) is not null)
            {
                // Refused before a record is read: such a source reads its input from the start on every run, so nothing
                // could be resumed exactly — and sinks that publish output only with a checkpoint's positions (Parquet
                // files) would never publish any.
                var sink = slots.First(s => s.Connector == positionStore).Name;
                throw new PipelineConfigurationException(name, $"Pipeline '{name}': sink '{sink}' is exactly-once, which needs a source that stores its positions with the sink's output and resumes from them (KafkaSource, PostgresCdcSource); source '{sourceName}' ({source.Describe()}) reads its input from the start on every run. Turn ExactlyOnce off for this pipeline (at-least-once: see docs/delivery.md).");
            }

            state.SetPartitions(run.Workers);
            state.SetWindows(run.Windows, () => run.Context.Clock.Now);
            state.SetGraph([.. run._exchanges.OfType<Exchange>()], () => run.Context.Checkpoints);
            await run.ExecuteAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            run.Context.Fail(ex);
        }
        finally
        {
            grace.Dispose();
            failure = await run.CloseAsync().ConfigureAwait(false);
            options.Monitor?.Detach(state);
            CompiledMeter.Ended(state);
        }

        if (failure is not null)
        {
            var aborted = abortToken.IsCancellationRequested || grace.Expired;
            var error = aborted && failure is OperationCanceledException or ConnectorException { InnerException: OperationCanceledException }
                ? new PipelineAbortedException(name, grace.Expired
                    ? $"Pipeline '{name}' was aborted: the grace period ({Setting.FormatDuration(options.GracePeriod)}) ran out before in-flight records drained; uncommitted input will be read again on the next run."
                    : $"Pipeline '{name}' was aborted before draining; uncommitted input will be read again on the next run.", failure)
                : failure as PipelineException ?? new PipelineException(name, $"Pipeline '{name}' failed: {failure.Message}", failure);
            if (error is not PipelineAbortedException)
            {
                Log.Failed(logger, name, error.Message, error);
            }

            throw error;
        }

        var outcome = stopToken.IsCancellationRequested ? PipelineOutcome.Stopped : PipelineOutcome.Completed;
        var sinks = slots.Select(s => new SinkResult(s.Name, s.Description, s.Written)).ToList();
        var failures = new FailureCounts(deadLetters.Malformed, deadLetters.OperatorFailures, deadLetters.Written, deadLetters.Destination, descriptor.IsOneToOne);
        var result = new PipelineResult(name, outcome, started.Elapsed, options.Parallelism, source.Describe(), run.RecordsRead, sinks, failures)
        {
            Delivery = PipelineRunner.DeliveryOf(descriptor, slots).Delivery,
            LateRecords = run.LateRecords,
            MalformedLines = deadLetters.MalformedLines,
            Windows = run.Windows.Select(w => new WindowSummary(w.Window, w.LateRecords, w.LateSink) { ExpiredKeys = w.ExpiredKeys, IsJoin = w.IsJoin }).ToList(),
            Lookups = [.. keyed.Select(k => k.LookupStatistics is { } l ? new LookupSummary(k.WindowName, l.CacheHits, l.KeysFetched, l.Fetches, l.RowsFetched, l.Unmatched) : null).OfType<LookupSummary>()],
            AsyncTransforms = [.. keyed.Select(k => k.AsyncStatistics is { } a ? new AsyncSummary(k.WindowName, a.Calls, a.Retries, a.Timeouts, a.Failed, a.PeakInFlight) : null).OfType<AsyncSummary>()],
            State = run.Context.Checkpoints is { } checkpoints ? new StateSummary(run._store!.Directory, run._restored?.Id, checkpoints.Written, checkpoints.Stopping) : null,
            StoppedBeforeEnd = outcome == PipelineOutcome.Stopped && StoppedBeforeEnd(source, run.Workers),
        };
        Log.Finished(logger, name, outcome == PipelineOutcome.Completed ? "completed" : "stopped", result.Elapsed.TotalMilliseconds, result.RecordsRead, result.Malformed, result.OperatorFailures, result.DeadLettered);
        var dropped = result.Windows.Where(w => w.LateRecords > 0 && w.LateSink is null).ToList();
        if (dropped.Count > 0)
        {
            var windows = string.Join(", ", dropped.Select(w => $"window {w.Window}: {w.LateRecords}"));
            Log.LateDropped(logger, name, dropped.Sum(w => w.LateRecords), windows);
        }

        return result;
    }

    /// <summary>
    /// Whether a stopped run left part of a bounded input unread: its source knows a total it had not reached, and no
    /// source partition stores positions to resume from (a Kafka or CDC source's next run goes on where this one stopped).
    /// </summary>
    private static bool StoppedBeforeEnd(object source, IReadOnlyList<Worker> workers) =>
        source is ISourceProgress { Progress: { Total: { } total, Done: var done } } && done < total
        && !workers.Any(w => w.Stage == 0 && w.Input.CommitsPositions);

    /// <summary>
    /// Prepares a run driven by hand on the calling thread (the test driver): sinks opened, every exchange inline, one
    /// source partition fed by <see cref="Push"/>, <paramref name="keyedParallelism"/> keyed partitions per window.
    /// </summary>
    public static async Task<PipelineRun> StartDrivenAsync<TIn>(PipelineJob<TIn> job, PipelineOptions options, int keyedParallelism, DeadLetterChannel deadLetters, TimeProvider time)
    {
        var descriptor = job.Descriptor;
        var keyed = job.KeyedStages;
        foreach (var stage in keyed)
        {
            stage.Validate(descriptor.Name);
        }

        var run = new PipelineRun(descriptor, options, job.BoundSinks.Slots, keyed, deadLetters, new RunClock(time), synchronous: true, CancellationToken.None, CancellationToken.None);
        try
        {
            await run.OpenSinksAsync((ILogger?)options.LoggerFactory?.CreateLogger("Compiled.Pipeline") ?? NullLogger.Instance, keyedParallelism).ConfigureAwait(false);
            await run.BuildAsync(job, 1, keyedParallelism, _ => new DrivenReader<TIn>()).ConfigureAwait(false);
        }
        catch (Exception)
        {
            await run.CloseAsync().ConfigureAwait(false);
            throw;
        }

        return run;
    }

    private int _misKeyedReported;

    /// <summary>A distributed run's input is not partitioned by the key after all: said once per run (the rows are partial).</summary>
    private void ReportMisKeyed(PartitionLease lease, string key, int first, int second)
    {
        if (Interlocked.Exchange(ref _misKeyedReported, 1) == 0)
        {
            var (a, b) = (lease.Partitions[first], lease.Partitions[second]);
            Log.DistributedWarning(_logger, _descriptor.Name, $"key '{SafeText.Escape(key.Length > 100 ? key[..100] + "…" : key)}' came from partitions {a.Stream}[{a.Partition}] and {b.Stream}[{b.Partition}]: the topic is declared PartitionedByKey but its messages are not keyed by the [KeyBy] key, so each partition counts its own share of a key and the output gets partial results for one window. Key the producers' messages by the [KeyBy] key (see docs/deployment.md).");
        }
    }

    /// <summary>Runs the source loop of a driven run over <paramref name="records"/> and everything behind it, on the calling thread.</summary>
    public void Push<TIn>(ReadOnlySpan<TIn> records)
    {
        var worker = _workers[0];
        ((SourceInput<TIn>)worker.Input).Push(records);
        Wait(worker.FlushAsync(CancellationToken.None));
    }

    /// <summary>Raises the watermark the driven source partition sends into every exchange it feeds, and sends it.</summary>
    public void RaiseWatermark(long watermark)
    {
        var worker = _workers[0];
        foreach (var port in worker.Ports.OfType<IExchangePort>())
        {
            port.RaiseWatermark(watermark);
        }

        Wait(worker.FlushAsync(CancellationToken.None));
    }

    /// <summary>Ends a driven run's input: windows fire what they hold, sinks complete.</summary>
    public ValueTask CompleteDrivenAsync(CancellationToken cancellationToken) => _workers[0].CompleteAsync(cancellationToken);

    private static void Wait(ValueTask pending)
    {
        if (!pending.IsCompletedSuccessfully)
        {
            pending.AsTask().GetAwaiter().GetResult(); // a sink that really is asynchronous: the driver's caller waits for it
        }
    }

    private Worker SourceWorker(int partition)
        => partition < _workers.Count && _workers[partition].Stage == 0
            ? _workers[partition]
            : throw new InvalidOperationException($"Source partition {partition} has no worker (yet).");

    private async Task OpenSinksAsync(ILogger logger, int? parallelism = null)
    {
        var options = parallelism is { } p ? Derived(_options, p) : _options;
        foreach (var slot in _slots)
        {
            await Guard(_descriptor.Name, slot.Name, "open", () => slot.OpenAsync(_descriptor.Name, options, Context.DeadLetters, Context.Abort)).ConfigureAwait(false);
            _opened.Add(slot);
            var description = slot.Description;
            Log.SinkOpened(logger, _descriptor.Name, slot.Name, description);
        }

        // Lookup tables open with the sinks: a missing table or column is a start-up error, not the first batch's.
        foreach (var stage in _keyed)
        {
            await Guard(_descriptor.Name, stage.WindowName, "open", () => stage.OpenAsync(_descriptor.Name, options.Parallelism, logger, Context.Abort)).ConfigureAwait(false);
            _openedKeyed.Add(stage);
        }
    }

    private static PipelineOptions Derived(PipelineOptions options, int parallelism)
        => new() { Parallelism = parallelism, BatchSize = options.BatchSize, SinkQueueCapacity = options.SinkQueueCapacity, ErrorPolicy = options.ErrorPolicy };

    /// <summary>
    /// Creates the exchanges and every worker, stage by stage. Whatever is created is registered at once, so a failure
    /// at any partition leaves nothing open: <see cref="CloseAsync"/> releases it.
    /// </summary>
    private async Task BuildAsync<TIn>(PipelineJob<TIn> job, int sourceParallelism, int keyedParallelism, Func<int, ISourceReader<TIn>> readers)
    {
        if (_options.StateBackend == StateBackend.Disk && _keyed.Count > 0)
        {
            DiskBackend.ClearLive(_descriptor.Name, _options); // before any partition opens its database
        }

        var name = _descriptor.Name;
        var segments = _descriptor.Segments.Count;
        var parallelism = new int[segments];
        var keyedOfSegment = new KeyedStage?[segments];
        var keyedIndex = new int[segments];
        parallelism[0] = sourceParallelism;
        for (var k = 0; k < _keyed.Count; k++)
        {
            var segment = _descriptor.Stages[_keyed[k].WindowStage].Segment;
            keyedOfSegment[segment] = _keyed[k];
            keyedIndex[segment] = k;

            // A forward stage (an asynchronous transform) runs as many partitions as the loop that feeds it.
            parallelism[segment] = _keyed[k].Routing == ExchangeRouting.Forward ? parallelism[_descriptor.Stages[_keyed[k].KeyByStage].Segment] : keyedParallelism;
        }

        var downstream = (
            _keyed.Select(k => k.OutOfOrderness).DefaultIfEmpty(TimeSpan.Zero).Max(),
            _keyed.Select(k => k.IdleTimeout).DefaultIfEmpty(TimeSpan.Zero).Max());
        for (var k = 0; k < _keyed.Count; k++)
        {
            var stage = _keyed[k];
            stage.Downstream = downstream;
            var producers = parallelism[_descriptor.Stages[stage.KeyByStage].Segment];
            var consumers = parallelism[_descriptor.Stages[stage.WindowStage].Segment];
            var routing = _lease is not null ? ExchangeRouting.BySplit
                : stage.Routing is { } fixedRouting && (fixedRouting != ExchangeRouting.Rebalance || consumers > 1) ? fixedRouting
                : producers == 1 && consumers == 1 ? ExchangeRouting.Forward
                : ExchangeRouting.Hash;
            var inline = _synchronous || (routing == ExchangeRouting.Forward && stage.TickInterval == TimeSpan.Zero);
            _exchanges[k] = stage.CreateExchange(routing, producers, consumers, inline, _options.SinkQueueCapacity);
            _windows[k] = new WindowStatistics(stage.WindowName, stage.LateSlot >= 0 ? _slots[stage.LateSlot].Name : null, consumers, stage.Size, Context.Clock.Now) { IsJoin = stage.IsJoin };
        }

        // Which stage writes each output slot: a sink's (or late output's) stage's segment; an exchange's key selector's.
        var slotCount = _slots.Count + _keyed.Count;
        var owner = new int[slotCount];
        for (var s = 0; s < _slots.Count; s++)
        {
            owner[s] = _descriptor.Stages[_slots[s].Stage].Segment;
        }

        foreach (var stage in _keyed)
        {
            owner[stage.ExchangeSlot] = _descriptor.Stages[stage.KeyByStage].Segment;
        }

        for (var segment = 0; segment < segments; segment++)
        {
            for (var p = 0; p < parallelism[segment]; p++)
            {
                _workers.Add(await CreateWorkerAsync(job, segment, p, parallelism[segment], owner, keyedOfSegment[segment], keyedIndex[segment], readers).ConfigureAwait(false));
            }
        }

        foreach (var worker in _workers)
        {
            if (worker.Input is KeyedInput keyedInput)
            {
                var k = keyedIndex[worker.Stage];
                keyedInput.Stage = _keyed[k];
                keyedInput.StageIndex = k;
                keyedInput.Bind(worker);
            }
        }

        if (_keyed.Count > 0 && !_synchronous && _store is not null && _workers.Any(w => w.Stage == 0 && w.Input.CommitsPositions))
        {
            StartCheckpoints(sourceParallelism, keyedParallelism);
        }
        else if (!_synchronous && (_options.SavepointDirectory is not null || _options.RestoreFrom is not null))
        {
            throw new PipelineConfigurationException(name, $"Pipeline '{name}': savepoints (--savepoint, --from-savepoint) hold window state checkpointed behind a source that commits positions (Kafka); this pipeline has {(_keyed.Count == 0 ? "no windows" : "no such source")}. See docs/state.md.");
        }
    }

    /// <summary>The newest complete checkpoint in a savepoint directory; a directory without one is a configuration error.</summary>
    private static CheckpointData LoadSavepoint(string pipeline, string directory, ILogger logger)
    {
        if (!Directory.Exists(directory))
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': savepoint directory '{directory}' does not exist.");
        }

        return new FileCheckpointStore(pipeline, directory, int.MaxValue, logger).LoadLatest()
            ?? throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': '{directory}' holds no complete checkpoint to restore (a savepoint is a chk-N folder with its _checkpoint.json).");
    }

    /// <summary>
    /// Windows behind a source that commits positions: their state is checkpointed with the positions (aligned
    /// barriers), and the latest complete checkpoint is restored into the new partitions, keys re-hashed.
    /// </summary>
    private void StartCheckpoints(int sourceParallelism, int keyedParallelism)
    {
        var name = _descriptor.Name;
        var source = _descriptor.Stages[0].Name;
        foreach (var stage in _keyed.Where(k => k.HasState))
        {
            if (stage.Schema is null)
            {
                throw new PipelineConfigurationException(name, $"Pipeline '{name}': {stage.Noun} '{stage.WindowName}' runs behind '{source}', whose positions are committed at checkpoints, so its state must be checkpointed too, but {stage.NotCheckpointable}. Use a string, a number or another type without references, a value tuple of those, or a partial [Record] type. See docs/state.md.");
            }
        }

        if (_store is not FileCheckpointStore && (_options.SavepointDirectory is not null || _options.RestoreFrom is not null))
        {
            throw new PipelineConfigurationException(name, $"Pipeline '{name}': savepoints are not supported with an exactly-once sink: its checkpoints live in the sink's database, committed with the rows (restoring a savepoint would write rows it already holds again). See docs/state.md.");
        }

        if (_options.StateBackend == StateBackend.Disk && _store is not FileCheckpointStore)
        {
            throw DiskBackend.Unsupported(name, "its exactly-once sink commits checkpoints to its database, and state on disk is checkpointed to the state directory");
        }

        if (PipelineRunner.DeliveryOf(_descriptor, _slots).Delivery == DeliveryGuarantee.ExactlyOnce && _store is FileCheckpointStore)
        {
            throw new PipelineConfigurationException(name, $"Pipeline '{name}': its exactly-once sink cannot commit checkpoints of window state (it does not implement ICheckpointCommitter); make it at-least-once (an upsert by key makes repeats harmless). See docs/state.md.");
        }

        (_store as FileCheckpointStore)?.EnsureWritable("checkpoints of window state (StateDirectory, --state-dir)");
        _savepoint?.EnsureWritable("the savepoint (--savepoint)");
        var partitions = new int[_keyed.Count];
        Array.Fill(partitions, keyedParallelism);
        var store = _store!;
        if (_restored is { } restored)
        {
            Restore(restored, store);
        }
        else
        {
            var interval = Setting.FormatDuration(_options.CheckpointInterval);
            Log.CheckpointsStarting(_logger, name, store.Directory, interval);
        }

        Context.Checkpoints = new CheckpointCoordinator(Context, store, _keyed, sourceParallelism, partitions, Math.Max(store.HighestId(), _restored?.Id ?? 0), _logger)
        {
            Savepoint = _savepoint,
            Restored = _restored?.Positions ?? [],
        };
    }

    /// <summary>
    /// In a distributed run: the split states the restored checkpoint kept in its keyed partitions' snapshots — keyed
    /// partition i's is split i's (<see cref="ISplitStateReader"/>).
    /// </summary>
    private Dictionary<int, ReadOnlyMemory<byte>> RestoredSplitStates()
    {
        var states = new Dictionary<int, ReadOnlyMemory<byte>>();
        if (_lease is null || _restored is null)
        {
            return states;
        }

        foreach (var window in _restored.Windows)
        {
            for (var i = 0; i < window.Partitions.Count; i++)
            {
                try
                {
                    if (!window.Partitions[i].IsEmpty && WindowStateHeader.SplitStateOf(window.Partitions[i]) is { } state)
                    {
                        states.TryAdd(i, state);
                    }
                }
                catch (InvalidDataException ex)
                {
                    throw new PipelineConfigurationException(_descriptor.Name, $"Pipeline '{_descriptor.Name}': checkpoint {_restored.Id}: the state of window '{window.Schema.Window}' does not read back: {ex.Message}", ex);
                }
            }
        }

        return states;
    }

    private void Restore(CheckpointData restored, ICheckpointStore store)
    {
        var name = _descriptor.Name;
        var problems = new List<string>();
        foreach (var saved in restored.Windows)
        {
            var stage = _keyed.FirstOrDefault(k => k.HasState && k.WindowName == saved.Schema.Window);
            if (stage is null)
            {
                problems.Add($"window '{saved.Schema.Window}' is in the checkpoint but not in this build");
            }
            else if (saved.Schema.Difference(stage.Schema!) is { } difference)
            {
                problems.Add($"{stage.Noun} '{saved.Schema.Window}': {difference}");
            }
        }

        foreach (var stage in _keyed.Where(k => k.HasState && restored.Windows.All(w => w.Schema.Window != k.WindowName)))
        {
            problems.Add($"{stage.Noun} '{stage.WindowName}' is new in this build (the checkpoint has no state for it)");
        }

        if (problems.Count > 0)
        {
            throw new PipelineConfigurationException(name, $"Pipeline '{name}': checkpoint {restored.Id} in {store.Directory} was taken by an incompatible build: {string.Join("; ", problems)}. Run the build that wrote it, or {(store is FileCheckpointStore ? "move the directory away" : "delete the pipeline's checkpoints there (see \"Restore and rescale\" in docs/state.md)")} to start with empty state. See docs/state.md.");
        }

        long entries = 0;
        for (var k = 0; k < _keyed.Count; k++)
        {
            var stage = _keyed[k];
            if (!stage.HasState)
            {
                continue; // a lookup join: its cache is not state, a restored run fetches rows again
            }

            var saved = restored.Windows.First(w => w.Schema.Window == stage.WindowName);
            var inputs = _workers.Select(w => w.Input).OfType<KeyedInput>().Where(i => i.StageIndex == k).ToList();
            try
            {
                if (_lease is null)
                {
                    stage.Restore(saved.Partitions, inputs);
                }
                else
                {
                    // Distributed: keyed partition i holds the i-th leased Kafka partition's keys, and restores its state only.
                    for (var i = 0; i < inputs.Count; i++)
                    {
                        if (!saved.Partitions[i].IsEmpty)
                        {
                            stage.Restore([saved.Partitions[i]], [inputs[i]]);
                        }
                    }
                }
            }
            catch (InvalidDataException ex)
            {
                throw new PipelineConfigurationException(name, $"Pipeline '{name}': checkpoint {restored.Id} in {store.Directory}: the state of {stage.Noun} '{stage.WindowName}' does not read back: {ex.Message}", ex);
            }

            entries += inputs.Sum(i => i.StateEntries);
        }

        Log.CheckpointRestored(_logger, name, restored.Id, store.Directory, restored.Taken, entries, restored.Positions.Count);
    }

    /// <summary>A pipeline name as a folder name.</summary>
    internal static string FileName(string pipeline)
        => new(pipeline.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());

    private async Task<Worker> CreateWorkerAsync<TIn>(PipelineJob<TIn> job, int segment, int partition, int count, int[] owner, KeyedStage? keyed, int keyedIndex, Func<int, ISourceReader<TIn>> readers)
    {
        var name = _descriptor.Name;
        var ports = new IOutputPort?[owner.Length];
        PartitionContext? context = null;
        ISourceReader<TIn>? reader = null;
        try
        {
            for (var s = 0; s < _slots.Count; s++)
            {
                if (owner[s] != segment)
                {
                    continue;
                }

                try
                {
                    ports[s] = _slots[s].CreatePort(name, partition, _options, Context.Abort, forceInline: _synchronous);
                }
                catch (Exception ex)
                {
                    throw new ConnectorException(name, _slots[s].Name, partition, "create its writer", ex);
                }
            }

            for (var k = 0; k < _keyed.Count; k++)
            {
                var stage = _keyed[k];
                if (owner[stage.ExchangeSlot] == segment)
                {
                    var port = stage.CreatePort(_exchanges[k]!, partition, forwarded: segment > 0, Context.Clock, Context.Abort);
                    if (_lease is { } lease)
                    {
                        stage.CheckKeysBySplit(port, (key, a, b) => ReportMisKeyed(lease, key, a, b));
                    }

                    ports[stage.ExchangeSlot] = port;
                }
            }

            context = new PartitionContext(partition, count, _descriptor, ports, Context.DeadLetters);
            IWorkerInput input;
            if (segment == 0)
            {
                try
                {
                    reader = readers(partition);
                }
                catch (Exception ex)
                {
                    throw new ConnectorException(name, _descriptor.Stages[0].Name, partition, "create its reader", ex);
                }

                var exchanges = context.Ports.OfType<IExchangePort>().ToArray();
                if (reader is ISplitStateReader splitStates)
                {
                    foreach (var exchange in exchanges)
                    {
                        exchange.ReadSplitStates(splitStates);
                    }
                }

                input = new SourceInput<TIn>(Context, _descriptor.Stages[0].Name, partition, reader, job.Segment(context), exchanges);
            }
            else
            {
                input = keyed!.CreateInput(Context, _exchanges[keyedIndex]!, partition, context, _windows[keyedIndex]);
            }

            return new Worker(Context, segment, partition, input, context);
        }
        catch (Exception)
        {
            // Nothing of this partition reached a worker: release what was created here.
            foreach (var port in ports)
            {
                if (port is not null)
                {
                    await AbortQuietly(port).ConfigureAwait(false);
                }
            }

            if (reader is not null)
            {
                await Quietly(reader.DisposeAsync).ConfigureAwait(false);
            }

            if (context is not null)
            {
                await Quietly(context.DisposeOwnedAsync).ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>Starts a task per worker that has no producer to run it (source partitions, keyed partitions behind a channel) and waits for all.</summary>
    private async Task ExecuteAsync()
    {
        Context.Checkpoints?.Start(_options.CheckpointInterval);
        // Consumers first, so each exchange's completion exists before a producer can wait for it.
        for (var segment = _descriptor.Segments.Count - 1; segment >= 0; segment--)
        {
            var exchange = segment == 0 ? null : ExchangeOfSegment(segment);
            if (exchange is { Inline: true })
            {
                continue; // run by their producers
            }

            var started = _workers.Where(w => w.Stage == segment).Select(w => Task.Run(w.RunAsync, CancellationToken.None)).ToList();
            _tasks.AddRange(started);
            if (exchange is not null)
            {
                exchange.Completion = Task.WhenAll(started);
            }
        }

        try
        {
            await Task.WhenAll(_tasks).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Context.Fail(ex);
        }
    }

    private Exchange? ExchangeOfSegment(int segment)
    {
        for (var k = 0; k < _keyed.Count; k++)
        {
            if (_descriptor.Stages[_keyed[k].WindowStage].Segment == segment)
            {
                return _exchanges[k];
            }
        }

        return null;
    }

    /// <summary>
    /// Releases everything in order — workers (aborting any that did not complete), then the source, then the sinks,
    /// then the dead-letter channel — and returns the run's failure, if any (a failure while closing counts when
    /// nothing failed before).
    /// </summary>
    public async Task<Exception?> CloseAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return Context.Failure;
        }

        if (Context.Failure is not null)
        {
            Context.RequestAbort();
        }

        // Started workers end by themselves (their input ended, or the run aborted) and dispose what they hold; wait for
        // them before touching anything of theirs. Then release the workers that never ran or ran inline.
        try
        {
            await Task.WhenAll(_tasks).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // recorded by the workers themselves
        }

        foreach (var worker in _workers)
        {
            try
            {
                await worker.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Context.Fail(ex);
            }
        }

        if (Context.Checkpoints is { } checkpoints)
        {
            await checkpoints.DisposeAsync().ConfigureAwait(false);
        }

        var failure = Context.Failure;
        if (_closeSource is { } closeSource)
        {
            try
            {
                await closeSource().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                failure ??= new ConnectorException(_descriptor.Name, _descriptor.Stages[0].Name, null, "close", ex);
            }
        }

        foreach (var sink in _opened)
        {
            try
            {
                await sink.CloseAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                failure ??= new ConnectorException(_descriptor.Name, sink.Name, null, "close", ex);
            }
        }

        foreach (var stage in _openedKeyed)
        {
            try
            {
                await stage.CloseAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                failure ??= new ConnectorException(_descriptor.Name, stage.WindowName, null, "close", ex);
            }
        }

        try
        {
            await Context.DeadLetters.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure ??= new ConnectorException(_descriptor.Name, "dead letters", null, "close", ex);
        }

        Context.Dispose();
        return failure;
    }

    public async ValueTask DisposeAsync() => await CloseAsync().ConfigureAwait(false);

    private static async ValueTask AbortQuietly(IOutputPort port)
    {
        try
        {
            await port.AbortAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // setting up already failed; that failure is reported
        }
    }

    private static async ValueTask Quietly(Func<ValueTask> action)
    {
        try
        {
            await action().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // setting up already failed; that failure is reported
        }
    }

    private static async Task<TResult> Guard<TResult>(string pipeline, string connector, string action, Func<ValueTask<TResult>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not PipelineException)
        {
            throw new ConnectorException(pipeline, connector, null, action, ex);
        }
    }

    private static async Task Guard(string pipeline, string connector, string action, Func<ValueTask> call)
    {
        try
        {
            await call().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not PipelineException)
        {
            throw new ConnectorException(pipeline, connector, null, action, ex);
        }
    }

    /// <summary>The driven run's source reader: the test driver pushes records instead.</summary>
    private sealed class DrivenReader<T> : ISourceReader<T>
    {
        public ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken) => ValueTask.FromResult(SourceBatch<T>.End);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>
    /// A stop must finish within the grace period; past it, the run is aborted (uncommitted input is read again). The
    /// timer lives exactly as long as the run: nothing is logged about a run that has returned.
    /// </summary>
    private sealed class GracePeriod : IDisposable
    {
        private readonly Lock _lock = new();
        private readonly RunContext _run;
        private readonly PipelineOptions _options;
        private readonly ILogger _logger;
        private readonly CancellationTokenRegistration _registration;
        private ITimer? _timer;
        private bool _ended;

        public GracePeriod(RunContext run, PipelineOptions options, ILogger logger, CancellationToken stop)
        {
            _run = run;
            _options = options;
            _logger = logger;
            _registration = stop.Register(static state => ((GracePeriod)state!).Start(), this);
        }

        public bool Expired { get; private set; }

        private void Start()
        {
            lock (_lock)
            {
                if (_ended || _timer is not null)
                {
                    return;
                }

                var period = Setting.FormatDuration(_options.GracePeriod);
                Log.Stopping(_logger, _run.Pipeline, period);
                _run.RequestStop();
                _timer = _options.TimeProvider.CreateTimer(static state => ((GracePeriod)state!).Expire(), this, _options.GracePeriod, Timeout.InfiniteTimeSpan);
            }
        }

        private void Expire()
        {
            lock (_lock)
            {
                if (_ended)
                {
                    return;
                }

                Expired = true;
                var period = Setting.FormatDuration(_options.GracePeriod);
                Log.GraceExpired(_logger, _run.Pipeline, period);
                _run.RequestAbort();
            }
        }

        public void Dispose()
        {
            lock (_lock)
            {
                _ended = true;
                _timer?.Dispose();
            }

            _registration.Dispose();
        }
    }
}
