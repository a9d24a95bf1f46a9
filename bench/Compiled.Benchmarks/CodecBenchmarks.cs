using System.Buffers;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Compiled.Bench;
using Sylvan.Data.Csv;

namespace Compiled.Benchmarks;

/// <summary>
/// Parsing and writing 1 M records: Compiled's generated codecs side by side with System.Text.Json's
/// source-generated serializer (JSON) and Sylvan.Data.Csv (CSV). Every decoder feeds a checksum over all fields,
/// compared with the expected one, so none can skip work. Lines are split by the same code for both JSON decoders.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class CodecBenchmarks
{
    private byte[] _json = [];
    private byte[] _csv = [];
    private ReadOnlyMemory<byte>[] _jsonLines = [];
    private ReadOnlyMemory<byte>[] _csvLines = [];
    private TradeText[] _records = [];
    private long _expected;
    private ArrayBufferWriter<byte> _output = new();

    [Params(1_000_000)]
    public int Records { get; set; }

    /// <summary>The batch size the framed benchmarks read with.</summary>
    public int BatchSizeForStreams { get; set; } = Runtime.PipelineOptions.DefaultBatchSize;

    [GlobalSetup]
    public void Setup()
    {
        _json = TradeData.JsonLines(Records);
        _csv = TradeData.Csv(Records);
        _jsonLines = TradeData.Lines(_json);
        _csvLines = TradeData.Lines(_csv, skip: 1);
        _records = Enumerable.Range(0, Records).Select(i => TradeData.Create(i)).ToArray();
        _expected = _records.Sum(r => TradeData.Checksum(r));
        _output = new ArrayBufferWriter<byte>(_json.Length + 1024);
        Console.WriteLine($"// JSON Lines: {_json.Length:N0} bytes; CSV: {_csv.Length:N0} bytes");
    }

    [Benchmark(Baseline = true, Description = "JSON parse: System.Text.Json source-gen")]
    public long JsonParseStj()
    {
        long sum = 0;
        foreach (var line in _jsonLines)
        {
            var record = JsonSerializer.Deserialize(line.Span, TradeJsonContext.Default.TradeText);
            sum += TradeData.Checksum(record);
        }

        return Check(sum);
    }

    [Benchmark(Description = "JSON parse: Compiled (string field)")]
    public long JsonParseCompiled()
    {
        long sum = 0;
        foreach (var line in _jsonLines)
        {
            TradeText.JsonCodec.TryDecode(line, out var record, out _);
            sum += TradeData.Checksum(record);
        }

        return Check(sum);
    }

    [Benchmark(Description = "JSON parse: Compiled (Utf8Text field, 0 B/record)")]
    public long JsonParseCompiledUtf8()
    {
        long sum = 0;
        foreach (var line in _jsonLines)
        {
            Trade.JsonCodec.TryDecode(line, out var record, out _);
            sum += TradeData.Checksum(record);
        }

        return Check(sum);
    }

    [Benchmark(Description = "JSON write: System.Text.Json source-gen (Utf8JsonWriter)")]
    public int JsonWriteStj()
    {
        _output.ResetWrittenCount();
        using var writer = new Utf8JsonWriter(_output);
        foreach (var record in _records)
        {
            JsonSerializer.Serialize(writer, record, TradeJsonContext.Default.TradeText);
            writer.Flush();
            writer.Reset(_output);
            _output.Write("\n"u8);
        }

        return _output.WrittenCount;
    }

    [Benchmark(Description = "JSON write: Compiled")]
    public int JsonWriteCompiled()
    {
        _output.ResetWrittenCount();
        foreach (var record in _records)
        {
            TradeText.JsonCodec.Encode(record, _output);
            _output.Write("\n"u8);
        }

        return _output.WrittenCount;
    }

    [Benchmark(Description = "CSV parse: Sylvan.Data.Csv")]
    public long CsvParseSylvan()
    {
        using var reader = CsvDataReader.Create(new StreamReader(new MemoryStream(_csv)));
        long sum = 0;
        while (reader.Read())
        {
            var record = new TradeText(reader.GetInt64(0), reader.GetString(1), reader.GetInt32(2), reader.GetDouble(3), reader.GetInt64(4), reader.GetBoolean(5));
            sum += TradeData.Checksum(record);
        }

        return Check(sum);
    }

    /// <summary>The connector's path: framing (quote-aware) and decoding from a stream, as Sylvan does, through the public StdinSource.</summary>
    [Benchmark(Description = "CSV parse: Compiled, framed from a stream (string field)")]
    public Task<long> CsvStreamCompiled() => ReadStream<TradeText, TradeText.CsvCodec>(_csv);

    /// <summary>JSON Lines framing and decoding from a stream.</summary>
    [Benchmark(Description = "JSON parse: Compiled, framed from a stream (string field)")]
    public Task<long> JsonStreamCompiled() => ReadStream<TradeText, TradeText.JsonCodec>(_json);

    [Benchmark(Description = "CSV parse: Compiled (string field)")]
    public long CsvParseCompiled()
    {
        long sum = 0;
        foreach (var line in _csvLines)
        {
            TradeText.CsvCodec.TryDecode(line, out var record, out _);
            sum += TradeData.Checksum(record);
        }

        return Check(sum);
    }

    [Benchmark(Description = "CSV parse: Compiled (Utf8Text field, 0 B/record)")]
    public long CsvParseCompiledUtf8()
    {
        long sum = 0;
        foreach (var line in _csvLines)
        {
            Trade.CsvCodec.TryDecode(line, out var record, out _);
            sum += TradeData.Checksum(record);
        }

        return Check(sum);
    }

    [Benchmark(Description = "CSV write: Compiled")]
    public int CsvWriteCompiled()
    {
        _output.ResetWrittenCount();
        foreach (var record in _records)
        {
            TradeText.CsvCodec.Encode(record, _output);
            _output.Write("\n"u8);
        }

        return _output.WrittenCount;
    }

    private async Task<long> ReadStream<T, TCodec>(byte[] data)
        where TCodec : IRecordCodec<TradeText>
    {
        var source = new Connectors.StdinSource<TradeText, TCodec>(new MemoryStream(data, writable: false));
        await source.OpenAsync(new SourceContext<TradeText>("bench", "input", 1, BatchSizeForStreams, null), default);
        await using var reader = source.CreateReader(0);
        long sum = 0;
        while (true)
        {
            var batch = await reader.ReadAsync(default);
            if (batch.IsEnd)
            {
                break;
            }

            foreach (var record in batch.Records.Span)
            {
                sum += TradeData.Checksum(record);
            }
        }

        return Check(sum);
    }

    private long Check(long sum) => sum == _expected ? sum : throw new InvalidOperationException($"checksum {sum}, expected {_expected}: a decoder is wrong");
}
