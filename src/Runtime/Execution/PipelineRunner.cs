using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Compiled.Runtime;

/// <summary>
/// Runs a compiled pipeline: opens its connectors, creates one partition per degree of parallelism (a reader, a
/// fused segment, one output port per sink), runs every partition on its own worker, and closes everything in order
/// whether the run completes, is stopped, or fails.
/// </summary>
public static class PipelineRunner
{
    /// <summary>Runs <paramref name="job"/>. See <see cref="IPipelineJob.RunAsync"/>.</summary>
    public static async Task<PipelineResult> RunAsync<TIn>(PipelineJob<TIn> job, PipelineOptions options, CancellationToken stopToken, CancellationToken abortToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(options);
        var descriptor = job.Descriptor;
        var name = descriptor.Name;
        options.Validate(name);
        var keyed = job.Keyed;
        keyed?.Validate(name);
        var clock = Stopwatch.StartNew();
        var logger = (ILogger?)options.LoggerFactory?.CreateLogger("Compiled.Pipeline") ?? NullLogger.Instance;

        var sourceName = descriptor.Stages[0].Name;
        var source = job.BoundSource;
        var slots = job.BoundSinks.Slots;

        using var stopAll = CancellationTokenSource.CreateLinkedTokenSource(stopToken);
        using var abortAll = CancellationTokenSource.CreateLinkedTokenSource(abortToken);
        var graceExpired = false;
        using var grace = stopAll.Token.Register(() =>
        {
            // A stop must finish within the grace period; past it, the run is aborted (uncommitted input is read again).
            var period = Setting.FormatDuration(options.GracePeriod);
            Log.Stopping(logger, name, period);
            _ = Task.Delay(options.GracePeriod, abortAll.Token).ContinueWith(
                t =>
                {
                    if (!t.IsCanceled)
                    {
                        graceExpired = true;
                        Log.GraceExpired(logger, name, period);
                        TryCancel(abortAll);
                    }
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        });
        var deadLetterSink = DeadLetterSinkFor(job, options);
        await using var deadLetters = new DeadLetterChannel(name, options.ErrorPolicy ?? descriptor.ErrorPolicy, deadLetterSink, logger);
        var run = new RunState(name, sourceName, source, slots, deadLetters, stopAll.Token);
        CompiledMeter.Started(run);
        options.Monitor?.Attach(run);

        var opened = new List<ISinkSlot>();
        var sourceOpened = false;
        var partitions = new List<Partition<TIn>>();
        Exception? failure = null;
        try
        {
            var sourceDescription = source.Describe();
            Log.Starting(logger, name, options.Parallelism, options.BatchSize, sourceDescription);

            foreach (var slot in slots)
            {
                await Guard(name, slot.Name, null, "open", () => slot.OpenAsync(name, options, abortAll.Token)).ConfigureAwait(false);
                opened.Add(slot);
                var sinkDescription = slot.Description;
                Log.SinkOpened(logger, name, slot.Name, sinkDescription);
            }

            var (delivery, positionStore) = DeliveryOf(descriptor, slots);
            var context = new SourceContext<TIn>(
                name,
                sourceName,
                options.Parallelism,
                options.BatchSize,
                job.Schema(),
                deadLetters,
                delivery,
                positionStore,
                (partition, token) => partitions[partition].CheckpointAsync(token.CanBeCanceled ? token : abortAll.Token))
            {
                Inform = message => Log.SourceEvent(logger, name, sourceName, message),
            };
            await Guard(name, sourceName, null, "open", () => source.OpenAsync(context, abortAll.Token)).ConfigureAwait(false);
            sourceOpened = true;

            if (keyed is not null)
            {
                // A monotonic clock in Unix milliseconds: processing-time windows and idle timeouts must not see the wall clock step back.
                var origin = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds();
                var elapsed = Stopwatch.StartNew();
                keyed.Start(new KeyedRun(options.Parallelism, descriptor, slots, options, deadLetters, () => origin + elapsed.ElapsedMilliseconds, abortAll.Token) { Failed = () => TryCancel(stopAll) }, synchronous: false);
            }

            for (var p = 0; p < options.Parallelism; p++)
            {
                partitions.Add(CreatePartition(job, source, slots, options, p, deadLetters, abortAll.Token));
            }

            run.SetPartitions(partitions);
            var workers = partitions.Select(partition => Task.Run(() => partition.RunAsync(stopAll, abortAll.Token), CancellationToken.None)).ToArray();
            try
            {
                await Task.WhenAll(workers).ConfigureAwait(false);
            }
            catch (Exception)
            {
                failure = FirstFailure(workers);
                keyed?.Abort();
            }

            if (keyed is not null)
            {
                // The keyed partitions end once every upstream partition has completed its exchange input (or the run failed).
                try
                {
                    await keyed.Completion.ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    // Prefer a keyed partition's own error to the cancellations it caused upstream.
                    var keyedFailure = keyed.Completion.Exception?.InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException) ?? ex;
                    if (failure is null || (failure is OperationCanceledException && keyedFailure is not OperationCanceledException))
                    {
                        failure = keyedFailure;
                    }
                }
            }
        }
        catch (Exception ex)
        {
            failure = ex;
            if (keyed is not null)
            {
                // Setting up the partitions failed after the keyed partitions started: stop them before closing the sinks.
                keyed.Abort();
                try
                {
                    await keyed.Completion.ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // the setup failure is what gets reported
                }
            }
        }
        finally
        {
            failure = await CloseAsync(name, sourceName, sourceOpened ? source : null, opened, failure).ConfigureAwait(false);
            options.Monitor?.Detach(run);
            CompiledMeter.Ended(run);
        }

        if (failure is not null)
        {
            var error = abortAll.IsCancellationRequested && failure is OperationCanceledException or ConnectorException { InnerException: OperationCanceledException }
                ? new PipelineAbortedException(name, graceExpired
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
        var result = new PipelineResult(name, outcome, clock.Elapsed, options.Parallelism, source.Describe(), partitions.Sum(p => p.RecordsRead), sinks, failures)
        {
            Delivery = DeliveryOf(descriptor, slots).Delivery,
        };
        Log.Finished(logger, name, outcome == PipelineOutcome.Completed ? "completed" : "stopped", result.Elapsed.TotalMilliseconds, result.RecordsRead, result.Malformed, result.OperatorFailures, result.DeadLettered);
        return result;
    }

    /// <summary>
    /// The run's delivery guarantee: exactly-once when the pipeline's sink stores positions transactionally, which is
    /// only meaningful when it is the only sink (another sink would see replayed records again after a crash).
    /// </summary>
    internal static (DeliveryGuarantee Delivery, ITransactionalSink? Store) DeliveryOf(PipelineDescriptor descriptor, IReadOnlyList<ISinkSlot> slots)
    {
        var transactional = slots.Where(s => s.Connector is ITransactionalSink { IsTransactional: true }).ToList();
        if (transactional.Count == 0)
        {
            return (DeliveryGuarantee.AtLeastOnce, null);
        }

        if (slots.Count > 1)
        {
            var others = string.Join(", ", slots.Where(s => s != transactional[0]).Select(s => $"'{s.Name}'"));
            throw new PipelineConfigurationException(
                descriptor.Name,
                $"Pipeline '{descriptor.Name}': sink '{transactional[0].Name}' is exactly-once, which needs it to be the pipeline's only connector sink; {others} would receive replayed records again after a crash. Make '{transactional[0].Name}' at-least-once, or remove the other sinks.");
        }

        return (DeliveryGuarantee.ExactlyOnce, (ITransactionalSink)transactional[0].Connector);
    }

    private static void TryCancel(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the run already ended
        }
    }

    /// <summary>Where a run's dead letters go: the options' sink or path, else the pipeline's [DeadLetters] member, else the default file.</summary>
    internal static ISink<DeadLetter> DeadLetterSinkFor<TIn>(PipelineJob<TIn> job, PipelineOptions options)
        => options.DeadLetterSink
            ?? (options.DeadLetterPath is { } path ? new DeadLetterFile(path) : null)
            ?? job.DeclaredDeadLetterSink
            ?? new DeadLetterFile(DefaultDeadLetterPath(job.Descriptor.Name));

    /// <summary>The default dead-letter file of a pipeline: <c>{name}.deadletters.jsonl</c> in the working directory.</summary>
    public static string DefaultDeadLetterPath(string pipelineName)
    {
        var safe = new string(pipelineName.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
        return safe + ".deadletters.jsonl";
    }

    private static Partition<TIn> CreatePartition<TIn>(PipelineJob<TIn> job, ISource<TIn> source, IReadOnlyList<ISinkSlot> slots, PipelineOptions options, int index, DeadLetterChannel deadLetters, CancellationToken abort)
    {
        var name = job.Descriptor.Name;
        var keyed = job.Keyed;
        var ports = new IOutputPort?[slots.Count + (keyed is null ? 0 : 1)];
        for (var s = 0; s < slots.Count; s++)
        {
            if (keyed is not null && keyed.OwnsSlot(s, slots[s].Stage))
            {
                continue; // written by the keyed partitions, after the exchange
            }

            try
            {
                ports[s] = slots[s].CreatePort(name, index, options, abort);
            }
            catch (Exception ex)
            {
                throw new ConnectorException(name, slots[s].Name, index, "create its writer", ex);
            }
        }

        if (keyed is not null)
        {
            ports[slots.Count] = keyed.CreateInput(index, abort);
        }

        var context = new PartitionContext(index, options.Parallelism, job.Descriptor, ports, deadLetters);
        ISourceReader<TIn> reader;
        try
        {
            reader = source.CreateReader(index);
        }
        catch (Exception ex)
        {
            throw new ConnectorException(name, job.Descriptor.Stages[0].Name, index, "create its reader", ex);
        }

        if (keyed is not null && reader.CommitsPositions)
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw new PipelineConfigurationException(name, $"Pipeline '{name}': keyed windows cannot yet run behind a source that commits positions ('{job.Descriptor.Stages[0].Name}', e.g. Kafka): window state is not checkpointed, so committing offsets could lose the records held in open windows. See docs/windows.md.");
        }

        return new Partition<TIn>(job.Descriptor, context, job.Segment(context), reader, deadLetters, options);
    }

    private static Exception? FirstFailure(Task[] workers)
    {
        // The first partition to fail cancels the others, which then end cleanly; report the root cause.
        // A worker that ended with OperationCanceledException is Canceled, not Faulted: it was aborted, not done.
        var failures = workers.Where(w => w.IsFaulted).Select(w => w.Exception!.InnerException!).ToList();
        return failures.FirstOrDefault(f => f is not OperationCanceledException)
            ?? failures.FirstOrDefault()
            ?? (workers.Any(w => w.IsCanceled) ? new OperationCanceledException("A partition was cancelled before it finished.") : null);
    }

    private static async Task<Exception?> CloseAsync<TIn>(string name, string sourceName, ISource<TIn>? source, List<ISinkSlot> sinks, Exception? failure)
    {
        if (source is not null)
        {
            try
            {
                await source.CloseAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                failure ??= new ConnectorException(name, sourceName, null, "close", ex);
            }
        }

        foreach (var sink in sinks)
        {
            try
            {
                await sink.CloseAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                failure ??= new ConnectorException(name, sink.Name, null, "close", ex);
            }
        }

        return failure;
    }

    private static async Task Guard(string pipeline, string connector, int? partition, string action, Func<ValueTask> call)
    {
        try
        {
            await call().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not PipelineException)
        {
            throw new ConnectorException(pipeline, connector, partition, action, ex);
        }
    }
}

/// <summary>One partition: reads batches from its reader, runs its fused segment, hands outputs to its ports.</summary>
internal sealed class Partition<TIn>(PipelineDescriptor descriptor, PartitionContext context, FusedSegment<TIn> segment, ISourceReader<TIn> reader, DeadLetterChannel deadLetters, PipelineOptions options) : IPartitionState
{
    private readonly KeyValuePair<string, object?>[] _sourceTags = [new("pipeline", descriptor.Name), new("source", descriptor.Stages[0].Name)];
    private readonly KeyValuePair<string, object?>[] _pipelineTags = [new("pipeline", descriptor.Name)];
    private long _recordsRead;
    private int _state; // 0 not started, 1 running, 2 ended
    private long _checkpoints;
    private long _lastCheckpoint = Stopwatch.GetTimestamp();

    /// <summary>Records read so far (written only by this partition's worker; read by others for summaries and metrics).</summary>
    public long RecordsRead => Volatile.Read(ref _recordsRead);

    public bool Running => Volatile.Read(ref _state) == 1;

    public IReadOnlyList<IOutputPort> Ports => context.Ports;

    public IOutputPort? PortOf(int slot) => context.PortOf(slot);

    public async Task RunAsync(CancellationTokenSource stopAll, CancellationToken abort)
    {
        Volatile.Write(ref _state, 1);
        try
        {
            await RunPartitionAsync(stopAll, abort).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _state, 2);
        }
    }

    private async Task RunPartitionAsync(CancellationTokenSource stopAll, CancellationToken abort)
    {
        Exception? failure = null;
        try
        {
            await ProcessAsync(stopAll.Token, abort).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = ex;
            await stopAll.CancelAsync().ConfigureAwait(false);
            foreach (var port in context.Ports)
            {
                await AbortQuietly(port).ConfigureAwait(false);
            }
        }

        try
        {
            await reader.DisposeAsync().ConfigureAwait(false);
            await context.DisposeOwnedAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (failure is null)
        {
            await stopAll.CancelAsync().ConfigureAwait(false);
            failure = new ConnectorException(descriptor.Name, descriptor.Stages[0].Name, context.Index, "close its reader", ex);
        }
        catch (Exception)
        {
            // The partition already failed; report that failure, not this one.
        }

        if (failure is not null)
        {
            ExceptionDispatchInfo.Capture(failure).Throw();
        }
    }

    /// <summary>
    /// Makes everything the reader returned so far durable in every sink — with the reader's positions, so that a
    /// transactional sink stores both in one transaction — writes pending dead letters, then lets the reader commit.
    /// Runs on the partition's worker: between batches, or from inside the reader's own ReadAsync (a rebalance).
    /// </summary>
    public async ValueTask CheckpointAsync(CancellationToken abort)
    {
        var checkpoint = new Checkpoint(descriptor.Name, descriptor.Stages[0].Name, context.Index, ++_checkpoints, reader.Positions, reader.CheckpointState);
        foreach (var port in context.Ports)
        {
            await port.DrainAsync(checkpoint, abort).ConfigureAwait(false);
        }

        await FlushDeadLettersAsync(abort).ConfigureAwait(false);
        await CommitReaderAsync(abort).ConfigureAwait(false);
        _lastCheckpoint = Stopwatch.GetTimestamp();
    }

    private async ValueTask CommitReaderAsync(CancellationToken abort)
    {
        try
        {
            await reader.CommitAsync(abort).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new ConnectorException(descriptor.Name, descriptor.Stages[0].Name, context.Index, "commit", ex);
        }
    }

    private async Task ProcessAsync(CancellationToken stop, CancellationToken abort)
    {
        var ports = context.Ports;
        var checkpoints = reader.CommitsPositions;
        var interval = options.CheckpointInterval;
        while (!stop.IsCancellationRequested)
        {
            if (checkpoints && Stopwatch.GetElapsedTime(_lastCheckpoint) >= interval)
            {
                await CheckpointAsync(abort).ConfigureAwait(false);
            }

            SourceBatch<TIn> batch;
            try
            {
                batch = await reader.ReadAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is not PipelineException)
            {
                throw new ConnectorException(descriptor.Name, descriptor.Stages[0].Name, context.Index, "read", ex);
            }

            if (batch.IsEnd)
            {
                break;
            }

            var records = batch.Records;
            if (records.IsEmpty)
            {
                continue;
            }

            var started = Stopwatch.GetTimestamp();
            Volatile.Write(ref _recordsRead, _recordsRead + records.Length);
            CompiledMeter.RecordsRead.Add(records.Length, _sourceTags);
            segment.Process(records.Span, batch.Origins);
            for (var i = 0; i < ports.Count; i++)
            {
                await ports[i].FlushAsync(abort).ConfigureAwait(false);
            }

            CompiledMeter.BatchDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds, _pipelineTags);

            if (deadLetters.HasPending)
            {
                await FlushDeadLettersAsync(abort).ConfigureAwait(false);
            }
        }

        // The graceful end: every output durable (dead letters included), then the source may commit what was read.
        if (checkpoints)
        {
            await CheckpointAsync(abort).ConfigureAwait(false);
        }

        for (var i = 0; i < ports.Count; i++)
        {
            await ports[i].CompleteAsync(abort).ConfigureAwait(false);
        }

        await FlushDeadLettersAsync(abort).ConfigureAwait(false);
        if (!checkpoints)
        {
            await CommitReaderAsync(abort).ConfigureAwait(false);
        }
    }

    private async ValueTask FlushDeadLettersAsync(CancellationToken abort)
    {
        try
        {
            await deadLetters.FlushAsync(options, abort).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new ConnectorException(descriptor.Name, "dead letters", context.Index, "write", ex);
        }
    }

    private static async ValueTask AbortQuietly(IOutputPort port)
    {
        try
        {
            await port.AbortAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The partition already failed; a second failure while closing would only hide the first.
        }
    }
}
