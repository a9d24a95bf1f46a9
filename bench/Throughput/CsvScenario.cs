using System.Buffers;
using System.Globalization;
using System.Text;
using Compiled.Connectors;
using Sylvan.Data.Csv;

namespace Compiled.Throughput;

/// <summary>Short numeric rows: the shape of sensor exports.</summary>
[Record]
public readonly partial record struct CsvReading(long Id, int Sensor, double Value, long Timestamp);

/// <summary>Rows with quoted text: every text holds a comma, one in three a doubled quote, one in four a line break.</summary>
[Record]
public readonly partial record struct CsvReview(long Id, string Author, string Text, int Stars);

/// <summary>Wide rows: twenty fields of every common type.</summary>
[Record]
public readonly partial record struct CsvWide(
    long A0, long A1, long A2, long A3, long A4, long A5, long A6, long A7,
    double D0, double D1, double D2, double D3, double D4, double D5,
    string S0, string S1, string S2, string S3,
    bool B0, int I0);

/// <summary>A data shape of the CSV benchmark: its records, their checksum, and Sylvan's loop over them.</summary>
internal interface ICsvShape<T>
{
    static abstract T Create(long i);

    static abstract long Sum(in T record);

    static abstract long Sylvan(CsvDataReader csv);
}

/// <summary>
/// CSV bytes to records on three shapes, Compiled's file source and its stream source against Sylvan.Data.Csv written
/// the way its documentation shows (a <c>CsvDataReader</c> over the file or over a <c>StreamReader</c>, typed getters
/// into the record). Every implementation folds every field into a checksum compared with the one computed from the
/// generated records, so none can skip work. The "from a stream" runs read the same bytes from memory.
/// </summary>
internal static class CsvScenario
{
    private static readonly string[] Names = ["Ada", "Grace", "Linus", "Barbara", "Edsger", "Margaret", "Ken", "Frances"];

    public static async Task RunAsync(int records, int warmups, int repetitions, List<(string, string)> results)
    {
        var directory = Directory.CreateTempSubdirectory("compiled-csv-").FullName;
        try
        {
            await RunShapeAsync<CsvReading, CsvReading.CsvCodec, Numeric>("numeric", "short numeric rows (4 fields)", records, directory, warmups, repetitions, results);
            await RunShapeAsync<CsvReview, CsvReview.CsvCodec, Quoted>("quoted", "quoted text with commas, quotes and line breaks (4 fields)", records, directory, warmups, repetitions, results);
            await RunShapeAsync<CsvWide, CsvWide.CsvCodec, Wide>("wide", "wide rows (20 fields)", records / 2, directory, warmups, repetitions, results);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task RunShapeAsync<T, TCodec, TShape>(string shape, string description, int records, string directory, int warmups, int repetitions, List<(string, string)> results)
        where TCodec : IRecordCodec<T>
        where TShape : ICsvShape<T>
    {
        var path = Path.Combine(directory, shape + ".csv");
        var bytes = Write<T, TCodec>(records, TShape.Create);
        await File.WriteAllBytesAsync(path, bytes);
        long expected = 0;
        for (var i = 0L; i < records; i++)
        {
            expected += TShape.Sum(TShape.Create(i));
        }

        var recordBytes = (int)(bytes.Length / records);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scenario: CSV, {description}: {records:N0} records, {bytes.Length:N0} bytes ({recordBytes} per record)"));
        var sylvanFile = new Measurement("Sylvan.Data.Csv, from the file", records, recordBytes);
        var compiledFile = new Measurement("Compiled FileSource, from the file", records, recordBytes);
        var sylvanStream = new Measurement("Sylvan.Data.Csv, from a stream", records, recordBytes);
        var compiledStream = new Measurement("Compiled StdinSource, from a stream", records, recordBytes);
        var decodeOnly = new Measurement("Compiled decoder alone, records pre-framed", records, recordBytes);
        var frameOnly = new Measurement("Compiled framing alone, from a stream", records, recordBytes);
        var framed = Frame<T, TCodec>(records, TShape.Create);
        for (var rep = 0; rep < warmups + repetitions; rep++)
        {
            var measure = rep >= warmups;
            await sylvanFile.RunAsync(() => Check(expected, SylvanFile(path, TShape.Sylvan), sylvanFile.Name), measure);
            await compiledFile.RunAsync(async () => await Check(expected, await ReadAsync<T, TShape>(new FileSource<T, TCodec>(path)), compiledFile.Name), measure);
            await sylvanStream.RunAsync(() => Check(expected, SylvanStream(bytes, TShape.Sylvan), sylvanStream.Name), measure);
            await compiledStream.RunAsync(async () => await Check(expected, await ReadAsync<T, TShape>(new StdinSource<T, TCodec>(new MemoryStream(bytes, writable: false))), compiledStream.Name), measure);
            await decodeOnly.RunAsync(() => Check(expected, Decode<T, TCodec, TShape>(framed), decodeOnly.Name), measure);
            await frameOnly.RunAsync(async () => await Check(records, await CountAsync(new StdinSource<int, FramingOnly<T, TCodec>>(new MemoryStream(bytes, writable: false))), frameOnly.Name), measure);
        }

        Console.WriteLine(sylvanFile.Row(sylvanFile.MedianSeconds));
        Console.WriteLine(compiledFile.Row(sylvanFile.MedianSeconds));
        Console.WriteLine(sylvanStream.Row(sylvanStream.MedianSeconds));
        Console.WriteLine(compiledStream.Row(sylvanStream.MedianSeconds));
        Console.WriteLine(decodeOnly.Row(sylvanStream.MedianSeconds));
        Console.WriteLine(frameOnly.Row(sylvanStream.MedianSeconds));
        results.Add(($"csv_{shape}_file_vs_sylvan", (sylvanFile.MedianSeconds / compiledFile.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
        results.Add(($"csv_{shape}_stream_vs_sylvan", (sylvanStream.MedianSeconds / compiledStream.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
    }

    private static Task Check(long expected, long actual, string name)
        => expected == actual ? Task.CompletedTask : throw new InvalidOperationException($"{name}: checksum {actual}, expected {expected}");

    /// <summary>The records as CSV with a header, written by the generated encoder (it quotes what needs quoting).</summary>
    private static byte[] Write<T, TCodec>(int records, Func<long, T> create)
        where TCodec : IRecordCodec<T>
    {
        var buffer = new ArrayBufferWriter<byte>(records * 64);
        buffer.Write(TCodec.Header);
        buffer.Write("\n"u8);
        for (var i = 0L; i < records; i++)
        {
            TCodec.Encode(create(i), buffer);
            buffer.Write("\n"u8);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Each record encoded on its own (no line break): what the framing hands the decoder.</summary>
    private static ReadOnlyMemory<byte>[] Frame<T, TCodec>(int records, Func<long, T> create)
        where TCodec : IRecordCodec<T>
    {
        var framed = new ReadOnlyMemory<byte>[records];
        var buffer = new ArrayBufferWriter<byte>(256);
        for (var i = 0; i < records; i++)
        {
            buffer.ResetWrittenCount();
            TCodec.Encode(create(i), buffer);
            framed[i] = buffer.WrittenSpan.ToArray();
        }

        return framed;
    }

    private static long Decode<T, TCodec, TShape>(ReadOnlyMemory<byte>[] framed)
        where TCodec : IRecordCodec<T>
        where TShape : ICsvShape<T>
    {
        long sum = 0;
        foreach (var record in framed)
        {
            if (!TCodec.TryDecode(record, out var value, out var error))
            {
                throw new InvalidOperationException(error.Message);
            }

            sum += TShape.Sum(value);
        }

        return sum;
    }

    /// <summary>How many records the source's reader yields.</summary>
    private static async Task<long> CountAsync(ISource<int> source)
    {
        await source.OpenAsync(new SourceContext<int>("bench", "input", 1, Runtime.PipelineOptions.DefaultBatchSize, null), default);
        long count = 0;
        await using var reader = source.CreateReader(0);
        while (await reader.ReadAsync(default) is { IsEnd: false } batch)
        {
            count += batch.Records.Length;
        }

        return count;
    }

    /// <summary>The CSV framing of <typeparamref name="TCodec"/> with no decoding: each record is its length.</summary>
    private sealed class FramingOnly<T, TCodec> : IRecordCodec<int>
        where TCodec : IRecordCodec<T>
    {
        public static string Format => TCodec.Format;

        public static RecordFraming Framing => TCodec.Framing;

        public static ReadOnlySpan<byte> Header => TCodec.Header;

        public static bool TryDecode(ReadOnlyMemory<byte> input, out int record, out DecodeError failure)
        {
            record = input.Length;
            failure = default;
            return true;
        }

        public static void Encode(in int record, IBufferWriter<byte> output) => throw new NotSupportedException();
    }

    /// <summary>What the source's reader yields, folded into the checksum (one partition: the whole file).</summary>
    private static async Task<long> ReadAsync<T, TShape>(ISource<T> source)
        where TShape : ICsvShape<T>
    {
        await source.OpenAsync(new SourceContext<T>("bench", "input", 1, Runtime.PipelineOptions.DefaultBatchSize, null), default);
        long sum = 0;
        await using (var reader = source.CreateReader(0))
        {
            while (true)
            {
                var batch = await reader.ReadAsync(default);
                if (batch.IsEnd)
                {
                    break;
                }

                foreach (ref readonly var record in batch.Records.Span)
                {
                    sum += TShape.Sum(record);
                }
            }
        }

        if (source is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }

        return sum;
    }

    private static long SylvanFile(string path, Func<CsvDataReader, long> read)
    {
        using var csv = CsvDataReader.Create(path);
        return read(csv);
    }

    private static long SylvanStream(byte[] bytes, Func<CsvDataReader, long> read)
    {
        using var csv = CsvDataReader.Create(new StreamReader(new MemoryStream(bytes, writable: false), Encoding.UTF8));
        return read(csv);
    }

    private sealed class Numeric : ICsvShape<CsvReading>
    {
        public static CsvReading Create(long i)
            => new(i, (int)(i % 997), Math.Round((i % 100_003) * 0.37, 2), 1_733_212_345_000 + i * 250);

        public static long Sum(in CsvReading r) => r.Id + r.Sensor + (long)(r.Value * 100) + r.Timestamp;

        public static long Sylvan(CsvDataReader csv)
        {
            long sum = 0;
            while (csv.Read())
            {
                sum += Sum(new CsvReading(csv.GetInt64(0), csv.GetInt32(1), csv.GetDouble(2), csv.GetInt64(3)));
            }

            return sum;
        }
    }

    private sealed class Quoted : ICsvShape<CsvReview>
    {
        public static CsvReview Create(long i)
        {
            var text = new StringBuilder("Arrived on time, works as described");
            if (i % 3 == 0)
            {
                text.Append(" — \"five stars\", no less");
            }

            if (i % 4 == 0)
            {
                text.Append("\nSecond paragraph: the box was damaged, the item was not");
            }

            return new(i, Names[i % Names.Length] + " " + (i % 1000).ToString(CultureInfo.InvariantCulture), text.ToString(), (int)(i % 5) + 1);
        }

        public static long Sum(in CsvReview r) => r.Id + r.Author.Length + r.Text.Length + r.Text[^1] + r.Stars;

        public static long Sylvan(CsvDataReader csv)
        {
            long sum = 0;
            while (csv.Read())
            {
                sum += Sum(new CsvReview(csv.GetInt64(0), csv.GetString(1), csv.GetString(2), csv.GetInt32(3)));
            }

            return sum;
        }
    }

    private sealed class Wide : ICsvShape<CsvWide>
    {
        public static CsvWide Create(long i)
            => new(
                i, i * 3, i * 7, i % 1000, i % 77, -i, i * 11, i / 3,
                Math.Round(i * 0.25, 2), Math.Round(i % 1000 * 1.5, 1), i % 10 * 0.5, Math.Round(-i * 0.01, 2), 3.14, i % 7,
                Names[i % Names.Length], "x" + (i % 100).ToString(CultureInfo.InvariantCulture), "constant", Names[(i + 3) % Names.Length],
                i % 2 == 0, (int)(i % 10_000));

        public static long Sum(in CsvWide w)
            => w.A0 + w.A1 + w.A2 + w.A3 + w.A4 + w.A5 + w.A6 + w.A7
               + (long)(w.D0 * 100) + (long)(w.D1 * 10) + (long)(w.D2 * 10) + (long)(w.D3 * 100) + (long)(w.D4 * 100) + (long)w.D5
               + w.S0.Length + w.S1.Length + w.S2.Length + w.S3.Length + (w.B0 ? 1 : 0) + w.I0;

        public static long Sylvan(CsvDataReader csv)
        {
            long sum = 0;
            while (csv.Read())
            {
                sum += Sum(new CsvWide(
                    csv.GetInt64(0), csv.GetInt64(1), csv.GetInt64(2), csv.GetInt64(3), csv.GetInt64(4), csv.GetInt64(5), csv.GetInt64(6), csv.GetInt64(7),
                    csv.GetDouble(8), csv.GetDouble(9), csv.GetDouble(10), csv.GetDouble(11), csv.GetDouble(12), csv.GetDouble(13),
                    csv.GetString(14), csv.GetString(15), csv.GetString(16), csv.GetString(17),
                    csv.GetBoolean(18), csv.GetInt32(19)));
            }

            return sum;
        }
    }
}
