using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Compiled.Runtime;

/// <summary>
/// A pipeline with keyed state run as one of several copies in a Kafka consumer group (Kafka Streams' model, with the
/// group's eager rebalance): one run per assignment. The copy waits for the group to lease it partitions, claims them
/// in the exactly-once sink's store (which fences off their previous owner) and restores their state, one keyed
/// partition per Kafka partition; when the group takes them back it stops that run with a last checkpoint and releases
/// them; when they were lost (its session expired) or a commit was fenced, the run ends without committing and the copy
/// joins the group again. Nothing of a partition this copy no longer owns is ever committed.
/// </summary>
internal static class DistributedRun
{
    public static async Task<PipelineResult> RunAsync<TIn>(PipelineJob<TIn> job, PipelineOptions options, IDistributedSource source, CancellationToken stop, CancellationToken abort)
    {
        var name = job.Descriptor.Name;
        Validate(job, options);
        var logger = (ILogger?)options.LoggerFactory?.CreateLogger("Compiled.Pipeline") ?? NullLogger.Instance;
        var started = Stopwatch.StartNew();
        PipelineResult? last = null;
        var monitor = options.Monitor;
        using var stopping = stop.Register(() => monitor?.SetStandby(false));
        await CheckSinksAsync(job, options, abort).ConfigureAwait(false);

        // Behind a repartition hop, the writing half runs beside the keyed runs for as long as the copy does; when it
        // fails, the copy fails (the keyed half alone would wait for records that no longer come).
        using var writerStop = new CancellationTokenSource();
        using var writerFailed = new CancellationTokenSource();
        using var leaseStop = CancellationTokenSource.CreateLinkedTokenSource(stop, writerFailed.Token);
        using var copyAbort = CancellationTokenSource.CreateLinkedTokenSource(abort, writerFailed.Token);
        var writer = await StartRepartitionAsync(job, options, source, logger, writerStop.Token, abort).ConfigureAwait(false);
        _ = writer?.ContinueWith(_ => writerFailed.Cancel(), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        try
        {
            while (!leaseStop.IsCancellationRequested)
            {
                PartitionLease lease;
                try
                {
                    lease = await source.AcquireAsync(name, leaseStop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (leaseStop.IsCancellationRequested)
                {
                    break;
                }
                catch (ArgumentException ex)
                {
                    throw new PipelineConfigurationException(name, $"Pipeline '{name}': source '{job.Descriptor.Stages[0].Name}': {ConnectorException.MessageOf(ex)}", ex);
                }
                catch (Exception ex) when (ex is not PipelineException)
                {
                    throw new ConnectorException(name, job.Descriptor.Stages[0].Name, null, "join its consumer group", ex);
                }

                monitor?.SetStandby(!stop.IsCancellationRequested);
                try
                {
                    Log.Distributed(logger, name, lease.Partitions.Count == 0
                        ? "the group assigned this copy no partitions (more copies than partitions); waiting for the next rebalance"
                        : $"the group assigned this copy {string.Join(", ", lease.Partitions.Select(p => $"{p.Stream}[{p.Partition}]"))}");
                    if (lease.Partitions.Count == 0)
                    {
                        await WaitAsync(leaseStop.Token, lease.Revoked, lease.Lost).ConfigureAwait(false);
                        continue;
                    }

                    using var runStop = CancellationTokenSource.CreateLinkedTokenSource(stop, lease.Revoked);
                    using var runAbort = CancellationTokenSource.CreateLinkedTokenSource(copyAbort.Token, lease.Lost);
                    try
                    {
                        last = await PipelineRun.RunOnceAsync(job, options, lease, runStop.Token, runAbort.Token).ConfigureAwait(false);
                    }
                    catch (PipelineException) when (writerFailed.IsCancellationRequested)
                    {
                        break; // the writer's failure is the copy's, below
                    }
                    catch (PipelineException ex) when (!abort.IsCancellationRequested && lease.Lost.IsCancellationRequested)
                    {
                        Log.DistributedWarning(logger, name, $"this copy's partitions were lost (its session with the group expired); the run stopped without committing ({ex.Message}); joining again");
                        continue;
                    }
                    catch (PipelineException ex) when (!abort.IsCancellationRequested && IsFenced(ex))
                    {
                        Log.DistributedWarning(logger, name, $"another copy claimed this copy's partitions; nothing more was committed ({Fenced(ex)!.Message}); leaving the group and joining again");
                        lease.Release();
                        await source.RejoinAsync(abort).ConfigureAwait(false);
                        continue;
                    }

                    if (stop.IsCancellationRequested || !lease.Revoked.IsCancellationRequested)
                    {
                        break; // stopped, or the input ended
                    }

                    Log.Distributed(logger, name, "the group took the partitions back; their state and positions are committed");
                }
                finally
                {
                    lease.Release();
                }
            }
        }
        finally
        {
            monitor?.SetStandby(false);
            await source.LeaveAsync(CancellationToken.None).ConfigureAwait(false);
            await writerStop.CancelAsync().ConfigureAwait(false);
            if (writer is not null)
            {
                await AwaitWriterAsync(job, writer, options.GracePeriod, logger).ConfigureAwait(false);
            }
        }

        return last is null
            ? new PipelineResult(name, PipelineOutcome.Stopped, started.Elapsed, options.Parallelism, job.BoundSource.Describe(), 0, [], default)
            : last; // the last assignment's run
    }

    /// <summary>
    /// A copy whose source must be repartitioned (<see cref="IRepartitionSource{T}"/>): prepares the hop's topic, from
    /// which the copy then leases partitions, and starts the writing half. Null: no hop.
    /// </summary>
    private static async Task<Task?> StartRepartitionAsync<TIn>(PipelineJob<TIn> job, PipelineOptions options, IDistributedSource source, ILogger logger, CancellationToken stop, CancellationToken abort)
    {
        if (source is not IRepartitionSource<TIn> { Repartitions: true } hop)
        {
            return null;
        }

        var name = job.Descriptor.Name;
        var stage = job.KeyedStages[0]; // Validate allowed one, keyed directly behind the source
        var key = (IRepartitionKey<TIn>)stage.RepartitionKey!;
        string described;
        try
        {
            described = await hop.PrepareRepartitionAsync(name, stage.WindowName, abort).ConfigureAwait(false);
        }
        catch (ArgumentException ex)
        {
            throw new PipelineConfigurationException(name, $"Pipeline '{name}': source '{job.Descriptor.Stages[0].Name}': {ConnectorException.MessageOf(ex)}", ex);
        }
        catch (Exception ex) when (ex is not PipelineException and not OperationCanceledException)
        {
            throw new ConnectorException(name, job.Descriptor.Stages[0].Name, null, "prepare its repartition topic", ex);
        }

        var keyedThrough = $"{stage.Noun} '{stage.WindowName}' is keyed through a {described}";
        Log.Distributed(logger, name, keyedThrough);

        return hop.RunRepartitionAsync(key, options.CheckpointInterval, stop);
    }

    /// <summary>
    /// Waits for the writing half to end: its last marks and commit, then its leaving the group. A writer that has not
    /// ended within the grace period is left behind (the process may exit under it): the source offsets it did not
    /// commit are read and written again by their next owner, and the keyed side's ledgers drop the repeats.
    /// </summary>
    private static async Task AwaitWriterAsync<TIn>(PipelineJob<TIn> job, Task writer, TimeSpan patience, ILogger logger)
    {
        if (await Task.WhenAny(writer, Task.Delay(patience)).ConfigureAwait(false) != writer)
        {
            Log.DistributedWarning(logger, job.Descriptor.Name, $"the repartition topic's writer did not stop within the grace period ({Setting.FormatDuration(patience)}); left behind: the records it wrote since its last commit are written again by the next owner of their partitions, and dropped there as repeats");
            return;
        }

        try
        {
            await writer.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not PipelineException)
        {
            throw new ConnectorException(job.Descriptor.Name, job.Descriptor.Stages[0].Name, null, "write to its repartition topic", ex);
        }
    }

    private static async Task WaitAsync(params CancellationToken[] tokens)
    {
        using var any = CancellationTokenSource.CreateLinkedTokenSource(tokens);
        try
        {
            await Task.Delay(Timeout.Infinite, any.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static bool IsFenced(Exception exception) => Fenced(exception) is not null;

    private static FencedException? Fenced(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is FencedException fenced)
            {
                return fenced;
            }
        }

        return null;
    }

    /// <summary>
    /// Opens and closes every sink once before the copy joins the group: a sink that cannot open (a wrong password, a
    /// database down, a table its records do not fit, checkpoints that belong to another table) fails the copy here,
    /// without costing the copies already running a rebalance on its way in and another on its way out.
    /// </summary>
    private static async Task CheckSinksAsync<TIn>(PipelineJob<TIn> job, PipelineOptions options, CancellationToken abort)
    {
        var name = job.Descriptor.Name;
        foreach (var slot in job.BoundSinks.Slots)
        {
            try
            {
                await slot.OpenAsync(name, options, null, abort).ConfigureAwait(false);
                await slot.CloseAsync(abort).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not PipelineException)
            {
                throw new ConnectorException(name, slot.Name, null, "open (checked before joining the group)", ex);
            }
        }
    }

    /// <summary>What a distributed run can do today; everything else is refused before the copy joins the group.</summary>
    private static void Validate<TIn>(PipelineJob<TIn> job, PipelineOptions options)
    {
        var name = job.Descriptor.Name;
        var problems = new List<string>();
        var keyed = job.KeyedStages;
        if (keyed.Count == 0)
        {
            problems.Add("it has no [KeyBy]: a pipeline without keyed state scales out as copies in one consumer group without Distributed");
        }

        var repartitions = job.BoundSource is IRepartitionSource<TIn> { Repartitions: true };
        if (repartitions && keyed.Count > 1)
        {
            problems.Add($"its topic is repartitioned by one key, and it has {keyed.Count} keyed stages ({string.Join(", ", keyed.Select(k => $"'{k.WindowName}'"))}); a distributed run through a repartition topic has one [KeyBy]");
        }
        else if (repartitions && keyed.Count == 1 && keyed[0].RepartitionKey is not IRepartitionKey<TIn>)
        {
            problems.Add($"the [KeyBy] of '{keyed[0].WindowName}' does not read the source's records directly (a transform in front of it, or a key selector that is an operator object), so the repartition topic's writers cannot key them: move the transform behind the window, or make the key selector a method");
        }

        foreach (var stage in keyed)
        {
            if (job.Descriptor.Stages[stage.KeyByStage].Segment != 0)
            {
                problems.Add($"{stage.Noun} '{stage.WindowName}' is keyed behind another keyed stage (its key's records would have to cross a repartition topic, which is not built yet)");
            }
            else if (stage.IsJoin || stage.Routing is not null)
            {
                problems.Add($"'{stage.WindowName}' is {(stage.IsJoin ? "a join" : "not keyed by the source's key")}");
            }
        }

        if (!job.BoundSinks.Slots.Any(s => s.Connector is IPartitionedCheckpointCommitter and ITransactionalSink { IsTransactional: true }))
        {
            // Checked again once the sinks are open; refused here so that a copy never joins the group for nothing.
            var sinks = string.Join(", ", job.BoundSinks.Slots.Select(s => $"'{s.Name}'"));
            problems.Add($"no sink keeps each partition's state with its rows ({(sinks.Length == 0 ? "it has no connector sink" : $"sinks {sinks}")}): it needs an exactly-once PostgresSink (PostgresSinkOptions.ExactlyOnce = true, or --set <sink>.ExactlyOnce=true) or a transactional KafkaSink (KafkaSinkOptions.Transactional = true)");
        }

        if (options.StateBackend == StateBackend.Disk)
        {
            problems.Add("its state is on disk (StateBackend=Disk); distributed state lives in the sink's database");
        }

        if (options.SavepointDirectory is not null || options.RestoreFrom is not null)
        {
            problems.Add("savepoints are not supported: each partition's state lives in the sink's database");
        }

        if (problems.Count > 0)
        {
            throw new PipelineConfigurationException(name, $"Pipeline '{name}' cannot run distributed: {string.Join("; ", problems)}. A distributed run reads one Kafka topic, with windows right behind it and an exactly-once PostgresSink or a transactional KafkaSink. See docs/deployment.md.");
        }
    }
}
