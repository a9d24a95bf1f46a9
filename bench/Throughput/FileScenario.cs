using System.Globalization;
using System.Text;
using System.Text.Json;
using Compiled.Bench;
using Compiled.Connectors;
using Compiled.Runtime;

namespace Compiled.Throughput;

/// <summary>
/// JSON Lines file → keep buys → CSV files: Compiled's file source and sink against the same job written by hand
/// with System.Text.Json (source-generated) and a StreamWriter, as a team would without an engine.
/// </summary>
internal static class FileScenario
{
    public static async Task RunAsync(int records, int warmups, int repetitions, List<(string, string)> results)
    {
        Console.WriteLine();
        Console.WriteLine("scenario: JSON Lines file -> filter (buy) -> CSV files");
        var directory = Directory.CreateTempSubdirectory("compiled-throughput-").FullName;
        try
        {
            var input = Path.Combine(directory, "trades.jsonl");
            await File.WriteAllBytesAsync(input, TradeData.JsonLines(records));
            var bytes = new FileInfo(input).Length;
            var recordBytes = (int)(bytes / records);
            var expected = Enumerable.Range(0, records).Count(i => TradeData.Create(i).Buy);
            var compiled1 = new Measurement("Compiled, parallelism 1", records, recordBytes);
            var compiled2 = new Measurement("Compiled, parallelism 2", records, recordBytes);
            var byHand = new Measurement("System.Text.Json + StreamWriter, by hand", records, recordBytes);
            for (var rep = 0; rep < warmups + repetitions; rep++)
            {
                var measure = rep >= warmups;
                await compiled1.RunAsync(() => RunCompiled(input, Path.Combine(directory, "out1"), 1, expected), measure);
                await compiled2.RunAsync(() => RunCompiled(input, Path.Combine(directory, "out2"), 2, expected), measure);
                await byHand.RunAsync(() => RunByHand(input, Path.Combine(directory, "hand.csv"), expected), measure);
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"input: {bytes:N0} bytes, {records:N0} records, {expected:N0} written"));
            foreach (var m in new[] { byHand, compiled1, compiled2 })
            {
                Console.WriteLine(m.Row(byHand.MedianSeconds));
            }

            results.Add(("jsonl_to_csv_records_per_second", compiled1.RecordsPerSecond.ToString("F0", CultureInfo.InvariantCulture)));
            results.Add(("jsonl_to_csv_mb_per_second", compiled1.MegabytesPerSecond.ToString("F0", CultureInfo.InvariantCulture)));
            results.Add(("jsonl_to_csv_vs_stj_by_hand", (byHand.MedianSeconds / compiled1.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
            results.Add(("jsonl_to_csv_partitions2_vs_1", (compiled1.MedianSeconds / compiled2.MedianSeconds).ToString("F3", CultureInfo.InvariantCulture)));
            results.Add(("jsonl_to_csv_alloc_bytes_per_record", compiled1.AllocatedBytesPerRecord.ToString("F1", CultureInfo.InvariantCulture)));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task RunCompiled(string input, string output, int parallelism, int expected)
    {
        if (Directory.Exists(output))
        {
            Directory.Delete(output, recursive: true);
        }

        var pipeline = new JsonToCsv
        {
            // Small chunks, so that one file spreads over both partitions.
            Input = new(input, new FileSourceOptions { ChunkBytes = 8 * 1024 * 1024 }),
            Output = new(output),
        };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 4096 });
        if (result.Sinks[0].Records != expected)
        {
            throw new InvalidOperationException($"Compiled wrote {result.Sinks[0].Records} records, expected {expected}");
        }
    }

    private static async Task RunByHand(string input, string output, int expected)
    {
        var written = 0;
        await using (var writer = new StreamWriter(output, append: false, new UTF8Encoding(false), 1 << 16))
        {
            await writer.WriteLineAsync("id,symbol,quantity,price,timestamp,buy");
            using var reader = new StreamReader(input, Encoding.UTF8, false, 1 << 16);
            while (await reader.ReadLineAsync() is { } line)
            {
                var trade = JsonSerializer.Deserialize(line, TradeJsonContext.Default.TradeText);
                if (!trade.Buy)
                {
                    continue;
                }

                await writer.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{trade.Id},{trade.Symbol},{trade.Quantity},{trade.Price},{trade.Timestamp},{(trade.Buy ? "true" : "false")}"));
                written++;
            }
        }

        if (written != expected)
        {
            throw new InvalidOperationException($"the hand-written job wrote {written} records, expected {expected}");
        }
    }
}
