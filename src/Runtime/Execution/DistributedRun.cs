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
        try
        {
            while (!stop.IsCancellationRequested)
            {
                PartitionLease lease;
                try
                {
                    lease = await source.AcquireAsync(name, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
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
                        await WaitAsync(stop, lease.Revoked, lease.Lost).ConfigureAwait(false);
                        continue;
                    }

                    using var runStop = CancellationTokenSource.CreateLinkedTokenSource(stop, lease.Revoked);
                    using var runAbort = CancellationTokenSource.CreateLinkedTokenSource(abort, lease.Lost);
                    try
                    {
                        last = await PipelineRun.RunOnceAsync(job, options, lease, runStop.Token, runAbort.Token).ConfigureAwait(false);
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
        }

        return last is null
            ? new PipelineResult(name, PipelineOutcome.Stopped, started.Elapsed, options.Parallelism, job.BoundSource.Describe(), 0, [], default)
            : last; // the last assignment's run
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
            problems.Add($"no sink keeps each partition's state with its rows ({(sinks.Length == 0 ? "it has no connector sink" : $"sinks {sinks}")}): it needs an exactly-once PostgresSink (PostgresSinkOptions.ExactlyOnce = true, or --set <sink>.ExactlyOnce=true)");
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
            throw new PipelineConfigurationException(name, $"Pipeline '{name}' cannot run distributed: {string.Join("; ", problems)}. A distributed run reads one Kafka topic partitioned by the [KeyBy] key, with windows right behind it and an exactly-once PostgresSink. See docs/deployment.md.");
        }
    }
}
