using MySqlConnector;

namespace Compiled.MySql;

/// <summary>
/// Exactly-once window results: in a run with keyed state behind Kafka, the writers keep each checkpoint's rows aside
/// (<see cref="Checkpoint.Aligned"/>) and the sink commits them, every source position and every window's state in one
/// transaction when the checkpoint completes — the PostgreSQL sink's design. The tables <c>compiled_checkpoints</c>
/// (per pipeline: the last committed checkpoint and the run that owns it), <c>compiled_checkpoint_positions</c> (its
/// source positions) and <c>compiled_state</c> (per window and keyed partition: the state's bytes, in chunks of
/// 1 MiB so that no statement outgrows the server's <c>max_allowed_packet</c>) live beside the sink's table.
/// </summary>
public sealed partial class MySqlSink<T> : ICheckpointCommitter
{
    /// <summary>The table of each pipeline's last committed checkpoint.</summary>
    public const string CheckpointsTable = "compiled_checkpoints";

    /// <summary>The table of the source positions of each pipeline's last committed checkpoint.</summary>
    public const string PositionsTable = "compiled_checkpoint_positions";

    /// <summary>The table of the windows' state at each pipeline's last committed checkpoint.</summary>
    public const string StateTable = "compiled_state";

    private const int StateChunk = 1 << 20;

    private static readonly string[] CheckpointTablesSql =
    [
        $"""
        CREATE TABLE IF NOT EXISTS {CheckpointsTable} (
            pipeline VARCHAR(190) NOT NULL PRIMARY KEY, checkpoint_id BIGINT NOT NULL, run_epoch BIGINT NOT NULL,
            updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        $"""
        CREATE TABLE IF NOT EXISTS {PositionsTable} (
            pipeline VARCHAR(190) NOT NULL, stream VARCHAR(190) NOT NULL, `partition` INT NOT NULL, next_offset BIGINT NOT NULL,
            PRIMARY KEY (pipeline, stream, `partition`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        $"""
        CREATE TABLE IF NOT EXISTS {StateTable} (
            pipeline VARCHAR(190) NOT NULL, `window` VARCHAR(190) NOT NULL, `partition` INT NOT NULL, chunk INT NOT NULL,
            checkpoint_id BIGINT NOT NULL, `schema` LONGTEXT NOT NULL, state LONGBLOB NOT NULL,
            PRIMARY KEY (pipeline, `window`, `partition`, chunk)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
    ];

    private readonly Lock _staging = new();
    private readonly SortedDictionary<long, List<T>> _staged = [];
    private long _runEpoch;

    /// <inheritdoc/>
    public string CheckpointLocation => $"MySQL tables {CheckpointsTable}, {PositionsTable} and {StateTable} (beside table {_options.Table})";

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
        return await WithRetriesAsync(
            "claim the pipeline's checkpoints",
            async () =>
            {
                await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (var claim = new MySqlCommand(
                    $"""
                    INSERT INTO {CheckpointsTable} (pipeline, checkpoint_id, run_epoch, updated_at) VALUES (@pipeline, 0, 1, UTC_TIMESTAMP(6))
                    ON DUPLICATE KEY UPDATE run_epoch = run_epoch + 1, updated_at = UTC_TIMESTAMP(6)
                    """,
                    connection,
                    transaction))
                {
                    claim.Parameters.AddWithValue("@pipeline", pipeline);
                    await claim.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                long id;
                await using (var owner = new MySqlCommand($"SELECT checkpoint_id, run_epoch FROM {CheckpointsTable} WHERE pipeline = @pipeline", connection, transaction))
                {
                    owner.Parameters.AddWithValue("@pipeline", pipeline);
                    await using var reader = await owner.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    id = reader.GetInt64(0);
                    _runEpoch = reader.GetInt64(1);
                }

                var positions = new List<SourcePosition>();
                var state = new List<WindowState>();
                if (id > 0)
                {
                    await using (var select = new MySqlCommand($"SELECT stream, `partition`, next_offset FROM {PositionsTable} WHERE pipeline = @pipeline", connection, transaction))
                    {
                        select.Parameters.AddWithValue("@pipeline", pipeline);
                        await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            positions.Add(new SourcePosition(reader.GetString(0), reader.GetInt32(1), reader.GetInt64(2)));
                        }
                    }

                    await using (var select = new MySqlCommand(
                        $"SELECT `window`, `partition`, `schema`, state FROM {StateTable} WHERE pipeline = @pipeline AND checkpoint_id = @id ORDER BY `window`, `partition`, chunk",
                        connection,
                        transaction))
                    {
                        select.Parameters.AddWithValue("@pipeline", pipeline);
                        select.Parameters.AddWithValue("@id", id);
                        await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                        var bytes = new MemoryStream();
                        (string Window, int Partition, string Schema)? current = null;
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            var part = (reader.GetString(0), reader.GetInt32(1), reader.GetString(2));
                            if (current is { } done && (done.Window, done.Partition) != (part.Item1, part.Item2))
                            {
                                state.Add(new WindowState(done.Window, done.Schema, done.Partition, bytes.ToArray()));
                                bytes.SetLength(0);
                            }

                            current = part;
                            var chunk = reader.GetFieldValue<byte[]>(3);
                            bytes.Write(chunk);
                        }

                        if (current is { } last)
                        {
                            state.Add(new WindowState(last.Window, last.Schema, last.Partition, bytes.ToArray()));
                        }
                    }
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return id == 0 ? null : new StoredCheckpoint(id, positions, state);
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask CommitCheckpointAsync(string pipeline, StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var rows = new List<T>();
        lock (_staging)
        {
            foreach (var id in _staged.Keys.Where(id => id <= checkpoint.Id).ToList())
            {
                rows.AddRange(_staged[id]);
                _staged.Remove(id);
            }
        }

        var reader = new RecordReader<T>(_schema!, _columns);
        var written = await WithRetriesAsync(
            "commit a checkpoint",
            async () =>
            {
                await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (var owner = new MySqlCommand($"SELECT checkpoint_id, run_epoch FROM {CheckpointsTable} WHERE pipeline = @pipeline FOR UPDATE", connection, transaction))
                {
                    owner.Parameters.AddWithValue("@pipeline", pipeline);
                    await using var found = await owner.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    if (!await found.ReadAsync(cancellationToken).ConfigureAwait(false) || found.GetInt64(1) != _runEpoch)
                    {
                        throw new NonRetryableException($"Pipeline '{pipeline}': another run of this pipeline has claimed its checkpoints in {CheckpointsTable} since this one started; this run stops without committing (its rows would be written twice).");
                    }

                    if (found.GetInt64(0) >= checkpoint.Id)
                    {
                        return 0; // the previous attempt's COMMIT reached the server before its connection broke
                    }
                }

                if (rows.Count > 0)
                {
                    await WriteRowsAsync(connection, transaction, rows, reader, cancellationToken).ConfigureAwait(false);
                }

                await using (var update = new MySqlCommand(
                    $"""
                    UPDATE {CheckpointsTable} SET checkpoint_id = @id, updated_at = UTC_TIMESTAMP(6) WHERE pipeline = @pipeline;
                    DELETE FROM {PositionsTable} WHERE pipeline = @pipeline;
                    DELETE FROM {StateTable} WHERE pipeline = @pipeline;
                    """,
                    connection,
                    transaction))
                {
                    update.Parameters.AddWithValue("@pipeline", pipeline);
                    update.Parameters.AddWithValue("@id", checkpoint.Id);
                    await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                foreach (var position in checkpoint.Positions)
                {
                    await using var insert = new MySqlCommand($"INSERT INTO {PositionsTable} (pipeline, stream, `partition`, next_offset) VALUES (@pipeline, @stream, @partition, @offset)", connection, transaction);
                    insert.Parameters.AddWithValue("@pipeline", pipeline);
                    insert.Parameters.AddWithValue("@stream", position.Stream);
                    insert.Parameters.AddWithValue("@partition", position.Partition);
                    insert.Parameters.AddWithValue("@offset", position.Offset);
                    await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                foreach (var state in checkpoint.State)
                {
                    // One statement per chunk: a window's state may be larger than the server accepts in one packet.
                    for (var start = 0; start == 0 || start < state.Bytes.Length; start += StateChunk)
                    {
                        await using var insert = new MySqlCommand(
                            $"INSERT INTO {StateTable} (pipeline, `window`, `partition`, chunk, checkpoint_id, `schema`, state) VALUES (@pipeline, @window, @partition, @chunk, @id, @schema, @state)",
                            connection,
                            transaction);
                        insert.Parameters.AddWithValue("@pipeline", pipeline);
                        insert.Parameters.AddWithValue("@window", state.Window);
                        insert.Parameters.AddWithValue("@partition", state.Partition);
                        insert.Parameters.AddWithValue("@chunk", start / StateChunk);
                        insert.Parameters.AddWithValue("@id", checkpoint.Id);
                        insert.Parameters.AddWithValue("@schema", state.Schema);
                        insert.Parameters.AddWithValue("@state", state.Bytes.Slice(start, Math.Min(StateChunk, state.Bytes.Length - start)));
                        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return rows.Count;
            },
            cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _rowsCommitted, written);
    }
}
