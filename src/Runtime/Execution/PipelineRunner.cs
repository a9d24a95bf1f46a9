namespace Compiled.Runtime;

/// <summary>
/// Runs a compiled pipeline (see <see cref="PipelineRun"/>, which owns a run and everything it creates), and says what
/// a run will do with its dead letters and delivery guarantee.
/// </summary>
public static class PipelineRunner
{
    /// <summary>Runs <paramref name="job"/>. See <see cref="IPipelineJob.RunAsync"/>.</summary>
    public static Task<PipelineResult> RunAsync<TIn>(PipelineJob<TIn> job, PipelineOptions options, CancellationToken stopToken, CancellationToken abortToken)
        => PipelineRun.RunAsync(job, options, stopToken, abortToken);

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
                $"Pipeline '{descriptor.Name}': sink '{transactional[0].Name}' is exactly-once, which needs it to be the pipeline's only connector sink; {others} would receive replayed records again after a crash. Remove the other sinks — a [LateData] sink too: without one, late records are dropped and counted in the summary — or make '{transactional[0].Name}' at-least-once (not in a distributed run, which needs it exactly-once).");
        }

        return (DeliveryGuarantee.ExactlyOnce, (ITransactionalSink)transactional[0].Connector);
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
}
