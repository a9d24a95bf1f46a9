using System.Globalization;
using System.Text;
using Compiled.Connectors;
using Npgsql;
using Npgsql.Replication;
using NpgsqlTypes;

namespace Compiled.Postgres;

/// <summary>
/// Change data capture from a PostgreSQL table: an initial snapshot of its rows, consistent with the stream of
/// changes that follows, then every insert, update and delete as it commits — read through logical replication
/// (<c>pgoutput</c>) from a replication slot. Each row and change becomes one record of <typeparamref name="T"/>,
/// whose members map to the table's columns by name (checked at start) and may add a <see cref="ChangeKind"/> member,
/// the commit LSN (<see cref="LsnField"/>) and the commit time (<see cref="CommitTimeField"/>).
/// </summary>
/// <remarks>
/// <para>The snapshot is read in splits by ranges of an integer primary key, in parallel over the pipeline's partitions,
/// inside the snapshot the slot exported when it was created; each split is committed by the sinks as one checkpoint.
/// The change stream starts once every split is committed, at the slot's consistent point, on partition 0: nothing
/// is lost or seen twice at the switch. Positions — which splits are done, the LSN of the last change delivered and
/// how far into its transaction — are stored by the exactly-once sink with the output, and the slot's confirmed LSN
/// moves only after the sinks made a checkpoint durable; on a quiet database heartbeats keep it moving.</para>
/// <para>See docs/cdc.md for what the server needs (<c>wal_level = logical</c>, privileges), and what is guaranteed.</para>
/// </remarks>
/// <typeparam name="T">The change record type.</typeparam>
public sealed partial class PostgresCdcSource<T> : ISource<T>, IConfigurable, ISourceProgress, IAsyncDisposable
{
    /// <summary>Rows per snapshot split, about: the split is one checkpoint, so its rows are what a sink holds at once.</summary>
    public const int RowsPerSplit = 100_000;

    /// <summary>Prefix of the heartbeat messages the source writes into the WAL (<c>pg_logical_emit_message</c>).</summary>
    public const string HeartbeatPrefix = "compiled.heartbeat";

    private const string PlanStream = "cdc-plan";
    private const string SnapshotStream = "cdc-snapshot";
    private const string WalStream = "cdc-wal";

    private NpgsqlDataSource? _dataSource;
    private SourceContext<T>? _context;
    private CdcMapping<T>? _mapping;
    private Plan? _plan;
    private long _snapshotRows;
    private long _changes;
    private long _confirmedLsn;
    private long _serverLsn;

    /// <summary>Captures <paramref name="table"/> through <paramref name="connectionString"/>.</summary>
    public PostgresCdcSource(string connectionString, string table)
    {
        ConnectionString = connectionString;
        Table = table;
    }

    /// <summary>The Npgsql connection string (a role with the REPLICATION attribute and SELECT on the table); shown with its password masked.</summary>
    public string ConnectionString { get; set; }

    /// <summary>The table captured, optionally schema-qualified (<c>sales.orders</c>).</summary>
    public string Table { get; set; }

    /// <summary>The replication slot; default <c>compiled_{database}_{pipeline}_{source}</c> in lower case (slots are named server-wide). One slot per source and pipeline.</summary>
    public string Slot { get; set; } = "";

    /// <summary>The publication the slot reads through; default <c>compiled_{table}</c>.</summary>
    public string Publication { get; set; } = "";

    /// <summary>Read the table's rows first (true, the default), or only the changes from the slot's position on.</summary>
    public bool Snapshot { get; set; } = true;

    /// <summary>Snapshot splits; 0 (the default): one per <see cref="RowsPerSplit"/> rows, at least one per partition (one in all unless the key is an integer).</summary>
    public int SnapshotSplits { get; set; }

    /// <summary>Create the publication when it is missing (needs ownership of the table). Default: true.</summary>
    public bool CreatePublication { get; set; } = true;

    /// <summary>Create the replication slot when it is missing. Default: true.</summary>
    public bool CreateSlot { get; set; } = true;

    /// <summary>
    /// How often, with no change to deliver, a heartbeat is written into the WAL so the slot's position can move on
    /// a quiet table (otherwise the server keeps WAL for ever); <see cref="TimeSpan.Zero"/> turns heartbeats off. Default: 10 s.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How member names become column names. Default: snake_case.</summary>
    public ColumnNaming ColumnNaming { get; set; }

    /// <summary>The member that receives the commit LSN (a long), when the record has one. Default: <c>Lsn</c>.</summary>
    public string LsnField { get; set; } = "Lsn";

    /// <summary>The member that receives the commit time (a DateTimeOffset or UTC DateTime), when the record has one. Default: <c>CommitTime</c>.</summary>
    public string CommitTimeField { get; set; } = "CommitTime";

    /// <summary>Attempts to reconnect the change stream after a transient failure before the run fails. Default: 10.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>Snapshot rows read so far.</summary>
    public long SnapshotRows => Interlocked.Read(ref _snapshotRows);

    /// <summary>Change records delivered so far (not counting snapshot rows).</summary>
    public long Changes => Interlocked.Read(ref _changes);

    /// <summary>The LSN up to which the slot was confirmed (the sinks made everything before it durable).</summary>
    public long ConfirmedLsn => Interlocked.Read(ref _confirmedLsn);

    /// <summary>
    /// The slot's lag in bytes of WAL: the server's current WAL position (as of the last heartbeat or status check) less
    /// the confirmed position. What the server keeps on disk for this slot grows with it.
    /// </summary>
    public long SlotLagBytes => Math.Max(0, Interlocked.Read(ref _serverLsn) - Interlocked.Read(ref _confirmedLsn));

    /// <summary>While snapshotting, rows read of the table's estimate; then the slot's confirmed WAL bytes of the server's.</summary>
    public SourceProgress Progress => _plan is { } plan && !plan.Streaming
        ? new SourceProgress(SnapshotRows, Math.Max(SnapshotRows, plan.EstimatedRows), "rows")
        : new SourceProgress(Interlocked.Read(ref _confirmedLsn), Math.Max(Interlocked.Read(ref _confirmedLsn), Interlocked.Read(ref _serverLsn)), "bytes");

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings =>
    [
        Setting.ConnectionString(nameof(ConnectionString), "The PostgreSQL connection string of the captured database (a role with REPLICATION)", () => ConnectionString, v => ConnectionString = v),
        Setting.Text(nameof(Table), "The table captured (schema.table allowed)", () => Table, v => Table = v),
        Setting.Text(nameof(Slot), "The replication slot (default compiled_{database}_{pipeline}_{source})", () => Slot, v => Slot = v, allowEmpty: true),
        Setting.Text(nameof(Publication), "The publication (default compiled_{table})", () => Publication, v => Publication = v, allowEmpty: true),
        Setting.Boolean(nameof(Snapshot), "Read the table's rows before its changes", () => Snapshot, v => Snapshot = v),
        Setting.Number(nameof(SnapshotSplits), "Snapshot splits (0: one per 100 000 rows, at least one per partition)", () => SnapshotSplits, v => SnapshotSplits = (int)v, 0, 1_000_000),
        Setting.Boolean(nameof(CreatePublication), "Create the publication when it is missing", () => CreatePublication, v => CreatePublication = v),
        Setting.Boolean(nameof(CreateSlot), "Create the replication slot when it is missing", () => CreateSlot, v => CreateSlot = v),
        Setting.Duration(nameof(HeartbeatInterval), "How often a quiet stream writes a heartbeat so the slot can move on (0: never)", () => HeartbeatInterval, v => HeartbeatInterval = v!.Value, zeroAllowed: true),
        Setting.Number(nameof(MaxAttempts), "Attempts to reconnect the change stream before the run fails", () => MaxAttempts, v => MaxAttempts = (int)v, 1, 1000),
        Setting.Choice(nameof(ColumnNaming), "How member names become column names", () => ColumnNaming, v => ColumnNaming = v),
        Setting.Text(nameof(LsnField), "The member that receives the commit LSN", () => LsnField, v => LsnField = v),
        Setting.Text(nameof(CommitTimeField), "The member that receives the commit time", () => CommitTimeField, v => CommitTimeField = v),
    ];

    /// <inheritdoc/>
    public string Describe()
        => $"postgresql cdc {Secrets.RedactConnectionString(ConnectionString)} table {Table} (slot {(SlotName.Length > 0 ? SlotName : DefaultSlotPattern())}, publication {PublicationName}{(Snapshot ? ", snapshot first" : "")})";

    /// <summary>The default slot's name before the run names it (<c>--explain</c>): the pipeline and source are not known yet.</summary>
    private string DefaultSlotPattern()
    {
        try
        {
            return DefaultName($"compiled_{new NpgsqlConnectionStringBuilder(ConnectionString).Database}_") + "{pipeline}_{source} by default";
        }
        catch (ArgumentException)
        {
            return "compiled_{database}_{pipeline}_{source} by default";
        }
    }

    private string SlotName => string.IsNullOrWhiteSpace(Slot) && _context is { } context
        ? DefaultName($"compiled_{new NpgsqlConnectionStringBuilder(ConnectionString).Database}_{context.PipelineName}_{context.SourceName}")
        : Slot;

    private string PublicationName => string.IsNullOrWhiteSpace(Publication) ? DefaultName($"compiled_{Table}") : Publication;

    /// <summary>A name PostgreSQL accepts for a slot: lower-case letters, digits and underscores, at most 63 bytes.</summary>
    private static string DefaultName(string name)
    {
        var builder = new StringBuilder(name.Length);
        foreach (var c in name.ToLowerInvariant())
        {
            builder.Append(c is >= 'a' and <= 'z' or >= '0' and <= '9' ? c : '_');
        }

        return builder.Length > 63 ? builder.ToString(0, 63) : builder.ToString();
    }

    /// <inheritdoc/>
    public async ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        if (string.IsNullOrWhiteSpace(ConnectionString) || string.IsNullOrWhiteSpace(Table))
        {
            throw new NonRetryableException($"Source '{context.SourceName}': ConnectionString and Table are required.");
        }

        PgErrors.CheckConnectionString(ConnectionString, $"Source '{context.SourceName}'");

        var schema = context.Schema ?? throw new NonRetryableException($"PostgresCdcSource<{typeof(T).Name}> needs a record type with public fields or properties.");
        if (context.CheckpointsState)
        {
            throw new NonRetryableException($"Source '{context.SourceName}': windows with checkpointed state behind a PostgresCdcSource are not supported yet (its snapshot commits split by split, outside the aligned checkpoints windows need). Write the changes to a table or a lake and window them from there.");
        }

        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync().ConfigureAwait(false);
        }

        _dataSource = NpgsqlDataSource.Create(ConnectionString);
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            var table = await TableInfo.ReadAsync(connection, Table, cancellationToken).ConfigureAwait(false);
            _mapping = CdcMapping<T>.Create(schema, Table, table.Columns, ColumnNaming, LsnField, CommitTimeField);
            foreach (var key in table.Key)
            {
                if (!_mapping.SelectedColumns.Contains(key.Name, StringComparer.OrdinalIgnoreCase))
                {
                    throw new NonRetryableException($"PostgresCdcSource<{schema.TypeName}>: the record must carry the primary key column '{key.Name}' of table {Table} (changes are matched to rows by it).");
                }
            }

            await EnsurePublicationAsync(connection, table, cancellationToken).ConfigureAwait(false);
            _plan = await PlanAsync(context, connection, table, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (!PgErrors.IsTransient(ex))
        {
            throw new NonRetryableException($"Source '{context.SourceName}': {PgErrors.Reason(ex)} (table {Table}, {Secrets.RedactConnectionString(ConnectionString)}).", ex);
        }
    }

    /// <inheritdoc/>
    public ISourceReader<T> CreateReader(int partition) => new Reader(this, partition);

    /// <inheritdoc/>
    public async ValueTask CloseAsync(CancellationToken cancellationToken) => await DisposeAsync().ConfigureAwait(false);

    /// <summary>Closes what a run left open.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_plan is { } plan)
        {
            _plan = null;
            await plan.DisposeAsync().ConfigureAwait(false);
        }

        if (_dataSource is { } dataSource)
        {
            _dataSource = null;
            await dataSource.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task EnsurePublicationAsync(NpgsqlConnection connection, TableInfo table, CancellationToken cancellationToken)
    {
        var name = PublicationName;
        await using var exists = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1), EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)", connection);
        exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = name });
        exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Schema });
        exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Name });
        bool publication, publishes;
        await using (var reader = await exists.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            publication = reader.GetBoolean(0);
            publishes = reader.GetBoolean(1);
        }

        if (publication && !publishes)
        {
            throw new NonRetryableException($"Publication {name} does not publish table {table.Qualified}: ALTER PUBLICATION {PgColumn.Quote(name)} ADD TABLE {table.Qualified}, or name another publication (Publication).");
        }

        if (!publication)
        {
            if (!CreatePublication)
            {
                throw new NonRetryableException($"Publication {name} does not exist and CreatePublication is false: CREATE PUBLICATION {PgColumn.Quote(name)} FOR TABLE {table.Qualified} WITH (publish = 'insert, update, delete').");
            }

            // TRUNCATE is not published: a change stream of rows cannot carry it (docs/cdc.md).
            try
            {
                await using var create = new NpgsqlCommand($"CREATE PUBLICATION {PgColumn.Quote(name)} FOR TABLE {table.Qualified} WITH (publish = 'insert, update, delete')", connection);
                await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                _context!.Inform($"created publication {name} for table {table.Qualified}");
            }
            catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.DuplicateObject or PostgresErrorCodes.UniqueViolation)
            {
                // Another pipeline on the same table created it a moment ago (two start together; the server reports the
                // race as either error): check it as found.
                await EnsurePublicationAsync(connection, table, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Decides where this run starts: from stored positions (exactly-once), or afresh — a new slot, its exported
    /// snapshot imported into one transaction per partition that has splits to read.
    /// </summary>
    private async Task<Plan> PlanAsync(SourceContext<T> context, NpgsqlConnection connection, TableInfo table, CancellationToken cancellationToken)
    {
        var store = context.Delivery == DeliveryGuarantee.ExactlyOnce ? context.PositionStore : null;
        var slot = SlotName;
        var stored = store is null ? null
            : await store.ClaimPositionsAsync(context.PipelineName, context.SourceName, [new(PlanStream, 0, -1), new(PlanStream, 1, -1), new(PlanStream, 2, -1), new(PlanStream, 3, -1), new(WalStream, 0, -1), new(WalStream, 1, -1)], cancellationToken).ConfigureAwait(false);
        var slotState = await SlotStateAsync(connection, slot, cancellationToken).ConfigureAwait(false);
        var plan = new Plan(context, table, slot);
        if (stored is not null && Find(stored, PlanStream, 0).Offset >= 0)
        {
            // Resume: the stored plan says how the snapshot was split, where the stream is, and which splits are done.
            if (slotState is null or "lost")
            {
                throw new NonRetryableException(
                    $"Replication slot {slot} {(slotState is null ? "no longer exists" : "was invalidated by the server (max_slot_wal_keep_size)")}: the changes after the stored position cannot be read again. " +
                    $"To start afresh, delete this pipeline's stored positions (source '{context.SourceName}') and the output they cover, then run again.");
            }

            plan.Start = Find(stored, PlanStream, 0);
            plan.Count = Find(stored, PlanStream, 1);
            plan.SplitCount = (int)plan.Count.Offset;
            plan.Min = Find(stored, PlanStream, 2);
            plan.Max = Find(stored, PlanStream, 3);
            plan.Wal = Find(stored, WalStream, 0);
            plan.WalCount = Find(stored, WalStream, 1);
            if (plan.SplitCount > 0)
            {
                var splits = await store!.ClaimPositionsAsync(context.PipelineName, context.SourceName, [.. Enumerable.Range(0, plan.SplitCount).Select(s => new SourcePosition(SnapshotStream, s, -1))], cancellationToken).ConfigureAwait(false);
                plan.Splits = [.. Enumerable.Range(0, plan.SplitCount).Select(s => Find(splits!, SnapshotStream, s))];
            }

            var pending = plan.Splits.Where(s => s.Offset < 0).Select(s => s.Partition).ToList();
            if (pending.Count > 0)
            {
                // The run that read the other splits is gone, and its snapshot with it: the rest is read in a new one, from
                // a temporary slot, and the stream skips the changes to those rows that the new snapshot already holds.
                context.Inform($"resuming the snapshot of {table.Qualified}: {pending.Count} of {plan.SplitCount} splits to read, in a new snapshot");
                var (lsn, name, exporter) = await ExportSnapshotAsync((slot.Length > 56 ? slot[..56] : slot) + "_resume", temporary: true, cancellationToken).ConfigureAwait(false);
                await plan.ImportAsync(_dataSource!, name, lsn, pending, cancellationToken).ConfigureAwait(false);
                await exporter.DisposeAsync().ConfigureAwait(false);
            }

            if (plan.Wal.Offset < 0)
            {
                plan.Wal = plan.Wal with { Offset = plan.Start.Offset }; // no change delivered yet: from the slot's consistent point
                plan.WalCount = plan.WalCount with { Offset = 0 };
            }

            plan.Complete();
            return plan;
        }

        // Afresh.
        if (Snapshot && slotState is not null)
        {
            if (!CreateSlot)
            {
                throw new NonRetryableException($"Replication slot {slot} exists but no snapshot taken through it was stored, and CreateSlot is false: drop the slot (SELECT pg_drop_replication_slot('{slot}')) or set Snapshot to false to read only its changes.");
            }

            context.Inform(store is null
                ? $"at-least-once: replication slot {slot} is dropped and the snapshot of {table.Qualified} taken again (an exactly-once sink stores how far it got)"
                : $"replication slot {slot} has no stored positions (a run that committed nothing): dropped, the snapshot is taken afresh");
            await using var drop = new NpgsqlCommand("SELECT pg_drop_replication_slot($1)", connection);
            drop.Parameters.Add(new NpgsqlParameter<string> { TypedValue = slot });
            await drop.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            slotState = null;
        }

        long start;
        if (slotState is null)
        {
            if (!CreateSlot)
            {
                throw new NonRetryableException($"Replication slot {slot} does not exist and CreateSlot is false: SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput').");
            }

            var (lsn, name, exporter) = await ExportSnapshotAsync(slot, temporary: false, cancellationToken).ConfigureAwait(false);
            start = lsn;
            context.Inform($"created replication slot {slot} at LSN {Lsn(lsn)}");
            if (Snapshot)
            {
                var splits = await plan.SplitAsync(_dataSource!, name, SnapshotSplits, cancellationToken).ConfigureAwait(false);
                await plan.ImportAsync(_dataSource!, name, lsn, [.. Enumerable.Range(0, splits)], cancellationToken).ConfigureAwait(false);
            }

            await exporter.DisposeAsync().ConfigureAwait(false); // every reader has imported the snapshot: it may go
        }
        else
        {
            start = await ConfirmedAsync(connection, slot, cancellationToken).ConfigureAwait(false); // changes only, from where the slot is
        }

        plan.Start = new SourcePosition(PlanStream, 0, start, Epoch(stored, PlanStream, 0));
        plan.Min = plan.Min with { Epoch = Epoch(stored, PlanStream, 2) };
        plan.Max = plan.Max with { Epoch = Epoch(stored, PlanStream, 3) };
        plan.Wal = new SourcePosition(WalStream, 0, start, Epoch(stored, WalStream, 0));
        plan.WalCount = new SourcePosition(WalStream, 1, 0, Epoch(stored, WalStream, 1));
        var count = new SourcePosition(PlanStream, 1, plan.SplitCount, Epoch(stored, PlanStream, 1));
        if (plan.SplitCount > 0 && store is not null)
        {
            var splits = await store.ClaimPositionsAsync(context.PipelineName, context.SourceName, [.. Enumerable.Range(0, plan.SplitCount).Select(s => new SourcePosition(SnapshotStream, s, -1))], cancellationToken).ConfigureAwait(false);
            plan.Splits = [.. Enumerable.Range(0, plan.SplitCount).Select(s => Find(splits!, SnapshotStream, s) with { Offset = -1 })];
        }
        else
        {
            plan.Splits = [.. Enumerable.Range(0, plan.SplitCount).Select(s => new SourcePosition(SnapshotStream, s, -1))];
        }

        plan.Count = count;
        plan.Complete();
        return plan;
    }

    private static SourcePosition Find(IReadOnlyList<SourcePosition> positions, string stream, int partition)
        => positions.First(p => p.Stream == stream && p.Partition == partition);

    private static long Epoch(IReadOnlyList<SourcePosition>? positions, string stream, int partition)
        => positions is null ? 0 : Find(positions, stream, partition).Epoch;

    /// <summary>The slot's state (<c>wal_status</c>, or "ok" before PostgreSQL 13), or null when it does not exist.</summary>
    private static async Task<string?> SlotStateAsync(NpgsqlConnection connection, string slot, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT coalesce(wal_status, 'ok'), plugin, database = current_database(), database FROM pg_replication_slots WHERE slot_name = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = slot });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var plugin = reader.IsDBNull(1) ? "" : reader.GetString(1);
        if (reader.IsDBNull(2) || !reader.GetBoolean(2))
        {
            throw new NonRetryableException($"Replication slot {slot} belongs to {(reader.IsDBNull(3) ? "no database (a physical slot)" : "database " + reader.GetString(3))}; slots are named server-wide. Name another slot (Slot).");
        }

        return plugin == "pgoutput" ? reader.GetString(0)
            : throw new NonRetryableException($"Replication slot {slot} uses the output plugin '{plugin}'; PostgresCdcSource reads pgoutput slots. Name another slot (Slot).");
    }

    private static async Task<long> ConfirmedAsync(NpgsqlConnection connection, string slot, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = slot });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long lsn ? lsn : 0;
    }

    /// <summary>
    /// Creates a logical slot that exports its snapshot, on a replication connection that must stay open and idle until
    /// the snapshot is imported. Fails clearly when the server is not set up for logical replication.
    /// </summary>
    private async Task<(long Lsn, string Snapshot, LogicalReplicationConnection Exporter)> ExportSnapshotAsync(string slot, bool temporary, CancellationToken cancellationToken)
    {
        var exporter = new LogicalReplicationConnection(ConnectionString);
        try
        {
            await exporter.Open(cancellationToken).ConfigureAwait(false);
            var created = await exporter.CreatePgOutputReplicationSlot(slot, temporary, LogicalSlotSnapshotInitMode.Export, cancellationToken: cancellationToken).ConfigureAwait(false);
            return ((long)(ulong)created.ConsistentPoint, created.SnapshotName ?? "", exporter);
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.ObjectNotInPrerequisiteState or PostgresErrorCodes.InsufficientPrivilege or PostgresErrorCodes.InvalidAuthorizationSpecification)
        {
            await exporter.DisposeAsync().ConfigureAwait(false);
            throw new NonRetryableException(ex.SqlState == PostgresErrorCodes.ObjectNotInPrerequisiteState
                ? $"The server cannot do logical replication: {ex.MessageText}. Set wal_level = logical (ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL), with max_replication_slots and max_wal_senders above 0."
                : $"Could not create replication slot {slot}: {ex.MessageText}. The role needs the REPLICATION attribute (ALTER ROLE … REPLICATION) and a pg_hba.conf line that allows it.", ex);
        }
        catch
        {
            await exporter.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>An LSN as PostgreSQL writes it (<c>16/B374D848</c>).</summary>
    internal static string Lsn(long lsn) => new NpgsqlLogSequenceNumber((ulong)lsn).ToString();

    /// <summary>The captured table as the catalog describes it.</summary>
    private sealed record TableInfo(string Schema, string Name, string Qualified, IReadOnlyList<(string Name, string Type, bool NotNull)> Columns, IReadOnlyList<(string Name, string Type)> Key, long EstimatedRows)
    {
        public static async Task<TableInfo> ReadAsync(NpgsqlConnection connection, string table, CancellationToken cancellationToken)
        {
            await using (var level = new NpgsqlCommand("SHOW wal_level", connection))
            {
                var wal = (string?)await level.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                if (wal != "logical")
                {
                    throw new NonRetryableException($"The server has wal_level = {wal}; change data capture needs wal_level = logical (ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL).");
                }
            }

            string schema, name;
            char identity;
            long estimate;
            await using (var command = new NpgsqlCommand("SELECT n.nspname, c.relname, c.relreplident, c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)", connection))
            {
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = PgColumn.Quote(table) });
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    throw new NonRetryableException($"Table {table} does not exist (PostgresCdcSource captures an existing table).");
                }

                (schema, name, identity, estimate) = (reader.GetString(0), reader.GetString(1), reader.GetChar(2), reader.GetInt64(3));
            }

            var qualified = PgColumn.Quote(schema) + "." + PgColumn.Quote(name);
            var columns = new List<(string, string, bool)>();
            await using (var command = new NpgsqlCommand("SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", connection))
            {
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = qualified });
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    columns.Add((reader.GetString(0), reader.GetString(1), reader.GetBoolean(2)));
                }
            }

            var key = new List<(string, string)>();
            await using (var command = new NpgsqlCommand("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)", connection))
            {
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = qualified });
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    key.Add((reader.GetString(0), reader.GetString(1)));
                }
            }

            if (identity == 'n' || (identity == 'd' && key.Count == 0))
            {
                throw new NonRetryableException($"Table {qualified} has no replica identity{(key.Count == 0 ? " (no primary key)" : "")}: its updates and deletes cannot be captured. Give it a primary key, or ALTER TABLE {qualified} REPLICA IDENTITY FULL.");
            }

            return new TableInfo(schema, name, qualified, columns, key, estimate);
        }
    }

    /// <summary>Where a run starts and how the snapshot is split; the snapshot transactions of the partitions.</summary>
    private sealed class Plan(SourceContext<T> context, TableInfo table, string slot) : IAsyncDisposable
    {
        private readonly Dictionary<int, (NpgsqlConnection Connection, NpgsqlTransaction Transaction)> _snapshots = [];
        private readonly TaskCompletionSource _snapshotDone = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TableInfo Table => table;

        public string Slot => slot;

        /// <summary>The slot's consistent point when the snapshot was taken (or where the changes-only stream began).</summary>
        public SourcePosition Start { get; set; } = new(PlanStream, 0, -1);

        public SourcePosition Count { get; set; } = new(PlanStream, 1, 0);

        public SourcePosition Min { get; set; } = new(PlanStream, 2, 0);

        public SourcePosition Max { get; set; } = new(PlanStream, 3, 0);

        public SourcePosition Wal { get; set; } = new(WalStream, 0, -1);

        public SourcePosition WalCount { get; set; } = new(WalStream, 1, 0);

        public int SplitCount { get; set; }

        /// <summary>Per split: the LSN of the snapshot it was (or is being) read in; Offset -1 until it is committed.</summary>
        public SourcePosition[] Splits { get; set; } = [];

        /// <summary>Per split, the LSN of the snapshot that reads (or read) it: the stream skips older changes to its rows.</summary>
        public long[] SplitLsn { get; set; } = [];

        public long EstimatedRows => table.EstimatedRows;

        /// <summary>When the snapshot was taken: the commit time of its rows.</summary>
        public DateTimeOffset SnapshotTime { get; private set; } = DateTimeOffset.UtcNow;

        public bool Streaming { get; set; }

        /// <summary>Whether the first key column is an integer, so splits are key ranges (else there is one split).</summary>
        public bool RangeKey => table.Key.Count > 0 && table.Key[0].Type is "smallint" or "integer" or "bigint";

        public IReadOnlyList<SourcePosition> PlanPositions => [Start, Count with { Offset = SplitCount }, Min, Max];

        /// <summary>Completes when every split is committed: the stream may start.</summary>
        public Task SnapshotDone => _snapshotDone.Task;

        /// <summary>Chooses the splits inside the exported snapshot (the key's range there, the table's size).</summary>
        public async Task<int> SplitAsync(NpgsqlDataSource dataSource, string snapshot, int requested, CancellationToken cancellationToken)
        {
            long min = 0, max = 0, rows = Math.Max(0, table.EstimatedRows);
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
            await using (var set = new NpgsqlCommand($"SET TRANSACTION SNAPSHOT '{snapshot}'", connection, transaction))
            {
                await set.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            if (RangeKey)
            {
                var key = PgColumn.Quote(table.Key[0].Name);
                await using var range = new NpgsqlCommand($"SELECT min({key})::bigint, max({key})::bigint{(table.EstimatedRows < 0 ? ", count(*)" : "")} FROM {table.Qualified}", connection, transaction);
                await using var reader = await range.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                if (!reader.IsDBNull(0))
                {
                    (min, max) = (reader.GetInt64(0), reader.GetInt64(1));
                }

                if (table.EstimatedRows < 0)
                {
                    rows = reader.GetInt64(2);
                }
            }

            SplitCount = !RangeKey ? 1
                : requested > 0 ? requested
                : (int)Math.Clamp((rows + RowsPerSplit - 1) / RowsPerSplit, context.Parallelism, 4096);
            SplitCount = (int)Math.Max(1, Math.Min(SplitCount, (Int128)max - min + 1 > int.MaxValue ? int.MaxValue : (int)((Int128)max - min + 1)));
            Min = Min with { Offset = min };
            Max = Max with { Offset = max };
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return SplitCount;
        }

        /// <summary>
        /// Opens a transaction in the exported snapshot for each partition that reads one of <paramref name="pending"/>
        /// splits (split s is read by partition s mod parallelism).
        /// </summary>
        public async Task ImportAsync(NpgsqlDataSource dataSource, string snapshot, long lsn, IReadOnlyList<int> pending, CancellationToken cancellationToken)
        {
            SplitLsn = [.. Enumerable.Range(0, SplitCount).Select(s => Splits.Length > s && Splits[s].Offset >= 0 ? Splits[s].Offset : lsn)];
            SnapshotTime = DateTimeOffset.UtcNow;
            foreach (var partition in pending.Select(s => s % context.Parallelism).Distinct())
            {
                var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
                await using (var set = new NpgsqlCommand($"SET TRANSACTION SNAPSHOT '{snapshot}'", connection, transaction))
                {
                    await set.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                _snapshots[partition] = (connection, transaction);
            }
        }

        /// <summary>The split's SELECT condition on the key: a range of the key's values (all rows for a single split).</summary>
        public string Where(int split)
        {
            if (SplitCount <= 1)
            {
                return "true";
            }

            var key = PgColumn.Quote(table.Key[0].Name);
            var conditions = new List<string>();
            if (split > 0)
            {
                conditions.Add(string.Create(CultureInfo.InvariantCulture, $"{key} >= {Bound(split)}"));
            }

            if (split < SplitCount - 1)
            {
                conditions.Add(string.Create(CultureInfo.InvariantCulture, $"{key} < {Bound(split + 1)}"));
            }

            return string.Join(" AND ", conditions);
        }

        /// <summary>The split a key value belongs to (the one whose range <see cref="Where"/> holds it).</summary>
        public int SplitOf(long key)
        {
            int lo = 0, hi = SplitCount - 1;
            while (lo < hi)
            {
                var mid = (lo + hi + 1) / 2;
                if (key >= Bound(mid))
                {
                    lo = mid;
                }
                else
                {
                    hi = mid - 1;
                }
            }

            return lo;
        }

        /// <summary>The first key value of split <paramref name="split"/> (1 ≤ split &lt; count): the range min..max cut evenly.</summary>
        private long Bound(int split) => (long)(Min.Offset + ((Int128)Max.Offset - Min.Offset + 1) * split / SplitCount);

        /// <summary>The snapshot transaction of <paramref name="partition"/>, if it has splits to read.</summary>
        public (NpgsqlConnection Connection, NpgsqlTransaction Transaction)? SnapshotOf(int partition)
        {
            lock (_snapshots)
            {
                return _snapshots.TryGetValue(partition, out var snapshot) ? snapshot : null;
            }
        }

        /// <summary>Ends a partition's snapshot transaction.</summary>
        public async ValueTask EndSnapshotAsync(int partition)
        {
            (NpgsqlConnection Connection, NpgsqlTransaction Transaction) snapshot;
            lock (_snapshots)
            {
                if (!_snapshots.Remove(partition, out snapshot))
                {
                    return;
                }
            }

            await snapshot.Transaction.DisposeAsync().ConfigureAwait(false);
            await snapshot.Connection.DisposeAsync().ConfigureAwait(false);
        }

        /// <summary>A split is committed; when it was the last, the stream may start.</summary>
        public void SplitCommitted(int split, long lsn)
        {
            lock (_snapshots)
            {
                Splits[split] = Splits[split] with { Offset = lsn };
                if (Splits.All(s => s.Offset >= 0))
                {
                    _snapshotDone.TrySetResult();
                }
            }
        }

        /// <summary>The plan is made: every split has the LSN of its snapshot, and the stream may start at once if none is left to read.</summary>
        public void Complete()
        {
            if (SplitLsn.Length != SplitCount)
            {
                SplitLsn = [.. Splits.Select(s => s.Offset)];
            }

            lock (_snapshots)
            {
                if (Splits.All(s => s.Offset >= 0))
                {
                    _snapshotDone.TrySetResult();
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            List<int> partitions;
            lock (_snapshots)
            {
                partitions = [.. _snapshots.Keys];
            }

            foreach (var partition in partitions)
            {
                await EndSnapshotAsync(partition).ConfigureAwait(false);
            }
        }
    }
}
