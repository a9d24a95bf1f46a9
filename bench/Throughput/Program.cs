using System.Diagnostics;
using System.Globalization;
using Compiled.Bench;
using Compiled.Connectors;
using Compiled.Runtime;
using Compiled.Testing;
using Compiled.Throughput;

// The end-to-end throughput harness. Implementations of a scenario run interleaved (one repetition of each, in
// turn), so that a noisy moment of the machine hits all of them; each figure is the median over repetitions.
//   --quick       fewer repetitions (finishes in well under two minutes)
//   --records N   records per repetition (default 10,000,000)
//   --memory-only only the memory -> memory scenario (for quick before/after comparisons)
//   --postgres    also Kafka (mock) -> PostgreSQL against raw Npgsql (starts a throwaway server; always in full runs)
//   --postgres-only only that scenario
//   --pg-records N, --checkpoint-ms N   rows of that scenario (200,000 quick, 500,000 full), checkpoint interval (1000)
//   --state       also window state checkpoints: a keyed count with and without 1 s checkpoints, and a stop and
//                 restore of 1,000,000 keys (--state-records N hits, default 30,000,000); --state-only: only that
//   --lookup      also lookup joins: a warm cache over SQLite against a hand-written Dictionary join, and a cold
//                 cache against PostgreSQL (batched) against one query per record (--lookup-records N, default
//                 5,000,000 sales); --lookup-only: only that
//   --join        also a join of two streams (an interval join of orders and payments) against a hand-written
//                 join over two Dictionaries (--join-orders N, default 2,000,000); --join-only: only that
//   --mysql       also memory -> MariaDB (append) against MySqlConnector's bulk copy by hand (starts a throwaway
//                 server; --mysql-records N, default 1,000,000); --mysql-only: only that
//   --parquet     also memory -> Parquet files against Parquet.Net by hand (--parquet-records N, default 1,000,000);
//                 --parquet-only: only that
//   --state-size-only  bytes per key of keyed state (a Dictionary by hand, running, tumbling, sliding and session
//                 counts) at --state-size-keys N[,N...] keys (default 1000000,10000000), each in a child process
//   --window-ops-only  tumbling and sliding window operators alone over 1 k, 100 k and 2 M keys (M records/s)
//   --short-runs-only  a fresh process's first runs: 3,000 pipelines of 4,096 orders one after another (each a new
//                 pipeline), beside the hand loop over the same orders (--short-runs N, --short-orders N)
//   --csv         also CSV bytes to records on three shapes (numeric, quoted text, wide) against Sylvan.Data.Csv, from a
//                 file and from a stream (--csv-records N, default 1,000,000; 300,000 with --quick); --csv-only: only that
if (args.Length == 3 && args[0] == "--state-size-child")
{
    return StateSizeScenario.RunChild(args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
}

if (args.Contains("--window-ops-only"))
{
    var rates = new List<(string Name, string Value)>();
    WindowOpsScenario.Run(rates);
    PrintResults(rates);
    return 0;
}

if (args.Contains("--state-size-only"))
{
    var sizes = new List<(string Name, string Value)>();
    var counts = (Array.IndexOf(args, "--state-size-keys") is var at and >= 0 && at + 1 < args.Length ? args[at + 1] : "1000000,10000000")
        .Split(',').Select(n => int.Parse(n, CultureInfo.InvariantCulture)).ToArray();
    await StateSizeScenario.RunAsync(counts, sizes);
    PrintResults(sizes);
    return 0;
}

var quick = args.Contains("--quick");
if (args.Contains("--short-runs-only"))
{
    var shortRuns = new List<(string Name, string Value)>();
    await ShortRuns.RunAsync(ArgumentAfter("--short-orders") ?? 4096, ArgumentAfter("--short-runs") ?? 3000, shortRuns);
    return 0;
}

if (args.Contains("--csv-only"))
{
    var csv = new List<(string Name, string Value)>();
    await CsvScenario.RunAsync(ArgumentAfter("--csv-records") ?? (quick ? 300_000 : 1_000_000), quick ? 2 : 3, quick ? 5 : 11, csv);
    PrintResults(csv);
    return 0;
}

if (args.Contains("--kafka-only"))
{
    var kafka = new List<(string Name, string Value)>();
    await KafkaScenario.RunAsync(ArgumentAfter("--kafka-records") ?? (quick ? 200_000 : 500_000), 1, quick ? 3 : 5, args.Contains("--kafka-alloc"), kafka);
    PrintResults(kafka);
    return 0;
}

var records = ArgumentAfter("--records") ?? OrderWorkload.DefaultCount;
var repetitions = quick ? 9 : 31;
var warmups = quick ? 3 : 5;

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Compiled throughput harness: {records:N0} records, {repetitions} interleaved repetitions ({(quick ? "quick" : "full")})"));
Console.WriteLine($".NET {Environment.Version}, {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
Console.WriteLine();

var block = new List<(string Name, string Value)>();
var postgresOnly = args.Contains("--postgres-only") || args.Contains("--state-only") || args.Contains("--lookup-only") || args.Contains("--join-only") || args.Contains("--mysql-only") || args.Contains("--parquet-only") || args.Contains("--cdc-only");
if (!postgresOnly)
{
    await MemoryToMemory(block);
}

if (!postgresOnly)
{
    await CacheResident(block);
}

if (!args.Contains("--memory-only") && !postgresOnly)
{
    await FileScenario.RunAsync(quick ? 500_000 : 2_000_000, quick ? 1 : 2, quick ? 3 : 7, block);
}

if (args.Contains("--csv"))
{
    await CsvScenario.RunAsync(ArgumentAfter("--csv-records") ?? (quick ? 300_000 : 1_000_000), quick ? 2 : 3, quick ? 5 : 11, block);
}

if (args.Contains("--state") || args.Contains("--state-only"))
{
    if (ArgumentAfter("--state-interval-ms") is { } stateMs)
    {
        StateScenario.Interval = TimeSpan.FromMilliseconds(stateMs);
    }

    await StateScenario.RunAsync(ArgumentAfter("--state-records") ?? 30_000_000, quick ? 3 : 7, block);
}

if (args.Contains("--lookup") || args.Contains("--lookup-only"))
{
    LookupScenario.LookupBatch = ArgumentAfter("--batch-size") ?? 1024;
    await LookupScenario.RunAsync(ArgumentAfter("--lookup-records") ?? 5_000_000, quick ? 1 : 2, quick ? 3 : 7, block);
}

if (args.Contains("--join") || args.Contains("--join-only"))
{
    await JoinScenario.RunAsync(ArgumentAfter("--join-orders") ?? 2_000_000, quick ? 1 : 2, quick ? 3 : 7, block);
}

if (args.Contains("--mysql") || args.Contains("--mysql-only"))
{
    await MySqlScenario.RunAsync(ArgumentAfter("--mysql-records") ?? 1_000_000, quick ? 1 : 2, quick ? 3 : 7, block);
}

if (args.Contains("--parquet") || args.Contains("--parquet-only"))
{
    await ParquetScenario.RunAsync(ArgumentAfter("--parquet-records") ?? 1_000_000, quick ? 1 : 2, quick ? 3 : 7, block);
}

if (args.Contains("--cdc") || args.Contains("--cdc-only"))
{
    await CdcScenario.RunAsync(ArgumentAfter("--cdc-rows") ?? (quick ? 300_000 : 1_000_000), ArgumentAfter("--cdc-changes") ?? (quick ? 50_000 : 200_000), 1, quick ? 3 : 5, block);
}

if (!args.Contains("--memory-only") && !args.Contains("--state-only") && !args.Contains("--lookup-only") && !args.Contains("--join-only") && !args.Contains("--mysql-only") && !args.Contains("--parquet-only") && !args.Contains("--cdc-only") && (!quick || postgresOnly || args.Contains("--postgres")))
{
    if (ArgumentAfter("--checkpoint-ms") is { } checkpointMs)
    {
        PostgresScenario.CheckpointInterval = TimeSpan.FromMilliseconds(checkpointMs);
    }

    await PostgresScenario.RunAsync(ArgumentAfter("--pg-records") ?? (quick ? 200_000 : 500_000), 1, quick ? 3 : 5, block);
}

if ((!quick || args.Contains("--diagnose")) && !postgresOnly && !args.Contains("--memory-only"))
{
    await Diagnose(block);
}

PrintResults(block);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peak_rss_mb={Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0}"));
return 0;

static void PrintResults(List<(string Name, string Value)> results)
{
    Console.WriteLine();
    Console.WriteLine("--- results ---");
    foreach (var (name, value) in results)
    {
        Console.WriteLine($"{name}={value}");
    }
}

async Task MemoryToMemory(List<(string, string)> results)
{
    Console.WriteLine("scenario: memory -> memory, map (Age + 1) -> filter (Age >= 18) -> map (Amount x 1.1) -> sum");
    var orders = OrderWorkload.Create(records);
    var expected = OrderWorkload.HandLoop(orders);
    const int RecordBytes = 32;

    var hand = new Measurement("hand-written loop", records, RecordBytes);
    var hand2 = new Measurement("hand-written loop, 2 threads", records, RecordBytes);
    var fused = new Measurement("Compiled generated loop", records, RecordBytes);
    var runtime1 = new Measurement("Compiled runtime, parallelism 1", records, RecordBytes);
    var runtime2 = new Measurement("Compiled runtime, parallelism 2", records, RecordBytes);
    // The default batch holds 1,024 records; this one 64 times more: what the loop's per-batch entry and exit cost.
    var runtimeLarge = new Measurement("Compiled runtime p1, batches of 65,536", records, RecordBytes);
    var connector = new Measurement("Compiled runtime p1, connector sink", records, RecordBytes);

    // The same chain with an operator object of a class: one that cannot change (the tax rate, set once) and one with
    // state (a filter counting what it saw), each against a hand loop calling the same object.
    var handClass = new Measurement("hand-written loop, class operator", records, RecordBytes);
    var fusedClass = new Measurement("Compiled generated loop, class operator", records, RecordBytes);
    var runtimeClass = new Measurement("Compiled runtime p1, class operator", records, RecordBytes);
    var handStateful = new Measurement("hand-written loop, class operator with state", records, RecordBytes);
    var fusedStateful = new Measurement("Compiled generated loop, class operator with state", records, RecordBytes);
    var runtimeStateful = new Measurement("Compiled runtime p1, class operator with state", records, RecordBytes);

    // Steady-state allocation of the generated loop: a warm pipeline, one push, bytes allocated on this thread.
    var warm = new FusedOrders();
    long fusedSteadyAllocated;
    await using (var driver = await PipelineTestDriver.StartAsync<Order>(warm))
    {
        OrderWorkload.PushInChunks(driver, orders);
        var before = GC.GetAllocatedBytesForCurrentThread();
        OrderWorkload.PushInChunks(driver, orders);
        fusedSteadyAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
    }

    for (var rep = 0; rep < warmups + repetitions; rep++)
    {
        var measure = rep >= warmups;
        await hand.RunAsync(() => { OrderWorkload.HandLoop(orders).Verify(expected, hand.Name); return Task.CompletedTask; }, measure);
        await fused.RunTimedAsync(
            () =>
            {
                FusedOrders.ResetShared();
                return TimePushes(new FusedOrders(), driver => OrderWorkload.PushInChunks(driver, orders), p => p.Result, expected, fused.Name);
            },
            measure);
        await runtime1.RunAsync(() => RunFused(orders, 1, expected), measure);
        await runtimeLarge.RunAsync(() => RunFused(orders, 1, expected, 65_536), measure);
        await hand2.RunAsync(async () => (await TwoThreadHandLoop.RunAsync(orders)).Verify(expected, hand2.Name), measure); // both cores: after the single-threaded ones, whose figures it would disturb
        await runtime2.RunAsync(() => RunFused(orders, 2, expected), measure);
        await connector.RunAsync(
            async () =>
            {
                var pipeline = new RuntimeOrders { Orders = new CollectionSource<Order>(orders) };
                await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });
                pipeline.Total.Result.Verify(expected, connector.Name);
            },
            measure);
        await handClass.RunAsync(() => { ClassOperatorHandLoops.WithTaxRate(orders, new TaxRate(1.1)).Verify(expected, handClass.Name); return Task.CompletedTask; }, measure);
        await fusedClass.RunTimedAsync(() => TimePushes(new ClassOperatorOrders(), driver => OrderWorkload.PushInChunks(driver, orders), p => p.Total.Result, expected, fusedClass.Name), measure);
        await runtimeClass.RunAsync(
            async () =>
            {
                var pipeline = new ClassOperatorOrders { Orders = new CollectionSource<Order>(orders) };
                await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });
                pipeline.Total.Result.Verify(expected, runtimeClass.Name);
            },
            measure);
        await handStateful.RunAsync(() => { ClassOperatorHandLoops.WithCountingAdults(orders, new CountingAdults()).Verify(expected, handStateful.Name); return Task.CompletedTask; }, measure);
        await fusedStateful.RunTimedAsync(() => TimePushes(new StatefulClassOrders(), driver => OrderWorkload.PushInChunks(driver, orders), p => p.Total.Result, expected, fusedStateful.Name), measure);
        await runtimeStateful.RunAsync(
            async () =>
            {
                var pipeline = new StatefulClassOrders { Orders = new CollectionSource<Order>(orders) };
                await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });
                pipeline.Total.Result.Verify(expected, runtimeStateful.Name);
            },
            measure);
    }

    var baseline = hand.MedianSeconds;
    foreach (var m in new[] { hand, hand2, fused, runtime1, runtimeLarge, runtime2, connector })
    {
        Console.WriteLine(m.Row(baseline));
    }

    foreach (var m in new[] { handClass, fusedClass, runtimeClass })
    {
        Console.WriteLine(m.Row(handClass.MedianSeconds));
    }

    foreach (var m in new[] { handStateful, fusedStateful, runtimeStateful })
    {
        Console.WriteLine(m.Row(handStateful.MedianSeconds));
    }

    results.Add(("fused_vs_handloop", Ratio(baseline / fused.MedianSeconds)));
    results.Add(("fused_alloc_bytes_per_record", (fusedSteadyAllocated / (double)records).ToString("F4", CultureInfo.InvariantCulture)));
    results.Add(("runtime_vs_handloop", Ratio(baseline / runtime1.MedianSeconds)));
    results.Add(("runtime_large_batches_vs_handloop", Ratio(baseline / runtimeLarge.MedianSeconds)));
    results.Add(("runtime_alloc_bytes_per_record", runtime1.AllocatedBytesPerRecord.ToString("F4", CultureInfo.InvariantCulture)));
    results.Add(("partitions2_vs_1", Ratio(runtime1.MedianSeconds / runtime2.MedianSeconds)));
    results.Add(("handloop_2threads_vs_1", Ratio(baseline / hand2.MedianSeconds)));
    results.Add(("runtime_connector_sink_vs_handloop", Ratio(baseline / connector.MedianSeconds)));
    results.Add(("handloop_ns_per_record", (baseline * 1e9 / records).ToString("F3", CultureInfo.InvariantCulture)));
    results.Add(("fused_records_per_second", fused.RecordsPerSecond.ToString("F0", CultureInfo.InvariantCulture)));
    results.Add(("class_fused_vs_class_handloop", Ratio(handClass.MedianSeconds / fusedClass.MedianSeconds)));
    results.Add(("class_runtime_vs_class_handloop", Ratio(handClass.MedianSeconds / runtimeClass.MedianSeconds)));
    results.Add(("stateful_class_fused_vs_handloop", Ratio(handStateful.MedianSeconds / fusedStateful.MedianSeconds)));
    results.Add(("stateful_class_runtime_vs_handloop", Ratio(handStateful.MedianSeconds / runtimeStateful.MedianSeconds)));
}

// The same work over a block that stays in cache, repeated to the same record count: what the loops cost without
// the memory bandwidth that the memory scenario spends most of its time on (and that two cores share).
async Task CacheResident(List<(string, string)> results)
{
    const int BlockRecords = 16_384; // 512 KB of orders
    var block = OrderWorkload.Create(BlockRecords);
    var repeats = Math.Max(2, records / BlockRecords);
    var total = (long)BlockRecords * repeats;
    Console.WriteLine();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scenario: cache-resident, the same chain over a block of {BlockRecords:N0} orders (512 KB) repeated {repeats:N0} times"));
    var expected = TwoThreadHandLoop.Repeated(block, repeats);
    var hand = new Measurement("hand-written loop", total, 32);
    var hand2 = new Measurement("hand-written loop, 2 threads", total, 32);
    var fused = new Measurement("Compiled generated loop", total, 32);
    var runtime1 = new Measurement("Compiled runtime, parallelism 1", total, 32);
    var runtime2 = new Measurement("Compiled runtime, parallelism 2", total, 32);
    for (var rep = 0; rep < warmups + repetitions; rep++)
    {
        var measure = rep >= warmups;
        await hand.RunAsync(() => { TwoThreadHandLoop.Repeated(block, repeats).Verify(expected, hand.Name); return Task.CompletedTask; }, measure);
        await hand2.RunAsync(async () => (await TwoThreadHandLoop.RunRepeatedAsync(block, repeats)).Verify(expected, hand2.Name), measure);
        await fused.RunTimedAsync(
            () =>
            {
                FusedOrders.ResetShared();
                return TimePushes(
                    new FusedOrders(),
                    driver =>
                    {
                        for (var r = 0; r < repeats; r++)
                        {
                            driver.Push(block);
                        }
                    },
                    p => p.Result,
                    expected,
                    fused.Name);
            },
            measure);
        foreach (var (measurement, parallelism) in new[] { (runtime1, 1), (runtime2, 2) })
        {
            await measurement.RunAsync(
                async () =>
                {
                    FusedOrders.ResetShared();
                    var pipeline = new FusedOrders { Orders = new RepeatedBlockSource(block, repeats) };
                    await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism });
                    pipeline.Result.Verify(expected, measurement.Name);
                },
                measure);
        }
    }

    foreach (var m in new[] { hand, hand2, fused, runtime1, runtime2 })
    {
        Console.WriteLine(m.Row(hand.MedianSeconds));
    }

    results.Add(("cache_fused_vs_handloop", Ratio(hand.MedianSeconds / fused.MedianSeconds)));
    results.Add(("cache_runtime_vs_handloop", Ratio(hand.MedianSeconds / runtime1.MedianSeconds)));
    results.Add(("cache_partitions2_vs_1", Ratio(runtime1.MedianSeconds / runtime2.MedianSeconds)));
    results.Add(("cache_handloop_2threads_vs_1", Ratio(hand.MedianSeconds / hand2.MedianSeconds)));
}

async Task Diagnose(List<(string, string)> results)
{
    Console.WriteLine();
    Console.WriteLine("diagnosis: the hand loop with the generated loop's bookkeeping added one piece at a time");
    var orders = OrderWorkload.Create(records);
    var expected = OrderWorkload.HandLoop(orders);
    var hand = new Measurement("hand-written loop", records, 32);
    var variants = Diagnosis.Variants.Select(v => (v.Run, Measurement: new Measurement(v.Name, records, 32))).ToList();
    for (var rep = 0; rep < warmups + repetitions; rep++)
    {
        var measure = rep >= warmups;
        await hand.RunAsync(() => { OrderWorkload.HandLoop(orders).Verify(expected, hand.Name); return Task.CompletedTask; }, measure);
        foreach (var (run, measurement) in variants)
        {
            await measurement.RunAsync(() => { run(orders).Verify(expected, measurement.Name); return Task.CompletedTask; }, measure);
        }
    }

    Console.WriteLine(hand.Row(hand.MedianSeconds));
    foreach (var (_, measurement) in variants)
    {
        Console.WriteLine(measurement.Row(hand.MedianSeconds));
    }

    results.Add(("diagnosis_markers_vs_handloop", Ratio(hand.MedianSeconds / variants[2].Measurement.MedianSeconds)));
    results.Add(("diagnosis_writeback_vs_handloop", Ratio(hand.MedianSeconds / variants[3].Measurement.MedianSeconds)));
}

// The generated loop alone: the pushes are timed, not the driver's start and end (opening sinks, building the loop),
// which cost about a millisecond — a fifth of a 10 M-record pass on a fast machine, and no part of the loop.
static async Task<double?> TimePushes<TPipeline>(TPipeline pipeline, Action<PipelineTestDriver<Order>> push, Func<TPipeline, Result> result, Result expected, string name)
    where TPipeline : ICompiledPipeline
{
    double seconds;
    await using (var driver = await PipelineTestDriver.StartAsync<Order>(pipeline))
    {
        var clock = Stopwatch.StartNew();
        push(driver);
        seconds = clock.Elapsed.TotalSeconds;
    }

    result(pipeline).Verify(expected, name);
    return seconds;
}

static async Task RunFused(Order[] orders, int parallelism, Result expected, int batchSize = PipelineOptions.DefaultBatchSize)
{
    FusedOrders.ResetShared();
    var pipeline = new FusedOrders { Orders = new CollectionSource<Order>(orders) };
    await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = batchSize });
    pipeline.Result.Verify(expected, $"runtime p={parallelism}");
}

static string Ratio(double value) => value.ToString("F3", CultureInfo.InvariantCulture);

int? ArgumentAfter(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : null;
}
