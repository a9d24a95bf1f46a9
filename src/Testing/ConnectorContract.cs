using Compiled.Connectors;
using Compiled.Runtime;
using Compiled.Runtime.CompilerServices;

namespace Compiled.Testing;

/// <summary>
/// What <see cref="ConnectorContract.CheckSinkAsync"/> needs to know about a sink: how to make one that writes to a
/// destination of its own, how to read that destination back, and the records to write.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class SinkContract<T>
{
    /// <summary>Creates the sink under test, writing to the destination named <c>id</c> (a table, a directory, a topic): each check uses a new one.</summary>
    public required Func<string, ISink<T>> CreateSink { get; init; }

    /// <summary>What destination <c>id</c> holds durably now (the rows of the table, the records of the completed files).</summary>
    public required Func<string, CancellationToken, Task<IReadOnlyList<T>>> ReadBack { get; init; }

    /// <summary>The record number <c>i</c> the checks write (deterministic; records must be distinct).</summary>
    public required Func<int, T> Record { get; init; }

    /// <summary>Records per check: 3,000.</summary>
    public int Records { get; init; } = 3_000;

    /// <summary>How records compare (default: their equality).</summary>
    public IEqualityComparer<T>? Comparer { get; init; }

    /// <summary>The record type's compile-time schema, for sinks that need one (<see cref="ConnectorContract.SchemaOf"/>).</summary>
    public RecordSchema<T>? Schema { get; init; }

    /// <summary>Optional: creates a sink whose destination cannot work (an unreachable server, a read-only path); the run must fail naming the sink.</summary>
    public Func<string, ISink<T>>? CreateBroken { get; init; }
}

/// <summary>
/// What <see cref="ConnectorContract.CheckSourceAsync"/> needs to know about a source: how to make one reading the
/// origin the author prepared, and the records that origin holds.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public sealed class SourceContract<T>
{
    /// <summary>
    /// Creates the source under test over the prepared origin, as the consumer named <c>identity</c> (a Kafka group id):
    /// the same identity resumes from what it committed, a new one reads from the beginning.
    /// </summary>
    public required Func<string, ISource<T>> CreateSource { get; init; }

    /// <summary>The records the origin holds (in any order).</summary>
    public required IReadOnlyList<T> Records { get; init; }

    /// <summary>Whether the source ends by itself after the last record (a file) or waits for more (Kafka). Default: it ends.</summary>
    public bool Bounded { get; init; } = true;

    /// <summary>How records compare (default: their equality).</summary>
    public IEqualityComparer<T>? Comparer { get; init; }

    /// <summary>The record type's compile-time schema, for sources that need one.</summary>
    public RecordSchema<T>? Schema { get; init; }

    /// <summary>Optional: creates a source whose origin cannot be read (a missing path, an unreachable server); the run must fail naming the source.</summary>
    public Func<string, ISource<T>>? CreateBroken { get; init; }

    /// <summary>
    /// Whether the source may deliver a record more than once in a run (at-least-once while a consumer group
    /// rebalances): repeats are then not violations, and the checks wait for every distinct record. Missing records
    /// always are. Default: false.
    /// </summary>
    public bool RepeatsAllowed { get; init; }

    /// <summary>How long an unbounded source may take to deliver what the checks wait for: 2 minutes.</summary>
    public TimeSpan Patience { get; init; } = TimeSpan.FromMinutes(2);
}

/// <summary>A rule of the connector contract that a check found broken, and how.</summary>
/// <param name="Check">The check: <c>every record once</c>, <c>durable at a checkpoint</c>, ….</param>
/// <param name="Problem">What was wrong, with the figures.</param>
public sealed record ContractViolation(string Check, string Problem)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Check}: {Problem}";
}

/// <summary>The checks that ran, and what they found.</summary>
public sealed class ContractReport
{
    internal List<string> PassedList { get; } = [];

    internal List<ContractViolation> ViolationList { get; } = [];

    /// <summary>The checks that found nothing wrong.</summary>
    public IReadOnlyList<string> Passed => PassedList;

    /// <summary>What the checks found wrong.</summary>
    public IReadOnlyList<ContractViolation> Violations => ViolationList;

    /// <summary>Whether every check passed.</summary>
    public bool Ok => ViolationList.Count == 0;

    /// <summary>Throws an <see cref="InvalidOperationException"/> listing the violations, if there are any.</summary>
    public void ThrowIfViolated()
    {
        if (!Ok)
        {
            throw new InvalidOperationException("The connector breaks its contract:\n  " + string.Join("\n  ", ViolationList));
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Ok
        ? $"{PassedList.Count} checks passed: {string.Join(", ", PassedList)}"
        : $"{ViolationList.Count} violations:\n  {string.Join("\n  ", ViolationList)}";

    internal void Record(string check, IReadOnlyList<string> problems)
    {
        if (problems.Count == 0)
        {
            PassedList.Add(check);
        }
        else
        {
            ViolationList.AddRange(problems.Select(p => new ContractViolation(check, p)));
        }
    }
}

/// <summary>
/// The connector contract test kit: runs a source or a sink through the runtime — a pipeline that passes records from
/// a source to a sink, at several parallelisms and batch sizes — and checks what the runtime relies on: every record
/// delivered once per run; a sink's records durable when a checkpoint completes (before the source may commit); a
/// source that commits positions resuming where it stopped, losing and repeating nothing after a graceful stop; a run
/// after an aborted one working as before; failures reported with the connector's name. It does not depend on a test
/// framework: it returns a <see cref="ContractReport"/> (<see cref="ContractReport.ThrowIfViolated"/> for a one-line
/// test). See docs/connector-guide.md.
/// </summary>
public static class ConnectorContract
{
    /// <summary>The name the checks' pipelines give the source under test.</summary>
    public const string SourceName = "Input";

    /// <summary>The name the checks' pipelines give the sink under test.</summary>
    public const string SinkName = "Output";

    /// <summary>
    /// The compile-time schema of <typeparamref name="T"/> as a compiled pipeline has it: the schema the generator derived
    /// for a source or sink of <typeparamref name="T"/> in <paramref name="pipeline"/>. Null when it has none.
    /// </summary>
    public static RecordSchema<T>? SchemaOf<T>(ICompiledPipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var job = pipeline.CreateJob();
        if (job is PipelineJob<T> typed && typed.Schema() is { } schema)
        {
            return schema;
        }

        return job is IPipelineJobSlots slots ? slots.Slots.OfType<SinkSlot<T>>().Select(s => s.Schema).FirstOrDefault(s => s is not null) : null;
    }

    /// <summary>Runs every sink check against <paramref name="contract"/>'s sink.</summary>
    public static async Task<ContractReport> CheckSinkAsync<T>(SinkContract<T> contract, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(contract);
        var report = new ContractReport();
        var records = Enumerable.Range(0, contract.Records).Select(contract.Record).ToArray();
        var comparer = contract.Comparer ?? EqualityComparer<T>.Default;

        // Every record once, at parallelisms and batch sizes that make the runtime reuse its buffers between writes.
        var problems = new List<string>();
        foreach (var (parallelism, batch) in new[] { (1, 1024), (3, 7), (2, 1) })
        {
            var id = NewId("once");
            var result = await RunAsync(new ContractSource<T>(records, checkpointEvery: 0, null), contract.CreateSink(id), contract.Schema, parallelism, batch, new Tokens(cancellationToken)).ConfigureAwait(false);
            if (result is not null)
            {
                problems.Add($"parallelism {parallelism}, batch size {batch}: the run failed: {result.Message}");
                continue;
            }

            var written = await contract.ReadBack(id, cancellationToken).ConfigureAwait(false);
            problems.AddRange(Compare(records, written, comparer).Select(p => $"parallelism {parallelism}, batch size {batch}: {p}"));
        }

        report.Record("every record once", problems);

        // Durable at a checkpoint: when a checkpoint the source asked for returns, everything it handed out is in the destination.
        problems = [];
        var durableId = NewId("durable");
        var durable = new ContractSource<T>(records, checkpointEvery: 3, async token =>
        {
            var written = await contract.ReadBack(durableId, token).ConfigureAwait(false);
            return written;
        })
        {
            Comparer = comparer,
        };
        var failure = await RunAsync(durable, contract.CreateSink(durableId), contract.Schema, 2, 50, new Tokens(cancellationToken)).ConfigureAwait(false);
        problems.AddRange(durable.Problems);
        if (failure is not null)
        {
            problems.Add($"the run failed: {failure.Message}");
        }

        report.Record("durable at a checkpoint", problems);

        // A run after an aborted one: the aborted run's writers are released, and the next run writes everything.
        problems = [];
        using (var abort = new CancellationTokenSource())
        {
            var aborting = new ContractSource<T>(records, checkpointEvery: 0, null) { AfterFirstBatch = () => _ = abort.CancelAsync() };
            var aborted = await RunAsync(aborting, contract.CreateSink(NewId("aborted")), contract.Schema, 2, 100, new Tokens(cancellationToken) { Abort = abort.Token }).ConfigureAwait(false);
            if (aborted is not (PipelineAbortedException or null))
            {
                problems.Add($"the aborted run failed with {aborted.GetType().Name} instead of stopping: {aborted.Message}");
            }
        }

        var afterId = NewId("after-abort");
        var after = await RunAsync(new ContractSource<T>(records, checkpointEvery: 0, null), contract.CreateSink(afterId), contract.Schema, 2, 100, new Tokens(cancellationToken)).ConfigureAwait(false);
        if (after is not null)
        {
            problems.Add($"the run after an aborted one failed: {after.Message}");
        }
        else
        {
            problems.AddRange(Compare(records, await contract.ReadBack(afterId, cancellationToken).ConfigureAwait(false), comparer).Select(p => "the run after an aborted one: " + p));
        }

        report.Record("a run after an aborted one", problems);

        if (contract.CreateBroken is { } broken)
        {
            var error = await RunAsync(new ContractSource<T>(records, checkpointEvery: 0, null), broken(NewId("broken")), contract.Schema, 1, 100, new Tokens(cancellationToken)).ConfigureAwait(false);
            report.Record("failures name the connector", NamesConnector(error, SinkName));
        }

        return report;
    }

    /// <summary>Runs every source check against <paramref name="contract"/>'s source.</summary>
    public static async Task<ContractReport> CheckSourceAsync<T>(SourceContract<T> contract, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(contract);
        var report = new ContractReport();
        var comparer = contract.Comparer ?? EqualityComparer<T>.Default;
        var total = contract.Records.Count;

        // Every record once per run, read by one partition and by several.
        var problems = new List<string>();
        var commits = false;
        foreach (var parallelism in new[] { 1, 3 })
        {
            var tracked = new TrackedSource<T>(contract.CreateSource(NewId("once")));
            var (received, failure) = await ReadAsync(tracked, contract, parallelism, total, null, cancellationToken).ConfigureAwait(false);
            commits |= tracked.CommitsPositions;
            problems.AddRange(failure is not null
                ? [$"parallelism {parallelism}: the run failed: {failure.Message}"]
                : Compare(contract.Records, received, comparer, contract.RepeatsAllowed).Select(p => $"parallelism {parallelism}: {p}"));
            problems.AddRange(tracked.Unreleased().Select(p => $"parallelism {parallelism}: {p}"));
        }

        report.Record("every record once", problems);

        // Resume: a consumer stopped half-way continues where it stopped; after a graceful stop nothing is lost or repeated.
        if (commits)
        {
            problems = [];
            var identity = NewId("resume");
            var first = new TrackedSource<T>(contract.CreateSource(identity));
            var (before, failed) = await ReadAsync(first, contract, 2, Math.Max(1, total / 2), null, cancellationToken).ConfigureAwait(false);
            var second = new TrackedSource<T>(contract.CreateSource(identity));
            // The second consumer is waited for until it delivered every record the first did not (repeats of the first's
            // records do not count: a source that re-reads what it committed shows as a repeat, or, stopped early, as loss).
            var (rest, failedAgain) = failed is null
                ? await ReadAsync(second, contract, 2, total - before.Distinct(comparer).Count(), before, cancellationToken).ConfigureAwait(false)
                : ([], null);
            if ((failed ?? failedAgain) is { } error)
            {
                problems.Add($"the run failed: {error.Message}");
            }
            else
            {
                problems.AddRange(Compare(contract.Records, [.. before, .. rest], comparer, contract.RepeatsAllowed).Select(p => $"the two runs together: {p}"));
            }

            report.Record("resumes where it stopped", problems);
        }

        // A run after an aborted one reads everything again, with nothing left open.
        problems = [];
        using (var abort = new CancellationTokenSource())
        {
            var aborting = new TrackedSource<T>(contract.CreateSource(NewId("aborted")));
            var sink = new ContractSink<T> { AfterFirstBatch = () => _ = abort.CancelAsync() };
            var aborted = await RunAsync(aborting, sink, contract.Schema, 2, 100, new Tokens(cancellationToken) { Abort = abort.Token }).ConfigureAwait(false);
            if (aborted is not (PipelineAbortedException or null))
            {
                problems.Add($"the aborted run failed with {aborted.GetType().Name} instead of stopping: {aborted.Message}");
            }

            problems.AddRange(aborting.Unreleased().Select(p => "the aborted run: " + p));
        }

        var again = new TrackedSource<T>(contract.CreateSource(NewId("after-abort")));
        var (all, failedAfter) = await ReadAsync(again, contract, 2, total, null, cancellationToken).ConfigureAwait(false);
        problems.AddRange(failedAfter is not null
            ? [$"the run after an aborted one failed: {failedAfter.Message}"]
            : Compare(contract.Records, all, comparer, contract.RepeatsAllowed).Select(p => "the run after an aborted one: " + p));
        report.Record("a run after an aborted one", problems);

        if (contract.CreateBroken is { } broken)
        {
            var error = await RunAsync(broken(NewId("broken")), new ContractSink<T>(), contract.Schema, 1, 100, new Tokens(cancellationToken) { Timeout = contract.Patience }).ConfigureAwait(false);
            report.Record("failures name the connector", NamesConnector(error, SourceName));
        }

        return report;
    }

    private static string NewId(string check) => $"contract-{check}-{Guid.NewGuid():N}"[..Math.Min(48, 10 + check.Length + 32)];

    private static IReadOnlyList<string> NamesConnector(Exception? error, string name) => error switch
    {
        null => ["a run against a broken destination completed without an error"],
        PipelineException pipeline when pipeline.Message.Contains($"'{name}'", StringComparison.Ordinal) => [],
        _ => [$"the failure does not name the connector '{name}': {error.GetType().Name}: {error.Message}"],
    };

    /// <summary>Reads until <paramref name="wanted"/> records arrived (an unbounded source) or the source ended, then stops.</summary>
    private static async Task<(IReadOnlyList<T> Received, Exception? Failure)> ReadAsync<T>(ISource<T> source, SourceContract<T> contract, int parallelism, int wanted, IEnumerable<T>? alreadySeen, CancellationToken cancellationToken)
    {
        var sink = new ContractSink<T>(contract.Comparer, alreadySeen);
        using var stop = new CancellationTokenSource();
        if (!contract.Bounded)
        {
            sink.When(wanted, () => _ = stop.CancelAsync()); // not on the writer's thread: the stop's callbacks run elsewhere
        }

        var failure = await RunAsync(source, sink, contract.Schema, parallelism, 100, new Tokens(cancellationToken) { Stop = stop.Token, Timeout = contract.Patience }).ConfigureAwait(false);
        return (sink.Items, failure);
    }

    /// <summary>Runs the contract's pipeline; returns its failure, or null.</summary>
    private static async Task<Exception?> RunAsync<T>(ISource<T> source, ISink<T> sink, RecordSchema<T>? schema, int parallelism, int batchSize, Tokens tokens)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(tokens.Caller, tokens.Stop);
        deadline.CancelAfter(tokens.Timeout ?? TimeSpan.FromMinutes(2));
        var abort = tokens.Abort;
        try
        {
            var job = new ContractJob<T>(source, sink, schema);
            await job.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = batchSize, CheckpointInterval = TimeSpan.FromMilliseconds(50), DeadLetterSink = new CollectionSink<DeadLetter>() }, deadline.Token, abort).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }

    /// <summary>The tokens of one run: the caller's, an abort and a stop of the check's own, and how long it may take.</summary>
    private readonly struct Tokens(CancellationToken caller)
    {
        public CancellationToken Caller { get; } = caller;

        public CancellationToken Abort { get; init; }

        public CancellationToken Stop { get; init; }

        public TimeSpan? Timeout { get; init; }
    }

    /// <summary>Differences between the expected records and the received ones, as multisets.</summary>
    private static List<string> Compare<T>(IReadOnlyList<T> expected, IReadOnlyList<T> received, IEqualityComparer<T> comparer, bool repeatsAllowed = false)
    {
        if (repeatsAllowed)
        {
            received = [.. received.Distinct(comparer)];
        }

        var counts = new Dictionary<Wrapper<T>, int>(new WrapperComparer<T>(comparer));
        foreach (var record in expected)
        {
            counts[new(record)] = counts.GetValueOrDefault(new(record)) + 1;
        }

        var extra = new List<T>();
        foreach (var record in received)
        {
            var key = new Wrapper<T>(record);
            if (counts.TryGetValue(key, out var count) && count > 0)
            {
                counts[key] = count - 1;
            }
            else
            {
                extra.Add(record);
            }
        }

        var missing = counts.Where(c => c.Value > 0).SelectMany(c => Enumerable.Repeat(c.Key.Value, c.Value)).ToList();
        var problems = new List<string>();
        if (missing.Count > 0)
        {
            problems.Add($"{missing.Count} of {expected.Count} records missing (first: {missing[0]})");
        }

        if (extra.Count > 0)
        {
            problems.Add($"{extra.Count} records more than expected: repeated or altered (first: {extra[0]})");
        }

        return problems;
    }

    private readonly record struct Wrapper<T>(T Value);

    private sealed class WrapperComparer<T>(IEqualityComparer<T> comparer) : IEqualityComparer<Wrapper<T>>
    {
        public bool Equals(Wrapper<T> x, Wrapper<T> y) => comparer.Equals(x.Value, y.Value);

        public int GetHashCode(Wrapper<T> obj) => obj.Value is null ? 0 : comparer.GetHashCode(obj.Value);
    }
}

/// <summary>The job of the contract's pipeline: the source under test, a pass-through loop, the sink under test.</summary>
internal sealed class ContractJob<T>(ISource<T> source, ISink<T> sink, RecordSchema<T>? schema) : PipelineJob<T>(Plan)
{
    private static readonly PipelineDescriptor Plan = new(
        "connector-contract",
        "Compiled.Testing.ConnectorContract",
        [
            new StageDescriptor(0, ConnectorContract.SourceName, StageKind.Source, null, typeof(T).Name, "the source under test", 0, -1),
            new StageDescriptor(1, ConnectorContract.SinkName, StageKind.Sink, typeof(T).Name, typeof(T).Name, "the sink under test", 0, 0),
        ],
        [new SegmentDescriptor(0, 0, 1, "the contract's pass-through")]);

    protected override RecordSchema<T>? SourceSchema => schema;

    protected override ISource<T> GetSource() => source;

    protected override void BindSinks(SinkBinder binder) => binder.Add(1, sink, schema);

    protected override FusedSegment<T> CreateSegment(PartitionContext partition) => new PassThrough(partition);

    private sealed class PassThrough(PartitionContext partition) : FusedSegment<T>(partition, 0, firstStage: 1, markedFrom: 2)
    {
        private readonly RecordBuffer<T> _output = partition.Output<T>(0);

        protected override void Run(ReadOnlySpan<T> batch, ref SegmentProgress progress)
        {
            for (var i = progress.Record; i < batch.Length; i++)
            {
                progress.Begin(i);
                _output.Add(batch[i]);
            }
        }
    }
}

