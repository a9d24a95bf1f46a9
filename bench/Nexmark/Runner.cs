using System.Diagnostics;
using System.Globalization;
using Compiled.Bench;
using Compiled.Runtime;

namespace Compiled.Nexmark;

/// <summary>
/// The benchmark's command line:
/// <c>dotnet run -c Release --project bench/Nexmark -- --query q5 --events 10000000 [--parallelism 1,2] [--rounds 3]</c>,
/// <c>--all</c> (every query), <c>--quick</c> (every query, 1,000,000 events, one round), <c>--verify</c> (compare each
/// query's output with the LINQ reference instead of timing it), <c>--rate</c> (events per second of event time).
/// </summary>
public static class Runner
{
    private const string Usage = """
        usage: Compiled.Nexmark [--query q0,q5,… | --all | --quick] [--events N] [--rate EVENTS_PER_SECOND]
                                [--parallelism 1,2] [--rounds N] [--verify] [--no-hand] [--watermark-delay S] [--skip-unread]
          --query        queries to run (default: all of them)
          --all          every query the engine runs
          --quick        every query on 1,000,000 events, one round
          --events       events per run, of all kinds (default 10,000,000)
          --rate         event-time rate, events per second (default 10,000,000, as the published Flink runs)
          --parallelism  partitions, a list runs each (default 1)
          --rounds       rounds per measurement, interleaved with the hand-written loops; the median is reported (default 3)
          --verify       compare every query's output with a naive LINQ reference of its SQL instead of timing it
          --no-hand      skip the hand-written loops of q0, q1, q2, q5 and q7
          --allocations  run the queries once and show which types their allocations are made of
          --watermark-delay  seconds the watermark stays behind the newest event (default 4, the benchmark's DDL)
          --skip-unread  sources skip the events of kinds their query does not read (by default they are made and
                         dropped: Nexmark's figures include generating every event)
        """;

    /// <summary>Runs the command line <paramref name="args"/>; the exit code is 0 when every check passed, 2 for bad arguments.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var queries = Verification.Queries.ToList();
        long events = 10_000_000;
        double rate = 10_000_000;
        int[] parallelism = [1];
        var rounds = 3;
        var verify = false;
        var hand = true;
        var makeUnread = true;
        var allocations = false;
        var delay = TimeSpan.FromSeconds(4);
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                switch (args[i])
                {
                    case "--query": queries = [.. Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(q => q.ToLowerInvariant())]; break;
                    case "--all": queries = [.. Verification.Queries]; break;
                    case "--quick": (queries, events, rounds) = ([.. Verification.Queries], 1_000_000, 1); break;
                    case "--events": events = long.Parse(Value(), NumberStyles.AllowThousands, CultureInfo.InvariantCulture); break;
                    case "--rate": rate = double.Parse(Value(), NumberStyles.Float | NumberStyles.AllowThousands, CultureInfo.InvariantCulture); break;
                    case "--parallelism": parallelism = [.. Value().Split(',').Select(p => int.Parse(p, CultureInfo.InvariantCulture))]; break;
                    case "--rounds": rounds = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                    case "--verify": verify = true; break;
                    case "--no-hand": hand = false; break;
                    case "--allocations": allocations = true; break;
                    case "--skip-unread": makeUnread = false; break;
                    case "--watermark-delay": delay = TimeSpan.FromSeconds(double.Parse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture)); break;
                    case "-h" or "--help": Console.WriteLine(Usage); return 0;
                    default: throw new ArgumentException($"unknown argument '{args[i]}'.");
                }
            }

            var unknown = queries.Where(q => !Verification.Queries.Contains(q)).ToList();
            if (unknown.Count > 0)
            {
                throw new ArgumentException($"unknown {string.Join(", ", unknown)}; the queries are {string.Join(", ", Verification.Queries)} (q6, q9, q10, q15, q16, q18, q19 and q23 are not expressed yet: see docs/nexmark.md).");
            }

            if (events <= 0 || rate <= 0 || rounds <= 0 || parallelism.Any(p => p <= 0))
            {
                throw new ArgumentException("--events, --rate, --rounds and --parallelism must be positive.");
            }
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
        {
            await Console.Error.WriteLineAsync($"error: {ex.Message}\n{Usage}");
            return 2;
        }

        var config = new NexmarkConfig { Events = events, EventsPerSecond = rate, MakeUnread = makeUnread, WatermarkDelay = delay };
        if (allocations)
        {
            using var sampler = new AllocationSampler();
            foreach (var query in queries)
            {
                var side = Path.Combine(Path.GetTempPath(), $"nexmark-side-input-{Environment.ProcessId}.csv");
                SideInput.WriteDefault(side);
                await Pipeline(query, config, side).Run(new PipelineOptions { Parallelism = parallelism[0] });
                File.Delete(side);
            }

            Console.WriteLine("Allocation samples by type (about one per 100 KB):");
            foreach (var line in sampler.Top(12))
            {
                Console.WriteLine(line);
            }

            return 0;
        }

        return verify ? await VerifyAsync(queries, config, parallelism) : await MeasureAsync(queries, config, parallelism, rounds, hand);
    }

    private static async Task<int> VerifyAsync(List<string> queries, NexmarkConfig config, int[] parallelism)
    {
        Console.WriteLine($"Verifying on {config.Events:N0} events ({config.Events / config.EventsPerSecond:0.###} s of event time) against the LINQ reference…");
        var data = Reference.Events(config);
        var failed = 0;
        foreach (var query in queries)
        {
            foreach (var p in parallelism)
            {
                var verdict = await Verification.RunAsync(query, config, data, p);
                failed += verdict.Difference is null ? 0 : 1;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{query,-4} p{p}  {verdict.Rows,12:N0} rows  {verdict.Difference ?? "equal to the reference"}"));
            }
        }

        Console.WriteLine(failed == 0 ? "every query equals its reference" : $"{failed} differ");
        return failed == 0 ? 0 : 1;
    }

    private static async Task<int> MeasureAsync(List<string> queries, NexmarkConfig config, int[] parallelism, int rounds, bool hand)
    {
        var side = Path.Combine(Path.GetTempPath(), $"nexmark-side-input-{Environment.ProcessId}.csv");
        SideInput.WriteDefault(side);
        try
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessorCount} cores, {config.Events:N0} events per run at {config.EventsPerSecond:N0}/s of event time, watermark {config.WatermarkDelay.TotalSeconds:0.###} s behind, {(config.MakeUnread ? "every event made" : "unread kinds skipped")}, median of {rounds} rounds, load average {LoadAverage()}"));
            Console.WriteLine();
            var warm = config with { Events = Math.Min(config.Events, 200_000) };
            Generate(warm, null); // the measured loops below run warm (tiered, not first-call) code
            foreach (var kind in Enum.GetValues<EventKind>())
            {
                Generate(warm, kind);
            }

            Console.WriteLine($"Generator alone (one thread): {Measure(() => Generate(config, null), config.Events).EventsPerSecond / 1e6:0.00} M events/s all kinds, {Measure(() => Generate(config, EventKind.Bid), config.Events).EventsPerSecond / 1e6:0.00} M events/s bids only (the others skipped, as bid queries' sources do)");
            foreach (var kind in Enum.GetValues<EventKind>())
            {
                Console.WriteLine($"  {kind}: {Measure(() => Generate(config, kind), config.Events).EventsPerSecond / 1e6:0.00} M events/s");
            }

            Console.WriteLine();
            Console.WriteLine("| query | engine | partitions | rows | wall s | CPU s | M events/s | M events per CPU-s | allocated B/event |");
            Console.WriteLine("|---|---|--:|--:|--:|--:|--:|--:|--:|");
            foreach (var query in queries)
            {
                foreach (var p in parallelism)
                {
                    var compiled = new List<Sample>();
                    var byHand = new List<Sample>();
                    for (var round = 0; round < rounds; round++)
                    {
                        var run = Pipeline(query, config, side);
                        compiled.Add(await MeasureAsync(() => run.Run(new PipelineOptions { Parallelism = p }), run.Rows, config.Events));
                        if (hand && p == 1 && HandWritten.Queries.Contains(query))
                        {
                            var rows = 0L;
                            byHand.Add(Measure(() => rows = HandWritten.Run(query, config), config.Events) with { Rows = rows });
                        }
                    }

                    Print(query, "Compiled", p, Median(compiled));
                    if (byHand.Count > 0)
                    {
                        var (c, h) = (Median(compiled), Median(byHand));
                        Print(query, $"hand-written loop (Compiled {c.EventsPerSecond / h.EventsPerSecond:0.00}×)", 1, h);
                    }
                }
            }
        }
        finally
        {
            File.Delete(side);
        }

        return 0;
    }

    private sealed record QueryRun(Func<PipelineOptions, Task<PipelineResult>> Run, Func<long> Rows);

    private static QueryRun Pipeline(string query, NexmarkConfig config, string side)
    {
        static QueryRun Of<TRow>(ICompiledPipeline pipeline, ISink<TRow> sink)
            => new(options => pipeline.CreateJob().RunAsync(options, default, default), () => ((CountSink<TRow>)sink).Count);

        switch (query)
        {
            case "q0": { var q = new Q0(config); return Of(q, q.Out); }
            case "q1": { var q = new Q1(config); return Of(q, q.Out); }
            case "q2": { var q = new Q2(config); return Of(q, q.Out); }
            case "q3": { var q = new Q3(config); return Of(q, q.Out); }
            case "q4": { var q = new Q4(config); return Of(q, q.Out); }
            case "q5": { var q = new Q5(config); return Of(q, q.Out); }
            case "q7": { var q = new Q7(config); return Of(q, q.Out); }
            case "q8": { var q = new Q8(config); return Of(q, q.Out); }
            case "q11": { var q = new Q11(config); return Of(q, q.Out); }
            case "q12": { var q = new Q12(config); return Of(q, q.Out); }
            case "q13": { var q = new Q13(config, side); return Of(q, q.Out); }
            case "q14": { var q = new Q14(config); return Of(q, q.Out); }
            case "q17": { var q = new Q17(config); return Of(q, q.Out); }
            case "q20": { var q = new Q20(config); return Of(q, q.Out); }
            case "q21": { var q = new Q21(config); return Of(q, q.Out); }
            case "q22": { var q = new Q22(config); return Of(q, q.Out); }
            default: throw new ArgumentException($"unknown query {query}", nameof(query));
        }
    }

    private readonly record struct Sample(long Events, long Rows, double Wall, double Cpu, long Allocated)
    {
        public double EventsPerSecond => Events / Wall;

        public double EventsPerCpuSecond => Events / Cpu;
    }

    private static async Task<Sample> MeasureAsync(Func<Task> run, Func<long> rows, long events)
    {
        Settle();
        var (cpu, allocated) = (CpuSeconds(), GC.GetTotalAllocatedBytes(precise: true));
        var clock = Stopwatch.StartNew();
        await run();
        clock.Stop();
        return new Sample(events, rows(), clock.Elapsed.TotalSeconds, CpuSeconds() - cpu, GC.GetTotalAllocatedBytes(precise: true) - allocated);
    }

    private static Sample Measure(Action run, long events)
    {
        Settle();
        var (cpu, allocated) = (CpuSeconds(), GC.GetTotalAllocatedBytes(precise: true));
        var clock = Stopwatch.StartNew();
        run();
        clock.Stop();
        return new Sample(events, 0, clock.Elapsed.TotalSeconds, CpuSeconds() - cpu, GC.GetTotalAllocatedBytes(precise: true) - allocated);
    }

    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private static double CpuSeconds()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime.TotalSeconds;
    }

    private static Sample Median(List<Sample> samples) => samples.OrderBy(s => s.EventsPerSecond).ElementAt(samples.Count / 2);

    private static void Print(string query, string engine, int partitions, Sample s)
        => Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {query} | {engine} | {partitions} | {s.Rows:N0} | {s.Wall:0.00} | {s.Cpu:0.00} | {s.EventsPerSecond / 1e6:0.00} | {s.EventsPerCpuSecond / 1e6:0.00} | {(double)s.Allocated / s.Events:0.0} |"));

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>Makes every event (<paramref name="kind"/> null) or those of one kind, skipping the others.</summary>
    private static void Generate(NexmarkConfig config, EventKind? kind)
    {
        var generator = new NexmarkGenerator(config);
        long sum = 0;
        for (long id = 0; id < config.Events; id++)
        {
            if (kind is null || NexmarkGenerator.KindOf(id) == kind)
            {
                sum += generator.Make(id);
            }
        }

        GC.KeepAlive(sum);
    }
}
