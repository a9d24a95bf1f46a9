using System.ComponentModel;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// Several sources of one record type read as one stream: what a pipeline with more than one <c>[Source]</c> reads
/// (the generated code builds it from the members). Partition p's reader reads the p-th reader of every member at once
/// and hands on whichever batch is ready first — of several ready, the next member's in turn — so a member that waits
/// (a socket with no client) never holds back another, and one that is always ready never starves another. Each
/// member — and each split of a member that has several, such as a Kafka reader's partitions — keeps its own watermark
/// (<see cref="SourceSplits"/>): the stream's watermark is the minimum over the members still reading.
/// </summary>
/// <remarks>
/// <para>Delivery: positions are those of every member (each member recognises its own when they are committed or
/// restored). Exactly-once needs checkpoints (a window, a join, a lookup or an asynchronous transform): every
/// checkpoint holds every member's positions; without them a transactional sink would store one source's. Windows
/// behind a member that commits positions (Kafka) are checkpointed; then every member must commit positions: a file
/// or collection member would be read again from its start after a restore, into state that already holds it.</para>
/// <para>A member whose reader calls <see cref="SourceContext{T}.CheckpointAsync"/> from inside its read (a Kafka
/// rebalance) waits until the partition's worker is between batches: reads of the members run concurrently, but the
/// worker's checkpoints and batches never do.</para>
/// </remarks>
/// <typeparam name="T">The record type.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class UnionSource<T> : ISource<T>, ISourceProgress
{
    /// <summary>Split ids of a member's own splits are offset by its index times this.</summary>
    private const int MemberSplits = 1 << 20;

    private readonly string[] _names;
    private readonly ISource<T>[] _members;
    private readonly List<Reader> _readers = [];
    private readonly Lock _lock = new();
    private SourceContext<T>? _context;
    private int _opened;

    /// <summary>Reads <paramref name="members"/> (named by <paramref name="names"/>, the pipeline members) as one stream.</summary>
    public UnionSource(string[] names, ISource<T>?[] members)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(members);
        if (names.Length != members.Length || members.Length == 0)
        {
            throw new ArgumentException("A union needs one name per member, and at least one member.", nameof(members));
        }

        _names = names;
        _members = new ISource<T>[members.Length];
        for (var i = 0; i < members.Length; i++)
        {
            _members[i] = members[i]!;
            if (members[i] is null)
            {
                MissingMember ??= names[i];
            }
        }
    }

    /// <summary>The name of the first member that is null (the run refuses to start), or null.</summary>
    public string? MissingMember { get; }

    /// <summary>The member sources, in declaration order.</summary>
    public IReadOnlyList<ISource<T>> Members => _members;

    /// <summary>The members' names.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>The sum of the members' progress; the total only when every member knows its own, in one unit.</summary>
    public SourceProgress Progress
    {
        get
        {
            long done = 0, total = 0;
            var known = true;
            string? unit = null;
            foreach (var member in _members)
            {
                if (member is ISourceProgress { Progress: var progress })
                {
                    done += progress.Done;
                    total += progress.Total ?? 0;
                    known &= progress.Total is not null && (unit is null || unit == progress.Unit);
                    unit = progress.Unit;
                }
                else
                {
                    known = false;
                }
            }

            return new SourceProgress(done, known ? total : null, unit ?? "records");
        }
    }

    /// <inheritdoc/>
    public async ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Delivery == DeliveryGuarantee.ExactlyOnce && !context.CheckpointsState)
        {
            // Without keyed stages the exactly-once sink stores one source's positions beside its rows. With them, every
            // checkpoint holds the positions of every member, committed with the rows and the state.
            throw new PipelineConfigurationException(context.PipelineName, $"Pipeline '{context.PipelineName}': exactly-once delivery of several sources needs checkpoints, which pipelines with a window, a join, a lookup or an asynchronous transform take; this one reads {Listed()} and has none. Use at-least-once (an upsert absorbs repeats), or one source.");
        }

        _context = context;
        lock (_lock)
        {
            _readers.Clear();
        }

        try
        {
            for (_opened = 0; _opened < _members.Length; _opened++)
            {
                var member = _opened;
                await _members[member].OpenAsync(context.ForMember(_names[member], (partition, ct) => CheckpointFromMemberAsync(member, partition, ct)), cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            await CloseAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc/>
    public ISourceReader<T> CreateReader(int partition)
    {
        var context = _context ?? throw new InvalidOperationException("The source is not open.");
        var readers = new List<ISourceReader<T>>(_members.Length);
        try
        {
            foreach (var member in _members)
            {
                readers.Add(member.CreateReader(partition));
            }

            if ((context.CheckpointsState || context.Delivery == DeliveryGuarantee.ExactlyOnce) && readers.Any(r => r.CommitsPositions) && readers.Any(r => !r.CommitsPositions))
            {
                var without = string.Join(", ", _names.Where((_, i) => !readers[i].CommitsPositions).Select(n => $"'{n}'"));
                var why = context.Delivery == DeliveryGuarantee.ExactlyOnce ? "its sink is exactly-once" : "its windows are checkpointed";
                throw new PipelineConfigurationException(context.PipelineName, $"Pipeline '{context.PipelineName}': {why}, so every source must resume from stored positions (as Kafka does); {without} would be read again from the start after a restart. Read them in a pipeline of their own.");
            }
        }
        catch
        {
            foreach (var created in readers)
            {
                created.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }

            throw;
        }

        var reader = new Reader(context.PipelineName, _names, partition, [.. readers]);
        lock (_lock)
        {
            _readers.Add(reader);
        }

        return reader;
    }

    /// <inheritdoc/>
    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        List<Exception>? failures = null;
        for (var i = 0; i < Math.Min(_opened, _members.Length); i++)
        {
            try
            {
                await _members[i].CloseAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                (failures ??= []).Add(ex);
            }
        }

        _opened = 0;
        if (failures is not null)
        {
            throw failures.Count == 1 ? failures[0] : new AggregateException(failures);
        }
    }

    /// <inheritdoc/>
    public string Describe() => "union of " + Listed();

    private string Listed() => string.Join(", ", _members.Select((m, i) => $"{_names[i]} ({m.Describe()})"));

    /// <summary>A member's reader asks for a checkpoint from inside its read: run it once the worker is between batches.</summary>
    private async ValueTask CheckpointFromMemberAsync(int member, int partition, CancellationToken cancellationToken)
    {
        Reader? reader;
        lock (_lock)
        {
            reader = _readers.FirstOrDefault(r => r.Partition == partition);
        }

        if (reader is null)
        {
            await _context!.CheckpointAsync(partition, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (reader.Closing)
        {
            return; // the worker is done: what this read holds is not handed on, and its new owner reads it again
        }

        await reader.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (reader.Closing)
        {
            reader.Gate.Release();
            return;
        }

        reader.Calling = member;
        try
        {
            await _context!.CheckpointAsync(partition, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            reader.Calling = -1;
            reader.Gate.Release();
        }
    }

    /// <summary>Partition p's reader: the p-th reader of every member, read concurrently.</summary>
    private sealed class Reader(string pipeline, string[] names, int partition, ISourceReader<T>[] members) : ISourceReader<T>
    {
        private readonly Task<SourceBatch<T>>?[] _pending = new Task<SourceBatch<T>>?[members.Length];
        private readonly bool[] _ended = new bool[members.Length];
        private readonly bool[] _splitsOpen = new bool[members.Length];
        private readonly bool[] _idle = new bool[members.Length];
        private readonly List<int> _stale = [];
        private readonly SourceSplits _splits = new();
        private readonly IReadOnlyList<SourcePosition>[] _positions = [.. members.Select(m => m.Positions)];
        private readonly bool[] _canCheckpoint = [.. members.Select(m => m.CanCheckpoint)];
        private readonly IReadOnlyList<SourcePosition>?[] _owed = new IReadOnlyList<SourcePosition>?[members.Length];
        private bool _holding = true;
        private bool _started;
        private int _served = -1;
        private Task? _tick;

        /// <summary>
        /// How often a reader whose sources have nothing hands on an empty batch anyway, so that the watermark is
        /// looked at again: a source that stays silent past the window's idle timeout then stops holding it back.
        /// </summary>
        private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

        public int Partition => partition;

        /// <summary>The member whose read asked for the checkpoint now running, or -1.</summary>
        public int Calling { get; set; } = -1;

        /// <summary>The reader is being disposed: a member's checkpoint from inside a read still under way is skipped.</summary>
        public bool Closing { get; private set; }

        /// <summary>Held by the worker while it processes a batch; a member's checkpoint takes it in between.</summary>
        public SemaphoreSlim Gate { get; } = new(0, 1);

        public bool CommitsPositions => members.Any(m => m.CommitsPositions);

        /// <summary>Whether every member's positions as of the last batch it handed on can be resumed from.</summary>
        public bool CanCheckpoint => Array.TrueForAll(_canCheckpoint, c => c);

        /// <summary>
        /// Each member's positions as of the last batch it handed on: a member's read may be under way, past records
        /// the worker has not seen, so its current positions are not the ones a checkpoint may record.
        /// </summary>
        public IReadOnlyList<SourcePosition> Positions => [.. _positions.SelectMany(p => p)];

        /// <summary>
        /// Reads whichever member has a batch first. The gate is held whenever the reader's state (pending reads,
        /// positions, splits) changes, and let go only while waiting — the one time a member's checkpoint may run.
        /// </summary>
        public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            await HoldAsync().ConfigureAwait(false);
            if (!_started)
            {
                // Every member holds the watermark back from the start, until it has records, is idle or ends.
                _started = true;
                for (var m = 0; m < members.Length; m++)
                {
                    _splits.Add(m * MemberSplits);
                }
            }

            try
            {
                while (true)
                {
                    var any = false;
                    for (var m = 0; m < members.Length; m++)
                    {
                        if (_ended[m] || _pending[m] is not null)
                        {
                            any |= !_ended[m];
                            continue;
                        }

                        if (_owed[m] is { } owed)
                        {
                            // A commit that came while this member was reading: its read is done, so it may commit now.
                            _owed[m] = null;
                            await members[m].CommitAsync(owed, cancellationToken).ConfigureAwait(false);
                        }

                        _pending[m] = members[m].ReadAsync(cancellationToken).AsTask();
                        any = true;
                    }

                    if (!any)
                    {
                        return SourceBatch<T>.End;
                    }

                    _tick ??= Task.Delay(Tick, CancellationToken.None);
                    Let(); // between batches: a member's checkpoint may run now
                    var done = await Task.WhenAny(_pending.OfType<Task>().Append(_tick)).ConfigureAwait(false);
                    await HoldAsync().ConfigureAwait(false); // before touching the reader's state
                    if (done == _tick)
                    {
                        _tick = null;
                        cancellationToken.ThrowIfCancellationRequested();
                        _splits.ClearRuns();
                        return SourceBatch<T>.Of(ReadOnlyMemory<T>.Empty, null, _splits);
                    }

                    // Of the reads that are done, the member after the one served last: with sources that always
                    // have a batch ready (generators, collections, a topic with a backlog) the first member would
                    // otherwise be read to its end before the second — holding the watermark, and every join and
                    // window behind it, at the second's start all that time.
                    var member = Array.IndexOf(_pending, (Task<SourceBatch<T>>)done);
                    for (var k = 1; k <= members.Length; k++)
                    {
                        var m = (_served + k) % members.Length;
                        if (_pending[m] is { IsCompleted: true })
                        {
                            member = m;
                            break;
                        }
                    }

                    _served = member;
                    var read = _pending[member]!;
                    _pending[member] = null;
                    SourceBatch<T> batch;
                    try
                    {
                        batch = await read.ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is not (OperationCanceledException or PipelineException))
                    {
                        throw new ConnectorException(pipeline, names[member], partition, "read", ex); // named after the source that failed
                    }

                    _positions[member] = members[member].Positions;
                    _canCheckpoint[member] = members[member].CanCheckpoint;
                    _splits.ClearRuns();
                    if (batch.IsEnd)
                    {
                        _ended[member] = true;
                        RemoveSplits(member, keeping: null);
                        continue;
                    }

                    TrackSplits(member, batch);
                    _idle[member] = batch.IsIdle && batch.Records.IsEmpty;
                    if (_idle[member] && AllIdle())
                    {
                        // Nothing to read in any source (no Kafka partition, no file): the partition stops holding
                        // back the windows it feeds, as a single source's reader does.
                        return SourceBatch<T>.Idle;
                    }

                    return SourceBatch<T>.Of(batch.Records, batch.Origins, _splits);
                }
            }
            finally
            {
                await HoldAsync().ConfigureAwait(false); // the worker processes the batch alone
            }
        }

        private async ValueTask HoldAsync()
        {
            if (!_holding)
            {
                await Gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                _holding = true;
            }
        }

        private void Let()
        {
            if (_holding)
            {
                _holding = false;
                Gate.Release();
            }
        }

        /// <summary>Mirrors member <paramref name="member"/>'s splits (or the member as one split) and the batch's runs into the union's.</summary>
        private void TrackSplits(int member, SourceBatch<T> batch)
        {
            // Ids: the member as one split is its offset; the member's own split k is offset + 1 + k.
            var offset = member * MemberSplits;
            if (batch.Splits is { } own)
            {
                _splitsOpen[member] = true;
                RemoveSplits(member, keeping: own); // the member as one split, and splits it no longer reads

                for (var i = 0; i < own.Count; i++)
                {
                    _splits.Add(offset + 1 + own[i]);
                }

                foreach (var run in own.Runs)
                {
                    _splits.Append(offset + 1 + run.Split, run.Count);
                }

                // After the runs (a run makes its split active): the member's own word on which are idle.
                for (var i = 0; i < own.Count; i++)
                {
                    _splits.SetIdle(offset + 1 + own[i], own.IsIdleAt(i));
                }

                return;
            }

            if (_splitsOpen[member])
            {
                RemoveSplits(member, keeping: null); // the member no longer reads splits of its own (a Kafka reader left without partitions)
                _splitsOpen[member] = false;
            }

            _splits.Add(offset);
            if (batch.IsIdle)
            {
                _splits.SetIdle(offset, idle: true);
            }
            else
            {
                _splits.Append(offset, batch.Records.Length);
            }
        }

        private bool AllIdle()
        {
            for (var m = 0; m < members.Length; m++)
            {
                if (!_ended[m] && !_idle[m])
                {
                    return false;
                }
            }

            return true;
        }


        /// <summary>Removes member <paramref name="member"/>'s splits from the union's, but those of <paramref name="keeping"/> (the member's own splits it still reads).</summary>
        private void RemoveSplits(int member, SourceSplits? keeping)
        {
            var offset = member * MemberSplits;
            _stale.Clear();
            for (var i = 0; i < _splits.Count; i++)
            {
                var id = _splits[i];
                if (id >= offset && id < offset + MemberSplits && !(keeping is not null && id > offset && keeping.Contains(id - offset - 1)))
                {
                    _stale.Add(id);
                }
            }

            foreach (var id in _stale)
            {
                _splits.Remove(id);
            }
        }

        /// <summary>Commits each member's positions as of its last batch handed on.</summary>
        public async ValueTask CommitAsync(CancellationToken cancellationToken)
        {
            for (var m = 0; m < members.Length; m++)
            {
                await CommitOrOweAsync(m, _positions[m], cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>Commits the positions a completed checkpoint recorded; each member picks its own.</summary>
        public async ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken)
        {
            for (var m = 0; m < members.Length; m++)
            {
                await CommitOrOweAsync(m, positions, cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>
        /// Commits <paramref name="positions"/> to member <paramref name="m"/> now if no read of its is under way (or
        /// it is the member that asked for this checkpoint, from inside its read); otherwise owes them, and the next
        /// <see cref="ReadAsync"/> commits them before it starts the member's next read. Never waits for a read: a read
        /// may itself be waiting for the worker (a rebalance's checkpoint), which would then wait for ever.
        /// </summary>
        private async ValueTask CommitOrOweAsync(int m, IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken)
        {
            if (m == Calling || _pending[m] is null)
            {
                _owed[m] = null;
                await members[m].CommitAsync(positions, cancellationToken).ConfigureAwait(false);
            }
            else if (members[m].CommitsPositions)
            {
                _owed[m] = positions;
            }
        }

        public async ValueTask DisposeAsync()
        {
            // Reads still under way (the run stopped or failed; its token wakes them) end before their readers are
            // disposed; a checkpoint one of them asks for now is skipped, and the records it read are not handed on.
            Closing = true;
            Let();
            List<Exception>? failures = null;
            for (var m = 0; m < members.Length; m++)
            {
                if (_pending[m] is { } pending)
                {
                    try
                    {
                        await pending.ConfigureAwait(false);
                    }
                    catch (Exception)
                    {
                        // its outcome no longer matters
                    }

                    _pending[m] = null;
                }

                try
                {
                    if (_owed[m] is { } owed)
                    {
                        // Positions a checkpoint made durable while this member was reading.
                        _owed[m] = null;
                        await members[m].CommitAsync(owed, CancellationToken.None).ConfigureAwait(false);
                    }

                    await members[m].DisposeAsync().ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    (failures ??= []).Add(ex);
                }
            }

            Gate.Dispose();
            if (failures is not null)
            {
                throw failures.Count == 1 ? failures[0] : new AggregateException(failures);
            }
        }
    }
}
