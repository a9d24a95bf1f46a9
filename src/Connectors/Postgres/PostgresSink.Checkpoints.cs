using Npgsql;

namespace Compiled.Postgres;

/// <summary>
/// Exactly-once window results: in a run with keyed state behind Kafka, the writers keep each checkpoint's rows aside
/// (<see cref="Checkpoint.Aligned"/>) and the sink commits them, every source position and every window's state in one
/// transaction when the checkpoint completes. The tables <c>compiled_checkpoints</c> (per pipeline: the last committed
/// checkpoint, its positions, and the run that owns it) and <c>compiled_state</c> (per window and keyed partition: the
/// state's bytes) live beside the sink's table.
/// </summary>
public sealed partial class PostgresSink<T> : ICheckpointCommitter
{
    /// <summary>The table of each pipeline's last committed checkpoint.</summary>
    public const string CheckpointsTable = "compiled_checkpoints";

    /// <summary>The table of the windows' state at each pipeline's last committed checkpoint.</summary>
    public const string StateTable = "compiled_state";

    private const string CheckpointTablesSql = $"""
        CREATE TABLE IF NOT EXISTS {CheckpointsTable} (
            pipeline text PRIMARY KEY, checkpoint_id bigint NOT NULL, run_epoch bigint NOT NULL,
            streams text[] NOT NULL, partitions integer[] NOT NULL, offsets bigint[] NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE IF NOT EXISTS {StateTable} (
            pipeline text NOT NULL, "window" text NOT NULL, partition integer NOT NULL, checkpoint_id bigint NOT NULL,
            schema text NOT NULL, state bytea NOT NULL, PRIMARY KEY (pipeline, "window", partition))
        """;

    private readonly Lock _staging = new();
    private readonly SortedDictionary<long, List<T>> _staged = [];
    private long _runEpoch;

    /// <summary>
    /// Ends the session of a client that leaves its checkpoint transaction idle for 10 s — a process frozen between two
    /// statements — so the row locks it holds do not block its partitions' next owner for longer.
    /// </summary>
    private const string ShortIdleSql = "SET LOCAL idle_in_transaction_session_timeout = '10s'";

    /// <inheritdoc/>
    public string CheckpointLocation => $"PostgreSQL tables {CheckpointsTable} and {StateTable} (beside table {_options.Table})";

    /// <summary>
    /// A run claims: rows an earlier run in this process kept aside for checkpoints that never committed (it was
    /// aborted, lost its partitions or was fenced) are dropped — the new run numbers its checkpoints from the stored
    /// one, and would otherwise commit them with its own.
    /// </summary>
    private void DropStaged()
    {
        lock (_staging)
        {
            _staged.Clear();
        }
    }

    /// <summary>Keeps a writer's rows of checkpoint <paramref name="checkpoint"/> until the whole checkpoint commits.</summary>
    private void Stage(long checkpoint, List<T> rows)
    {
        if (rows.Count == 0)
        {
            return;
        }

        lock (_staging)
        {
            if (!_staged.TryGetValue(checkpoint, out var staged))
            {
                _staged[checkpoint] = staged = [];
            }

            staged.AddRange(rows);
        }
    }

    /// <inheritdoc/>
    public async ValueTask<StoredCheckpoint?> ClaimCheckpointAsync(string pipeline, CancellationToken cancellationToken)
    {
        var dataSource = _dataSource ?? throw new InvalidOperationException("The sink is not open.");
        _checkpointsState = true; // the run checkpoints window state: its rows commit with it, staged, not streamed
        DropStaged();
        return await WithRetriesAsync(
            "claim the pipeline's checkpoints",
            async () =>
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (var distributed = new NpgsqlCommand($"SELECT count(*) FROM {PartitionsTable} WHERE pipeline = @pipeline AND checkpoint_id > 0", connection, transaction))
                {
                    distributed.Parameters.Add(new NpgsqlParameter<string>("pipeline", pipeline));
                    if (await distributed.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long count and > 0)
                    {
                        throw new NonRetryableException($"Pipeline '{pipeline}': {PartitionsTable} holds checkpoints of {count} partitions written by a distributed run (KafkaSourceOptions.Distributed); a single process cannot take them over. Run it distributed, or delete the pipeline's rows in {PartitionsTable} and {PartitionStateTable} to start over with empty state.");
                    }
                }

                long id;
                List<SourcePosition> positions;
                DateTimeOffset? taken;
                await using (var last = new NpgsqlCommand($"SELECT updated_at FROM {CheckpointsTable} WHERE pipeline = @pipeline", connection, transaction))
                {
                    last.Parameters.Add(new NpgsqlParameter<string>("pipeline", pipeline));
                    taken = await last.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is DateTime at ? new DateTimeOffset(at, TimeSpan.Zero) : null; // before the claim refreshes it
                }

                await using (var claim = new NpgsqlCommand(
                    $"""
                    INSERT INTO {CheckpointsTable} AS c (pipeline, checkpoint_id, run_epoch, streams, partitions, offsets)
                    VALUES (@pipeline, 0, 1, ARRAY[]::text[], ARRAY[]::integer[], ARRAY[]::bigint[])
                    ON CONFLICT (pipeline) DO UPDATE SET run_epoch = c.run_epoch + 1, updated_at = now()
                    RETURNING checkpoint_id, run_epoch, streams, partitions, offsets
                    """,
                    connection,
                    transaction))
                {
                    claim.Parameters.Add(new NpgsqlParameter<string>("pipeline", pipeline));
                    await using var reader = await claim.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    id = reader.GetInt64(0);
                    _runEpoch = reader.GetInt64(1);
                    var streams = reader.GetFieldValue<string[]>(2);
                    var partitions = reader.GetFieldValue<int[]>(3);
                    var offsets = reader.GetFieldValue<long[]>(4);
                    positions = [.. streams.Select((stream, i) => new SourcePosition(stream, partitions[i], offsets[i]))];
                }

                var state = new List<WindowState>();
                if (id > 0)
                {
                    await using var select = new NpgsqlCommand($"""SELECT "window", partition, schema, state FROM {StateTable} WHERE pipeline = @pipeline AND checkpoint_id = @id""", connection, transaction);
                    select.Parameters.Add(new NpgsqlParameter<string>("pipeline", pipeline));
                    select.Parameters.Add(new NpgsqlParameter<long>("id", id));
                    await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        state.Add(new WindowState(reader.GetString(0), reader.GetString(2), reader.GetInt32(1), reader.GetFieldValue<byte[]>(3)));
                    }
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return id == 0 ? null : new StoredCheckpoint(id, positions, state) { Taken = taken };
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask CommitCheckpointAsync(string pipeline, StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        return CommitStagedAsync(
            checkpoint.Id,
            async (connection, transaction) =>
            {
                await using var owner = new NpgsqlCommand($"SELECT checkpoint_id, run_epoch FROM {CheckpointsTable} WHERE pipeline = @pipeline FOR UPDATE", connection, transaction);
                owner.Parameters.Add(new NpgsqlParameter<string>("pipeline", pipeline));
                await using var reader = await owner.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false) || reader.GetInt64(1) != _runEpoch)
                {
                    throw new FencedException($"Pipeline '{pipeline}': another run of this pipeline has claimed its checkpoints in {CheckpointsTable} since this one started; this run stops without committing (its rows would be written twice).");
                }

                return reader.GetInt64(0) >= checkpoint.Id; // the previous attempt's COMMIT reached the server before its connection broke
            },
            async (connection, transaction) =>
            {
                await using var update = new NpgsqlCommand(
                    $"""
                    UPDATE {CheckpointsTable} SET checkpoint_id = @id, streams = @streams, partitions = @partitions, offsets = @offsets, updated_at = now()
                    WHERE pipeline = @pipeline;
                    DELETE FROM {StateTable} WHERE pipeline = @pipeline;
                    INSERT INTO {StateTable} (pipeline, "window", partition, checkpoint_id, schema, state)
                    SELECT @pipeline, w, p, @id, s, b FROM unnest(@windows, @statePartitions, @schemas, @states) AS u(w, p, s, b);
                    """,
                    connection,
                    transaction);
                var positions = checkpoint.Positions;
                update.Parameters.Add(new NpgsqlParameter<string>("pipeline", pipeline));
                update.Parameters.Add(new NpgsqlParameter<long>("id", checkpoint.Id));
                update.Parameters.Add(new NpgsqlParameter<string[]>("streams", [.. positions.Select(p => p.Stream)]));
                update.Parameters.Add(new NpgsqlParameter<int[]>("partitions", [.. positions.Select(p => p.Partition)]));
                update.Parameters.Add(new NpgsqlParameter<long[]>("offsets", [.. positions.Select(p => p.Offset)]));
                AddState(update, checkpoint.State);
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <summary>The state of a checkpoint as the parameters <c>@windows, @statePartitions, @schemas, @states</c>.</summary>
    private static void AddState(NpgsqlCommand command, IReadOnlyList<WindowState> state)
    {
        command.Parameters.Add(new NpgsqlParameter<string[]>("windows", [.. state.Select(s => s.Window)]));
        command.Parameters.Add(new NpgsqlParameter<int[]>("statePartitions", [.. state.Select(s => s.Partition)]));
        command.Parameters.Add(new NpgsqlParameter<string[]>("schemas", [.. state.Select(s => s.Schema)]));
        command.Parameters.Add(new NpgsqlParameter<byte[][]>("states", [.. state.Select(s => s.Bytes.ToArray())]));
    }

    /// <summary>
    /// One transaction: the rows staged for every checkpoint up to <paramref name="id"/> are written, then
    /// <paramref name="owns"/> locks the checkpoint's rows and checks this run still owns them (it throws when not; true:
    /// this checkpoint is committed already, and the transaction rolls back), and <paramref name="record"/> stores
    /// positions and state. Retried whole.
    /// </summary>
    private async ValueTask CommitStagedAsync(long id, Func<NpgsqlConnection, NpgsqlTransaction, Task<bool>> owns, Func<NpgsqlConnection, NpgsqlTransaction, Task> record, CancellationToken cancellationToken)
    {
        var dataSource = _dataSource ?? throw new InvalidOperationException("The sink is not open.");
        var rows = new List<T>();
        lock (_staging)
        {
            foreach (var staged in _staged.Keys.Where(staged => staged <= id).ToList())
            {
                rows.AddRange(_staged[staged]);
                _staged.Remove(staged);
            }
        }

        var buffers = new PgColumnBuffer?[_columns.Length];
        var written = await WithRetriesAsync(
            "commit a checkpoint",
            async () =>
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, transaction, ShortIdleSql, cancellationToken).ConfigureAwait(false);

                // The rows first, the locks last: a process frozen while it writes (a long GC pause, SIGSTOP) must not
                // hold the rows its partitions' next owner claims; the check under the locks still decides the commit.
                if (rows.Count > 0)
                {
                    await WriteRowsAsync(connection, transaction, rows, 0, buffers, cancellationToken).ConfigureAwait(false);
                }

                if (await owns(connection, transaction).ConfigureAwait(false))
                {
                    return 0; // rolled back: committed already
                }

                await record(connection, transaction).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return rows.Count;
            },
            cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _rowsCommitted, written);
    }
}
