using Npgsql;

namespace Compiled.Postgres;

/// <summary>
/// Checkpoints of a distributed run (several copies of a pipeline in one Kafka consumer group): kept per input
/// partition, so that a partition's offset and the state of the keys it carries move together to whichever copy holds
/// it next. <c>compiled_partitions</c> has a row per partition (its next offset, its fencing epoch, the checkpoint
/// that wrote it); <c>compiled_partition_state</c> the state of each window for it. A copy's commit locks the rows of
/// every partition it holds, in one order, and writes its rows, offsets and state only if each still carries the epoch
/// this copy claimed: a claim by another copy (which takes the same locks) either comes after the commit and restores
/// it, or comes first and the commit is refused (<see cref="FencedException"/>).
/// </summary>
public sealed partial class PostgresSink<T> : IPartitionedCheckpointCommitter
{
    /// <summary>The table of each input partition's position and owner in distributed runs.</summary>
    public const string PartitionsTable = "compiled_partitions";

    /// <summary>The table of the windows' state per input partition in distributed runs.</summary>
    public const string PartitionStateTable = "compiled_partition_state";

    private const string PartitionTablesSql = $"""
        CREATE TABLE IF NOT EXISTS {PartitionsTable} (
            pipeline text NOT NULL, stream text NOT NULL, partition integer NOT NULL, next_offset bigint NOT NULL,
            epoch bigint NOT NULL, checkpoint_id bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (pipeline, stream, partition));
        CREATE TABLE IF NOT EXISTS {PartitionStateTable} (
            pipeline text NOT NULL, "window" text NOT NULL, stream text NOT NULL, partition integer NOT NULL,
            checkpoint_id bigint NOT NULL, schema text NOT NULL, state bytea NOT NULL,
            PRIMARY KEY (pipeline, "window", stream, partition));
        ALTER TABLE {PartitionsTable} ADD COLUMN IF NOT EXISTS sink_table text
        """;

    /// <summary>
    /// The table that copies writing another table than this sink's recorded for <paramref name="pipeline"/>'s
    /// distributed checkpoints, or null: such a copy would take over partitions with their state, and the windows' rows
    /// would end up in two tables, so the sink refuses to open (or to claim).
    /// </summary>
    private async Task<string?> OtherTableAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string pipeline, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT sink_table FROM {PartitionsTable} WHERE pipeline = @pipeline AND sink_table <> @table LIMIT 1", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<string>("pipeline", pipeline));
        command.Parameters.Add(new NpgsqlParameter<string>("table", _options.Table));
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
    }

    private NonRetryableException OtherTable(string pipeline, string other)
        => new($"Pipeline '{pipeline}': its distributed checkpoints in {PartitionsTable} belong to copies writing table '{other}', and this copy writes '{_options.Table}'. Copies of one pipeline share its partitions and their state, so they must write one table; a pipeline of the same name writing another table needs another database or schema (Search Path in the connection string).");

    /// <inheritdoc/>
    public string PartitionCheckpointLocation => $"PostgreSQL tables {PartitionsTable} and {PartitionStateTable} (beside table {_options.Table})";

    /// <inheritdoc/>
    public async ValueTask<StoredCheckpoint> ClaimPartitionsAsync(string pipeline, IReadOnlyList<SourcePosition> partitions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        var dataSource = _dataSource ?? throw new InvalidOperationException("The sink is not open.");
        _checkpointsState = true;
        DropStaged();
        var streams = partitions.Select(p => p.Stream).Distinct().ToList();
        if (streams.Count > 1)
        {
            throw new NonRetryableException($"Pipeline '{pipeline}': a distributed run reads one topic; this one was assigned {string.Join(", ", streams)}.");
        }

        return await WithRetriesAsync(
            "claim the partitions' checkpoints",
            async () =>
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, transaction, ShortIdleSql, cancellationToken).ConfigureAwait(false);
                await using (var single = new NpgsqlCommand($"SELECT checkpoint_id FROM {CheckpointsTable} WHERE pipeline = @pipeline AND checkpoint_id > 0", connection, transaction))
                {
                    single.Parameters.Add(new NpgsqlParameter<string>("pipeline", pipeline));
                    if (await single.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long id)
                    {
                        throw new NonRetryableException($"Pipeline '{pipeline}': {CheckpointsTable} holds checkpoint {id} of a run as a single process, whose state is spread by a hash no other process shares; a distributed run cannot take it over. Finish it as a single process, or delete the pipeline's rows in {CheckpointsTable} and {StateTable} to start the distributed run with empty state.");
                    }
                }

                var positions = new List<SourcePosition>(partitions.Count);
                var ids = new Dictionary<int, long>();
                DateTimeOffset? taken;
                await using (var last = new NpgsqlCommand($"SELECT max(updated_at) FROM {PartitionsTable} WHERE pipeline = @pipeline AND checkpoint_id > 0 AND (stream, partition) IN (SELECT * FROM unnest(@streams, @partitions))", connection, transaction))
                {
                    AddPartitions(last, pipeline, partitions);
                    taken = await last.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is DateTime at ? new DateTimeOffset(at, TimeSpan.Zero) : null; // before the claim refreshes it
                }

                await using (var claim = new NpgsqlCommand(
                    $"""
                    INSERT INTO {PartitionsTable} AS c (pipeline, stream, partition, next_offset, epoch, checkpoint_id, sink_table)
                    SELECT @pipeline, s, p, -1, 1, 0, @table FROM unnest(@streams, @partitions) AS u(s, p) ORDER BY s, p
                    ON CONFLICT (pipeline, stream, partition) DO UPDATE SET epoch = c.epoch + 1, updated_at = now(), sink_table = EXCLUDED.sink_table
                    WHERE c.sink_table IS NULL OR c.sink_table = EXCLUDED.sink_table
                    RETURNING stream, partition, next_offset, epoch, checkpoint_id
                    """,
                    connection,
                    transaction))
                {
                    AddPartitions(claim, pipeline, partitions);
                    claim.Parameters.Add(new NpgsqlParameter<string>("table", _options.Table));
                    await using var reader = await claim.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        positions.Add(new SourcePosition(reader.GetString(0), reader.GetInt32(1), reader.GetInt64(2), reader.GetInt64(3)));
                        ids[reader.GetInt32(1)] = reader.GetInt64(4);
                    }
                }

                if (positions.Count < partitions.Count)
                {
                    // A partition not claimed: a copy writing another table holds it (it opened at the same moment as this one).
                    throw OtherTable(pipeline, await OtherTableAsync(connection, transaction, pipeline, cancellationToken).ConfigureAwait(false) ?? "?");
                }

                var state = new List<WindowState>();
                await using (var select = new NpgsqlCommand(
                    $"""
                    SELECT s."window", s.partition, s.schema, s.state FROM {PartitionStateTable} s
                    JOIN {PartitionsTable} c ON c.pipeline = s.pipeline AND c.stream = s.stream AND c.partition = s.partition AND c.checkpoint_id = s.checkpoint_id
                    WHERE s.pipeline = @pipeline AND (s.stream, s.partition) IN (SELECT * FROM unnest(@streams, @partitions))
                    """,
                    connection,
                    transaction))
                {
                    AddPartitions(select, pipeline, partitions);
                    await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        state.Add(new WindowState(reader.GetString(0), reader.GetString(2), reader.GetInt32(1), reader.GetFieldValue<byte[]>(3)));
                    }
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return new StoredCheckpoint(ids.Values.DefaultIfEmpty(0).Max(), positions, state) { Taken = taken };
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask CommitPartitionsAsync(string pipeline, StoredCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var positions = checkpoint.Positions.OrderBy(p => p.Stream, StringComparer.Ordinal).ThenBy(p => p.Partition).ToList();
        return CommitStagedAsync(
            checkpoint.Id,
            async (connection, transaction) =>
            {
                // Every partition's row, locked in one order (a claim locks in the same order: no deadlock).
                await using var owner = new NpgsqlCommand(
                    $"""
                    SELECT c.stream, c.partition, c.epoch, c.checkpoint_id FROM {PartitionsTable} c
                    WHERE c.pipeline = @pipeline AND (c.stream, c.partition) IN (SELECT * FROM unnest(@streams, @partitions))
                    ORDER BY c.stream, c.partition FOR UPDATE
                    """,
                    connection,
                    transaction);
                AddPartitions(owner, pipeline, positions);
                var epochs = positions.ToDictionary(p => (p.Stream, p.Partition), p => p.Epoch);
                var seen = 0;
                var done = true;
                await using var reader = await owner.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var key = (reader.GetString(0), reader.GetInt32(1));
                    if (!epochs.TryGetValue(key, out var epoch) || reader.GetInt64(2) != epoch)
                    {
                        throw new FencedException($"Pipeline '{pipeline}': partition {key.Item1}[{key.Item2}] was claimed by another copy of the pipeline since this one took it (epoch {reader.GetInt64(2)}, this copy's {epoch}); nothing of checkpoint {checkpoint.Id} was committed.");
                    }

                    seen++;
                    done &= reader.GetInt64(3) >= checkpoint.Id;
                }

                if (seen != positions.Count)
                {
                    throw new FencedException($"Pipeline '{pipeline}': {positions.Count - seen} of the partitions this copy claimed are no longer in {PartitionsTable}; nothing of checkpoint {checkpoint.Id} was committed.");
                }

                return done && seen > 0; // the previous attempt's COMMIT reached the server before its connection broke
            },
            async (connection, transaction) =>
            {
                await using var update = new NpgsqlCommand(
                    $"""
                    UPDATE {PartitionsTable} c SET next_offset = CASE WHEN u.o >= 0 THEN u.o ELSE c.next_offset END, checkpoint_id = @id, updated_at = now()
                    FROM unnest(@streams, @partitions, @offsets) AS u(s, p, o)
                    WHERE c.pipeline = @pipeline AND c.stream = u.s AND c.partition = u.p;
                    DELETE FROM {PartitionStateTable} WHERE pipeline = @pipeline AND (stream, partition) IN (SELECT * FROM unnest(@streams, @partitions));
                    INSERT INTO {PartitionStateTable} (pipeline, "window", stream, partition, checkpoint_id, schema, state)
                    SELECT @pipeline, w, @stream, p, @id, s, b FROM unnest(@windows, @statePartitions, @schemas, @states) AS u(w, p, s, b);
                    """,
                    connection,
                    transaction);
                AddPartitions(update, pipeline, positions);
                update.Parameters.Add(new NpgsqlParameter<long>("id", checkpoint.Id));
                update.Parameters.Add(new NpgsqlParameter<long[]>("offsets", [.. positions.Select(p => p.Offset)]));
                update.Parameters.Add(new NpgsqlParameter<string>("stream", positions.Count > 0 ? positions[0].Stream : ""));
                AddState(update, checkpoint.State);
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <summary>The parameters every per-partition statement shares: the pipeline and its partitions as two arrays (unnest(@streams, @partitions)).</summary>
    private static void AddPartitions(NpgsqlCommand command, string pipeline, IReadOnlyList<SourcePosition> partitions)
    {
        command.Parameters.Add(new NpgsqlParameter<string>("pipeline", pipeline));
        command.Parameters.Add(new NpgsqlParameter<string[]>("streams", [.. partitions.Select(p => p.Stream)]));
        command.Parameters.Add(new NpgsqlParameter<int[]>("partitions", [.. partitions.Select(p => p.Partition)]));
    }
}
