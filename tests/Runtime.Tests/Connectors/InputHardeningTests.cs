using System.Text;
using System.Text.Json;
using Compiled.Connectors;

namespace Compiled.Runtime.Tests.Connectors;

/// <summary>Adversarial input from outside tests (issue 18): stray CSV quotes, record limits, blank lines.</summary>
public sealed class InputHardeningTests : IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(120);
    private readonly string _directory = Directory.CreateTempSubdirectory("compiled-input-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string PathOf(string name) => Path.Combine(_directory, name);

    [Fact]
    public async Task A_stray_csv_quote_costs_only_its_own_line_in_a_100k_row_file()
    {
        // 100 000 rows; every 250th (0.4 %) has a stray quote of one of the kinds an outside test found, and every
        // 1 000th holds a legitimate quoted line break. Every valid row must arrive; every bad row must be one dead
        // letter covering one line.
        var path = PathOf("rows.csv");
        var expected = new List<long>();
        var badLines = new List<long>();
        var line = 1L;
        using (var writer = new StreamWriter(path, false, new UTF8Encoding(false)))
        {
            writer.Write("seq,path,status\n");
            for (var seq = 0; seq < 100_000; seq++)
            {
                line++;
                if (seq % 250 == 17)
                {
                    badLines.Add(line);
                    writer.Write((seq / 250 % 3) switch
                    {
                        0 => $"{seq},\"unterminated,30\n",
                        1 => $"{seq},\"bad\"quote\",30\n",
                        _ => $"{seq},/p\"x,30\r\n",
                    });
                }
                else if (seq % 1000 == 500)
                {
                    expected.Add(seq);
                    writer.Write($"{seq},\"/multi\nline\",200\n");
                    line++;
                }
                else
                {
                    expected.Add(seq);
                    writer.Write(seq % 7 == 0 ? $"{seq},\"/p{seq}\",200\r\n" : $"{seq},/p{seq},200\n");
                }
            }
        }

        var deadLetters = PathOf("dead.jsonl");
        var pipeline = new CsvFilePipeline { Input = new(path) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = deadLetters }).WaitAsync(HangGuard);

        Assert.Equal(expected, pipeline.Output.Items.Select(l => l.Seq).Order());
        Assert.Contains(new LogLine(500, "/multi\nline", 200), pipeline.Output.Items);
        var letters = File.ReadAllLines(deadLetters).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(badLines, letters.Select(l => l.GetProperty("line").GetInt64()).Order());
        Assert.All(letters, l => Assert.Equal(1, l.GetProperty("lines").GetInt32()));
        Assert.All(letters, l => Assert.DoesNotContain("\n", l.GetProperty("raw").GetString(), StringComparison.Ordinal));
        Assert.Equal(badLines.Count, result.Malformed);
    }

    [Fact]
    public async Task A_well_formed_multi_line_csv_record_that_fails_to_decode_is_one_dead_letter_covering_its_lines()
    {
        var path = PathOf("multi.csv");
        File.WriteAllText(path, "seq,path,status\n1,\"/a\nb\",oops\n2,/ok,200\n");
        var deadLetters = PathOf("dead.jsonl");
        var pipeline = new CsvFilePipeline { Input = new(path) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = deadLetters }).WaitAsync(HangGuard);

        Assert.Equal([2L], pipeline.Output.Items.Select(l => l.Seq));
        Assert.Contains("failed: 1 malformed (covering 2 input lines)", PipelineHost.Summary(result), StringComparison.Ordinal);
        var letter = JsonDocument.Parse(File.ReadAllLines(deadLetters).Single()).RootElement;
        Assert.Equal(2, letter.GetProperty("line").GetInt64());
        Assert.Equal(2, letter.GetProperty("lines").GetInt32());
        Assert.Equal("1,\"/a\nb\",oops", letter.GetProperty("raw").GetString());
    }

    [Fact]
    public async Task A_last_csv_record_with_quoted_line_breaks_and_no_final_line_break_is_read_whole()
    {
        // An outside test's finding: such a record was dead-lettered line by line as "the quoted field is not closed".
        var good = PathOf("last-good.csv");
        File.WriteAllText(good, "seq,path,status\n1,/ok,200\n2,\"/a\r\nb\n\",201");
        var pipeline = new CsvFilePipeline { Input = new(good) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = PathOf("last-good.jsonl") }).WaitAsync(HangGuard);
        Assert.Equal([new LogLine(1, "/ok", 200), new LogLine(2, "/a\r\nb\n", 201)], pipeline.Output.Items);
        Assert.Equal(0, result.Malformed);

        // The same record with a bad value is one dead letter covering its lines; an unclosed quote still costs only its line.
        var bad = PathOf("last-bad.csv");
        File.WriteAllText(bad, "seq,path,status\n1,/ok,200\n2,\"/a\nb\",oops");
        var deadLetters = PathOf("last-bad.jsonl");
        var failed = new CsvFilePipeline { Input = new(bad) };
        await failed.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = deadLetters }).WaitAsync(HangGuard);
        Assert.Equal([1L], failed.Output.Items.Select(l => l.Seq));
        var letter = JsonDocument.Parse(File.ReadAllLines(deadLetters).Single()).RootElement;
        Assert.Equal((3L, 2), (letter.GetProperty("line").GetInt64(), letter.GetProperty("lines").GetInt32()));
        Assert.Equal("2,\"/a\nb\",oops", letter.GetProperty("raw").GetString());

        var unclosed = PathOf("last-unclosed.csv");
        File.WriteAllText(unclosed, "seq,path,status\n1,/ok,200\n2,\"/a\n3,/b,200");
        var resynced = new CsvFilePipeline { Input = new(unclosed) };
        var resyncedResult = await resynced.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = PathOf("last-unclosed.jsonl") }).WaitAsync(HangGuard);
        Assert.Equal([1L, 3L], resynced.Output.Items.Select(l => l.Seq));
        Assert.Equal(1, resyncedResult.Malformed);
    }

    [Fact]
    public async Task A_quoted_field_spans_at_most_MaxRecordLines_lines()
    {
        var path = PathOf("long.csv");
        var field = string.Join("\n", Enumerable.Range(0, 5).Select(i => "l" + i));
        File.WriteAllText(path, $"seq,path,status\n1,\"{field}\",200\n2,/ok,200\n");
        var pipeline = new CsvFilePipeline { Input = new(path, new FileSourceOptions { MaxRecordLines = 5 }) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = PathOf("d1.jsonl") }).WaitAsync(HangGuard);
        Assert.Equal([new LogLine(1, field, 200), new LogLine(2, "/ok", 200)], pipeline.Output.Items);

        var strict = new CsvFilePipeline { Input = new(path, new FileSourceOptions { MaxRecordLines = 4 }) };
        var result = await strict.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = PathOf("d2.jsonl") }).WaitAsync(HangGuard);
        Assert.Contains(new LogLine(2, "/ok", 200), strict.Output.Items);
        Assert.DoesNotContain(strict.Output.Items, l => l.Seq == 1);
        Assert.True(result.Malformed >= 1);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public async Task A_record_of_exactly_MaxRecordBytes_is_accepted_whatever_its_line_ending(string newline)
    {
        const int limit = 1024;
        var prefix = "{\"seq\":1,\"path\":\"";
        var suffix = "\",\"status\":200}";
        var exact = prefix + new string('x', limit - prefix.Length - suffix.Length) + suffix;
        var over = prefix.Replace("1", "2", StringComparison.Ordinal) + new string('x', limit + 1 - prefix.Length - suffix.Length) + suffix;
        Assert.Equal(limit, Encoding.UTF8.GetByteCount(exact));
        var path = PathOf("limit.jsonl");
        File.WriteAllText(path, exact + newline + over + newline + exact.Replace("\"seq\":1", "\"seq\":3", StringComparison.Ordinal) + newline);
        var pipeline = new JsonFilePipeline { Input = new(path, new FileSourceOptions { MaxRecordBytes = limit }) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = PathOf("dead.jsonl") }).WaitAsync(HangGuard);
        Assert.Equal([1L, 3L], pipeline.Output.Items.Select(l => l.Seq).Order());
        Assert.Equal(1, result.Malformed);
    }

    [Fact]
    public async Task Whitespace_only_lines_are_skipped_like_blank_ones()
    {
        var path = PathOf("blank.jsonl");
        File.WriteAllText(path, FileConnectorTests.Line(1) + "   \n\t\r\n \t \r\n\r\n" + FileConnectorTests.Line(2) + "  ");
        var deadLetters = PathOf("dead.jsonl");
        var pipeline = new JsonFilePipeline { Input = new(path) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = deadLetters }).WaitAsync(HangGuard);
        Assert.Equal([1L, 2L], pipeline.Output.Items.Select(l => l.Seq).Order());
        Assert.Equal(0, result.Malformed);
        Assert.False(File.Exists(deadLetters));
    }
}
