using DuckDB.NET.Data;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>Checks of a lake's Parquet files, read back with DuckDB (shared with tests/Crash.Tests).</summary>
internal static class Lake
{
    /// <summary>Rows of a DuckDB query (an in-memory database reading the lake's files).</summary>
    public static List<object?[]> Query(string sql)
    {
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }
}

/// <summary>Checks of a CDC run against the database it captured (shared with tests/Crash.Tests).</summary>
internal static class CdcChecks
{
    /// <summary>The lake's history is the writer's, key by key (<see cref="CdcWriter.Check"/>), with no change twice.</summary>
    public static void AssertExact(CdcWriter writer, List<CdcOrder> history)
    {
        var problems = writer.Check(history);
        Assert.True(problems.Count == 0, $"{problems.Count} keys differ from the writer's history, the first:\n{string.Join("\n", problems.Take(5))}");
        Assert.Equal(history.Count, history.Select(h => (h.Id, h.Op, h.Lsn)).Distinct().Count());
    }

    public static List<CdcOrder> ReadLake(string lake)
        => [.. Lake.Query($"SELECT id, customer, amount, seq, op, lsn FROM read_parquet('{lake}/**/*.parquet')").Select(r => new CdcOrder
        {
            Id = (long)r[0]!,
            Customer = (string?)r[1],
            Amount = Convert.ToDecimal(r[2], System.Globalization.CultureInfo.InvariantCulture),
            Seq = (int)r[3]!,
            Op = Enum.Parse<ChangeKind>((string)r[4]!),
            Lsn = (long)r[5]!,
        })];

    /// <summary>
    /// Where the server's WAL ends now: the insert position, which holds every commit that returned. (The write position,
    /// pg_current_wal_lsn, can lag behind it with <c>synchronous_commit = off</c>, as the test servers run: a source could
    /// be "caught up" with it before the last transactions were even sent.)
    /// </summary>
    public static async Task<long> CurrentLsnAsync(string db)
    {
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public static async Task<List<(string Slot, long Confirmed)>> SlotsAsync(string db)
    {
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT slot_name, (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots WHERE database = current_database() AND NOT temporary", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var slots = new List<(string, long)>();
        while (await reader.ReadAsync())
        {
            slots.Add((reader.GetString(0), reader.GetInt64(1)));
        }

        return slots;
    }

    /// <summary>Rows of one table missing from the other, both ways, on (id, customer, amount, seq).</summary>
    public static async Task<List<string>> DifferenceAsync(string db, string left, string right)
    {
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"""
            (SELECT 'missing', id, customer, amount, seq FROM {left} EXCEPT SELECT 'missing', id, customer, amount, seq FROM {right})
            UNION ALL
            (SELECT 'extra', id, customer, amount, seq FROM {right} EXCEPT SELECT 'extra', id, customer, amount, seq FROM {left})
            LIMIT 20
            """, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add($"{reader.GetString(0)} {reader.GetInt64(1)}");
        }

        return rows;
    }
}
