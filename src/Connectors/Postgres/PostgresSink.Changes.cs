using Npgsql;

namespace Compiled.Postgres;

/// <summary>
/// <see cref="PostgresWriteMode.ApplyChanges"/>: a batch of change records becomes one DELETE and one upsert. Only the
/// last change of each key in the batch matters — a full row replaces whatever the key held, a delete removes it — so
/// the two statements touch disjoint keys and their order does not matter; the result equals applying every change in
/// stream order. Replaying changes already applied leaves the table as it was (the last change of a key wins again).
/// </summary>
public sealed partial class PostgresSink<T>
{
    private int _kindField = -1;
    private string _deleteSql = "";

    /// <summary>The columns written: every field but the <see cref="ChangeKind"/> one.</summary>
    private IEnumerable<PgColumn> DataColumns => _columns.Where(c => c.Ordinal != _kindField);

    private async Task ApplyChangesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<T> rows, PgColumnBuffer?[] buffers, CancellationToken cancellationToken)
    {
        var schema = _schema!;
        var keyOrdinals = _columns.Where(c => c.IsKey).Select(c => c.Ordinal).ToArray();
        var last = new Dictionary<ChangeKey, int>(rows.Count);
        var kinds = new ChangeKind[rows.Count];
        var keys = new ChangeKey[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            var reader = new ChangeReader(_kindField, keyOrdinals);
            schema.Visit(rows[i], ref reader);
            kinds[i] = reader.Kind;
            keys[i] = new ChangeKey(reader.Key);
            last[keys[i]] = i;
        }

        foreach (var buffer in buffers)
        {
            buffer?.Clear();
        }

        var deletes = new PgColumnBuffer?[_columns.Length];
        int upserted = 0, deleted = 0;
        var upsert = new ArrayVisitor(buffers, _columns);
        var delete = new KeyVisitor(deletes, _columns);
        for (var i = 0; i < rows.Count; i++)
        {
            if (last[keys[i]] != i)
            {
                continue; // a later change of the same key decides
            }

            if (kinds[i] is ChangeKind.Delete or ChangeKind.UpdateBefore)
            {
                schema.Visit(rows[i], ref delete);
                deleted++;
            }
            else
            {
                schema.Visit(rows[i], ref upsert);
                upserted++;
            }
        }

        if (deleted > 0)
        {
            await using var command = new NpgsqlCommand(_deleteSql, connection, transaction);
            foreach (var ordinal in keyOrdinals)
            {
                command.Parameters.Add(deletes[ordinal]!.ToParameter());
            }

            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        if (upserted > 0)
        {
            await using var command = new NpgsqlCommand(_upsertSql, connection, transaction);
            foreach (var column in DataColumns)
            {
                command.Parameters.Add(buffers[column.Ordinal]!.ToParameter());
            }

            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A record's key values, compared by value.</summary>
    private readonly struct ChangeKey(object?[] values) : IEquatable<ChangeKey>
    {
        private readonly object?[] _values = values;

        public bool Equals(ChangeKey other)
        {
            for (var i = 0; i < _values.Length; i++)
            {
                if (!Equals(_values[i], other._values[i]))
                {
                    return false;
                }
            }

            return true;
        }

        public override bool Equals(object? obj) => obj is ChangeKey other && Equals(other);

        public override int GetHashCode()
        {
            var hash = default(HashCode);
            foreach (var value in _values)
            {
                hash.Add(value);
            }

            return hash.ToHashCode();
        }
    }

    /// <summary>Reads a record's change kind and key values.</summary>
    private struct ChangeReader(int kindField, int[] keyOrdinals) : IFieldVisitor
    {
        public ChangeKind Kind { get; private set; }

        public object?[] Key { get; } = new object?[keyOrdinals.Length];

        public void Visit<TField>(int ordinal, TField value)
        {
            if (ordinal == kindField)
            {
                Kind = typeof(TField) == typeof(ChangeKind) ? System.Runtime.CompilerServices.Unsafe.As<TField, ChangeKind>(ref value)
                    : value is ChangeKind kind ? kind
                    : throw new InvalidDataException("A change record has no ChangeKind (null): the sink cannot tell an upsert from a delete.");
                return;
            }

            var index = Array.IndexOf(keyOrdinals, ordinal);
            if (index >= 0)
            {
                Key[index] = PgValues.Store(value); // as stored: two keys equal in the table are equal here
            }
        }
    }

    /// <summary>Gathers the key columns of the rows to delete.</summary>
    private readonly struct KeyVisitor(PgColumnBuffer?[] buffers, PgColumn[] columns) : IFieldVisitor
    {
        public void Visit<TField>(int ordinal, TField value)
        {
            if (columns[ordinal].IsKey)
            {
                (buffers[ordinal] ??= PgColumnBuffer.For<TField>(columns[ordinal])).Add(value);
            }
        }
    }
}
