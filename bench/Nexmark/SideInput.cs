using System.Globalization;

namespace Compiled.Nexmark;

/// <summary>A row of q13's side table: a key and its value.</summary>
public sealed record SideRow([property: Key] long Key, string Value);

/// <summary>
/// q13's bounded side input (Flink's filesystem table <c>side_input</c>): a CSV file of <c>key,value</c> lines read
/// once when the run opens it, looked up in memory — a lookup of one's own (docs/joins.md, "Writing a lookup of your own").
/// </summary>
public sealed class SideInput(string path) : ILookup<long, SideRow>
{
    private Dictionary<long, SideRow> _rows = [];

    /// <summary>The file.</summary>
    public string Path { get; } = path;

    /// <inheritdoc/>
    public JoinKind Join => JoinKind.Inner;

    /// <inheritdoc/>
    public int CacheSize => 0; // the table is in memory already

    /// <inheritdoc/>
    public TimeSpan TimeToLive => TimeSpan.Zero;

    /// <summary>Writes the benchmark's side input: 10,000 lines <c>i,i</c> for i = 0 … 9,999.</summary>
    public static void WriteDefault(string path)
        => File.WriteAllLines(path, Enumerable.Range(0, 10_000).Select(i => string.Create(CultureInfo.InvariantCulture, $"{i},{i}")));

    /// <summary>Reads <paramref name="path"/>'s rows.</summary>
    public static Dictionary<long, SideRow> Read(string path)
    {
        var rows = new Dictionary<long, SideRow>();
        foreach (var line in File.ReadLines(path))
        {
            var comma = line.IndexOf(',', StringComparison.Ordinal);
            if (comma < 0 || !long.TryParse(line.AsSpan(0, comma), NumberStyles.Integer, CultureInfo.InvariantCulture, out var key))
            {
                throw new InvalidDataException($"{path}: '{line}' is not a line 'key,value' with a whole-number key.");
            }

            rows[key] = new SideRow(key, line[(comma + 1)..]);
        }

        return rows;
    }

    /// <inheritdoc/>
    public ValueTask OpenAsync(LookupContext<SideRow> context, CancellationToken cancellationToken)
    {
        _rows = Read(Path);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ILookupReader<long, SideRow> CreateReader(int partition) => new Reader(this);

    /// <inheritdoc/>
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public string Describe() => $"side input {Path}";

    private sealed class Reader(SideInput side) : ILookupReader<long, SideRow>
    {
        public ValueTask LookupAsync(ReadOnlyMemory<long> keys, ILookupResults<long, SideRow> results, CancellationToken cancellationToken)
        {
            foreach (var key in keys.Span)
            {
                if (side._rows.TryGetValue(key, out var row))
                {
                    results.Add(key, row);
                }
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
