using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Compiled.Connectors;
using CsCheck;

namespace Compiled.Runtime.Tests.Serialization;

/// <summary>
/// Fields whose JSON both decoders read the same way: no nullable fields, so "required" means the same; classes, so
/// System.Text.Json binds through the constructor (for a struct it would use the implicit parameterless one).
/// </summary>
[Record(Naming = FieldNaming.CamelCase)]
public sealed partial record FuzzRecord(long Id, string Name, double Score, bool Active, FuzzPoint Where);

/// <summary>A nested object of the fuzz record.</summary>
public sealed record FuzzPoint(int X, int Y);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    RespectRequiredConstructorParameters = true,
    RespectNullableAnnotations = true)]
[JsonSerializable(typeof(FuzzRecord))]
internal sealed partial class FuzzStjContext : JsonSerializerContext;

/// <summary>
/// Random damage to valid records — byte flips, insertions, deletions, truncations, duplicated slices, and snippets of
/// quote, escape and number trouble — fed to the generated decoders. They must never throw and never hang, and the
/// JSON decoder must accept exactly what System.Text.Json accepts, except where docs/connectors.md says otherwise.
/// A failure prints a seed: replay it with <c>CsCheck_Seed=… dotnet test --filter DecoderFuzzTests</c>.
/// </summary>
public sealed class DecoderFuzzTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(3);

    private static readonly byte[][] Snippets =
    [
        .. new[]
        {
            "\"", "\\", "\\u", "\\ud800", "\\u00e9", "\\x", ",", ":", "{", "}", "[", "]", "\"x\":1,", "\"id\":2,", "null", "true",
            "1e400", "1e-400", "-0", "+5", "007", ".5", "5.", "NaN", "\"NaN\"", "Infinity", "1e", "-", "\"\"", "\r\n", "\n", " ", "\t",
            "{\"a\":[1,{\"b\":null}]}", "\"a,b\"", "é", "😀",
        }.Select(Encoding.UTF8.GetBytes),
        [0x00], [0x1F], [0x7F], [0x80], [0xC3], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xFF], [0xEF, 0xBB, 0xBF],
    ];

    private static readonly Gen<FuzzRecord> Records = Gen.Select(
        Gen.Long, Generators.Text, Generators.Double, Gen.Bool, Gen.Select(Gen.Int, Gen.Int, (x, y) => new FuzzPoint(x, y)),
        (id, name, score, active, where) => new FuzzRecord(id, name, score, active, where));

    private static readonly Gen<(int Kind, int At, int To, byte Byte, int Snippet)[]> Mutations =
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 10_000], Gen.Int[0, 10_000], Gen.Byte, Gen.Int[0, Snippets.Length - 1]).Array[1, 4];

    [Fact]
    public async Task Json_decoding_of_damaged_records_agrees_with_System_Text_Json_and_never_throws()
    {
        await Task.Run(() => Gen.Select(Records, Mutations).Sample(
            (record, mutations) =>
            {
                var bytes = Mutate(Encode<FuzzRecord, FuzzRecord.JsonCodec>(record), mutations);
                var ours = FuzzRecord.JsonCodec.TryDecode(bytes, out var decoded, out var error);
                FuzzRecord? theirs;
                try
                {
                    theirs = JsonSerializer.Deserialize(bytes, FuzzStjContext.Default.FuzzRecord);
                }
                catch (JsonException)
                {
                    theirs = null;
                }

                var text = Describe(bytes);
                if (ours)
                {
                    Assert.True(theirs is not null, $"accepted, System.Text.Json rejects: {text}");
                    Assert.Equal(theirs, decoded);
                }
                else if (theirs is not null)
                {
                    // The documented differences: a number out of its field's range, which System.Text.Json reads as ±Infinity
                    // or 0; invalid UTF-8 in the name of a property no field reads, which System.Text.Json skips unchecked.
                    Assert.True(
                        error.Message.Contains("too small", StringComparison.Ordinal) || error.Message.Contains("too large", StringComparison.Ordinal) || error.Message.Contains("not valid UTF-8", StringComparison.Ordinal),
                        $"rejected ({error}), System.Text.Json accepts: {text}");
                }
            },
            iter: 20_000)).WaitAsync(HangGuard);
    }

    [Fact]
    public async Task Csv_decoding_and_framing_of_damaged_records_never_throws()
    {
        await Task.Run(() => Gen.Select(Records, Mutations).Sample(
            (record, mutations) =>
            {
                var bytes = Mutate(Encode<FuzzRecord, FuzzRecord.CsvCodec>(record), mutations);
                if (FuzzRecord.CsvCodec.TryDecode(bytes, out var decoded, out _))
                {
                    // Whatever decodes is a record that survives its own round trip.
                    var again = Encode<FuzzRecord, FuzzRecord.CsvCodec>(decoded);
                    Assert.True(FuzzRecord.CsvCodec.TryDecode(again, out var back, out var error), $"{error}: {Describe(again.Span)}");
                    Assert.Equal(decoded, back);
                }

                _ = CsvFraming.CountFields(bytes);
            },
            iter: 20_000)).WaitAsync(HangGuard);
    }

    [Fact]
    public async Task Damaged_csv_and_json_files_are_read_to_the_end_without_an_exception()
    {
        // The framing layer over whole files: many damaged records in a row, read through the stream reader.
        await Task.Run(() => Gen.Select(Records.Array[1, 30], Mutations.Array[1, 30], Gen.Bool).Sample(
            (records, mutations, csv) =>
            {
                var file = new ArrayBufferWriter<byte>();
                if (csv)
                {
                    file.Write(FuzzRecord.CsvCodec.Header);
                    file.Write("\n"u8);
                }

                for (var i = 0; i < records.Length; i++)
                {
                    var line = csv ? Encode<FuzzRecord, FuzzRecord.CsvCodec>(records[i]) : Encode<FuzzRecord, FuzzRecord.JsonCodec>(records[i]);
                    file.Write(Mutate(line, mutations[i % mutations.Length]));
                    file.Write(i % 2 == 0 ? "\n"u8 : "\r\n"u8);
                }

                var letters = new CountingChannel();
                var read = csv ? ReadAll<FuzzRecord.CsvCodec>(file.WrittenMemory, letters) : ReadAll<FuzzRecord.JsonCodec>(file.WrittenMemory, letters);
                var lines = 1 + file.WrittenSpan.Count((byte)'\n');
                Assert.True(read + letters.Count <= lines, $"{read} records and {letters.Count} dead letters from {lines} lines");
            },
            iter: 500)).WaitAsync(HangGuard);
    }

    private static long ReadAll<TCodec>(ReadOnlyMemory<byte> bytes, IDeadLetterChannel letters)
        where TCodec : IRecordCodec<FuzzRecord>
    {
        var pipe = System.IO.Pipelines.PipeReader.Create(new MemoryStream(bytes.ToArray()), new System.IO.Pipelines.StreamPipeReaderOptions(bufferSize: 64));
        var reader = new RecordStreamReader<FuzzRecord, TCodec>(pipe, new RecordStreamSettings("fuzz", "fuzz", 0, 7, new RecordSourceOptions { MaxRecordBytes = 256, MaxRecordLines = 3 }, letters, ExpectHeader: true));
        long read = 0;
        while (true)
        {
            var batch = reader.ReadBatchAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
            if (batch.IsEnd)
            {
                return read;
            }

            read += batch.Records.Length;
        }
    }

    private static byte[] Mutate(ReadOnlyMemory<byte> original, (int Kind, int At, int To, byte Byte, int Snippet)[] mutations)
    {
        var bytes = new List<byte>(original.ToArray());
        foreach (var (kind, at, to, value, snippet) in mutations)
        {
            var position = bytes.Count == 0 ? 0 : at % (bytes.Count + 1);
            switch (kind)
            {
                case 0 when position < bytes.Count:
                    bytes[position] = value;
                    break;
                case 1 when position < bytes.Count:
                    bytes.RemoveAt(position);
                    break;
                case 2:
                    bytes.Insert(position, value);
                    break;
                case 3:
                    bytes.RemoveRange(position, bytes.Count - position);
                    break;
                case 4:
                    var end = Math.Min(bytes.Count, position + (to % 12));
                    bytes.InsertRange(to % (bytes.Count + 1), bytes.GetRange(position, end - position));
                    break;
                default:
                    bytes.InsertRange(position, Snippets[snippet]);
                    break;
            }
        }

        return [.. bytes];
    }

    private static ReadOnlyMemory<byte> Encode<T, TCodec>(T value)
        where TCodec : IRecordCodec<T>
    {
        var buffer = new ArrayBufferWriter<byte>();
        TCodec.Encode(value, buffer);
        return buffer.WrittenMemory;
    }

    private static string Describe(ReadOnlySpan<byte> bytes) => $"{Convert.ToHexString(bytes)} ({Encoding.UTF8.GetString(bytes)})";

    private sealed class CountingChannel : IDeadLetterChannel
    {
        public int Count { get; private set; }

        public ErrorPolicy Policy => ErrorPolicy.DeadLetter;

        public void Report(in FailedRecord failure) => Count++;
    }
}
