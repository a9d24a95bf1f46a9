using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using Compiled.Connectors;

namespace Compiled.Bench;

/// <summary>A record of primitives and a UTF-8 slice: decodes with no allocation at all.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Trade(long Id, Utf8Text Symbol, int Quantity, double Price, long Timestamp, bool Buy);

/// <summary>The same record with a string, as most code writes it: the string is the only allocation.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct TradeText(long Id, string Symbol, int Quantity, double Price, long Timestamp, bool Buy);

/// <summary>System.Text.Json's source-generated serializer for the same shape: the peer for JSON.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(TradeText))]
public sealed partial class TradeJsonContext : JsonSerializerContext;

/// <summary>Test data for the codec benchmarks.</summary>
public static class TradeData
{
    private static readonly string[] Symbols = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "ASML"];

    public static TradeText Create(long i) => new(
        i,
        Symbols[i % Symbols.Length],
        (int)(i % 1000) + 1,
        Math.Round(100 + (i % 10_000) * 0.0125, 4),
        1_764_000_000_000 + (i * 37),
        i % 3 != 0);

    /// <summary><paramref name="count"/> records as JSON Lines, written by the generated codec.</summary>
    public static byte[] JsonLines(int count)
    {
        var buffer = new ArrayBufferWriter<byte>(count * 100);
        for (var i = 0; i < count; i++)
        {
            TradeText.JsonCodec.Encode(Create(i), buffer);
            buffer.Write("\n"u8);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary><paramref name="count"/> records as CSV with a header.</summary>
    public static byte[] Csv(int count)
    {
        var buffer = new ArrayBufferWriter<byte>(count * 60);
        buffer.Write(TradeText.CsvCodec.Header);
        buffer.Write("\n"u8);
        for (var i = 0; i < count; i++)
        {
            TradeText.CsvCodec.Encode(Create(i), buffer);
            buffer.Write("\n"u8);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The lines of <paramref name="data"/> (without line breaks), skipping <paramref name="skip"/> header lines.</summary>
    public static ReadOnlyMemory<byte>[] Lines(byte[] data, int skip = 0)
    {
        var lines = new List<ReadOnlyMemory<byte>>();
        var start = 0;
        while (start < data.Length)
        {
            var end = Array.IndexOf(data, (byte)'\n', start);
            end = end < 0 ? data.Length : end;
            lines.Add(data.AsMemory(start, end - start));
            start = end + 1;
        }

        return [.. lines.Skip(skip)];
    }

    /// <summary>A checksum that depends on every field, so no decoder can skip work.</summary>
    public static long Checksum(in TradeText t) => t.Id + t.Symbol.Length + t.Quantity + (long)(t.Price * 10_000) + t.Timestamp + (t.Buy ? 1 : 0);

    /// <summary>The same checksum over the UTF-8 record.</summary>
    public static long Checksum(in Trade t) => t.Id + t.Symbol.Length + t.Quantity + (long)(t.Price * 10_000) + t.Timestamp + (t.Buy ? 1 : 0);

    public static string Describe(long checksum) => checksum.ToString(CultureInfo.InvariantCulture);

    public static Encoding Utf8 { get; } = new UTF8Encoding(false);
}

/// <summary>The JSON Lines file → CSV file scenario: read, keep buys, write CSV.</summary>
[Pipeline(Name = "jsonl-to-csv", ErrorPolicy = ErrorPolicy.FailFast)]
public sealed partial class JsonToCsv
{
    [Source] public FileSource<TradeText, TradeText.JsonCodec> Input { get; set; } = new("unused");

    [Transform] static bool IsBuy(TradeText trade) => trade.Buy;

    [Sink] public FileSink<TradeText, TradeText.CsvCodec> Output { get; set; } = new("unused");
}
