using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>
/// The write load of the CDC tests: one writer, so its transactions commit in its own order, each one insert, two
/// updates and a delete (every tenth also moves a row to a new key), on table <c>cdc_orders</c>. It keeps what it did
/// per key, independently of the engine, so a captured history can be checked key by key: a snapshot row equal to the
/// key's state after some transaction, then exactly the writer's later changes of that key, each once.
/// </summary>
internal sealed class CdcWriter(string connection, int seed)
{
    private readonly Random _random = new(seed);
    private readonly Dictionary<long, Row> _rows = [];
    private readonly Dictionary<long, List<Change>> _history = [];
    private long _nextId;
    private int _transactions;

    /// <summary>A row's values as the writer last wrote them.</summary>
    public sealed record Row(long Id, string? Customer, decimal Amount, int Seq);

    /// <summary>One change of one key: after transaction <paramref name="Seq"/> the key holds <paramref name="After"/> (null: no row).</summary>
    public sealed record Change(int Seq, ChangeKind Kind, Row? After);

    public int Transactions => _transactions;

    /// <summary>Changes written by <see cref="WriteAsync"/> so far.</summary>
    public long Changes { get; private set; }

    /// <summary>Creates the table with <paramref name="rows"/> rows (transaction 0).</summary>
    public async Task SeedAsync(int rows)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using (var create = new NpgsqlCommand("CREATE TABLE cdc_orders (id bigint PRIMARY KEY, customer text, amount numeric(12,2) NOT NULL, seq integer NOT NULL)", db))
        {
            await create.ExecuteNonQueryAsync();
        }

        await using (var import = await db.BeginBinaryImportAsync("COPY cdc_orders FROM STDIN (FORMAT BINARY)"))
        {
            for (var id = 1L; id <= rows; id++)
            {
                var row = new Row(id, id % 7 == 0 ? null : $"customer {id % 500}", id % 1000 + 0.25m, 0);
                await import.WriteRowAsync(default, row.Id, row.Customer, row.Amount, row.Seq);
                _rows[id] = row;
                Record(id, new Change(0, ChangeKind.Snapshot, row));
            }

            await import.CompleteAsync();
        }

        _nextId = rows + 1;
    }

    /// <summary>Runs <paramref name="count"/> transactions, one after another.</summary>
    public async Task WriteAsync(int count, CancellationToken cancellationToken = default)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync(cancellationToken);
        for (var t = 0; t < count; t++)
        {
            var seq = ++_transactions;
            var changes = new List<(long Id, Change Change)>();
            await using var transaction = await db.BeginTransactionAsync(cancellationToken);
            var inserted = new Row(_nextId++, seq % 5 == 0 ? null : $"new {seq}", seq % 977 + 0.5m, seq);
            await ExecuteAsync(db, transaction, "INSERT INTO cdc_orders VALUES ($1, $2, $3, $4)", inserted.Id, inserted.Customer, inserted.Amount, seq);
            changes.Add((inserted.Id, new Change(seq, ChangeKind.Insert, inserted)));
            var touched = new HashSet<long> { inserted.Id };
            foreach (var id in Pick(2, touched))
            {
                var updated = new Row(id, $"updated {seq}", _random.Next(1, 100_000) / 100m, seq);
                await ExecuteAsync(db, transaction, "UPDATE cdc_orders SET customer = $2, amount = $3, seq = $4 WHERE id = $1", id, updated.Customer, updated.Amount, seq);
                changes.Add((id, new Change(seq, ChangeKind.UpdateAfter, updated)));
            }

            foreach (var id in Pick(1, touched))
            {
                await ExecuteAsync(db, transaction, "DELETE FROM cdc_orders WHERE id = $1", id);
                changes.Add((id, new Change(seq, ChangeKind.Delete, null)));
            }

            if (seq % 25 == 0)
            {
                // A large transaction: more changes than a batch holds, so checkpoints fall inside it.
                var ids = Pick(400, touched).ToArray();
                await ExecuteAsync(db, transaction, "UPDATE cdc_orders SET amount = amount + 1, seq = $2 WHERE id = ANY($1)", ids, seq);
                changes.AddRange(ids.Select(id => (id, new Change(seq, ChangeKind.UpdateAfter, _rows[id] with { Amount = _rows[id].Amount + 1, Seq = seq }))));
            }

            if (seq % 10 == 0)
            {
                foreach (var id in Pick(1, touched))
                {
                    // A key change: the old key is gone (its old key comes as the update's "before"), the new one holds the row.
                    var moved = _rows[id] with { Id = _nextId++, Seq = seq };
                    await ExecuteAsync(db, transaction, "UPDATE cdc_orders SET id = $2, seq = $3 WHERE id = $1", id, moved.Id, seq);
                    changes.Add((id, new Change(seq, ChangeKind.UpdateBefore, null)));
                    changes.Add((moved.Id, new Change(seq, ChangeKind.UpdateAfter, moved)));
                }
            }

            await transaction.CommitAsync(cancellationToken);
            Changes += changes.Count;
            foreach (var (id, change) in changes)
            {
                if (change.After is null)
                {
                    _rows.Remove(id);
                }
                else
                {
                    _rows[id] = change.After;
                }

                Record(id, change);
            }
        }
    }

    /// <summary>
    /// Checks a captured history (snapshot rows and changes, in any order): per key, at most one snapshot row, equal to
    /// the key's state after some transaction c (none when it had no row then); then exactly the writer's changes of
    /// the key after c, in order, each once. Returns the problems found (empty when exact).
    /// </summary>
    public List<string> Check(IEnumerable<CdcOrder> captured)
    {
        var problems = new List<string>();
        var byKey = captured.GroupBy(c => c.Id).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var id in _history.Keys.Union(byKey.Keys))
        {
            var written = _history.GetValueOrDefault(id) ?? [];
            var seen = byKey.GetValueOrDefault(id) ?? [];
            var snapshots = seen.Where(c => c.Op == ChangeKind.Snapshot).ToList();
            var changes = seen.Where(c => c.Op != ChangeKind.Snapshot).OrderBy(c => c.Lsn).ToList();
            if (snapshots.Count > 1)
            {
                problems.Add($"key {id}: {snapshots.Count} snapshot rows");
                continue;
            }

            // The cut: how many of the key's changes the snapshot saw (its transactions committed before the snapshot).
            var ok = false;
            for (var cut = 0; cut <= written.Count && !ok; cut++)
            {
                if (cut == 0 && written.Count > 0 && written[0].Kind == ChangeKind.Snapshot)
                {
                    continue; // the seeded rows exist before any snapshot
                }

                var state = cut == 0 ? null : written[cut - 1].After;
                var snapshotMatches = snapshots.Count == 0 ? state is null : state is not null && Same(snapshots[0], state);
                var later = written.Skip(cut).ToList();
                ok = snapshotMatches && later.Count == changes.Count
                    && later.Zip(changes).All(p => p.First.Kind == p.Second.Op && (p.First.After is null || Same(p.Second, p.First.After)));
            }

            if (!ok)
            {
                problems.Add($"key {id}: written [{string.Join(", ", written.Select(w => $"{w.Seq}:{w.Kind}"))}], captured [{string.Join(", ", seen.OrderBy(c => c.Lsn).Select(c => $"{c.Seq}:{c.Op}@{c.Lsn}"))}]");
            }
        }

        return problems;
    }

    /// <summary>The rows the table holds now, as the writer knows them.</summary>
    public IReadOnlyCollection<Row> Rows => _rows.Values;

    private static bool Same(CdcOrder captured, Row row) => captured.Customer == row.Customer && captured.Amount == row.Amount && captured.Seq == row.Seq;

    private void Record(long id, Change change)
    {
        if (!_history.TryGetValue(id, out var list))
        {
            _history[id] = list = [];
        }

        list.Add(change);
    }

    private IEnumerable<long> Pick(int count, HashSet<long> touched)
    {
        var ids = _rows.Keys.ToArray();
        for (var i = 0; i < count && ids.Length > touched.Count; i++)
        {
            long id;
            do
            {
                id = ids[_random.Next(ids.Length)];
            }
            while (!touched.Add(id));
            yield return id;
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection db, NpgsqlTransaction transaction, string sql, params object?[] values)
    {
        await using var command = new NpgsqlCommand(sql, db, transaction);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        }

        await command.ExecuteNonQueryAsync();
    }
}
