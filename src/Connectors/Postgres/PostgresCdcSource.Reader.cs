using System.Threading.Channels;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace Compiled.Postgres;

public sealed partial class PostgresCdcSource<T>
{
    /// <summary>
    /// One partition's reader: first the snapshot splits it owns (split s belongs to partition s mod parallelism), each
    /// committed as one checkpoint; then, on partition 0 once every split is committed, the change stream.
    /// </summary>
    private sealed class Reader : ISourceReader<T>
    {
        private readonly PostgresCdcSource<T> _source;
        private readonly int _partition;
        private readonly Plan _plan;
        private readonly CdcMapping<T> _mapping;
        private readonly List<int> _splits;
        private readonly HashSet<int> _done = [];
        private readonly T[] _buffer;
        private int _next;
        private NpgsqlCommand? _select;
        private NpgsqlDataReader? _rows;
        private ChangeStream? _stream;
        private long _end;
        private long _count;
        private long _lastActivity = Environment.TickCount64;
        private bool _heartbeats;

        public Reader(PostgresCdcSource<T> source, int partition)
        {
            _source = source;
            _partition = partition;
            _plan = source._plan ?? throw new InvalidOperationException("The source is not open.");
            _mapping = source._mapping!;
            var parallelism = source._context!.Parallelism;
            _splits = [.. Enumerable.Range(0, _plan.SplitCount).Where(s => s % parallelism == partition && _plan.Splits[s].Offset < 0)];
            _buffer = new T[source._context.BatchSize];
            _end = _plan.Wal.Offset;
            _count = _plan.WalCount.Offset;
            _heartbeats = source.HeartbeatInterval > TimeSpan.Zero;
        }

        public bool CommitsPositions => true;

        /// <summary>Inside a snapshot split nothing can be committed: the split's rows are committed together, with it marked done.</summary>
        public bool CanCheckpoint => _rows is null;

        public IReadOnlyList<SourcePosition> Positions
        {
            get
            {
                var positions = new List<SourcePosition>(_plan.PlanPositions);
                for (var s = _partition; s < _plan.SplitCount; s += _source._context!.Parallelism)
                {
                    var split = _plan.Splits[s];
                    positions.Add(_done.Contains(s) ? split with { Offset = _plan.SplitLsn[s] } : split);
                }

                if (_partition == 0)
                {
                    positions.Add(_plan.Wal with { Offset = _end });
                    positions.Add(_plan.WalCount with { Offset = _count });
                }

                return positions;
            }
        }

        public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            while (_next < _splits.Count)
            {
                var batch = await ReadSplitAsync(cancellationToken).ConfigureAwait(false);
                if (!batch.Records.IsEmpty)
                {
                    return batch;
                }
            }

            if (_stream is null)
            {
                await _plan.EndSnapshotAsync(_partition).ConfigureAwait(false); // once: the partition's splits are read
            }

            if (_partition != 0)
            {
                return SourceBatch<T>.End; // the change stream is read by partition 0 alone: it is one ordered stream
            }

            if (_stream is null)
            {
                // Changes may reach a row only after its snapshot row is committed, by whichever partition read it.
                await _plan.SnapshotDone.WaitAsync(cancellationToken).ConfigureAwait(false);
                _plan.Streaming = true;
                _stream = new ChangeStream(_source, _plan, _mapping, _end, _count, Math.Max(1024, _buffer.Length * 2));
            }

            return await ReadChangesAsync(cancellationToken).ConfigureAwait(false);
        }

        /// <summary>Reads the next rows of the current split; at its end commits it (a checkpoint from inside the read) and returns an empty batch.</summary>
        private async ValueTask<SourceBatch<T>> ReadSplitAsync(CancellationToken cancellationToken)
        {
            var split = _splits[_next];
            if (_rows is null)
            {
                var (connection, transaction) = _plan.SnapshotOf(_partition) ?? throw new InvalidOperationException($"Partition {_partition} has no snapshot to read split {split} in.");
                _select = new NpgsqlCommand($"SELECT {string.Join(", ", _mapping.SelectedColumns.Select(PgColumn.Quote))} FROM {_plan.Table.Qualified} WHERE {_plan.Where(split)}", connection, transaction);
                _rows = await _select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            }

            var lsn = _plan.SplitLsn[split];
            var count = 0;
            while (count < _buffer.Length && await _rows.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                _buffer[count++] = _mapping.ReadSnapshotRow(_rows, lsn, _plan.SnapshotTime);
            }

            if (count > 0)
            {
                Interlocked.Add(ref _source._snapshotRows, count);
                return SourceBatch<T>.Of(_buffer.AsMemory(0, count));
            }

            await _rows.DisposeAsync().ConfigureAwait(false);
            await _select!.DisposeAsync().ConfigureAwait(false);
            _rows = null;
            _select = null;
            _done.Add(split);
            await _source._context!.CheckpointAsync(_partition, cancellationToken).ConfigureAwait(false); // the split's rows, marked done
            _plan.SplitCommitted(split, lsn);
            _next++;
            return SourceBatch<T>.Of(ReadOnlyMemory<T>.Empty);
        }

        private async ValueTask<SourceBatch<T>> ReadChangesAsync(CancellationToken cancellationToken)
        {
            var stream = _stream!;
            while (true)
            {
                var count = 0;
                while (count < _buffer.Length && stream.Items.TryRead(out var item))
                {
                    switch (item.Kind)
                    {
                        case ItemKind.Record:
                            _buffer[count++] = item.Record;
                            _count = item.Index + 1;
                            break;
                        case ItemKind.Commit:
                            _end = item.Lsn;
                            _count = 0;
                            break;
                        case ItemKind.Heartbeat when _count == 0 && item.Lsn > _end:
                            _end = item.Lsn;
                            break;
                    }
                }

                stream.UpdateServerPosition();
                if (count > 0)
                {
                    _lastActivity = Environment.TickCount64;
                    Interlocked.Add(ref _source._changes, count);
                    return SourceBatch<T>.Of(_buffer.AsMemory(0, count));
                }

                // Nothing now: wait a little for changes, then hand back an empty batch so the worker can checkpoint.
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                wait.CancelAfter(200);
                try
                {
                    if (!await stream.Items.WaitToReadAsync(wait.Token).ConfigureAwait(false))
                    {
                        await stream.Completion.ConfigureAwait(false); // the stream failed: its failure is the run's
                        return SourceBatch<T>.End;
                    }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    await HeartbeatIfQuietAsync(cancellationToken).ConfigureAwait(false);
                    await ConfirmIdleAsync(cancellationToken).ConfigureAwait(false);
                    return SourceBatch<T>.Of(ReadOnlyMemory<T>.Empty);
                }
            }
        }

        /// <summary>
        /// After <see cref="HeartbeatInterval"/> without changes, writes a heartbeat into the WAL; when it comes back
        /// through the slot, the position moves past it, and with the next checkpoint the slot's confirmed LSN does too.
        /// </summary>
        private async Task HeartbeatIfQuietAsync(CancellationToken cancellationToken)
        {
            if (!_heartbeats || Environment.TickCount64 - _lastActivity < (long)_source.HeartbeatInterval.TotalMilliseconds)
            {
                return;
            }

            _lastActivity = Environment.TickCount64;
            try
            {
                await using var connection = await _source._dataSource!.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using var command = new NpgsqlCommand("SELECT (pg_logical_emit_message(false, $1, '') - '0/0'::pg_lsn)::bigint", connection);
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = HeartbeatPrefix });
                if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long lsn)
                {
                    InterlockedMax(ref _source._serverLsn, lsn);
                }
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                _heartbeats = false;
                _source._context!.Inform($"heartbeats are off: {ex.MessageText} (GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO the role; meanwhile the slot moves with the server's keepalives while table {_source.Table} is quiet)");
            }
            catch (Exception ex) when (PgErrors.IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                // the next quiet interval tries again; a lost server shows in the change stream itself
            }
        }

        /// <summary>
        /// With everything handed on committed by the sinks, and nothing more on its way, the slot is confirmed at the
        /// position the server last reported — as PostgreSQL's own subscribers do. Without it a quiet slot would hold the
        /// server's WAL (heartbeats aside) and keep a fast shutdown waiting for ever: the server's WAL sender exits only
        /// once its client confirms all it was sent.
        /// </summary>
        private async ValueTask ConfirmIdleAsync(CancellationToken cancellationToken)
        {
            var committed = Interlocked.Read(ref _source._confirmedLsn);
            if (_count != 0 || committed < _end)
            {
                return; // something handed on is not durable yet
            }

            var idle = _stream!.IdlePosition(_end);
            if (idle > committed)
            {
                await ConfirmAsync(idle, cancellationToken).ConfigureAwait(false);
            }
        }

        public ValueTask CommitAsync(CancellationToken cancellationToken) => ConfirmAsync(_end, cancellationToken);

        public ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(positions);
            foreach (var position in positions)
            {
                if (position.Stream == WalStream && position.Partition == 0)
                {
                    return ConfirmAsync(position.Offset, cancellationToken);
                }
            }

            return ValueTask.CompletedTask;
        }

        /// <summary>Everything before <paramref name="lsn"/> is durable downstream: the slot may let the server recycle that WAL.</summary>
        private async ValueTask ConfirmAsync(long lsn, CancellationToken cancellationToken)
        {
            if (_stream is null || lsn <= Interlocked.Read(ref _source._confirmedLsn))
            {
                return;
            }

            await _stream.ConfirmAsync(lsn, cancellationToken).ConfigureAwait(false);
            Interlocked.Exchange(ref _source._confirmedLsn, lsn);
        }

        public async ValueTask DisposeAsync()
        {
            if (_rows is not null)
            {
                await _rows.DisposeAsync().ConfigureAwait(false);
                _rows = null;
            }

            if (_select is not null)
            {
                await _select.DisposeAsync().ConfigureAwait(false);
            }

            await _plan.EndSnapshotAsync(_partition).ConfigureAwait(false);
            if (_stream is not null)
            {
                await _stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static void InterlockedMax(ref long location, long value)
    {
        var current = Interlocked.Read(ref location);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref location, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private enum ItemKind
    {
        Record,
        Commit,
        Heartbeat,
    }

    /// <summary>What the stream hands the reader: a change record (its index in its transaction), a transaction's end, or a heartbeat's LSN.</summary>
    private readonly record struct Item(ItemKind Kind, T Record, long Lsn, long Index);

    /// <summary>
    /// The replication connection and the task that reads it: decodes pgoutput messages into change records, in commit
    /// order, into a bounded channel (a full channel holds the stream back). Transient failures reconnect from the last
    /// record handed on; resumes skip what the positions say was already delivered.
    /// </summary>
    private sealed class ChangeStream : IAsyncDisposable
    {
        private readonly PostgresCdcSource<T> _source;
        private readonly Plan _plan;
        private readonly CdcMapping<T> _mapping;
        private readonly Channel<Item> _items;
        private readonly CancellationTokenSource _stop = new();
        private readonly int _keyField;
        private LogicalReplicationConnection? _connection;
        private long _confirmed;
        private bool _streaming;
        private bool _inTransaction;
        private uint _relation;
        private long _end;
        private long _skip;

        public ChangeStream(PostgresCdcSource<T> source, Plan plan, CdcMapping<T> mapping, long end, long skip, int capacity)
        {
            _source = source;
            _plan = plan;
            _mapping = mapping;
            _end = end;
            _skip = skip;
            _keyField = plan.SplitCount > 1 ? mapping.FieldOf(plan.Table.Key[0].Name) : -1; // more than one split: key ranges
            _items = Channel.CreateBounded<Item>(new BoundedChannelOptions(capacity) { SingleReader = true, SingleWriter = true });
            Completion = Task.Run(() => RunAsync(_stop.Token));
        }

        public ChannelReader<Item> Items => _items.Reader;

        /// <summary>Completes when the stream stops; faults with its failure.</summary>
        public Task Completion { get; }

        /// <summary>
        /// A position the slot may be confirmed at when the reader has committed everything the stream handed it:
        /// the last WAL position the connection heard of (a keepalive's, or the start of a message not yet handed on),
        /// provided no transaction is open and nothing is waiting in the channel; 0 otherwise.
        /// </summary>
        /// <remarks>
        /// Safe because the connection reads its next message only when this stream asks for it: by the time a keepalive
        /// moves the position, every message before it has been decoded and handed on. A message read but not yet handed
        /// on moves it only to the message's own position — a transaction's first LSN, below its commit, which a restart
        /// from there sends again — except a commit, which comes while a transaction is open. The order of the checks
        /// matters: position first, then the open transaction, then the channel (a commit's end enters the channel before
        /// the transaction is marked closed).
        /// </remarks>
        public long IdlePosition(long delivered)
        {
            var heard = _connection is { } connection ? (long)(ulong)connection.LastReceivedLsn : 0;
            return !Volatile.Read(ref _inTransaction) && _items.Reader.Count == 0 && Volatile.Read(ref _end) == delivered ? heard : 0;
        }

        /// <summary>Takes the server's WAL position as the connection last heard it (keepalives carry it), for the slot's lag.</summary>
        public void UpdateServerPosition()
        {
            if (_connection is { } connection)
            {
                InterlockedMax(ref _source._serverLsn, (long)(ulong)connection.LastReceivedLsn);
            }
        }

        public async ValueTask ConfirmAsync(long lsn, CancellationToken cancellationToken)
        {
            Interlocked.Exchange(ref _confirmed, lsn);
            if (_connection is not { } connection)
            {
                return;
            }

            connection.SetReplicationStatus(new NpgsqlLogSequenceNumber((ulong)lsn));
            if (!Volatile.Read(ref _streaming))
            {
                return; // not streaming yet (or reconnecting): the status goes with the connection's first feedback
            }

            try
            {
                await connection.SendStatusUpdate(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Best effort: the connection sends its status every few seconds on its own; a stream that just broke reconnects.
            }
        }

        /// <summary>
        /// Whether the stream failed in a way a new connection may not: PostgreSQL's transient errors, and the server
        /// ending replication on its side (a shutdown ends the COPY, which Npgsql reports as an unexpected message).
        /// </summary>
        private static bool Lost(Exception ex) => PgErrors.IsTransient(ex) || ex is NpgsqlException and not PostgresException;

        private async Task RunAsync(CancellationToken cancellationToken)
        {
            try
            {
                for (var attempt = 1; ; attempt++)
                {
                    var progress = (_end, _skip);
                    try
                    {
                        await StreamAsync(cancellationToken).ConfigureAwait(false);
                        cancellationToken.ThrowIfCancellationRequested();
                        throw new IOException("the server ended the replication stream"); // reconnect, as after a lost connection
                    }
                    catch (Exception ex) when (Lost(ex) && !cancellationToken.IsCancellationRequested && (_end, _skip) != progress)
                    {
                        attempt = 0; // the stream moved since the last failure: a new outage gets all its attempts
                        _source._context!.Inform($"change stream of {_plan.Table.Qualified} lost ({PgErrors.Reason(ex)}); reconnecting");
                    }
                    catch (Exception ex) when (Lost(ex) && attempt < _source.MaxAttempts && !cancellationToken.IsCancellationRequested)
                    {
                        var delay = TimeSpan.FromMilliseconds(Math.Min(5000, 100 * Math.Pow(2, attempt - 1)));
                        _source._context!.Inform($"change stream of {_plan.Table.Qualified} lost ({PgErrors.Reason(ex)}); reconnecting in {Setting.FormatDuration(delay)} (attempt {attempt} of {_source.MaxAttempts})");
                        await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (Lost(ex) && !cancellationToken.IsCancellationRequested)
                    {
                        throw new IOException($"PostgreSQL: the change stream of {_plan.Table.Qualified} could not be read after {_source.MaxAttempts} attempts (MaxAttempts): {PgErrors.Reason(ex)}", ex);
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                _items.Writer.TryComplete();
            }
            catch (Exception ex)
            {
                _items.Writer.TryComplete(ex);
                throw;
            }
        }

        /// <summary>One replication session: from <c>_end</c>, skipping the first <c>_skip</c> records of the first transaction it sends.</summary>
        private async Task StreamAsync(CancellationToken cancellationToken)
        {
            Volatile.Write(ref _streaming, false);
            if (_connection is { } previous)
            {
                _connection = null;
                await previous.DisposeAsync().ConfigureAwait(false);
            }

            var connection = new LogicalReplicationConnection(_source.ConnectionString) { WalReceiverStatusInterval = TimeSpan.FromSeconds(5) };
            if (Interlocked.Read(ref _confirmed) is > 0 and var confirmed)
            {
                connection.SetReplicationStatus(new NpgsqlLogSequenceNumber((ulong)confirmed)); // what its feedback reports until the next checkpoint
            }

            await connection.Open(cancellationToken).ConfigureAwait(false);
            _connection = connection;
            var options = new PgOutputReplicationOptions(_source.PublicationName, PgOutputProtocolVersion.V1, binary: true, messages: true);
            long transaction = 0;
            var time = DateTimeOffset.MinValue;
            long index = 0;
            var skipWhole = false;
            Volatile.Write(ref _inTransaction, false);
            await foreach (var message in connection.StartReplication(new PgOutputReplicationSlot(_plan.Slot), options, cancellationToken, new NpgsqlLogSequenceNumber((ulong)_end)).ConfigureAwait(false))
            {
                Volatile.Write(ref _streaming, true);
                switch (message)
                {
                    case BeginMessage begin:
                        transaction = (long)(ulong)begin.TransactionFinalLsn;
                        time = new DateTimeOffset(DateTime.SpecifyKind(begin.TransactionCommitTimestamp, DateTimeKind.Utc));
                        index = 0;
                        skipWhole = transaction < _end; // delivered completely before (a resend after a restart)
                        Volatile.Write(ref _inTransaction, true);
                        break;
                    case RelationMessage relation when relation.Namespace == _plan.Table.Schema && relation.RelationName == _plan.Table.Name:
                        _relation = relation.RelationId;
                        _mapping.Remap([.. relation.Columns.Select(c => c.ColumnName)]);
                        break;
                    case InsertMessage insert when insert.Relation.RelationId == _relation:
                        await EmitAsync(ChangeKind.Insert, insert.NewRow, keyOnly: false, before: false, restorable: false).ConfigureAwait(false);
                        break;
                    case FullUpdateMessage full when full.Relation.RelationId == _relation:
                        await EmitAsync(ChangeKind.UpdateBefore, full.OldRow, keyOnly: false, before: true, restorable: false).ConfigureAwait(false);
                        await EmitAsync(ChangeKind.UpdateAfter, full.NewRow, keyOnly: false, before: false, restorable: true).ConfigureAwait(false);
                        break;
                    case IndexUpdateMessage keyed when keyed.Relation.RelationId == _relation:
                        await EmitAsync(ChangeKind.UpdateBefore, keyed.Key, keyOnly: true, before: false, restorable: false).ConfigureAwait(false);
                        await EmitAsync(ChangeKind.UpdateAfter, keyed.NewRow, keyOnly: false, before: false, restorable: false).ConfigureAwait(false);
                        break;
                    case UpdateMessage update when update.Relation.RelationId == _relation:
                        await EmitAsync(ChangeKind.UpdateAfter, update.NewRow, keyOnly: false, before: false, restorable: false).ConfigureAwait(false);
                        break;
                    case FullDeleteMessage full when full.Relation.RelationId == _relation:
                        await EmitAsync(ChangeKind.Delete, full.OldRow, keyOnly: false, before: false, restorable: false).ConfigureAwait(false);
                        break;
                    case KeyDeleteMessage keyed when keyed.Relation.RelationId == _relation:
                        await EmitAsync(ChangeKind.Delete, keyed.Key, keyOnly: true, before: false, restorable: false).ConfigureAwait(false);
                        break;
                    case TruncateMessage truncate when truncate.Relations.Any(r => r.RelationId == _relation):
                        throw new NonRetryableException($"Table {_plan.Table.Qualified} was truncated (transaction at LSN {Lsn(transaction)}): a change stream of rows cannot carry a TRUNCATE, so the replica and the lake would no longer match. Publish only insert, update, delete (the default of the publication the source creates), or take a new snapshot.");
                    case CommitMessage commit:
                        if (!skipWhole)
                        {
                            var end = (long)(ulong)commit.TransactionEndLsn;
                            await _items.Writer.WriteAsync(new Item(ItemKind.Commit, default!, end, 0), cancellationToken).ConfigureAwait(false);
                            Volatile.Write(ref _end, end);
                            _skip = 0;
                        }

                        // Only now, with its end in the channel: ConfirmIdle relies on this order.
                        Volatile.Write(ref _inTransaction, false);
                        break;
                    case LogicalDecodingMessage logical when !Volatile.Read(ref _inTransaction) && logical.Prefix == HeartbeatPrefix:
                        var lsn = (long)(ulong)logical.MessageLsn;
                        if (lsn > _end)
                        {
                            await _items.Writer.WriteAsync(new Item(ItemKind.Heartbeat, default!, lsn, 0), cancellationToken).ConfigureAwait(false);
                            Volatile.Write(ref _end, lsn);
                        }

                        break;
                }
            }

            // Whether the snapshot that read the change's row (its split's) already holds the change: it committed before it.
            bool InSnapshot() => _plan.SplitCount > 0 && transaction < _plan.SplitLsn[_keyField >= 0 ? _plan.SplitOf(_mapping.KeyValue(_keyField)) : 0];

            async ValueTask EmitAsync(ChangeKind kind, ReplicationTuple tuple, bool keyOnly, bool before, bool restorable)
            {
                var complete = await _mapping.ReadTupleAsync(tuple, keyOnly, cancellationToken).ConfigureAwait(false);
                var at = index++;
                if (before)
                {
                    _mapping.SaveBefore(); // an update's new row fills its unchanged TOAST values from here
                }
                else if (!complete)
                {
                    if (!restorable)
                    {
                        throw new NonRetryableException($"A change of table {_plan.Table.Qualified} (LSN {Lsn(transaction)}) did not carry column {_mapping.UnchangedColumns()}: PostgreSQL leaves out large (TOAST) values an update did not change unless the table has REPLICA IDENTITY FULL. ALTER TABLE {_plan.Table.Qualified} REPLICA IDENTITY FULL.");
                    }

                    _mapping.RestoreUnchanged();
                }

                if (skipWhole || at < _skip || InSnapshot())
                {
                    _mapping.Build(kind, transaction, time); // delivered before, or already in the snapshot of its split
                    return;
                }

                var record = _mapping.Build(kind, transaction, time);
                await _items.Writer.WriteAsync(new Item(ItemKind.Record, record, transaction, at), cancellationToken).ConfigureAwait(false);
                _skip = at + 1; // a reconnect resumes after this record
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await Completion.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // its failure was the run's, reported through the reader
            }

            if (_connection is not null)
            {
                await _connection.DisposeAsync().ConfigureAwait(false);
            }

            _stop.Dispose();
        }
    }
}
