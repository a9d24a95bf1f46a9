using System.Globalization;

namespace Compiled.Sqlite;

/// <summary>How values are stored in SQLite by the sink, and looked up by the lookup join (the same text forms).</summary>
internal static class SqliteValues
{
    /// <summary>The value a parameter is given for <paramref name="value"/>.</summary>
    public static object ToDatabase<TField>(TField value) => value switch
    {
        null => DBNull.Value,
        Enum e => e.ToString(),
        DateTime d => d.ToString("O", CultureInfo.InvariantCulture),
        DateTimeOffset d => d.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture), // UTC, like PostgreSQL's timestamptz: text order is time order
        DateOnly d => d.ToString("O", CultureInfo.InvariantCulture),
        TimeOnly t => t.ToString("O", CultureInfo.InvariantCulture),
        TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
        decimal m => m.ToString(CultureInfo.InvariantCulture),
        Guid g => g.ToString("D"),
        char c => c.ToString(),
        ulong u => u <= long.MaxValue ? (long)u : throw new OverflowException($"{u} does not fit a SQLite INTEGER (64-bit signed); store it as a decimal or a string"),
        ReadOnlyMemory<byte> bytes => bytes.ToArray(),
        Memory<byte> bytes => bytes.ToArray(),
        _ => value,
    };

    /// <summary>A quoted identifier.</summary>
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
